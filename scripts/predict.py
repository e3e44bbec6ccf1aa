"""Classify images with a trained model (a snapshot or a model file): ``python scripts/predict.py --help``."""

import sys

from mnist_lightning.predict import main

if __name__ == "__main__":
    sys.exit(main())
