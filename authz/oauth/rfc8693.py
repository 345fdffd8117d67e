"""OAuth 2.0 Token Exchange, RFC 8693 (https://www.rfc-editor.org/rfc/rfc8693).

One grant, three flows, chosen by what the subject token is and what `resource` names:

- sign-in: a trusted issuer's ID token (or JWT) for an account bound to that login;
- shared-email toggle: one of our tokens for another client with the same verified email;
- switch account: a caregiver's own token for the care receiver, through an active grant,
  with `act` (RFC 8693 §4.1) naming the caregiver; and switching back.

Written on Authlib's `BaseGrant`/`TokenEndpointMixin`, after `authlib.oauth2.rfc7523.jwt_bearer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)

from authz.base import clock
from authz.base.errors import StoreUnavailable
from authz.base.principals import ADMIN_SCOPE, REVIEW_SCOPE
from authz.oauth import client_lookup, identity, token_status
from authz.oauth.identity import Login
from authz.oauth.oauth_clients import TOKEN_EXCHANGE, RegisteredClient
from authz.oauth.rfc6749 import TemporarilyUnavailableError
from authz.oauth.token_issuer import Issuance
from authz.policy import delegation, grants
from authz.policy.facts import FactIndex
from authz.service import access
from authz.service.runtime import Runtime
from authz.store import refusals
from authz.store.models import Client
from authz.tokens import rfc9068
from authz.tokens.validity import audiences_of

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE)
RESOURCE_KINDS = ("client", "provider", "reviewer")
#: RFC 6749 §3.2: these appear at most once.
SINGLE_PARAMS = (
    "grant_type",
    "scope",
    "requested_token_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
)
#: RFC 8693 §2.1 allows several of these; this server issues for exactly one.
TARGET_PARAMS = ("resource", "audience")
#: Scopes a staff token can carry; client tokens carry `grants.CLIENT_SCOPES`.
STAFF_SCOPES = {"provider": frozenset({ADMIN_SCOPE}), "reviewer": frozenset({REVIEW_SCOPE})}


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8693 §2.2.2: unwilling or unable to issue a token for that resource or audience."""

    error = "invalid_target"


