"""The engine's edges: subjects from tokens, the JSON answer, ids, and login listings."""

from __future__ import annotations

from authz.base.principals import Principal
from authz.policy import cases
from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject

POLICY = PolicySet.load()
SUITE = next(s for s in cases.load_suites() if s.path.name == "payments.yaml")


def engine() -> Engine:
    return Engine(POLICY, cases.facts_of(SUITE.data))


def test_a_delegated_token_decides_as_the_caregiver_within_its_grant() -> None:
    claims = {
        "sub": "client:cli_sam",
        "org": "org_1",
        "authz_via": "delegation",
        "act": {"sub": "client:cli_jenna"},
        "grant": "lnk_42",
        "scope": "profile billing",
    }
    subject = Subject.from_principal(Principal.from_claims(claims))
    assert (subject.actor, subject.account, subject.grant) == (
        "client:cli_jenna",
        "cli_sam",
        "lnk_42",
    )
    e = engine()
    invoice = Resource("invoice", "i", "cli_sam")
    ok = e.check(CheckRequest(subject, "invoice.pay", invoice, "pm_sam"))
    assert ok.allowed and "lnk_42" in ok.reason
    scoped = e.check(CheckRequest(subject, "message.send", Resource("message", None, "cli_sam")))
    assert not scoped.allowed and scoped.rule == "token: scope"


def test_answer_has_the_contract_fields_and_unique_ids() -> None:
    e = engine()
    req = CheckRequest(
        Subject("client:cli_tom", "org_1", "cli_tom"), "client.read", Resource("client", "cli_tom")
    )
    a, b = e.check(req).as_dict(), e.check(req).as_dict()
    assert set(a) == {"allowed", "decision_id", "reason", "rule", "revision"}
    assert a["decision_id"].startswith("dec_") and a["decision_id"] != b["decision_id"]
    assert isinstance(a["revision"], str)


def test_batch_answers_in_order() -> None:
    e = engine()
    sub = Subject("client:cli_tom", "org_1", "cli_tom")
    reqs = [
        CheckRequest(sub, "client.read", Resource("client", c))
        for c in ("cli_tom", "cli_gus", "cli_jenna")
    ]
    # Tom shares Jenna's email, but his own token acts on his own account only.
    decided = e.check_batch(reqs)
    assert [d.allowed for d in decided] == [True, False, False]
    assert decided[2].rule == "token: one account"


def test_accounts_for_a_login_list_every_own_account_and_their_grants() -> None:
    accounts = engine().accounts_for_login("org_1", "Family@Example.org")
    assert {(a.client_id, a.via, a.link_id) for a in accounts} == {
        ("cli_jenna", "self", None),
        ("cli_tom", "self", None),
        ("cli_sam", "delegation", "lnk_42"),
        ("cli_gus", "delegation", "lnk_bil"),
    }


def test_who_can_names_the_grant_behind_each_caregiver() -> None:
    paths = {a.subject: a for a in engine().who_can("org_1", "cli_sam")}
    assert paths["client:cli_jenna"].link_id == "lnk_42"
    assert paths["provider:prv_lee"].relation == "provider"
    assert engine().who_can("org_2", "cli_sam") == []
