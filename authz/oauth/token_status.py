"""Whether one of our access tokens is still good *now* (judged by the access service on the
same facts as `check`), the rows a sign-in reads, and the revocation list."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, literal_column, select

from authz.base import clock
from authz.service.runtime import Runtime
from authz.store.db import Store
from authz.store.models import ACCOUNT_MODELS, OAuthClient, RevokedToken
from authz.store.prepared import PreparedRead


@dataclass(frozen=True)
class TokenStatus:
    active: bool
    claims: dict[str, Any]
    reason: str


class AccountRow(NamedTuple):
    """What the checks read of a client, provider or reviewer (staff are always `active`)."""

    kind: str
    id: str
    org_id: str
    email: str | None
    active: bool = True
    email_verified: bool = False
    client_type: str = ""
    birth_date: dt.date | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


class OAuthClientRow(NamedTuple):
    """An OAuth client's registration as stored (what `client_lookup.is_current` compares)."""

    client_id: str
    org_id: str
    disabled_at: Any
    secret_hash: str | None
    auth_method: str
    audiences: list[str] | None
    scopes: list[str] | None
    grant_types: list[str] | None
    jwks: dict[str, Any] | None


@dataclass(frozen=True)
class Facts:
    """What a sign-in reads, from one statement: one consistent snapshot."""

    oauth_clients: dict[str, OAuthClientRow]
    #: By label: `client:<id>`, `provider:<id>`, `reviewer:<id>`.
    accounts: dict[str, AccountRow]


_CLIENT_COLUMNS = ("id", "org_id", "email", "active", "email_verified", "client_type", "birth_date")
_STAFF_COLUMNS = ("id", "org_id", "email")
_OAUTH_COLUMNS = OAuthClientRow._fields


@functools.lru_cache(maxsize=64)
def _facts_read(oauth_clients: int, accounts: tuple[str, ...]) -> PreparedRead:
    """The statement of one shape: a one-row anchor left-joined to each row asked for, so
    that a missing row reads as NULLs rather than as no row at all."""
    anchor = select(literal_column("1").label("one")).subquery()
    columns: list[Any] = [anchor.c.one]
    joins: list[tuple[Any, Any]] = []

    def join(table: Any, names: tuple[str, ...], condition: Any) -> None:
        columns.extend(table.c[name] for name in names)
        joins.append((table, condition))

    for i in range(oauth_clients):
        oc = OAuthClient.__table__.alias(f"oc{i}")
        join(oc, _OAUTH_COLUMNS, oc.c.client_id == bindparam(f"oc{i}"))
    for i, kind in enumerate(accounts):
        account = ACCOUNT_MODELS[kind].__table__.alias(f"acc{i}")
        names = _CLIENT_COLUMNS if kind == "client" else _STAFF_COLUMNS
        join(account, names, account.c.id == bindparam(f"acc{i}"))
    stmt = select(*columns).select_from(anchor)
    for table, condition in joins:
        stmt = stmt.outerjoin(table, condition)
    return PreparedRead(stmt)


def read_facts(
    store: Store,
    accounts: tuple[tuple[str, str], ...] = (),
    oauth_clients: tuple[str, ...] = (),
) -> Facts:
    """Read in one statement the `accounts` and `oauth_clients` a sign-in names. Plain values,
    no ORM session. (Tokens themselves are judged on the fact index: `check`.)"""
    wanted_clients = list(dict.fromkeys(oauth_clients))
    wanted_accounts = list(dict.fromkeys(accounts))
    params: dict[str, Any] = {f"oc{i}": cid for i, cid in enumerate(wanted_clients)}
    params.update({f"acc{i}": ident for i, (_, ident) in enumerate(wanted_accounts)})
    read = _facts_read(len(wanted_clients), tuple(kind for kind, _ in wanted_accounts))
    row = read.one(store.engine, params)
    assert row is not None  # the anchor always yields one row
    at = 1
    found_clients: dict[str, OAuthClientRow] = {}
    for _ in wanted_clients:
        oc = OAuthClientRow._make(row[at : at + len(_OAUTH_COLUMNS)])
        at += len(_OAUTH_COLUMNS)
        if oc.client_id is not None:
            found_clients[oc.client_id] = oc
    found_accounts: dict[str, AccountRow] = {}
    for kind, _ in wanted_accounts:
        width = len(_CLIENT_COLUMNS) if kind == "client" else len(_STAFF_COLUMNS)
        values = row[at : at + width]
        at += width
        if values[0] is not None:
            account = AccountRow(kind, *values)
            found_accounts[account.label] = account
    return Facts(found_clients, found_accounts)


def check(runtime: Runtime, token: str) -> TokenStatus:
    """Verify `token` and judge it on the newest facts: the same rule (`authz.tokens.validity`)
    that the decision API applies, for introspection and the bearer API (fails closed)."""
    from authz.service.access import Consistency, service

    access = service(runtime)
    access.fresh(Consistency(None))
    claims, _, problem = access.status(token)
    if problem is not None:
        return TokenStatus(False, claims, problem)
    return TokenStatus(True, claims, "token is active")


def revoke(runtime: Runtime, claims: dict[str, Any], actor: str) -> None:
    """Put a token's `jti` on the revocation list until it would have expired anyway."""
    expires = dt.datetime.fromtimestamp(int(claims.get("exp", 0)), dt.UTC)
    with runtime.store.write(actor, claims.get("org")) as txn:
        if txn.session.get(RevokedToken, claims["jti"]) is None:
            txn.session.add(
                RevokedToken(jti=claims["jti"], expires_at=expires, revoked_at=clock.now())
            )
            txn.record(
                "token.revoked",
                claims["jti"],
                None,
                {
                    "sub": claims.get("sub"),
                    "client_id": claims.get("client_id"),
                    "grant": claims.get("grant"),
                },
            )


def purge_revoked(runtime: Runtime) -> int:
    """Forget revoked tokens that have expired (they fail verification anyway)."""
    cutoff = clock.now() - dt.timedelta(minutes=5)
    with runtime.store.write("system:purge") as txn:
        rows = list(
            txn.session.scalars(select(RevokedToken).where(RevokedToken.expires_at < cutoff))
        )
        for row in rows:
            txn.session.delete(row)
    return len(rows)
