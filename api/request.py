"""Reading requests strictly: JSON objects only, bounded size, no surprises."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from authz.base.errors import ValidationFailed


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 problem that says what is wrong."""
    if not is_json(request.mimetype):
        raise ValidationFailed([("body", "Content-Type must be application/json")])
    raw = request.get_data(cache=True)
    if not raw:
        raise ValidationFailed([("body", "a JSON object is required")])
    return json_object(raw)


def is_json(mimetype: str) -> bool:
    """Whether a media type (without parameters) is JSON."""
    return mimetype == "application/json" or mimetype.endswith("+json")


def json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, or a 400 problem that says what is wrong."""
    try:
        # orjson: a check-batch body holds a thousand checks. It is strict JSON (RFC 8259): no
        # NaN or Infinity, integers within 64 bits, valid UTF-8.
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed([("body", f"malformed JSON: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ValidationFailed([("body", "must be a JSON object")])
    # PostgreSQL text cannot hold NUL: one such string in a decision or an audit row would fail
    # the write (and, in the batched decision log, every write after it). Refuse it here.
    if b"\\u0000" in raw and _has_nul(data):
        raise ValidationFailed([("body", "strings must not contain U+0000")])
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def only_args(*allowed: str) -> dict[str, str]:
    """Query parameters, refusing any the endpoint does not know."""
    unknown = [(k, "unknown query parameter") for k in request.args if k not in allowed]
    nul = [(k, "must not contain U+0000") for k, v in request.args.items(multi=True) if "\x00" in v]
    if unknown or nul:
        raise ValidationFailed(unknown + nul)
    return {k: v for k, v in request.args.items()}
