"""Opaque cursors and limits for every list (`limit` ≤ 500)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select

from authz.base.errors import ValidationFailed

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_VERSION = "c1|"
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    after: str | None = None


def parse(limit: object = None, cursor: object = None) -> Page:
    """Check `limit` and decode `cursor`, or ValidationFailed."""
    errors = []
    value = DEFAULT_LIMIT
    if limit not in (None, ""):
        try:
            value = int(str(limit))
        except ValueError:
            errors.append(("limit", "must be an integer"))
        else:
            if not 1 <= value <= MAX_LIMIT:
                errors.append(("limit", f"must be between 1 and {MAX_LIMIT}"))
    after = None
    if cursor not in (None, ""):
        raw = str(cursor)
        try:
            decoded = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
            after = decoded.decode()
        except (ValueError, UnicodeDecodeError):
            after = ""
        if not after.startswith(_VERSION):
            errors.append(("cursor", "is not a cursor this service issued"))
            after = None
        else:
            after = after.removeprefix(_VERSION)
    if errors:
        raise ValidationFailed(errors)
    return Page(value, after)


def apply(stmt: Select[T], key: Any, page: Page) -> Select[T]:
    """Keyset pagination on a unique, ordered column."""
    if page.after is not None:
        stmt = stmt.where(key > page.after)
    return stmt.order_by(key).limit(page.limit + 1)


def cursor_for(items: list[Any], page: Page, key: str = "id") -> tuple[list[Any], str | None]:
    """Trim the look-ahead row and make the next cursor."""
    if len(items) <= page.limit:
        return items, None
    items = items[: page.limit]
    last = getattr(items[-1], key)
    return items, base64.urlsafe_b64encode(f"{_VERSION}{last}".encode()).decode().rstrip("=")


def encode(position: object) -> str:
    """The opaque cursor for a position (for lists keyed on more than one column)."""
    return base64.urlsafe_b64encode(f"{_VERSION}{position}".encode()).decode().rstrip("=")
