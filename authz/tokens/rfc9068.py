"""JWT Profile for OAuth 2.0 Access Tokens, RFC 9068 (https://www.rfc-editor.org/rfc/rfc9068).

Our access tokens: `typ: at+jwt`, ES256 or EdDSA with a `kid`, lifetime at most 15 minutes.
Verification refuses `alg: none`, HMAC, unknown keys, wrong `iss`/`aud`/`typ` and bad times.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from authz.base import clock
from authz.base.config import MAX_TOKEN_TTL
from authz.tokens.keys import ALGORITHMS, KeyRing

TYP = "at+jwt"
#: Skew allowed on `iat`/`nbf` only (replicas' clocks differ a little). None on `exp`: the
#: issuer treats its own token as expired at `exp`; leeway belongs to relying parties.
LEEWAY = 5
VIA = ("self", "shared_email", "delegation")


class InvalidToken(Exception):
    """A token that must not be trusted; the message says why (never the token)."""


@dataclass(frozen=True)
class TokenSubject:
    """Who a new token speaks for: the account, how, and the human behind it when delegated."""

    sub: str
    org: str
    via: str = "self"
    actor: str | None = None
    grant: str | None = None


def issue(
    keys: KeyRing,
    issuer: str,
    subject: TokenSubject,
    client_id: str,
    audience: str | Sequence[str],
    scope: str,
    ttl: int,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign an access token; return it with its claims."""
    if subject.via not in VIA:
        raise ValueError(f"unknown authz_via {subject.via!r}")
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject.sub,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + min(ttl, MAX_TOKEN_TTL),
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": scope,
        "org": subject.org,
        "authz_via": subject.via,
    }
    if subject.actor is not None:
        claims["act"] = {"sub": subject.actor}
    if subject.grant is not None:
        claims["grant"] = subject.grant
    for name, value in (extra or {}).items():
        claims.setdefault(name, value)
    key = keys.signing_key()
    token = jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": TYP})
    return token, claims


def verify(
    keys: KeyRing,
    token: str,
    issuer: str,
    audience: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """The claims of a token we issued, or InvalidToken with the reason.

    The compact JWS (RFC 7515 §7.1) is taken apart here, once and strictly, and the signature is
    checked by PyJWT's algorithm for the key's own `alg`. (`jwt.decode` checked the base64url
    alphabet a byte at a time in Python and decoded the header twice: more than the ECDSA
    verification itself.) Strict means: only the base64url alphabet and no padding, canonical
    encodings only (so a token has exactly one spelling), JSON objects, no JWS extensions.
    """
    if not isinstance(token, str) or len(token) > 8192 or not _COMPACT.fullmatch(token):
        raise InvalidToken("not a compact JWS")
    header_segment, payload_segment, signature_segment = token.split(".")
    header = _json_object(_segment(header_segment), "header")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidToken(f"algorithm {alg!r} is not accepted")
    if str(header.get("typ", "")).lower() not in (TYP, "application/at+jwt"):
        raise InvalidToken("not an RFC 9068 access token (typ)")
    if "crit" in header or "b64" in header:
        # RFC 7515 §4.1.11: extensions we do not implement must be refused; we implement none.
        raise InvalidToken("JWS extensions are not accepted")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidToken("unknown signing key")
    if key.alg != alg:
        raise InvalidToken("algorithm does not match the key")
    signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode()
    if not _VERIFIERS[alg].verify(signing_input, key.public, _segment(signature_segment)):
        raise InvalidToken("invalid token: InvalidSignatureError")
    claims = _json_object(_segment(payload_segment), "payload")
    missing = [name for name in REQUIRED if claims.get(name) is None]
    if missing:
        raise InvalidToken(f"invalid token: missing {', '.join(missing)}")
    if claims["iss"] != issuer:
        raise InvalidToken("token is from another issuer")
    if audience is not None and not _audience_matches(claims["aud"], audience):
        raise InvalidToken("token is for another audience")
    check_times(claims)
    if claims.get("authz_via") not in VIA or not isinstance(claims.get("org"), str):
        raise InvalidToken("token lacks authz_via or org")
    return claims


#: Three base64url segments; the signature is never empty (that would be `alg: none`).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
REQUIRED = ("iss", "sub", "exp", "iat", "jti", "aud")
_VERIFIERS = {alg: jwt.get_algorithm_by_name(alg) for alg in ALGORITHMS}


def _segment(segment: str) -> bytes:
    """A base64url segment (alphabet already checked) in its one canonical spelling."""
    if len(segment) % 4 == 1:
        raise InvalidToken("malformed token segment")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    # Unused trailing bits must be zero: otherwise several strings decode to the same bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
        raise InvalidToken("malformed token segment")
    return raw


def _json_object(raw: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidToken(f"malformed token {name}") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token {name}")
    return value


def _audience_matches(aud: Any, audience: str | Sequence[str]) -> bool:
    """RFC 7519 §4.1.3: `aud` is a string or an array of strings; one of them must be ours."""
    held = [aud] if isinstance(aud, str) else aud
    if not isinstance(held, list) or not all(isinstance(a, str) for a in held):
        return False
    wanted = [audience] if isinstance(audience, str) else list(audience)
    return any(a in wanted for a in held)


def check_times(
    claims: dict[str, Any], max_lifetime: int | None = MAX_TOKEN_TTL, exp_leeway: int = 0
) -> None:
    """`exp` against our clock with `exp_leeway` (none for our own tokens), `nbf` and `iat`
    with a small leeway for skew between replicas."""
    now = clock.now().timestamp()
    exp, iat, nbf = claims.get("exp"), claims.get("iat", 0), claims.get("nbf", 0)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat, nbf)):
        raise InvalidToken("exp, iat and nbf must be numbers")
    assert isinstance(exp, int | float)
    if exp <= now - exp_leeway:
        raise InvalidToken("token expired")
    if nbf > now + LEEWAY or iat > now + LEEWAY:
        raise InvalidToken("token not valid yet")
    if max_lifetime is not None and exp - iat > max_lifetime + LEEWAY:
        raise InvalidToken("token lifetime out of bounds")
