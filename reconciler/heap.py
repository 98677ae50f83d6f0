"""Keep short-lived large buffers from staying resident: fix glibc malloc's mmap threshold.

glibc serves a request above its mmap threshold (128 KiB) with a mapping of its own, handed back to the system when
freed. By default, though, the threshold rises to the size of the largest such block freed (up to 32 MiB): once a
full cycle has freed a few arrays of some megabytes, every page body and numpy array below that size comes from
the heap instead, where a few long-lived neighbours keep the freed memory resident. Setting the threshold fixes it
(and turns the adjustment off). At 1M boxes this lowers a full cycle's peak resident memory by about a tenth (see
``benchmarks/results``). A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: glibc's own default threshold, kept but fixed.
MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold() -> bool:
    """Fix the malloc mmap threshold at :data:`MMAP_THRESHOLD`; False where that is not possible."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # pragma: no cover - no C library to load, or no mallopt in it
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
