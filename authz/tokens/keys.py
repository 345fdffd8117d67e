"""Signing keys: creation, rotation and the published JWKS. Asymmetric only (ES256, EdDSA)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import select

from authz.base import clock
from authz.base.config import MAX_TOKEN_TTL
from authz.base.errors import StoreUnavailable
from authz.store.db import Store
from authz.store.models import SigningKey

ALGORITHMS = ("ES256", "EdDSA")
ACCESS_TOKEN = "access_token"
DEV_ISSUER = "dev_issuer"
# Published a little longer than the longest token, so that none outlives its key.
RETIRED_GRACE = dt.timedelta(seconds=MAX_TOKEN_TTL + 120)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def generate_private_key(alg: str) -> PrivateKey:
    """A new private key for `alg`."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported algorithm {alg!r}: only ES256 and EdDSA")


def _pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_jwk(key: PrivateKey, kid: str, alg: str) -> dict[str, Any]:
    """The public half as a JWK with `kid`, `alg` and `use`."""
    algo = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.OKPAlgorithm
    jwk: dict[str, Any] = json.loads(algo.to_jwk(key.public_key()))  # type: ignore[attr-defined,arg-type]
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def thumbprint_kid(key: PrivateKey) -> str:
    """A key id derived from the public key (short SHA-256 of its DER form)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def create_key(store: Store, actor: str, alg: str = "ES256", purpose: str = ACCESS_TOKEN) -> str:
    """Add a signing key; previous keys of that purpose retire but stay published."""
    key = generate_private_key(alg)
    kid = thumbprint_kid(key)
    now = clock.now()
    with store.write(actor) as txn:
        for old in txn.session.scalars(
            select(SigningKey).where(SigningKey.purpose == purpose, SigningKey.retired_at.is_(None))
        ):
            old.retired_at = now
        txn.session.add(
            SigningKey(kid=kid, purpose=purpose, alg=alg, private_pem=_pem(key), created_at=now)
        )
        txn.record("key.created", kid, None, {"kid": kid, "alg": alg, "purpose": purpose})
    return kid


def ensure_key(store: Store, actor: str, purpose: str = ACCESS_TOKEN) -> str:
    """The active key of `purpose`, created when there is none."""
    with store.read() as session:
        kid = session.scalars(
            select(SigningKey.kid).where(
                SigningKey.purpose == purpose, SigningKey.retired_at.is_(None)
            )
        ).first()
    return kid or create_key(store, actor, purpose=purpose)


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    alg: str
    private: PrivateKey
    public_jwk: dict[str, Any]
    retired_at: dt.datetime | None

    @property
    def public(self) -> Any:
        return self.private.public_key()


class KeyRing:
    """The keys of one purpose, cached and reloaded when a `kid` is unknown or on a timer."""

    def __init__(self, store: Store, purpose: str = ACCESS_TOKEN, refresh_seconds: float = 30.0):
        self.store = store
        self.purpose = purpose
        self.refresh_seconds = refresh_seconds
        self._keys: dict[str, LoadedKey] = {}
        self._signing: LoadedKey | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the keys from the store; raise if there is no usable signing key."""
        with self.store.read() as session:
            rows = list(
                session.scalars(select(SigningKey).where(SigningKey.purpose == self.purpose))
            )
        keys: dict[str, LoadedKey] = {}
        signing: LoadedKey | None = None
        cutoff = clock.now() - RETIRED_GRACE
        for row in rows:
            retired = clock.aware(row.retired_at)
            if retired is not None and retired < cutoff:
                continue
            private = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise ValueError(f"key {row.kid} is not an ES256 or EdDSA key")
            loaded = LoadedKey(
                row.kid, row.alg, private, public_jwk(private, row.kid, row.alg), retired
            )
            keys[row.kid] = loaded
            if retired is None:
                signing = loaded
        if signing is None:
            raise StoreUnavailable(f"no active {self.purpose} signing key: run `authz init`")
        with self._lock:
            self._keys, self._signing, self._loaded_at = keys, signing, time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self.refresh_seconds:
            try:
                self.load()
            except StoreUnavailable:
                if self._signing is None:
                    raise

    def signing_key(self) -> LoadedKey:
        """The key that signs new tokens."""
        self._fresh()
        assert self._signing is not None
        return self._signing

    def get(self, kid: str) -> LoadedKey | None:
        """The key with that `kid`, reloading once if it is not known yet."""
        self._fresh()
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 1.0:
            self.load()
            key = self._keys.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: every key that may still have live tokens."""
        self._fresh()
        return {"keys": [k.public_jwk for k in self._keys.values()]}
