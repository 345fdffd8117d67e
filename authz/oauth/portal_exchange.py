"""The hosted "my access" page's Switch Account button: the same token exchange a portal
backend makes (RFC 8693, `authz.oauth.rfc8693.Exchange`), run in-process for the page's signed-in
login on behalf of the organization's portal client, so the page shows what that portal would
receive. Every token it issues is audited like any other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from authlib.oauth2.rfc6749.errors import OAuth2Error
from sqlalchemy import select

from authz.base.errors import Conflict
from authz.oauth import oauth_clients
from authz.oauth.oauth_clients import TOKEN_EXCHANGE, RegisteredClient
from authz.oauth.rfc8693 import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, Exchange, Outcome
from authz.oauth.token_issuer import Issuance, record_issued, token_generator
from authz.service.runtime import Runtime
from authz.store.models import OAuthClient


@dataclass(frozen=True)
class Issued:
    """A token as the portal would receive it, with its claims for the page to show."""

    access_token: str
    claims: dict[str, Any]
    portal: str


def portal_client(rt: Runtime, org_id: str) -> RegisteredClient:
    """The organization's first enabled OAuth client that exchanges tokens (its portal)."""
    with rt.store.read() as session:
        rows = session.scalars(
            select(OAuthClient)
            .where(OAuthClient.org_id == org_id, OAuthClient.disabled_at.is_(None))
            .order_by(OAuthClient.created_at, OAuthClient.client_id)
        ).all()
        ids = [r.client_id for r in rows if TOKEN_EXCHANGE in (r.grant_types or [])]
    for client_id in ids:
        found = oauth_clients.query_client(rt.store, client_id)
        if found is not None and found.audiences:
            return found
    raise Conflict("the practice has no portal client that exchanges tokens")


def _issue(rt: Runtime, client: RegisteredClient, exchange: Exchange, outcome: Outcome) -> str:
    decision = outcome.decision
    if decision.verified_login is not None:
        exchange.mark_verified(decision.subject.sub.partition(":")[2], decision.verified_login)
    user = Issuance(
        decision.subject,
        outcome.audience,
        decision.extra,
        kind=decision.kind,
        login=decision.login,
    )
    token = token_generator(rt)(TOKEN_EXCHANGE, client, user=user, scope=outcome.scope)
    record_issued(rt, token["access_token"], user)
    return str(token["access_token"])


def _decide(
    rt: Runtime, client: RegisteredClient, params: dict[str, str]
) -> tuple[Exchange, Outcome]:
    exchange = Exchange(rt)
    try:
        return exchange, exchange.decide(client, params)
    except OAuth2Error as exc:
        exchange.audit_refusal(client, exc)
        raise Conflict(f"the exchange was refused: {exc.description or exc.error}") from exc


def switch(rt: Runtime, id_token: str, org_id: str, own: str, target: str) -> Issued:
    """Sign the login in to its own account `own`, then exchange that token for `target`
    (`own` itself: the sign-in token)."""
    client = portal_client(rt, org_id)
    audience = client.audiences[0]
    exchange, outcome = _decide(
        rt,
        client,
        {
            "subject_token": id_token,
            "subject_token_type": ID_TOKEN_TYPE,
            "resource": f"client:{own}",
            "audience": audience,
        },
    )
    token = _issue(rt, client, exchange, outcome)
    if target != own:
        exchange, outcome = _decide(
            rt,
            client,
            {
                "subject_token": token,
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "resource": f"client:{target}",
                "audience": audience,
            },
        )
        token = _issue(rt, client, exchange, outcome)
    # Signed a moment ago in this process: shown, not trusted, so not verified again.
    claims = jwt.decode(token, options={"verify_signature": False})
    return Issued(token, claims, client.name or client.client_id)
