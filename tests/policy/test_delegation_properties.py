"""One answer to "may this login act as that account", over random families (issue 11).

For every login (signed in to each client of a random family: links, grants in every state,
shared and unshared emails, verified or not, minors of every age):

- the token exchange (`rfc8693.issued_for` over `delegation.reach`) issues a token for exactly
  the accounts the Switch Account list shows, and each issued token is live;
- the issued token acts on its account and on no other, and the decision names the login's
  account as the actor;
- a client's own token acts on its own account only;
- the Casbin export, loaded in stock pycasbin with its default role manager, decides exactly as
  the engine does.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz.base.principals import Principal
from authz.compliance.policy_review.live import casbin_lines
from authz.oauth.rfc8693 import issued_for
from authz.policy import delegation, vocabulary
from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject
from authz.tokens.validity import token_problem
from tests.compliance.test_policy_store import enforcer_from

from .graphs import LABELS, NOW, graphs, index_of

POLICY = PolicySet.load()
AUDIENCE = "https://portal.test"
FAMILIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def engine_of(g: dict[str, Any]) -> Engine:
    facts = index_of(g)
    for org in ("org_a", "org_b"):
        facts.put_oauth_client((f"oc_{org}", org, None, [AUDIENCE]))
    return Engine(POLICY, facts, now=lambda: NOW)


def claims_of(subject: Any, scopes: frozenset[str], extra: dict[str, Any]) -> dict[str, Any]:
    """The claims `rfc9068.issue` would sign for an exchange's decision."""
    claims: dict[str, Any] = {
        "sub": subject.sub,
        "org": subject.org,
        "authz_via": subject.via,
        "client_id": f"oc_{subject.org}",
        "aud": AUDIENCE,
        "jti": f"jti-{subject.sub}-{subject.via}",
        "scope": " ".join(sorted(scopes)),
        **extra,
    }
    if subject.actor is not None:
        claims["act"] = {"sub": subject.actor}
    if subject.grant is not None:
        claims["grant"] = subject.grant
    return claims


def sign_in_claims(client: Any) -> dict[str, Any]:
    extra = {"email_group": delegation.email_tag(client.email)} if client.email else {}
    return {
        "sub": f"client:{client.id}",
        "org": client.org_id,
        "authz_via": "self",
        "client_id": f"oc_{client.org_id}",
        "aud": AUDIENCE,
        "jti": f"jti-{client.id}",
        "scope": "appointments billing documents forms messages profile",
        **extra,
    }


def reads(engine: Engine, subject: Subject, owner: str) -> bool:
    request = CheckRequest(subject, "client.read", Resource("client", owner))
    return engine.check(request).allowed


@FAMILIES
@given(graphs())
def test_the_exchange_the_switch_account_list_and_who_can_agree(g: dict[str, Any]) -> None:
    engine = engine_of(g)
    facts = engine.facts
    for login in g["clients"]:
        own = sign_in_claims(login)
        if token_problem(facts, own, now=NOW) is not None:
            continue  # a removed account signs in to nothing
        own_subject = Subject.from_principal(Principal.from_claims(own))
        listed: dict[str, set[str]] = {}
        for account in engine.accounts(own_subject):
            listed.setdefault(account.client_id, set()).add(account.via)
        by_login = engine.accounts_for_login(login.org_id, login.email) if login.email else None
        if by_login is not None:
            assert {(a.client_id, a.link_id) for a in by_login} == {
                (a.client_id, a.link_id) for a in engine.accounts(own_subject)
            }
        for target in g["clients"]:
            found = delegation.reach(facts, login.id, target.id, NOW)
            assert (found is not None) == (target.id in listed), (login.id, target.id)
            # who-can (the compliance view) lists the account through which each login that can
            # act as the target does so (the caregiver's account a grant names, the shared-email
            # account), and no account that cannot.
            who = {a.subject for a in engine.who_can(target.org_id, target.id)}
            if found is not None:
                assert f"client:{found.actor}" in who, (login.id, target.id, found)
            else:
                assert f"client:{login.id}" not in who, (login.id, target.id)
            # The login's own token acts on its own account only.
            assert reads(engine, own_subject, target.id) == (target.id == login.id)
            if found is None:
                continue
            decision = issued_for(facts, login.org_id, found, own.get("email_group"))
            token = claims_of(decision.subject, decision.allowed_scopes, decision.extra)
            assert token_problem(facts, token, now=NOW) is None, (login.id, target.id, found)
            subject = Subject.from_principal(Principal.from_claims(token))
            assert subject.actor == f"client:{found.actor}"
            assert subject.account == target.id
            assert found.via in listed[target.id]
            for other in g["clients"]:
                assert reads(engine, subject, other.id) == (other.id == target.id), (
                    login.id,
                    target.id,
                    other.id,
                )


@FAMILIES
@given(graphs(), st.data())
def test_the_export_decides_as_the_engine(g: dict[str, Any], data: st.DataObject) -> None:
    engine = engine_of(g)
    enforcer = enforcer_from(casbin_lines(engine))
    subjects = [f"client:{c.id}" for c in g["clients"]] + ["provider:prv_a", "reviewer:rev_a"]
    owners = [c.id for c in g["clients"]] + ["org_a"]
    pms = ["", *(p.id for p in g["pms"])]
    for _ in range(30):
        request = (
            data.draw(st.sampled_from(subjects)),
            data.draw(st.sampled_from(owners)),
            data.draw(st.sampled_from(sorted(vocabulary.ACTIONS))),
            data.draw(st.sampled_from(pms)),
            data.draw(st.sampled_from(["", *LABELS])),
        )
        assert engine.evaluate(*request, now=NOW)[0] == enforcer.enforce(*request), request
