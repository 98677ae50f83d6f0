"""Keep a long cycle's freed memory from staying resident: glibc malloc's mmap threshold, and trimming.

glibc serves a request above its mmap threshold with a mapping of its own, handed back to the system when freed.
By default the threshold starts at 128 KiB and rises to the size of the largest such block freed (up to 32 MiB).
Once a full cycle at 1M records has freed a 24 MB text blob, every array of a few megabytes after it (link index
and topology columns, the listing's key table) comes from the heap instead, where a few long-lived neighbours keep
the freed memory resident. A threshold fixed at 4 MiB (which also turns the adjustment off) keeps those arrays
mapped on their own, while page bodies and small arrays still reuse heap memory: 128 KiB would map and fault in
every page body anew, ~10% more CPU for a cycle.

Page bodies and the lists and dicts a page decodes into still come and go in the heap, between blocks that live
for the whole cycle; the free space between them stays resident, and at 1M records it grew to ~20 MB over the
source stream. :class:`Trimmer` hands it back (``malloc_trim``) every so many pages: about a millisecond a call.
Both are no-ops where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

#: ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: Blocks above this size get a mapping of their own (the large, short-lived arrays of a full cycle).
MMAP_THRESHOLD = 4 * 1024 * 1024
#: Pages of a stream between two trims (a 1M-record stream of 1,000-record pages: 20 trims).
TRIM_EVERY = 50


@functools.cache
def _libc() -> Any:
    """The C library, or None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # pragma: no cover - no C library to load
        return None


def fix_mmap_threshold() -> bool:
    """Fix the malloc mmap threshold at :data:`MMAP_THRESHOLD`; False where that is not possible."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim() -> bool:
    """Hand the heap's free pages back to the system; False where that is not possible (not glibc)."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    if malloc_trim is None:  # pragma: no cover - not glibc
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    malloc_trim(0)
    return True


class Trimmer:
    """Counts the pages of a stream and trims the heap after every ``every`` of them."""

    def __init__(self, every: int = TRIM_EVERY) -> None:
        self._every = every
        self._pages = 0

    def page_done(self) -> None:
        """One page read and let go of."""
        self._pages += 1
        if self._pages % self._every == 0:
            trim()
