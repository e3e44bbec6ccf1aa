"""Importing Chainer 7.8.1 on a current Python: the one place that knows its install quirks."""

from __future__ import annotations

import sys
import warnings
from types import ModuleType

INSTALL_HINT = (
    "Chainer is not installed: run `make install-dev` (or `pip install 'setuptools>=77,<81' wheel` then "
    "`pip install --no-build-isolation -e '.[chainer]'`) in this project's virtual environment."
)


def import_chainer() -> ModuleType:
    """Import and return ``chainer``, or raise ImportError with the one-sentence install hint.

    Chainer's import runs ``numpy.distutils``, which fails under setuptools' distutils shim; dropping
    the shim's finder before the first import makes Python use its own ``distutils`` (3.10, 3.11),
    which is what ``SETUPTOOLS_USE_DISTUTILS=stdlib`` would do for the whole process.
    """
    if "chainer" in sys.modules:
        return sys.modules["chainer"]
    if "distutils" not in sys.modules:
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ != "_distutils_hack"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import chainer
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return chainer
