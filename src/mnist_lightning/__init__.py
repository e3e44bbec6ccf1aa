"""mnist-lightning: Chainer's Trainer/Extensions design on PyTorch Lightning, shown on MNIST."""

__version__ = "0.1.0"
