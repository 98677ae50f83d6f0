"""The malloc mmap threshold is fixed where glibc is the allocator (what the ``reconciler`` command does first),
and the free memory between live heap blocks is handed back every so many pages."""

from __future__ import annotations

import os
import platform

import pytest

from reconciler import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_MMAP_THRESHOLD) is glibc's")
def test_the_mmap_threshold_is_fixed_on_glibc() -> None:
    assert heap.fix_mmap_threshold() is True


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_a_trimmer_hands_back_the_free_memory_between_live_blocks_every_so_many_pages() -> None:
    heap.fix_mmap_threshold()  # 100 KiB blocks come from the heap, as page bodies do
    blocks = [bytearray(b"x" * 100_000) for _ in range(640)]  # ~64 MB, touched
    pinned = bytearray(b"y" * 100_000)  # a live block above them: the heap cannot shrink from its top
    before = _resident_mb()
    del blocks
    freed = _resident_mb()
    trimmer = heap.Trimmer(every=3)
    trimmer.page_done()
    trimmer.page_done()
    assert _resident_mb() > freed - 16  # not yet: two pages of three
    trimmer.page_done()
    assert _resident_mb() < before - 32, (before, freed, _resident_mb())
    assert len(pinned) == 100_000
