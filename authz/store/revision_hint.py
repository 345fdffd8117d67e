"""The newest committed revision of an SQLite store, published in shared memory beside it.

Every check must see every write that has returned (issue 4), so it used to read `state.revision`
with a query: on SQLite that costs a pool checkout, a read transaction and a release of the GIL,
more than the decision itself. An SQLite store lives on one host, so every process that writes it
can publish the revision it committed in a small memory-mapped file next to the database
(`authz.db-revision`), and a check compares that number with its facts' revision without a query.

Why this never gives a stale allow: `Store.write` publishes its revision after the commit and
before it returns, so a check that starts after a revoke has returned reads a published revision
at least as new as the revoke's, finds its facts older, and reads the store. Publishing keeps the
maximum under an exclusive file lock, so two writers finishing out of order cannot move it back.
A torn or unreadable value, or a database file replaced under the hint, falls back to the query:
the hint can only ever say "read the store", never "don't". A process that cannot open the hint
of a file database refuses to write it (`Store.write`), since its writes would go unannounced;
it can still read. Like SQLite's own `-wal` and `-shm` files, the hint must not be deleted while
processes use the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import threading
from pathlib import Path

#: magic, database file's device and inode, revision, the revision's complement (torn-read check).
_LAYOUT = struct.Struct("<8sQQqq")
_MAGIC = b"authzrev"


class RevisionHint:
    """A memory-mapped revision shared by every process using one SQLite database file."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}-revision")
        stat = database.stat()
        self._thread_lock = threading.Lock()
        self._identity = (stat.st_dev, stat.st_ino)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Whoever may write the database may publish (SQLite gives its -wal and -shm files
            # the database file's permissions the same way).
            os.fchmod(self._fd, stat.st_mode & 0o666)
            with self._locked():
                if os.fstat(self._fd).st_size < _LAYOUT.size:
                    os.ftruncate(self._fd, _LAYOUT.size)
                self._map = mmap.mmap(self._fd, _LAYOUT.size)
                magic, dev, ino, _, _ = _LAYOUT.unpack_from(self._map)
                if magic != _MAGIC or (dev, ino) != self._identity:
                    # A new hint, or one left by a database file that was since replaced: it
                    # says nothing about this one until a write publishes.
                    self._write(0)
        except BaseException:
            os.close(self._fd)
            raise

    @staticmethod
    def database_file(url: str) -> Path | None:
        """The file of an SQLite file database URL; None for anything else."""
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            return None
        name = url[len(prefix) :].split("?", 1)[0]
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        return Path(name)

    def read(self) -> int | None:
        """The newest published revision, or None when it cannot be trusted (read the store)."""
        try:
            magic, dev, ino, revision, check = _LAYOUT.unpack_from(self._map)
        except ValueError:  # closed
            return None
        if magic != _MAGIC or (dev, ino) != self._identity or check != ~revision:
            return None
        return int(revision)

    def publish(self, revision: int) -> None:
        """Raise the published revision to `revision` (never lower it)."""
        with self._locked():
            current = self.read()
            if current is None or revision > current:
                self._write(revision)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _write(self, revision: int) -> None:
        # A reader that catches this copy half done sees a revision and a complement that do
        # not match, and distrusts the value instead of believing half of it.
        _LAYOUT.pack_into(self._map, 0, _MAGIC, *self._identity, revision, ~revision)

    @contextlib.contextmanager
    def _locked(self):  # type: ignore[no-untyped-def]
        # flock excludes other processes only: threads of this one share the descriptor, so
        # two writers finishing at once in one process also take the thread lock.
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
