import sys

from detrain.cli import main

sys.exit(main())
