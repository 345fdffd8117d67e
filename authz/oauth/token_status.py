"""Whether one of our access tokens is still good *now*: signature, revocation and its grant."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, exists, false, literal_column, select

from authz.base import clock
from authz.service.runtime import Runtime
from authz.store.db import Store
from authz.store.models import ACCOUNT_MODELS, Link, OAuthClient, RevokedToken
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


class LinkRow(NamedTuple):
    """What decides whether a link's portal access allows a token."""

    id: str
    org_id: str
    original_client_id: str
    linked_client_id: str
    portal_status: str | None
    access_level: str | None
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class Facts:
    """Everything a token check reads, from one statement: one consistent snapshot."""

    revoked: bool
    oauth_clients: dict[str, OAuthClientRow]
    #: By label: `client:<id>`, `provider:<id>`, `reviewer:<id>`.
    accounts: dict[str, AccountRow]
    #: The link a delegated token's `grant` names.
    grant: LinkRow | None
    #: The link original→linked of the `pair` asked for.
    pair: LinkRow | None


_CLIENT_COLUMNS = ("id", "org_id", "email", "active", "email_verified", "client_type", "birth_date")
_STAFF_COLUMNS = ("id", "org_id", "email")
_OAUTH_COLUMNS = OAuthClientRow._fields
_LINK_COLUMNS = LinkRow._fields


@functools.lru_cache(maxsize=64)
def _facts_read(
    jti: bool, oauth_clients: int, accounts: tuple[str, ...], grant: bool, pair: bool
) -> PreparedRead:
    """The statement of one shape: a one-row anchor left-joined to each row asked for, so
    that a missing row reads as NULLs rather than as no row at all."""
    anchor = select(literal_column("1").label("one")).subquery()
    columns: list[Any] = [
        exists().where(RevokedToken.jti == bindparam("jti")).label("revoked")
        if jti
        else false().label("revoked")
    ]
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
    if grant:
        link = Link.__table__.alias("grant_link")
        join(link, _LINK_COLUMNS, link.c.id == bindparam("grant"))
    if pair:
        link = Link.__table__.alias("pair_link")
        join(
            link,
            _LINK_COLUMNS,
            and_(
                link.c.original_client_id == bindparam("original"),
                link.c.linked_client_id == bindparam("linked"),
            ),
        )
    stmt = select(*columns).select_from(anchor)
    for table, condition in joins:
        stmt = stmt.outerjoin(table, condition)
    return PreparedRead(stmt)


def token_accounts(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """The accounts a token names: its subject and, when delegated, the human acting."""
    kind, _, ident = str(claims.get("sub", "")).partition(":")
    accounts = [(kind, ident)] if kind in ACCOUNT_MODELS else []
    actor = (claims.get("act") or {}).get("sub", "")
    if isinstance(actor, str) and actor.startswith("client:"):
        accounts.append(("client", actor.partition(":")[2]))
    return accounts


def read_facts(
    store: Store,
    claims: dict[str, Any] | None = None,
    accounts: tuple[tuple[str, str], ...] = (),
    oauth_clients: tuple[str, ...] = (),
    pair: tuple[str, str] | None = None,
) -> Facts:
    """Read in one statement every row the checks need: for a token's `claims`, its
    revocation, OAuth client, accounts and grant; plus the `accounts`, `oauth_clients` and the
    link original→linked of `pair` asked for. Plain values, no ORM session."""
    params: dict[str, Any] = {}
    wanted_clients: list[str] = []
    wanted_accounts: list[tuple[str, str]] = []
    grant = False
    if claims is not None:
        params["jti"] = str(claims["jti"])
        wanted_clients.append(str(claims.get("client_id", "")))
        wanted_accounts.extend(token_accounts(claims))
        grant = bool(claims.get("grant"))
        if grant:
            params["grant"] = str(claims["grant"])
    wanted_clients = list(dict.fromkeys((*wanted_clients, *oauth_clients)))
    wanted_accounts = list(dict.fromkeys((*wanted_accounts, *accounts)))
    params.update({f"oc{i}": cid for i, cid in enumerate(wanted_clients)})
    params.update({f"acc{i}": ident for i, (_, ident) in enumerate(wanted_accounts)})
    if pair is not None:
        params["original"], params["linked"] = pair
    read = _facts_read(
        claims is not None,
        len(wanted_clients),
        tuple(kind for kind, _ in wanted_accounts),
        grant,
        pair is not None,
    )
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
    grant_row = pair_row = None
    if grant:
        grant_row = _link(row[at : at + len(_LINK_COLUMNS)])
        at += len(_LINK_COLUMNS)
    if pair is not None:
        pair_row = _link(row[at : at + len(_LINK_COLUMNS)])
    return Facts(bool(row[0]), found_clients, found_accounts, grant_row, pair_row)


def _link(values: tuple[Any, ...]) -> LinkRow | None:
    if values[0] is None:
        return None
    link = LinkRow._make(values)
    return link._replace(expires_at=clock.aware(link.expires_at))


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
