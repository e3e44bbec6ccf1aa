"""Train LeNet (or the MLP) on MNIST with Lightning: ``python scripts/train.py --help``."""

import sys

from mnist_lightning.cli import main

if __name__ == "__main__":
    sys.exit(main())
