"""Email addresses are normalized here, and only here: every comparison of two addresses is a
comparison of their `normalize_email` forms.

The rule, which decides whose account a verified login email reaches:

1. Leading and trailing ASCII whitespace is trimmed; nothing else is.
2. Control, format, private-use, unassigned and separator characters are refused (BEL, DEL,
   NUL, zero-width joiners, bidirectional overrides…).
3. Compatibility characters are refused: any character that Unicode maps onto another
   (NFKC), or that has a one-character canonical decomposition (KELVIN SIGN onto K, OHM SIGN
   onto Omega, ANGSTROM SIGN onto Å). A look-alike therefore never signs in as the address it
   imitates; it is not an address at all here.
4. The rest is put in Unicode NFC (composed accents, whatever the keyboard sent).
5. Only ASCII letters are lower-cased: `Kate@…` is `kate@…`, but no non-ASCII letter is
   folded onto another (`str.lower` maps U+212A onto `k` and U+0130 onto `i̇`).
6. The domain is IDNA 2008 without UTS 46 mapping and kept as its ASCII (A-label) form, so
   `bücher.test` and `xn--bcher-kva.test` are one domain.
"""

from __future__ import annotations

import re
import unicodedata

import idna

from authz.base.errors import ValidationFailed

# Deliberately simple: the portal validates deliverability; we only need a stable key.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})


def _refused(ch: str) -> str | None:
    if ch.isascii():
        return "a control character" if not ch.isprintable() else None
    if unicodedata.category(ch) in _REFUSED_CATEGORIES:
        return "a control or invisible character"
    decomposition = unicodedata.decomposition(ch)
    if unicodedata.normalize("NFKC", ch) != unicodedata.normalize("NFC", ch) or (
        decomposition and not decomposition.startswith("<") and " " not in decomposition
    ):
        return f"a compatibility character (U+{ord(ch):04X}) that stands for another"
    return None


def normalize_email(value: str, field: str = "email") -> str:
    """The one comparable form of an address (see the module's rule), or ValidationFailed."""
    if not isinstance(value, str):
        raise ValidationFailed([(field, "must be a string")])
    raw = value.strip(" \t\r\n")
    for ch in raw:
        why = _refused(ch)
        if why is not None:
            raise ValidationFailed([(field, f"is not a valid email address: it holds {why}")])
    email = unicodedata.normalize("NFC", raw).translate(_ASCII_LOWER)
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise ValidationFailed([(field, "is not a valid email address")])
    local, _, domain = email.rpartition("@")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=False).decode("ascii")
        except idna.IDNAError:
            raise ValidationFailed(
                [(field, "has a domain that is not a valid IDNA name")]
            ) from None
    email = f"{local}@{domain}"
    if len(email) > 254:
        raise ValidationFailed([(field, "is not a valid email address")])
    return email


def email_key(value: str) -> str | None:
    """`normalize_email`, or None for what is not an address (lookups that find nothing)."""
    try:
        return normalize_email(value)
    except ValidationFailed:
        return None
