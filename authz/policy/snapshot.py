"""The fact index saved beside an SQLite store, so that a restart need not read every row again.

A snapshot holds the index as of one store revision and names the last audit event it includes
(`Anchor`: its sequence number and chained hash). `FactIndex.load` uses it only while that event
is still in the store with the same hash: the store's history then extends the snapshot's, and the
audit rows after it name everything that changed since, which `FactIndex.refresh` reads again.
Another database, a restored backup, pruned history, a damaged or foreign file: each fails one of
these checks, and the index is read from the store as if no snapshot existed. The store stays the
one source of truth; a snapshot is a cache of what was derived from it.

The format is data only (a header line of JSON, raw arrays, JSON lists), never pickle: reading a
file must not be able to run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from array import array
from pathlib import Path
from typing import Any, NamedTuple

MAGIC = b"authz-facts 1\n"


class Anchor(NamedTuple):
    """The store state a snapshot holds: its revision and its newest audit event."""

    revision: int
    seq: int
    hash: str


def write(path: Path, anchor: Anchor, sections: dict[str, array[Any] | Any]) -> None:
    """Save `sections` (arrays, or values JSON can hold) atomically: readers see the old file
    or the whole new one. The file is the owner's alone: it holds names and email addresses."""
    parts: list[tuple[str, str, bytes]] = []
    for name, value in sections.items():
        if isinstance(value, array):
            parts.append((name, value.typecode, value.tobytes()))
        else:
            parts.append((name, "json", json.dumps(value, separators=(",", ":")).encode()))
    body = hashlib.sha256()
    for _, _, data in parts:
        body.update(data)
    header = {
        "anchor": list(anchor),
        "byteorder": sys.byteorder,
        "sections": [[name, kind, len(data)] for name, kind, data in parts],
        "sha256": body.hexdigest(),
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(MAGIC)
            out.write(json.dumps(header).encode() + b"\n")
            for _, _, data in parts:
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_anchor(path: Path) -> Anchor | None:
    """The anchor of a snapshot file, read from its header alone; None if there is none."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            revision, seq, digest = json.loads(f.readline(65536))["anchor"]
        return Anchor(int(revision), int(seq), str(digest))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _exact(kind: str, data: memoryview) -> array[Any]:
    """`data` as an array of `kind` holding no spare room: `frombytes` reserves a sixteenth more
    (5 MB over a million-grant index's arrays, which a worker keeps for its life)."""
    count, odd = divmod(len(data), array(kind).itemsize)
    if odd:
        raise ValueError("a section's size is not a whole number of items")
    values = array(kind, [0]) * count
    with memoryview(values) as view, view.cast("B") as raw:
        raw[:] = data
    return values


def read(path: Path) -> tuple[Anchor, dict[str, Any]] | None:
    """The anchor and sections of a snapshot file; None if there is none or it is not whole."""
    try:
        data = memoryview(path.read_bytes())
    except OSError:
        return None
    try:
        if bytes(data[: len(MAGIC)]) != MAGIC:
            return None
        end = bytes(data[len(MAGIC) : len(MAGIC) + 65536]).index(b"\n") + len(MAGIC)
        header = json.loads(bytes(data[len(MAGIC) : end]))
        body = data[end + 1 :]
        if (
            header["byteorder"] != sys.byteorder
            or hashlib.sha256(body).hexdigest() != header["sha256"]
        ):
            return None
        sections: dict[str, Any] = {}
        at = 0
        for name, kind, size in header["sections"]:
            chunk = body[at : at + size]
            at += size
            if kind == "json":
                sections[name] = json.loads(bytes(chunk))
            else:
                sections[name] = _exact(kind, chunk)
        if at != len(body):
            return None
        revision, seq, digest = header["anchor"]
        return Anchor(int(revision), int(seq), str(digest)), sections
    except (ValueError, KeyError, TypeError):  # JSONDecodeError is a ValueError
        return None
