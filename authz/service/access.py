"""Access decisions as use cases: parse a check, make the facts fresh enough, decide, log.

Flow: `/v1/access/*` view → `AccessService` → `FactIndex.ensure_fresh` (one revision read) →
tokens (`TokenCache` + `token_problem` over the facts) → `Engine` → decision log.

Both tokens of a check (the portal backend's bearer token and the user's) are verified once per
token and then answered from memory until `exp`; whether they are still good (revoked, OAuth
client disabled, account removed, grant revoked or narrowed) comes from the fact index, fresh by
revision, so no check reads the store beyond the revision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authz.base.errors import Forbidden, RevisionNotReached, Unauthenticated, ValidationFailed
from authz.base.principals import CHECK_SCOPE, CHECK_SUBJECTS_SCOPE, REVIEW_SCOPE, Principal
from authz.policy import decision_spool
from authz.policy.decision_log import DecisionLog
from authz.policy.decision_spool import Spool
from authz.policy.engine import (
    Answers,
    CheckRequest,
    Decision,
    Engine,
    PolicySet,
    Resource,
    Subject,
)
from authz.policy.facts import FactIndex
from authz.policy.vocabulary import LABELS
from authz.service import replication
from authz.service.runtime import Runtime
from authz.tokens import rfc9068
from authz.tokens.validity import TokenCache, audiences_of

MAX_BATCH = 1000
#: How long a check waits for a consistency token's revision before refusing it (seconds).
AT_LEAST_WAIT = 2.0
_CHECK_FIELDS = {"token", "subject", "acting_as", "action", "resource", "context", "consistency"}
#: The rule of a denial for the user's token, before any policy line.
TOKEN_RULE = "token: the user's access token must verify and still be good (RFC 9068, RFC 7009)"
UNVERIFIED = "token:unverified"


@dataclass(frozen=True)
class Fresh:
    """A caller authenticated by `AccessService.begin`, against facts made fresh for this
    request: the use cases then read no revision again."""

    principal: Principal


@dataclass(frozen=True)
class TokenRejected:
    """The user's token of one check is not good now: a logged deny that says why."""

    subject: Subject
    reason: str


@dataclass(frozen=True)
class Consistency:
    """`None`: the newest revision (one cheap read); an int: at least that revision."""

    at_least: int | None


def parse_consistency(raw: Any, field: str = "consistency") -> Consistency:
    """`{"at_least": "<revision>"}`, `{"full": true}` or absent (the safe default: newest)."""
    if raw is None:
        return Consistency(None)
    if not isinstance(raw, dict) or set(raw) - {"at_least", "full"} or len(raw) != 1:
        raise ValidationFailed([(field, 'must be {"at_least": "<revision>"} or {"full": true}')])
    if "full" in raw:
        if raw["full"] is not True:
            raise ValidationFailed([(f"{field}.full", "must be true")])
        return Consistency(None)
    value = raw["at_least"]
    # Bounded before any conversion: a revision is a 64-bit counter (19 digits at most), and
    # Python refuses to convert numbers of thousands of digits at all.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return Consistency(value)
    if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        return Consistency(int(value))
    raise ValidationFailed([(f"{field}.at_least", "must be a revision this service returned")])


def about_the_token(reason: str) -> str:
    """Why the user's token does not count, said once: "the token was revoked" reads "the user's
    access token was revoked", "not a compact JWS" "the user's access token: not a compact JWS"."""
    for said in ("the token", "token"):
        if reason.startswith(said + " ") or reason.startswith(said + "'s "):
            return "the user's access token" + reason.removeprefix(said)
    return f"the user's access token: {reason}"


def _spool(runtime: Runtime) -> Spool | None:
    settings = runtime.settings
    if settings.decision_spool_dir == "off":
        return None
    url = runtime.store.engine.url.render_as_string(hide_password=True)
    return Spool(decision_spool.directory_for(url, settings.decision_spool_dir))


