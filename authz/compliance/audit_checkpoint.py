"""Signed checkpoints of the audit trail, kept outside the database.

A checkpoint names the newest row of each chain (seq, hash, rows verified), the store's revision
and the time, signed (a JWS) with the service's token-signing key, beside the public key that
signs it. Whoever keeps the file can later prove with `authz audit verify --against FILE` that
no row up to those was cut or rewritten, even by someone who could write the database and
re-hash the chain after the change: that person cannot sign a new file with the service's key
and does not hold the reviewer's copy.
"""

from __future__ import annotations

import json
from typing import Any

import jwt

from authz.base import clock
from authz.base.errors import ValidationFailed
from authz.compliance import audit_log
from authz.store.db import Store
from authz.tokens.keys import KeyRing

TYP = "authz-audit-checkpoint+jwt"


def make(store: Store, keys: KeyRing) -> dict[str, Any]:
    """A signed checkpoint of both chains now; ValidationFailed if the trail does not verify
    (a checkpoint would vouch for a broken trail)."""
    result = audit_log.verify(store)
    if not result["ok"]:
        raise ValidationFailed([("audit", "the audit trail does not verify; no checkpoint")])
    claims: dict[str, Any] = {"at": int(clock.now().timestamp()), "revision": store.revision()}
    for name in audit_log.CHAINS:
        head = result[name]["head"]
        claims[name] = {"seq": head["seq"], "hash": head["hash"], "rows": result[name]["verified"]}
    key = keys.signing_key()
    token = jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": TYP})
    return {"checkpoint": token, "jwk": key.public_jwk, "claims": claims}


def load(text: str) -> dict[str, Any]:
    """The claims of a checkpoint file whose signature holds, or ValidationFailed."""
    try:
        data = json.loads(text)
        token, jwk = data["checkpoint"], data["jwk"]
        header = jwt.get_unverified_header(token)
        if header.get("typ") != TYP or header.get("kid") != jwk.get("kid"):
            raise ValueError("not an audit checkpoint")
        public = jwt.PyJWK(jwk).key
        claims: dict[str, Any] = jwt.decode(token, public, algorithms=[jwk["alg"]])
        for name in audit_log.CHAINS:
            int(claims[name]["seq"]), str(claims[name]["hash"])
    except (ValueError, KeyError, TypeError, AttributeError, jwt.PyJWTError) as exc:
        raise ValidationFailed([("checkpoint", f"not a valid signed checkpoint: {exc}")]) from None
    return claims
