"""``python -m trainer [train | self-check | serve]``: the same entry as the image's ``train``."""

import sys

from trainer import self_check

if self_check.requested(sys.argv[1:]):
    sys.exit(self_check.main(sys.argv[2:]))
if sys.argv[1:2] == ["serve"]:
    from serving.server import main as serve

    sys.exit(serve())

from trainer.main import main

sys.exit(main())
