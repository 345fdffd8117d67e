"""The request's edge: what no endpoint may see, refused before any of them runs.

- Control characters (U+0000-U+001F, U+007F) in the path, the query, a form field or the Basic
  credentials: a 400 (PostgreSQL text holds no NUL; logs and exports must not get a line break).
  Token fields are left to their own parsers, which refuse them as tokens (and are audited).
- A request line or a header longer than the limits below: 414 and 431, as problem JSON.
- A JWT in a form field (`client_assertion`, `subject_token`, `actor_token`, `token`) whose
  header or payload nests JSON deeper than `MAX_JSON_DEPTH`: refused before any parser recurses.
- (Each parameter once, none in the URL and one client authentication method, RFC 6749 §2.3
  and §3.2, are the OAuth endpoints' own rule: `authz.oauth.rfc6749.strict_request`.)

Errors of the `/oauth/` endpoints are RFC 6749 §5.2 errors; the others are problems.
"""

from __future__ import annotations

import base64
import binascii
import re

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.problems import problem

#: The longest request target and header value the service reads (gunicorn's own defaults).
MAX_TARGET = 4094
MAX_HEADER = 8190
#: JSON nesting a JWT's header or payload may have; real ones nest two or three levels.
MAX_JSON_DEPTH = 32
JWT_FIELDS = ("client_assertion", "subject_token", "actor_token", "token")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _Refused(Exception):
    def __init__(self, status: int, detail: str, slug: str = "validation", title: str = "") -> None:
        super().__init__(detail)
        self.status, self.detail, self.slug = status, detail, slug
        self.title = title or "Invalid request"


def init_app(app: Flask) -> None:
    """Register the edge checks before every other request hook."""
    app.before_request_funcs.setdefault(None, []).insert(0, _edge)


def _edge() -> Response | None:
    try:
        _check()
    except _Refused as exc:
        return _error(exc)
    except RequestEntityTooLarge:
        return _error(_Refused(413, "the request body is too large", "content-too-large",
                               "Content Too Large"))  # fmt: skip
    return None


def _error(exc: _Refused) -> Response:
    if request.path.startswith("/oauth/") and exc.status == 400:
        response = jsonify({"error": "invalid_request", "error_description": exc.detail})
        response.status_code = 400
        response.headers["Cache-Control"] = "no-store"
        return response
    return problem(exc.status, exc.title, exc.detail, exc.slug)


def _check() -> None:
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
    if len(target) > MAX_TARGET:
        raise _Refused(414, f"the request target is over {MAX_TARGET} bytes", "uri-too-long",
                       "URI Too Long")  # fmt: skip
    for name, value in request.headers.items():
        if len(name) + len(value) > MAX_HEADER:
            raise _Refused(431, f"the {name} header is over {MAX_HEADER} bytes",
                           "request-header-fields-too-large",
                           "Request Header Fields Too Large")  # fmt: skip
    if _CONTROL.search(request.path):
        raise _Refused(400, "the path holds a control character")
    for key, value in request.args.items(multi=True):
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise _Refused(400, f"query parameter {key[:40]!r} holds a control character")
    basic = _basic()
    if basic is not None and any(_CONTROL.search(part) for part in basic):
        raise _Refused(400, "the Basic credentials hold a control character")
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        form = request.form  # raises RequestEntityTooLarge past the body limit
        for key, value in form.items(multi=True):
            # A token's own parser refuses what is not a token (and the exchange audits it).
            if _CONTROL.search(key) or (key not in JWT_FIELDS and _CONTROL.search(value)):
                raise _Refused(400, f"form field {key[:40]!r} holds a control character")
        for name in JWT_FIELDS:
            for value in form.getlist(name):
                if _too_deep(value):
                    raise _Refused(400, f"{name} nests JSON deeper than {MAX_JSON_DEPTH} levels")


def _basic() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None  # not credentials at all: client authentication says so (invalid_client)
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _too_deep(token: str) -> bool:
    for segment in token.split(".")[:2]:
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            continue  # not base64: the token's own parser refuses it without recursing
        if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
            continue  # it cannot nest deeper than it has brackets (real tokens: one or two)
        if _depth(raw) > MAX_JSON_DEPTH:
            return True
    return False


def _depth(raw: bytes) -> int:
    """The deepest nesting of `[` and `{` outside strings (a scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
