"""Tests of ``lightning_chainer.triggers``, one file per module (a package, so the names stay unique)."""
