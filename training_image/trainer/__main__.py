"""``python -m trainer [train]``: the same entry as the image's ``train`` executable."""

import sys

from trainer.main import main

sys.exit(main())
