"""Email addresses are normalized here, and only here."""

from __future__ import annotations

import re

from authz.base.errors import ValidationFailed

# Deliberately simple: the portal validates deliverability; we only need a stable key.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str, field: str = "email") -> str:
    """Trim and lower-case an address; reject what is not an address."""
    if not isinstance(value, str):
        raise ValidationFailed([(field, "must be a string")])
    email = value.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValidationFailed([(field, "is not a valid email address")])
    return email