class AccessService:
    """The decision engine of one process: policy files, store-backed facts, decision log."""

    def __init__(self, runtime: Runtime, background_log: bool = True) -> None:
        self.runtime = runtime
        self.policy = PolicySet.load()
        self.facts = FactIndex.load(runtime.store, runtime.settings.majority_age)
        self.log = DecisionLog(runtime.store, background=background_log, spool=_spool(runtime))
        self.engine = Engine(self.policy, self.facts, log=self.log)
        self.tokens = TokenCache(runtime.keys, runtime.settings.issuer)
        runtime.store.policy_digest = lambda: self.policy.digest

    def close(self) -> None:
        """Write what the decision log still holds; leave a snapshot of a large fact index for
        the next start (`FactIndex.save`)."""
        self.log.close()
        self.facts.save(self.runtime.store)

    def fresh(self, consistency: Consistency) -> int:
        """Make the facts at least as new as asked; the default sees every returned write.
        A revision the store has not reached is waited for briefly, then refused: it is never
        answered with an older state."""
        revision = self.facts.ensure_fresh(self.runtime.store, consistency.at_least)
        wanted = consistency.at_least
        if wanted is None or revision >= wanted:
            return revision
        deadline = time.monotonic() + AT_LEAST_WAIT
        while time.monotonic() < deadline:
            time.sleep(0.05)
            revision = self.facts.ensure_fresh(self.runtime.store, wanted)
            if revision >= wanted:
                return revision
        raise RevisionNotReached(
            f"revision {wanted} has not been reached; the newest is {revision}", revision
        )

    def begin(self, caller: Principal | Fresh | str, raw_consistency: Any = None) -> Fresh:
        """Make the facts fresh (once per request), then authenticate the caller (a bearer
        token, or a principal verified elsewhere) against them. A malformed `consistency`
        reads the newest state here and is refused by the use case, after authentication."""
        if isinstance(caller, Fresh):
            return caller
        try:
            consistency = parse_consistency(raw_consistency)
        except ValidationFailed:
            consistency = Consistency(None)
        try:
            self.fresh(consistency)
        except RevisionNotReached:
            # Only an authenticated caller learns the newest revision.
            if not isinstance(caller, Principal):
                self.authenticate(caller)
            raise
        return Fresh(caller if isinstance(caller, Principal) else self.authenticate(caller))

    def authenticate(self, token: str) -> Principal:
        """The caller of a bearer token that verifies and is still good (facts made fresh by
        the caller): the one answer for the bearer API, the decision API and introspection."""
        _, principal, problem = self.status(token)
        if problem is not None or principal is None:
            raise Unauthenticated(f"access token rejected: {problem}")
        return principal

    def status(self, token: str) -> tuple[dict[str, Any], Principal | None, str | None]:
        """A token's claims and principal, and why it is not good now (None while it is), on
        facts the caller made fresh. An unverifiable token has no claims."""
        try:
            verified = self.tokens.live(token, self.facts, self.runtime.settings.majority_age)
        except rfc9068.InvalidToken as exc:
            return {}, None, str(exc)
        except Unauthenticated as exc:
            return {}, None, exc.detail
        return verified.claims, verified.principal, verified.problem

    # -- subjects -------------------------------------------------------------------------------

    def _token_subject(self, caller: Principal, token: str) -> Subject | TokenRejected:
        try:
            claims, principal, subject, problem = self.tokens.live(
                token, self.facts, self.runtime.settings.majority_age
            )
        except rfc9068.InvalidToken as exc:
            return TokenRejected(Subject(UNVERIFIED, caller.org_id), str(exc))
        except Unauthenticated as exc:
            return TokenRejected(Subject(UNVERIFIED, caller.org_id), exc.detail)
        if problem is None and principal.org_id != caller.org_id:
            problem = "the token is from another organization"
        if problem is None and not audiences_of(claims) & self.facts.oauth_client_audiences(
            caller.client_id or ""
        ):
            # RFC 9068 §4, RFC 8725 §3.9: the token counts only for an audience the asking
            # portal backend is registered for.
            problem = "the token was issued for an audience the asking client is not registered for"
        if problem is not None:
            # The user's token is not good now: a logged deny with its reason, never an
            # error a caller could mistake for allow.
            foreign = principal.org_id != caller.org_id
            return TokenRejected(
                Subject(UNVERIFIED, caller.org_id) if foreign else subject, problem
            )
        return subject

    def subject_of(
        self,
        caller: Principal,
        item: dict[str, Any],
        field: str = "",
        memo: dict[str, Subject | TokenRejected] | None = None,
    ) -> Subject | TokenRejected:
        """The subject from the user's verified token, or an explicit one for trusted callers.
        `memo`: answers per token within one batch (one view of the facts, so one answer)."""
        prefix = f"{field}." if field else ""
        if "token" in item:
            if "subject" in item or "acting_as" in item:
                raise ValidationFailed([(f"{prefix}token", "give token or subject, not both")])
            token = item["token"]
            if not isinstance(token, str) or not token:
                raise ValidationFailed([(f"{prefix}token", "must be an access token")])
            if memo is None:
                return self._token_subject(caller, token)
            found = memo.get(token)
            if found is None:
                found = memo[token] = self._token_subject(caller, token)
            return found
        if "subject" not in item:
            raise ValidationFailed([(f"{prefix}token", "give the user's token (or subject)")])
        if CHECK_SUBJECTS_SCOPE not in caller.scopes:
            raise Forbidden("an explicit subject needs the authz:check:subjects scope")
        subject, acting_as = item["subject"], item.get("acting_as")
        if not isinstance(subject, str) or ":" not in subject:
            raise ValidationFailed(
                [(f"{prefix}subject", "must be client:<id>, provider:<id> or reviewer:<id>")]
            )
        if acting_as is not None and (
            not isinstance(acting_as, str) or not acting_as.startswith("client:")
        ):
            raise ValidationFailed([(f"{prefix}acting_as", "must be client:<id>")])
        return Subject.explicit(subject, caller.org_id, acting_as)

    def _request(
        self,
        caller: Principal,
        item: Any,
        field: str = "",
        memo: dict[str, Subject | TokenRejected] | None = None,
    ) -> tuple[CheckRequest, str | None]:
        """The request, and the reason to deny it before the engine when its token is bad."""
        if not isinstance(item, dict):
            raise ValidationFailed([(field or "body", "must be an object")])
        action, resource, context = item.get("action"), item.get("resource"), item.get("context")
        # The well-formed request is checked with a few C-level tests (a batch has a thousand);
        # only a bad one pays for the itemized errors.
        if not (
            _CHECK_FIELDS.issuperset(item)
            and type(action) is str
            and action
            and type(resource) is dict
            and type(resource.get("type")) is str
            and _RESOURCE_FIELDS.issuperset(resource)
            and type(resource.get("id")) in _OPTIONAL_STR
            and type(resource.get("owner")) in _OPTIONAL_STR
            and _labels_ok(resource.get("labels"))
            and (
                context is None
                or (
                    type(context) is dict
                    and _CONTEXT_FIELDS.issuperset(context)
                    and type(context.get("payment_method", "")) is str
                )
            )
        ):
            raise ValidationFailed(_request_errors(item, f"{field}." if field else ""))
        labels = resource.get("labels")
        target = Resource(
            resource["type"], resource.get("id"), resource.get("owner"), tuple(labels or ())
        )
        pm = context.get("payment_method") if context else None
        subject = self.subject_of(caller, item, field, memo)
        if isinstance(subject, TokenRejected):
            return CheckRequest(subject.subject, action, target, pm), subject.reason
        return CheckRequest(subject, action, target, pm), None

    def _decide(
        self,
        request: CheckRequest,
        rejected: str | None,
        now: dt.datetime | None = None,
        memo: Answers | None = None,
        engine: Engine | None = None,
    ) -> Decision:
        engine = engine or self.engine
        if rejected is not None:
            return engine.deny(request, about_the_token(rejected), TOKEN_RULE)
        return engine.check(request, now, memo)

    # -- use cases ------------------------------------------------------------------------------

    def check(self, caller: Principal | Fresh | str, body: dict[str, Any]) -> dict[str, Any]:
        """One decision, as the contract's JSON. `caller`: see `begin`."""
        caller = self.begin(caller, body.get("consistency")).principal
        _require(caller, CHECK_SCOPE)
        request, rejected = self._request(caller, body)
        parse_consistency(body.get("consistency"))
        return self._decide(request, rejected).as_dict()

    def check_batch(self, caller: Principal | Fresh | str, body: dict[str, Any]) -> dict[str, Any]:
        """Up to 1,000 decisions, answered in order, on one fresh view of the facts."""
        caller = self.begin(caller, body.get("consistency")).principal
        _require(caller, CHECK_SCOPE)
        unknown = [(k, "unknown field") for k in body if k not in ("checks", "consistency")]
        checks = body.get("checks")
        if unknown or not isinstance(checks, list) or not 1 <= len(checks) <= MAX_BATCH:
            raise ValidationFailed(unknown or [("checks", f"must list 1 to {MAX_BATCH} checks")])
        parse_consistency(body.get("consistency"))
        requests = []
        memo: dict[str, Subject | TokenRejected] = {}
        for i, item in enumerate(checks):
            if isinstance(item, dict) and "consistency" in item:
                raise ValidationFailed(
                    [(f"checks[{i}].consistency", "set consistency once, for the whole batch")]
                )
            requests.append(self._request(caller, item, f"checks[{i}]", memo))
        # One moment and one view of the facts for the whole batch: a policy question asked
        # twice (a page of invoices of one client) is answered once.
        now = self.engine.now()
        answers: Answers = {}
        decided: list[Decision] = []
        engine = dataclasses.replace(self.engine, log=decided.append)
        results = [
            self._decide(r, rejected, now, answers, engine).as_dict() for r, rejected in requests
        ]
        # Recorded before answered, in this thread and one transaction. Queued for the log's
        # writer thread instead, a thousand rows a request made it fight the request threads
        # for the GIL: measured with 2 workers, the log cost a decision 38 µs of CPU that way
        # and left the cores 15 % idle (26k decisions/s, 70k without the log).
        self.log.write(decided)
        return {"results": results, "revision": str(self.facts.revision)}

    def accounts(self, caller: Principal | Fresh | str, login: str | None) -> dict[str, Any]:
        """The Switch Account list: of the caller's own token, or of a login (by email)."""
        caller = self.begin(caller).principal
        revision = self.facts.revision
        if login is None:
            if caller.kind != "client":
                raise ValidationFailed([("login", "is required unless the token is a client's")])
            accounts = self.engine.accounts(Subject.from_principal(caller))
        else:
            _require(caller, CHECK_SCOPE)
            from authz.base.emails import normalize_email

            accounts = self.engine.accounts_for_login(
                caller.org_id, normalize_email(login, "login")
            )
        return {"accounts": [a.as_dict() for a in accounts], "revision": str(revision)}

    def who_can(self, caller: Principal | Fresh | str, client_id: str) -> dict[str, Any]:
        """Every path to a client: compliance staff, providers and trusted services only."""
        caller = self.begin(caller).principal
        if not (
            caller.is_reviewer_of(caller.org_id)
            or caller.is_admin_of(caller.org_id)
            or CHECK_SUBJECTS_SCOPE in caller.scopes
        ):
            raise Forbidden(
                "who-can needs a reviewer's or provider's token, or authz:check:subjects"
            )
        revision = self.facts.revision
        if self.facts.client_index(client_id) is None or self.facts.org_of(
            client_id
        ) != self.facts.orgs.get(caller.org_id):
            from authz.base.errors import NotFound

            raise NotFound(f"client {client_id} not found in this organization")
        return {
            "client_id": client_id,
            "access": [a.as_dict() for a in self.engine.who_can(caller.org_id, client_id)],
            "revision": str(revision),
        }


