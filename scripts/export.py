"""Export a trained model (a snapshot or a model file) to ONNX or .pt2: ``python scripts/export.py --help``."""

import sys

from mnist_lightning.export import main

if __name__ == "__main__":
    sys.exit(main())
