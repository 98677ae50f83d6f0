"""The single-writer lock of a state store.

Two reconcilers writing one state database would each believe its own journal and cursors, and the safety rules
(journal before send, cursor only past successes) would no longer hold. So a store that writes holds an
exclusive, non-blocking ``flock`` on ``<db path>.lock`` for its whole lifetime, and a second opener fails at once
with :class:`~reconciler.errors.StateLockedError` naming the database, the lock file and the holder's PID.

Why ``flock`` on a side file rather than SQLite's own locking: SQLite locks per transaction, not per process
lifetime, and it would make the second writer *wait* (``busy_timeout``) instead of refusing. The kernel drops an
``flock`` when its holder dies, even on ``kill -9``, so there is never a stale lock to clean up by hand; for that
reason the lock file is never deleted (deleting it would let two processes lock two different inodes). The PID
inside is informative only, and it is cleared on release.

POSIX only (``fcntl``), like the deployments this targets.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from reconciler.errors import StateError, StateLockedError

__all__ = ["WriterLock", "lock_path_for"]


def lock_path_for(db_path: str | Path) -> Path:
    """The lock file that guards ``db_path``: the same path with ``.lock`` appended."""
    return Path(f"{db_path}.lock")


class WriterLock:
    """An exclusive ``flock`` on the lock file of a state database; not reentrant.

    ``acquire()`` never waits: it takes the lock or raises :class:`StateLockedError`. ``release()`` is
    idempotent.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.path = lock_path_for(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and write our PID into the lock file."""
        if self._fd is not None:
            raise StateError(
                f"state store {self.db_path}: writer lock {self.path} is already held by this store"
            )
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"state store {self.db_path}: cannot open lock file {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            raise StateLockedError(
                f"state store {self.db_path} is locked by another reconciler process (pid {holder}); "
                f"lock file {self.path}. Stop that process or point this one at another state file."
            ) from exc
        except OSError as exc:
            os.close(fd)
            raise StateError(f"state store {self.db_path}: cannot lock {self.path}: {exc}") from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)  # closing the descriptor drops the flock too
            raise StateError(
                f"state store {self.db_path}: cannot write lock file {self.path}: {exc}"
            ) from exc
        self._fd = fd

    def release(self) -> None:
        """Clear the PID and drop the lock; does nothing when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # still ours: nobody else can be writing a PID yet
        except OSError:
            pass  # the PID is informative only; dropping the lock is what matters
        finally:
            os.close(fd)  # releases the flock


def _read_pid(fd: int) -> str:
    """The PID the holder wrote, or ``unknown`` (it may be between truncating and writing)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
