"""The IceVision trainer that runs inside the training image (see main.py for the entry)."""
