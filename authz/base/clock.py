"""The one clock, so that tests can move time instead of sleeping."""

from __future__ import annotations

import datetime as dt

_offset = dt.timedelta(0)


def now() -> dt.datetime:
    """The current time in UTC, aware."""
    return dt.datetime.now(dt.UTC) + _offset


def travel(delta: dt.timedelta) -> None:
    """Move this process's clock (tests and the demo only)."""
    global _offset
    _offset += delta


def reset() -> None:
    """Undo every `travel`."""
    global _offset
    _offset = dt.timedelta(0)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
