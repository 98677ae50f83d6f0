"""Keep large short-lived arrays from staying resident: fix glibc malloc's mmap threshold.

glibc serves a request above its mmap threshold with a mapping of its own, handed back to the system when freed.
By default the threshold starts at 128 KiB and rises to the size of the largest such block freed (up to 32 MiB).
Once a full cycle at 1M records has freed a 24 MB text blob, every array of a few megabytes after it (link index
and topology columns, the listing's key table) comes from the heap instead, where a few long-lived neighbours keep
the freed memory resident. A threshold fixed at 4 MiB (which also turns the adjustment off) keeps those arrays
mapped on their own, while page bodies and small arrays still reuse heap memory: 128 KiB would map and fault in
every page body anew, ~10% more CPU for a cycle. A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: Blocks above this size get a mapping of their own (the large, short-lived arrays of a full cycle).
MMAP_THRESHOLD = 4 * 1024 * 1024


def fix_mmap_threshold() -> bool:
    """Fix the malloc mmap threshold at :data:`MMAP_THRESHOLD`; False where that is not possible."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # pragma: no cover - no C library to load, or no mallopt in it
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