@dataclass(frozen=True)
class Target:
    kind: str
    id: str

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Decision:
    """Who the new token is for, how, and the most it may carry."""

    subject: rfc9068.TokenSubject
    allowed_scopes: frozenset[str]
    extra: dict[str, Any]
    #: Set on a client sign-in to an account whose address is not verified yet: the login
    #: whose verified email the account's address becomes.
    verified_login: Login | None = None
    #: What the audit trail calls this issuance: sign-in, toggle, switch or switch back.
    kind: str = "sign-in"
    #: Who signed in (`iss|sub` of the login), for the audit trail of a sign-in.
    login: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A decided exchange: the decision, the audience and the issued scope."""

    decision: Decision
    audience: str
    scope: str


def parse_resource(value: str | None) -> Target:
    """`client:<id>`, `provider:<id>` or `reviewer:<id>`."""
    kind, _, ident = (value or "").partition(":")
    if kind not in RESOURCE_KINDS or not ident or len(ident) > 64:
        raise InvalidTargetError(
            description="resource must be client:<id>, provider:<id> or reviewer:<id>"
        )
    return Target(kind, ident)


class Exchange:
    """The token-exchange use case: from a client and the request's parameters to what to
    issue. Free of Authlib's request object, so that it runs and measures on its own."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        #: What the request named and what was learnt of it, for the audit of a refusal.
        self.seen: dict[str, Any] = {}
        #: Accounts of the client's organization the request involved.
        self.clients: set[str] = set()

    def decide(self, client: RegisteredClient, params: dict[str, str]) -> Outcome:
        """Validate an exchange request's parameters and decide what to issue, or raise."""
        if not client.check_grant_type(TOKEN_EXCHANGE):
            raise UnauthorizedClientError(description="this client may not exchange tokens")
        self.seen.update(
            resource=params.get("resource"),
            audience=params.get("audience"),
            subject_token_type=params.get("subject_token_type"),
            scope=params.get("scope"),
        )
        if params.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(
                description=f"requested_token_type must be {ACCESS_TOKEN_TYPE}"
            )
        subject_token = params.get("subject_token")
        subject_type = params.get("subject_token_type")
        if not subject_token:
            raise InvalidRequestError(description="missing subject_token")
        if subject_type not in SUBJECT_TOKEN_TYPES:
            raise InvalidRequestError(
                description="subject_token_type must be one of " + ", ".join(SUBJECT_TOKEN_TYPES)
            )
        self._check_actor(params, subject_token, subject_type)
        if not params.get("resource"):
            raise InvalidRequestError(
                description="missing resource (client:<id>, provider:<id> or reviewer:<id>)"
            )
        target = parse_resource(params["resource"])
        audience = self._audience(client, params.get("audience"))
        try:
            if subject_type == ACCESS_TOKEN_TYPE:
                decision = self._from_access_token(client, subject_token, target)
            else:
                decision = self._from_login(client, subject_token, target)
        except StoreUnavailable as exc:
            raise TemporarilyUnavailableError(description="try again shortly") from exc
        scope = narrow(params.get("scope"), decision.allowed_scopes & client.scopes)
        return Outcome(decision, audience, scope)

    @staticmethod
    def _check_actor(params: dict[str, str], subject_token: str, subject_type: str) -> None:
        """§2.1: `actor_token_type` comes with `actor_token` and only then. The human acting
        is the subject of their own token, so a separate actor is refused."""
        actor_token, actor_type = params.get("actor_token"), params.get("actor_token_type")
        if actor_token is None and actor_type is None:
            return
        if actor_token is None:
            raise InvalidRequestError(description="actor_token_type without actor_token")
        if actor_type is None:
            raise InvalidRequestError(description="actor_token_type is required with actor_token")
        if actor_token != subject_token or actor_type != subject_type:
            raise InvalidRequestError(
                description="actor_token must be absent or the same token as subject_token"
            )

    @staticmethod
    def _audience(client: RegisteredClient, audience: str | None) -> str:
        if audience is None:
            if len(client.audiences) != 1:
                raise InvalidTargetError(description="audience is required for this client")
            return client.audiences[0]
        if audience not in client.audiences:
            raise InvalidTargetError(description="the client is not registered for that audience")
        return audience

    # -- sign-in ------------------------------------------------------------------------------

    def _from_login(self, client: RegisteredClient, token: str, target: Target) -> Decision:
        try:
            login = identity.verify_id_token(token, self.runtime.settings, self.runtime.dev_keys)
        except rfc9068.InvalidToken as exc:
            raise InvalidRequestError(description=f"subject_token rejected: {exc}") from exc
        self.seen["subject"] = login.label
        if not login.email_verified:
            raise InvalidRequestError(description="the login's email is not verified")
        facts = token_status.read_facts(
            self.runtime.store,
            accounts=((target.kind, target.id),),
            oauth_clients=(client.client_id,),
        )
        client_lookup.require_current_row(facts.oauth_clients.get(client.client_id), client)
        account = self._bound_account(facts, client, login, target)
        if target.kind == "client":
            self.clients.add(target.id)
            return Decision(
                rfc9068.TokenSubject(sub=target.label, org=client.org_id, via="self"),
                frozenset(grants.CLIENT_SCOPES),
                # The address this login proved: its reach through shared email stands on it.
                {"email_group": delegation.email_tag(login.email)},
                # Only a sign-in that changes something writes (the write checks again).
                verified_login=None if account.email_verified else login,
                login=login.label,
            )
        return Decision(
            rfc9068.TokenSubject(sub=target.label, org=client.org_id),
            STAFF_SCOPES[target.kind],
            {},
            login=login.label,
        )

    @staticmethod
    def _bound_account(
        facts: token_status.Facts, client: RegisteredClient, login: Login, target: Target
    ) -> token_status.AccountRow:
        row = facts.accounts.get(target.label)
        if row is None or row.org_id != client.org_id:
            raise InvalidTargetError(description=f"no such {target.kind} in this organization")
        if not row.active:
            raise InvalidTargetError(description="that client account was removed")
        if row.email != login.email:
            raise InvalidTargetError(description=f"that {target.kind} is not bound to this login")
        return row

    def mark_verified(self, client_id: str, login: Login) -> None:
        """A verified login proves the account's address: shared-email toggles may use it."""
        with self.runtime.store.write(login.label) as txn:
            row = txn.session.get(Client, client_id)
            if row is not None and row.email == login.email and not row.email_verified:
                txn.org_id = row.org_id
                row.email_verified = True
                txn.record(
                    "client.email_verified",
                    row.id,
                    {"email_verified": False},
                    {"email_verified": True, "by": login.label},
                    [row.id],
                    row.org_id,
                )

    # -- toggle, switch and switch back -------------------------------------------------------

    def _from_access_token(self, client: RegisteredClient, token: str, target: Target) -> Decision:
        """Toggle, switch or switch back: the subject token judged, and the target reached,
        by the same facts and rules as `POST /v1/access/check` (`authz.policy.delegation`)."""
        svc = access.service(self.runtime)
        svc.fresh(access.Consistency(None))  # sees every write that has returned
        claims, _, problem = svc.status(token)
        if not claims:
            raise InvalidRequestError(description=f"subject_token rejected: {problem}")
        self.seen.update(subject=claims["sub"], subject_jti=claims["jti"])
        if claims["org"] != client.org_id:
            raise InvalidRequestError(description="subject_token is from another organization")
        if problem is not None:
            raise InvalidRequestError(description=f"subject_token is not active: {problem}")
        if not audiences_of(claims) & frozenset(client.audiences):
            raise InvalidRequestError(
                description="subject_token was issued for an audience this client is not "
                "registered for"
            )
        kind, _, subject_id = claims["sub"].partition(":")
        if kind != "client" or target.kind != "client":
            raise InvalidTargetError(description="only client accounts switch to client accounts")
        client_lookup.require_current_row(
            token_status.read_facts(
                self.runtime.store, oauth_clients=(client.client_id,)
            ).oauth_clients.get(client.client_id),
            client,
        )
        facts, now = svc.facts, clock.now()
        actor = (claims.get("act") or {}).get("sub")
        login = subject_id
        if claims["authz_via"] == "delegation":
            # No chains: a delegated token is only good for switching back to the caregiver
            # it names in `act` (RFC 8693 §4.1 would allow nesting; we never do).
            self.seen.update(actor=actor, grant=claims.get("grant"))
            if actor != target.label:
                raise InvalidRequestError(
                    description="a delegated token cannot be exchanged again, "
                    "except to switch back to the caregiver's own account"
                )
            login = target.id
        elif claims["authz_via"] == "shared_email" and isinstance(actor, str):
            login = actor.partition(":")[2]  # the login's own account acts on
        self.clients.update((login, target.id))
        if facts.client_org(target.id) != client.org_id or not facts.is_active(target.id):
            raise InvalidTargetError(description="no such client in this organization")
        found = delegation.reach(facts, login, target.id, now)
        if found is None:
            grant_exists, reason = delegation.why_not(facts, login, target.id, now)
            if not facts.is_active(login):
                raise InvalidRequestError(description="the subject account is gone")
            if grant_exists:
                raise InvalidGrantError(description=f"portal access is not usable: {reason}")
            raise InvalidTargetError(description=reason)
        if found.link >= 0:
            self.seen["grant"] = facts.l_id[found.link]
        return issued_for(facts, client.org_id, found, claims.get("email_group"))

    # -- refusals -----------------------------------------------------------------------------

    def audit_refusal(self, client: RegisteredClient, exc: OAuth2Error) -> None:
        """Record a refused exchange in its own write: the reason and the client, no token."""
        refusals.record(
            self.runtime.store,
            "token_exchange.refused",
            f"service:{client.client_id}",
            client.org_id,
            {
                "error": exc.error,
                "reason": exc.description,
                "client_id": client.client_id,
                **self.seen,
            },
            sorted(self.clients),
            client.client_id,
        )