_RESOURCE_FIELDS = frozenset({"type", "id", "owner", "labels"})


def _labels_ok(labels: Any) -> bool:
    """No labels, or a list of known sensitivity labels (vocabulary.LABELS)."""
    return labels is None or (
        type(labels) is list and len(labels) <= 16 and all(x in LABELS for x in labels)
    )


_CONTEXT_FIELDS = frozenset({"payment_method"})
_OPTIONAL_STR = (str, type(None))


def _request_errors(item: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    """What is wrong with a check request, field by field."""
    errors = [(f"{prefix}{k}", "unknown field") for k in item if k not in _CHECK_FIELDS]
    action, resource, context = item.get("action"), item.get("resource"), item.get("context")
    if not isinstance(action, str) or not action:
        errors.append((f"{prefix}action", "is required: <resource type>.<verb>"))
    if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
        errors.append((f"{prefix}resource", "is required: {type, id, owner}"))
    elif set(resource) - _RESOURCE_FIELDS or not all(
        isinstance(resource.get(k), str | None) for k in ("id", "owner")
    ):
        errors.append((f"{prefix}resource", "takes type, id and owner strings only"))
    elif not _labels_ok(resource.get("labels")):
        errors.append(
            (
                f"{prefix}resource.labels",
                "a list of sensitivity labels, each one of " + ", ".join(sorted(LABELS)),
            )
        )
    if context is not None and (
        not isinstance(context, dict)
        or set(context) - _CONTEXT_FIELDS
        or not isinstance(context.get("payment_method", ""), str)
    ):
        errors.append((f"{prefix}context", "takes payment_method (a string) only"))
    return errors


def _require(caller: Principal, scope: str) -> None:
    if scope not in caller.scopes and not (
        scope == CHECK_SCOPE and CHECK_SUBJECTS_SCOPE in caller.scopes
    ):
        raise Forbidden(f"this needs the {scope} scope")
    if caller.actor is not None:
        raise Unauthenticated("a delegated token cannot call the decision API")


_lock = threading.Lock()


def service(runtime: Runtime) -> AccessService:
    """The process's access service, built on first use (loading every grant takes a while)."""
    found = runtime.extras.get("access")
    if found is None:
        with _lock:
            found = runtime.extras.get("access")
            if found is None:
                found = AccessService(runtime)
                runtime.extras["access"] = found
    assert isinstance(found, AccessService)
    return found


__all__ = [
    "REVIEW_SCOPE",
    "AccessService",
    "Consistency",
    "Fresh",
    "TokenRejected",
    "parse_consistency",
    "service",
]


def start_replication(
    runtime: Runtime,
    poll_interval: float = replication.POLL_INTERVAL,
    on_state: Callable[[replication.ReplicaState], None] | None = None,
) -> replication.Listener | None:
    """Listen for other replicas' writes and keep this process's facts fresh (PostgreSQL only;
    once per runtime)."""
    if not replication.is_postgresql(runtime.store):
        return None
    found = replication.listener_of(runtime.extras)
    if found is not None:
        return found
    listener = replication.Listener(
        runtime.store,
        runtime.settings,
        lambda revision: service(runtime).fresh(Consistency(revision)),
        poll_interval,
        on_state,
    )
    runtime.extras["replication"] = listener
    return listener.start()
