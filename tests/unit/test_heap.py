"""The malloc mmap threshold is fixed where glibc is the allocator (what the ``reconciler`` command does first)."""

from __future__ import annotations

import platform

import pytest

from reconciler import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_MMAP_THRESHOLD) is glibc's")
def test_the_mmap_threshold_is_fixed_on_glibc() -> None:
    assert heap.fix_mmap_threshold() is True