def issued_for(
    facts: FactIndex, org_id: str, found: delegation.Reach, email_group: Any
) -> Decision:
    """The token for what `delegation.reach` found: its subject, `act`, the most scope it may
    carry; the tag of the address the login proved carries over."""
    sub = f"client:{found.client_id}"
    proven = {"email_group": email_group} if email_group else {}
    if found.via == "self":
        return Decision(
            rfc9068.TokenSubject(sub=sub, org=org_id),
            frozenset(grants.CLIENT_SCOPES),
            proven,
            kind="switch back",
        )
    if found.via == "shared_email":
        return Decision(
            rfc9068.TokenSubject(
                sub=sub, org=org_id, via="shared_email", actor=f"client:{found.actor}"
            ),
            frozenset(grants.CLIENT_SCOPES),
            proven,
            kind="toggle",
        )
    info = facts.grant(found.link)
    return Decision(
        rfc9068.TokenSubject(
            sub=sub,
            org=org_id,
            via="delegation",
            actor=f"client:{found.actor}",
            grant=info.link_id,
        ),
        grants.LEVEL_SCOPES[info.level or "full"],
        {"grant_activated": facts.activated_micros(found.link), **proven},
        kind="switch",
    )


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """The token-exchange grant type of RFC 8693 §2: parameters in, `Exchange` decides, a token
    out.

    Error codes follow §2.2.2: a subject token that is invalid or unacceptable by policy is
    `invalid_request`; a resource or audience we will not issue for is `invalid_target`; a
    portal-access grant that is pending, revoked or expired is `invalid_grant` (RFC 6749 §5.2:
    "the provided authorization grant ... is invalid, expired, revoked"); a scope beyond what the
    grant and the client allow is `invalid_scope`; a client without this grant type is
    `unauthorized_client`. Every refusal after client authentication is audited.
    """

    GRANT_TYPE = TOKEN_EXCHANGE
    #: Set by the server factory: the process's runtime (store, keys, settings).
    runtime: Runtime

    def validate_token_request(self) -> None:
        client: RegisteredClient = self.authenticate_token_endpoint_client()
        self.request.client = client
        self._exchange = Exchange(self.runtime)
        try:
            self._outcome = self._exchange.decide(client, self._params())
        except OAuth2Error as exc:
            if exc.error != TemporarilyUnavailableError.error:
                self._exchange.audit_refusal(client, exc)
            raise
        decision = self._outcome.decision
        self.request.user = Issuance(
            decision.subject,
            self._outcome.audience,
            decision.extra,
            kind=decision.kind,
            login=decision.login,
        )

    def _params(self) -> dict[str, str]:
        """The form parameters, each at most once (RFC 6749 §3.2), none in the URL."""
        form, query = self.request.form, self.request.args
        names = (*SINGLE_PARAMS, *TARGET_PARAMS)
        in_url = sorted(n for n in names if n in query)
        if in_url:
            # Tokens in a URL end up in logs; RFC 6749 §3.2 puts them in the body.
            raise InvalidRequestError(
                description=f"send {', '.join(in_url)} in the form-encoded body, not the URL"
            )
        params: dict[str, str] = {}
        for name in names:
            values = form.getlist(name)
            if len(values) > 1 and name in TARGET_PARAMS:
                # RFC 8693 §2.1 allows several targets; we issue for exactly one.
                raise InvalidTargetError(description=f"give exactly one {name}")
            if len(values) > 1:
                raise InvalidRequestError(description=f"{name} is given more than once")
            if values:
                params[name] = values[0]
        return params

    # -- response (RFC 8693 §2.2.1) -----------------------------------------------------------

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        login = self._outcome.decision.verified_login
        if login is not None:
            # Only once the exchange is sure to succeed: a refused request changes nothing.
            self._exchange.mark_verified(
                self._outcome.decision.subject.sub.partition(":")[2], login
            )
        token = self.generate_token(
            user=self.request.user, scope=self._outcome.scope, include_refresh_token=False
        )
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(token)
        self.execute_hook("process_token", token=token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def narrow(requested: str | None, allowed: frozenset[str]) -> str:
    """The requested scope if all of it is allowed; all that is allowed if none was asked for.
    Never wider than `allowed`, and never silently narrowed (RFC 6749 §3.3)."""
    if requested is None:
        if not allowed:
            raise InvalidScopeError(description="no scope is allowed for this exchange")
        return " ".join(sorted(allowed))
    wanted = set(requested.split())
    if not wanted or not wanted <= allowed:
        raise InvalidScopeError(
            description="requested scope exceeds what the grant and the client allow"
        )
    return " ".join(sorted(wanted))
