"""Tests of ``lightning_chainer.extensions``, one file per module (a package, so the names stay unique)."""
