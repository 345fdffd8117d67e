"""Properties over random account graphs: the compiled engine is pycasbin's decision, payment
methods never cross clients, access needs a path, and the listings agree with `check`."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz.policy import vocabulary
from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject, casbin_enforcer
from authz.policy.grants import majority_date

from .graphs import LABELS, NOW, graphs, index_of

POLICY = PolicySet.load()
ACTIONS = sorted(vocabulary.ACTIONS)
CLIENT_ACTIONS = [
    a for a in ACTIONS if vocabulary.RESOURCE_TYPES[a.split(".")[0]].owner == "client"
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def engine_of(g: dict) -> Engine:
    return Engine(POLICY, index_of(g), now=lambda: NOW)


def subjects(g: dict) -> list[str]:
    return [f"client:{c.id}" for c in g["clients"]] + [
        "provider:prv_a",
        "provider:prv_b",
        "reviewer:rev_a",
        "client:cli_unknown",
    ]


def owners(g: dict) -> list[str]:
    return [c.id for c in g["clients"]] + ["org_a", "org_b", "cli_unknown"]


def oracle_path(g: dict, sub: str, owner: str) -> bool:
    """Own account, the same email in the same org, or an active usable grant."""
    kind, _, ident = sub.partition(":")
    if kind != "client":
        return True
    by_id = {c.id: c for c in g["clients"]}
    me, other = by_id.get(ident), by_id.get(owner)
    if me is None or other is None or not me.active or not other.active:
        return False
    if me.id == other.id:
        return True
    if me.org_id != other.org_id:
        return False
    if me.email and me.email == other.email:
        return True
    for link in g["links"]:
        if link.original_client_id == owner and link.linked_client_id == ident:
            entitled = (
                "linked_portal_access" in g["orgs"][0].entitlements and other.org_id == "org_a"
            )
            of_age = (
                other.client_type == "minor"
                and other.birth_date is not None
                and dt.datetime.combine(
                    majority_date(other.birth_date, 18), dt.time(), tzinfo=dt.UTC
                )
                <= NOW
            )
            unexpired = link.expires_at is None or link.expires_at > NOW
            return link.portal_status == "active" and entitled and unexpired and not of_age
    return False


@SETTINGS
@given(graphs(), st.data())
def test_compiled_engine_equals_pycasbin(g: dict, data: st.DataObject) -> None:
    engine = engine_of(g)
    enforcer = casbin_enforcer(engine.facts, now=lambda: NOW)
    pms = [p.id for p in g["pms"]] + ["", "pm_unknown"]
    for _ in range(25):
        req = (
            data.draw(st.sampled_from(subjects(g))),
            data.draw(st.sampled_from(owners(g))),
            data.draw(st.sampled_from([*ACTIONS, "nope.nope"])),
            data.draw(st.sampled_from(pms)),
            data.draw(st.sampled_from(["", *LABELS])),
        )
        assert engine.evaluate(*req, now=NOW)[0] == enforcer.enforce(*req), req


@SETTINGS
@given(graphs(), st.data())
def test_no_cross_client_payment_and_no_access_without_a_path(g: dict, data: st.DataObject) -> None:
    engine = engine_of(g)
    owner_of = {p.id: p.client_id for p in g["pms"]}
    pms = [*owner_of, "pm_unknown", None]
    for _ in range(40):
        sub = data.draw(st.sampled_from(subjects(g)))
        org = data.draw(st.sampled_from(["org_a", "org_b"]))
        action = data.draw(st.sampled_from(ACTIONS))
        rtype = action.split(".")[0]
        owner = data.draw(st.sampled_from(owners(g)))
        pm = data.draw(st.sampled_from(pms))
        rid = pm if rtype == "payment_method" else (owner if rtype == "client" else "x_1")
        d = engine.check(CheckRequest(Subject(sub, org), action, Resource(rtype, rid, owner), pm))
        if not d.allowed:
            continue
        spec = vocabulary.ACTIONS[action]
        used = pm if spec.payment == "context" else rid if spec.payment == "resource" else None
        if spec.payment:
            assert used is not None and owner_of.get(used) == d.owner, (sub, action, d.reason)
        assert oracle_path(g, sub, d.owner), (sub, action, d.owner, d.reason)


@SETTINGS
@given(graphs())
def test_who_can_agrees_with_check(g: dict) -> None:
    engine = engine_of(g)
    for c in g["clients"]:
        listed = {a.subject for a in engine.who_can(c.org_id, c.id)}
        for sub in subjects(g):
            any_allowed = any(
                engine.check(
                    CheckRequest(
                        Subject(sub, c.org_id), act, Resource(act.split(".")[0], None, c.id)
                    )
                ).allowed
                for act in CLIENT_ACTIONS
                if not vocabulary.ACTIONS[act].payment
            )
            assert any_allowed == (sub in listed), (sub, c.id)


@SETTINGS
@given(graphs(), st.data())
def test_a_batch_answers_each_check_as_a_lone_check(g: dict, data: st.DataObject) -> None:
    """A batch answers a policy question once and reuses it: never for a different question."""
    engine = engine_of(g)
    pms = [p.id for p in g["pms"]] + ["pm_unknown", None]
    subject_pool = [
        Subject(sub, org, account)
        for sub in subjects(g)
        for org in ("org_a", "org_b")
        for account in (None, sub.partition(":")[2] if sub.startswith("client:") else None)
    ]
    requests = []
    for _ in range(60):
        action = data.draw(st.sampled_from([*ACTIONS, "nope.nope"]))
        rtype = action.split(".")[0]
        rid = data.draw(st.sampled_from([None, "x_1", "x_2", *owners(g), *pms[:-1]]))
        requests.append(
            CheckRequest(
                data.draw(st.sampled_from(subject_pool)),
                action,
                Resource(rtype, rid, data.draw(st.sampled_from([None, *owners(g)]))),
                data.draw(st.sampled_from(pms)),
            )
        )
    batch = engine.check_batch(requests)
    assert len({d.decision_id for d in batch}) == len(requests)
    for req, got in zip(requests, batch, strict=True):
        alone = engine.check(req)
        assert (got.allowed, got.reason, got.rule, got.owner, got.enforced) == (
            alone.allowed,
            alone.reason,
            alone.rule,
            alone.owner,
            alone.enforced,
        ), req
