"""This process's own peak resident memory.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not it for a child process on Linux: ``execve`` folds the high-water
mark of the memory it replaces into the new program's ``ru_maxrss``, and ``subprocess`` starts children with
``vfork``, which shares the parent's memory up to that ``execve``. So a benchmark child started by a driver that
holds 400 MB reports at least 400 MB, whatever it used itself. ``VmHWM`` in ``/proc/self/status`` belongs to
the address space alone and starts again at ``execve``.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process's own address space, MB (``ru_maxrss`` where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
