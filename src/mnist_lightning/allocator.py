"""Keep freed tensor memory in the process for the next step, instead of glibc handing it back to the kernel.

A training step on the CPU allocates and frees megabytes of activations and gradients. With glibc's default
settings, malloc serves blocks over its (self-adjusting) threshold with ``mmap`` and trims the heap top when much
is free, so the next step takes those pages back one fault at a time. On this project's CPU a three-epoch LeNet
run of ``scripts/train.py`` made 0.8 to 1.5 million page faults that way (how many depends on the order blocks
happen to be freed in) and 0.19 million with these settings, its system time falling from 2.5-3.9 s to 1 s.
PyTorch's CPU tuning guide recommends an allocator that keeps memory (jemalloc, tcmalloc); on glibc the same is
three ``mallopt`` settings, which :func:`keep_freed_memory` makes at run time.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # free memory at the heap top given back to the kernel only beyond this much
M_TOP_PAD = -2  # extra memory taken from the kernel each time the heap grows
M_MMAP_THRESHOLD = -3  # blocks at least this large get their own mmap, unmapped again on free

MIB = 2**20
#: Variables by which a user chooses malloc's behaviour; when one is set, their choice stands.
USER_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
    "LD_PRELOAD",
)


def keep_freed_memory(mmap_threshold: int = 32 * MIB, trim_threshold: int = 128 * MIB, top_pad: int = 16 * MIB) -> bool:
    """Make glibc's malloc keep freed blocks up to ``mmap_threshold`` (its maximum) for reuse.

    Up to ``trim_threshold`` of free memory stays in the process rather than going back to the kernel. Returns
    whether the settings were made: not on a C library other than glibc, nor when the user set one of
    :data:`USER_SETTINGS` (their own malloc settings or a preloaded allocator).
    """
    if not sys.platform.startswith("linux") or any(os.environ.get(name) for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        libc.gnu_get_libc_version  # noqa: B018 (present in glibc only; musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_TOP_PAD, top_pad))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
