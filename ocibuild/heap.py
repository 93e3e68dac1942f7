"""Big buffers kept for reuse: glibc's malloc hands a freed block above 128 KiB straight back to
the kernel (and trims the heap once 128 KiB at its top are free), so a stream read and written
in 1 MiB chunks maps and faults in fresh zeroed pages for every chunk: about a second of system
time per GB of layers flattened into a squashfs. Raising the two thresholds once, at start-up,
lets those blocks be reused; at most a few MiB more stay in the process. Other C libraries, and
a user's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_, are left alone."""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt's parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20  # blocks up to this come from the heap and are reused
TRIM_THRESHOLD = 16 << 20  # free memory kept at the top of the heap
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def reuse_big_buffers() -> bool:
    """Raise glibc's thresholds; False where the C library has no mallopt or the user set
    them."""
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
