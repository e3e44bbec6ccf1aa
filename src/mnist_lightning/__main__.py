"""``python -m mnist_lightning``: the training command (``--help`` lists its flags)."""

import sys

from mnist_lightning.cli import main

if __name__ == "__main__":
    sys.exit(main())
