"""The decision spool: answered decisions on local disk until they are in the store.

Each process appends every decision it queues for the log to a segment file of its own, before
the check answers, under an exclusive `flock` held while it lives. A segment is reserved on
disk (`posix_fallocate`) and mapped shared into memory: an append is a copy into the file's
page cache, with no system call, so it neither costs a check a syscall nor lets go of the
interpreter lock in the middle of one (measured: the `write(2)` a decision this replaced cost a
check more CPU than the rest of the log). What the store has taken is dropped a segment at a
time. A process killed by any signal leaves its segments behind with their locks released; the
next process on the same spool directory takes them (`flock` again: two cannot), writes the
decisions the store does not hold yet (by id) at the end of the chain, and removes them.

Guarantee: a decision that was answered survives the death of its process (its bytes are in
the kernel's page cache of the file, which outlives the process). It survives the death of the
machine only once synced: the log's writer syncs the segments every tick (1 s) while the store
is not taking decisions, and at a graceful stop; while the store takes them, they are in the
store within that tick. A line cut by a kill in the middle of its copy was never answered:
only whole lines (ending in a newline, holding no NUL) are replayed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import mmap
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUFFIX = ".spool"
#: Bytes reserved for a segment: a few ticks of a busy worker's decisions (~200 bytes each);
#: a full segment is closed and another opened.
SEGMENT_BYTES = 4 << 20


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


class _Segment:
    """One segment file: reserved, locked, mapped; `used` bytes hold whole lines."""

    def __init__(self, directory: Path, size: int) -> None:
        self.path = directory / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
        # Locked under a name replayers do not look at, then named: a replayer never finds a
        # segment whose lock is not taken yet.
        tmp = self.path.with_suffix(".new")
        self.fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                # Blocks reserved now: a full disk is an error here, at rotation, never a
                # SIGBUS on a later copy into a hole of the file.
                os.posix_fallocate(self.fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                os.ftruncate(self.fd, size)
            self.map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            tmp.rename(self.path)
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self.size = size
        self.used = 0
        #: `Spool.appended` once this segment was closed.
        self.end = 0

    def sync(self) -> None:
        self.map.flush()
        os.fsync(self.fd)

    def release(self, keep: bool) -> None:
        """Let go of the file: removed, or (`keep`) cut to its lines, synced and unlocked."""
        self.map.close()
        if keep:
            os.ftruncate(self.fd, self.used)
            os.fsync(self.fd)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self.fd)


class Spool:
    """This process's segments; see the module docstring. Not thread-safe: the log serializes
    `append` and `rotate`."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        self.segment_bytes = segment_bytes
        #: Decisions appended since this spool was opened; the log counts what it wrote.
        self.appended = 0
        # Closed segments keep their descriptor, and so their lock, until they are dropped.
        self._closed: deque[_Segment] = deque()
        self._current = _Segment(directory, segment_bytes)
        self._start = 0

    def append(self, line: bytes) -> None:
        """One decision's line, in the kernel's page cache before the caller answers."""
        seg = self._current
        end = seg.used + len(line)
        if end > seg.size:
            self._close_current()
            seg = self._current = _Segment(self.directory, max(self.segment_bytes, len(line)))
            end = len(line)
        seg.map[seg.used : end] = line
        seg.used = end
        self.appended += 1

    def _close_current(self) -> None:
        self._current.end = self.appended
        self._closed.append(self._current)
        self._start = self.appended

    def rotate(self) -> None:
        """Start a new segment if the current one holds anything (the log calls this after a
        good write, with its appends held off)."""
        if self.appended == self._start:
            return
        self._close_current()
        self._current = _Segment(self.directory, self.segment_bytes)

    def drop_written(self, written: int) -> None:
        """Remove the closed segments whose decisions are all in the store."""
        while self._closed and self._closed[0].end <= written:
            self._closed.popleft().release(keep=False)

    def fsync(self) -> None:
        """Make every segment still held durable (the store is not taking decisions)."""
        for seg in self._closed:
            seg.sync()
        self._current.sync()

    def close(self, written: int) -> int:
        """Drop what is written, sync the rest and let go; return how many decisions stay."""
        self.drop_written(written)
        for seg in self._closed:
            seg.release(keep=True)
        self._closed.clear()
        # The current segment's decisions are all in the store, or it holds some that are not.
        self._current.release(keep=written < self.appended and self._current.used > 0)
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
            # A line cut by a kill mid-copy was never answered: only whole lines count (the
            # reserved rest of a segment is NULs, and so is any part of a line not yet copied).
            whole = data.rstrip(b"\0").split(b"\n")[:-1]
            found.append((path, [ln.decode() for ln in whole if ln and b"\0" not in ln]))
        yield found
        for path, _ in taken:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        for _, fd in taken:
            os.close(fd)


def encode(canonical: str) -> bytes:
    """A spool line: the row's canonical text (`canonical_v2`) as it is when it is ASCII with
    no newline or NUL (nearly always: ids, codes, times), else as an ASCII JSON string."""
    # A canonical text starts with an id or "[", never with the quote of the JSON form.
    plain = canonical.isascii() and not canonical.startswith('"')
    if plain and "\n" not in canonical and "\0" not in canonical:
        return (canonical + "\n").encode()
    return (json.encoder.encode_basestring_ascii(canonical) + "\n").encode()  # type: ignore[attr-defined]


def decode(line: str) -> str:
    """The canonical text of a spool line."""
    if not line.startswith('"'):
        return line
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
