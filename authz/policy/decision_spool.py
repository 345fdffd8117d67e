"""The decision spool: answered decisions on local disk until they are in the store.

Each process appends every decision it queues for the log to a file of its own (one `write(2)`
a decision, before the check answers), under an exclusive `flock` held while it lives. What the
store has taken is dropped a segment at a time. A process killed by any signal leaves its
segments behind with their locks released; the next process on the same spool directory takes
them (`flock` again: two cannot), writes the decisions the store does not hold yet (by id) at
the end of the chain, and removes them.

Guarantee: a decision that was answered survives the death of its process (the kernel holds
what was written). It survives the death of the machine only once fsynced: the log's writer
fsyncs the segment every tick (0.2 s) while the store is not taking decisions, and at a graceful
stop; while the store takes them, they are in the store within that tick.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUFFIX = ".spool"


def directory_for(database_url: str, configured: str | None) -> Path:
    """Where this store's spool lives: `configured`, else beside an SQLite file, else under the
    user's state directory, one folder per database (a spool replays into its own store only)."""
    if configured:
        return Path(configured)
    if database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///") + "-decision-spool")
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    key = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return state / "authz" / f"decision-spool-{key}"


class Spool:
    """This process's segments; see the module docstring. Not thread-safe: the log serializes
    `append` and `rotate`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        #: Decisions appended since this spool was opened; the log counts what it wrote.
        self.appended = 0
        # Closed segments keep their descriptor, and so their lock, until they are dropped.
        self._closed: deque[tuple[Path, int, int]] = deque()  # (segment, fd, appended at end)
        self._path, self._fd = self._open()
        self._start = 0
        self._dirty: set[int] = set()

    def _open(self) -> tuple[Path, int]:
        path = self.directory / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
        # Locked under a name replayers do not look at, then named: a replayer never finds a
        # segment whose lock is not taken yet.
        tmp = path.with_suffix(".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        tmp.rename(path)
        return path, fd

    def append(self, line: bytes) -> None:
        """One decision's line, in the kernel before the caller answers."""
        os.write(self._fd, line)
        self.appended += 1

    def rotate(self) -> None:
        """Start a new segment if the current one holds anything (the log calls this after a
        good write, with its appends held off)."""
        if self.appended == self._start:
            return
        self._closed.append((self._path, self._fd, self.appended))
        self._path, self._fd = self._open()
        self._start = self.appended

    def drop_written(self, written: int) -> None:
        """Remove the closed segments whose decisions are all in the store."""
        while self._closed and self._closed[0][2] <= written:
            path, fd, _ = self._closed.popleft()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            os.close(fd)

    def fsync(self) -> None:
        """Make every segment still held durable (the store is not taking decisions)."""
        for _, fd, _ in self._closed:
            os.fsync(fd)
        os.fsync(self._fd)

    def close(self, written: int) -> int:
        """Drop what is written, fsync the rest and let go; return how many decisions stay."""
        self.drop_written(written)
        if written >= self.appended:  # the current segment's decisions are all in the store
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        self.fsync()
        for _, fd, _ in self._closed:
            os.close(fd)
        os.close(self._fd)
        return max(self.appended - written, 0)


@contextlib.contextmanager
def orphans(directory: Path) -> Iterator[list[tuple[Path, list[str]]]]:
    """The segments no live process holds (their lock is free), locked for the caller, with
    their whole lines; removed if the caller's block ends without an error."""
    taken: list[tuple[Path, int]] = []
    found: list[tuple[Path, list[str]]] = []
    try:
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                # Locks belong to open files: even this process's own segments refuse it.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            taken.append((path, fd))
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
            # A line cut by a crash mid-write was never answered: only whole lines count.
            found.append((path, [ln.decode() for ln in data.split(b"\n")[:-1] if ln]))
        yield found
        for path, _ in taken:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        for _, fd in taken:
            os.close(fd)


def encode(canonical: str) -> bytes:
    """A spool line: the row's canonical text (`canonical_v2`) as an ASCII JSON string."""
    return (json.encoder.encode_basestring_ascii(canonical) + "\n").encode()  # type: ignore[attr-defined]


def decode(line: str) -> str:
    """The canonical text of a spool line."""
    text = json.loads(line)
    if not isinstance(text, str):
        raise ValueError("not a spool line")
    return text


def parse_at(at: str) -> dt.datetime:
    """A canonical `at` ("YYYY-MM-DD HH:MM:SS.ffffff", UTC) as an aware datetime."""
    return dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)


def fields(canonical: str) -> list[Any]:
    """The 13 fields of a canonical text, in `canonical_v2`'s order, NULLs restored."""
    parts: list[Any] = canonical.split("\x1f")
    if len(parts) != 13:
        return list(json.loads(canonical))
    flags = int(parts[8], 16)
    parts[8] = bool(flags & 1)
    if flags & 2:
        parts[2] = None
    if flags & 4:
        parts[3] = None
    if flags & 8:
        parts[7] = None
    parts[12] = int(parts[12])
    return parts
