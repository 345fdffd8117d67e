"""Opaque, prefixed identifiers (`cli_…`, `lnk_…`)."""

from __future__ import annotations

import re
import secrets

PREFIXES = {
    "org": "organization",
    "cli": "client",
    "prv": "provider",
    "rev": "reviewer",
    "con": "contact",
    "lnk": "link",
    "inv": "invite",
    "msg": "outbox message",
    "aud": "audit event",
    "dec": "decision",
    "oc": "OAuth client",
    "shr": "shared sensitivity category",
}

_ID = re.compile(r"[a-z]{2,3}_[A-Za-z0-9]{1,64}")


def new_id(prefix: str) -> str:
    """A fresh random id with the given prefix."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{secrets.token_hex(8)}"


def looks_like(value: object, prefix: str) -> bool:
    """Whether `value` is syntactically an id of that kind."""
    return isinstance(value, str) and value.startswith(prefix + "_") and bool(_ID.fullmatch(value))
