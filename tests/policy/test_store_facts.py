"""The fact index over a real store (SQLite and PostgreSQL): load, incremental refresh by
revision, revoke-then-deny, and the decision log's chain and fail-closed behaviour."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from authz.accounts import clients, invites, links, orgs, payments
from authz.base.config import Settings
from authz.base.principals import Principal
from authz.policy.decision_log import DecisionLog, DecisionLogUnavailable, decision_hash
from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject
from authz.policy.facts import FactIndex
from authz.store import audit
from authz.store.db import Store, make_engine
from authz.store.models import Client
from authz.store.models import Decision as DecisionRow

POLICY = PolicySet.load()
SETTINGS = Settings(dev_mode=True)


def verify_email(store: Store, org_id: str, client_id: str) -> None:
    with store.write("login", org_id) as txn:
        client = txn.session.get(Client, client_id)
        assert client is not None
        client.email_verified = True
        txn.record("client.email_verified", client_id, None, {"email_verified": True}, [client_id])


def accept_invite(store: Store, caregiver: Principal, token: str) -> None:
    """The caregiver proves the relationship (Sam's date of birth) and accepts."""
    invites.prove(store, SETTINGS, caregiver, token, {"birth_date": "2016-03-01"})
    invites.accept(store, SETTINGS, caregiver, token)


def family(store: Store, sam_email: str = "sam@example.org") -> dict[str, str]:
    org = orgs.create_org(store, "op", "Maple Clinic", ["linked_portal_access"])["id"]
    prv = orgs.create_provider(store, "op", org, "lee@example.org", "Dr. Lee")["id"]
    lee = Principal(kind="provider", id=prv, org_id=org)
    jenna = clients.create_client(
        store,
        lee.label,
        org,
        {"first_name": "Jenna", "client_type": "adult", "email": "fam@example.org"},
    )["id"]
    sam = clients.create_client(
        store,
        lee.label,
        org,
        {
            "first_name": "Sam",
            "client_type": "minor",
            "birth_date": "2016-03-01",
            "email": sam_email,
        },
    )["id"]
    link = links.create_link(
        store,
        SETTINGS,
        lee,
        org,
        sam,
        {
            "client_id": jenna,
            "relationship": "parent",
            "portal_access": {"enabled": True, "acknowledgement": "full access, I agree"},
        },
    )
    payments.register(store, lee.label, org, sam, {"id": "pm_sam", "label": "Visa"})
    payments.register(store, lee.label, org, jenna, {"id": "pm_jenna", "label": "Amex"})
    return {
        "org": org,
        "prv": prv,
        "jenna": jenna,
        "sam": sam,
        "link": link["id"],
        "invite": link["dev_invite_token"],
    }


def revoke_portal_access(store: Store, ids: dict[str, str]) -> dict[str, Any]:
    """Dr. Lee turns the family's portal access off (from the care receiver's side)."""
    lee = Principal(kind="provider", id=ids["prv"], org_id=ids["org"])
    return links.patch_link(
        store,
        SETTINGS,
        lee,
        ids["org"],
        ids["sam"],
        ids["link"],
        {"portal_access": {"enabled": False}},
    )


def pay(engine: Engine, ids: dict[str, str], pm: str) -> bool:
    """Jenna pays Sam's invoice with the token Switch Account issues (acting as Sam)."""
    subject = Subject(f"client:{ids['jenna']}", ids["org"], ids["sam"], ids["link"], "delegation")
    req = CheckRequest(subject, "invoice.pay", Resource("invoice", "inv_1", ids["sam"]), pm)
    return engine.check(req).allowed


def test_grant_lifecycle_is_seen_incrementally(store: Store) -> None:
    ids = family(store)
    facts = FactIndex.load(store)
    engine = Engine(POLICY, facts)
    assert facts.revision == store.revision()
    assert not pay(engine, ids, "pm_sam")  # pending

    jenna = Principal(kind="client", id=ids["jenna"], org_id=ids["org"])
    accept_invite(store, jenna, ids["invite"])
    facts.ensure_fresh(store)
    assert facts.last_refresh["link"] == 1 and facts.last_refresh["pm"] == 0
    assert pay(engine, ids, "pm_sam")
    assert not pay(engine, ids, "pm_jenna")  # payment isolation

    revoked = revoke_portal_access(store, ids)
    # The consistency token of the revoke is enough to never allow afterwards.
    facts.ensure_fresh(store, int(revoked["revision"]))
    assert facts.revision >= int(revoked["revision"])
    assert not pay(engine, ids, "pm_sam")


def test_shared_email_follows_the_recorded_address(store: Store) -> None:
    ids = family(store, sam_email="fam@example.org")
    facts = FactIndex.load(store)
    engine = Engine(POLICY, facts)
    own = Subject(f"client:{ids['jenna']}", ids["org"], ids["jenna"])
    toggled = Subject(f"client:{ids['jenna']}", ids["org"], ids["sam"], None, "shared_email")
    read_sam = CheckRequest(toggled, "client.read", Resource("client", ids["sam"]))
    # The login proved the address both accounts are recorded with: no flag on either counts.
    d = engine.check(read_sam)
    assert d.allowed and "proved the email" in d.reason
    assert [a.via for a in engine.accounts(own)][:2] == ["self", "shared_email"]
    # Jenna's own token acts on her own account only.
    assert not engine.check(read_sam._replace(subject=own)).allowed
    clients.patch_client(store, "op", ids["org"], ids["sam"], {"email": "sam@example.org"})
    facts.ensure_fresh(store)
    assert facts.last_refresh["client"] == 1
    assert not engine.check(read_sam).allowed
    assert "shared_email" not in [a.via for a in engine.accounts(own)]


def test_ensure_fresh_with_a_token_already_met_reads_nothing(store: Store) -> None:
    family(store)
    facts = FactIndex.load(store)
    store.engine.dispose()
    broken = Store(make_engine("sqlite:////nonexistent/dir/x.db"))
    assert facts.ensure_fresh(broken, facts.revision) == facts.revision


def test_decision_log_is_chained_and_complete(store: Store) -> None:
    ids = family(store)
    log = DecisionLog(store, batch_size=7, background=False)
    engine = Engine(POLICY, FactIndex.load(store), log=log)
    decided = [
        engine.check(
            CheckRequest(
                Subject(f"client:{ids['jenna']}", ids["org"], ids["jenna"]),
                "invoice.pay",
                Resource("invoice", f"inv_{i}", ids["sam"]),
                "pm_sam",
            )
        )
        for i in range(20)
    ]
    assert log.flush() == 20
    with store.read() as session:
        rows = list(session.scalars(select(DecisionRow).order_by(DecisionRow.seq)))
        assert [r.id for r in rows] == [d.decision_id for d in decided]
        assert audit.verify_chain(rows, decision_hash) == (20, None)
        assert rows[0].actor == f"client:{ids['jenna']}"
        assert rows[0].resource["payment_method"] == "pm_sam"
        assert rows[0].policy_digest == POLICY.digest


def test_decision_log_fails_closed(tmp_path) -> None:
    broken = Store(make_engine(f"sqlite:///{tmp_path}/missing/x.db"))
    log = DecisionLog(broken, background=False)
    facts = FactIndex()
    engine = Engine(POLICY, facts, log=log)
    req = CheckRequest(Subject("client:cli_x", "org_x"), "client.read", Resource("client", "cli_x"))
    engine.check(req)
    with pytest.raises(Exception):  # noqa: B017 - any store error
        log.flush()
    with pytest.raises(DecisionLogUnavailable):
        engine.check(req)
    assert len(log.pending) == 1  # kept for the retry, never dropped


def test_unknown_subjects_do_not_grow_memory() -> None:
    facts = FactIndex.from_rows([])
    engine = Engine(POLICY, facts)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(20_000):
        engine.check(
            CheckRequest(
                Subject(f"client:cli_{i}", "org_x"), "client.read", Resource("client", f"cli_{i}")
            )
        )
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1_000_000, grown
    assert facts.counts() == {"clients": 0, "grants": 0, "payment_methods": 0}


def test_minor_grant_ends_at_majority_without_a_write(store: Store) -> None:
    ids = family(store)
    jenna = Principal(kind="client", id=ids["jenna"], org_id=ids["org"])
    accept_invite(store, jenna, ids["invite"])
    facts = FactIndex.load(store)
    later = dt.datetime(2034, 3, 2, tzinfo=dt.UTC)
    assert pay(Engine(POLICY, facts), ids, "pm_sam")
    engine = Engine(POLICY, facts, now=lambda: later)
    subject = Subject(f"client:{ids['jenna']}", ids["org"], ids["sam"], ids["link"], "delegation")
    d = engine.check(CheckRequest(subject, "client.read", Resource("client", ids["sam"])))
    assert not d.allowed and "came of age" in d.reason


def test_a_full_load_reads_times_and_dates_as_each_store_hands_them(store: Store) -> None:
    # SQLite hands the raw cursor strings, PostgreSQL date and datetime objects.
    org = orgs.create_org(store, "op", "Maple Clinic", ["linked_portal_access"])["id"]
    prv = orgs.create_provider(store, "op", org, "lee@example.org", "Dr. Lee")["id"]
    lee = Principal(kind="provider", id=prv, org_id=org)
    jenna = clients.create_client(
        store,
        lee.label,
        org,
        {"first_name": "Jenna", "client_type": "adult", "email": "jenna@example.org"},
    )["id"]
    sam = clients.create_client(
        store,
        lee.label,
        org,
        {"first_name": "Sam", "client_type": "minor", "birth_date": "2016-03-01"},
    )["id"]
    ends = clock_now = dt.datetime.now(dt.UTC).replace(microsecond=123456) + dt.timedelta(days=3)
    link = links.create_link(
        store,
        SETTINGS,
        lee,
        org,
        sam,
        {
            "client_id": jenna,
            "relationship": "parent",
            "portal_access": {
                "enabled": True,
                "acknowledgement": "ok",
                "expires_at": ends.isoformat(),
            },
        },
    )
    accept_invite(store, Principal(kind="client", id=jenna, org_id=org), link["dev_invite_token"])
    facts = FactIndex.load(store)
    i = facts.link_index(link["id"])
    assert i is not None
    g = facts.grant(i)
    assert (g.expires_at, g.status, g.relationship, g.acknowledged_by) == (
        ends,
        "active",
        "parent",
        prv,
    )
    assert g.acknowledged_on == dt.datetime.now(dt.UTC).date()
    subject = Subject(f"client:{jenna}", org, sam, link["id"], "delegation")
    read = CheckRequest(subject, "client.read", Resource("client", sam))
    assert Engine(POLICY, facts).check(read).allowed
    after = clock_now + dt.timedelta(seconds=1)
    assert not Engine(POLICY, facts, now=lambda: after).check(read).allowed
    coming_of_age = dt.datetime(2034, 3, 1, tzinfo=dt.UTC)
    assert "came of age" in Engine(POLICY, facts, now=lambda: coming_of_age).check(read).reason


def test_dropped_grants_free_their_row_for_the_next_without_confusing_ids() -> None:
    from authz.policy.facts import ClientRow, LinkRow, OrgRow

    def link(lid: str, cg: str) -> LinkRow:
        return LinkRow(lid, "cli_r", cg, "parent", "active", "full", None, None, None)

    facts = FactIndex.from_rows(
        [OrgRow("org_a", "A", ["linked_portal_access"])],
        clients=[
            ClientRow(c, "org_a", c, "adult", None, None, False, True)
            for c in ("cli_r", "cli_a", "cli_b")
        ],
        links=[link(f"lnk_{k}", "cli_a" if k % 2 else "cli_b") for k in range(40)],
    )
    for k in range(0, 40, 3):
        facts.drop_link(f"lnk_{k}")
    facts.put_link(link("lnk_new", "cli_a"))
    for k in range(40):
        found = facts.link_index(f"lnk_{k}")
        assert (found is None) == (k % 3 == 0), k
        if found is not None:
            assert facts.grant(found).link_id == f"lnk_{k}"
    new = facts.link_index("lnk_new")
    assert new is not None and facts.grant(new).caregiver == "cli_a"
    assert facts.counts()["grants"] == 40 - 14 + 1
    assert [facts.grant(x).link_id for x in facts.grants_as_receiver("cli_r")].count("lnk_new") == 1


def test_a_store_that_cannot_answer_the_revision_read_fails_closed(tmp_path) -> None:
    from authz.base.errors import StoreUnavailable

    broken = Store(make_engine(f"sqlite:///{tmp_path}/missing/x.db"))
    with pytest.raises(StoreUnavailable):
        FactIndex().ensure_fresh(broken)


def test_the_catch_up_query_reads_the_revision_index(db_url: str) -> None:
    """Issue 12, finding 6: the changes after a revision are found through an index on
    `audit_events.revision`, not by scanning the whole trail."""
    from sqlalchemy import text as sql_text

    from authz.store.db import Store as _Store

    store = _Store.from_url(db_url)
    query = "SELECT kind FROM audit_events WHERE revision > 5 AND revision <= 9 ORDER BY seq"
    try:
        with store.read() as session:
            if store.engine.dialect.name == "sqlite":
                plan = " ".join(
                    str(r[-1]) for r in session.execute(sql_text("EXPLAIN QUERY PLAN " + query))
                )
            else:
                session.execute(sql_text("SET LOCAL enable_seqscan = off"))
                plan = " ".join(r[0] for r in session.execute(sql_text("EXPLAIN " + query)))
    finally:
        store.close()
    assert "ix_audit_events_revision" in plan, plan


@given(
    moment=st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.none()
    ),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_a_moment_reads_the_same_in_every_form_a_store_hands_it(
    moment: dt.datetime, offset_minutes: int
) -> None:
    # A full load converts a million of these: naive text (SQLite), datetimes (PostgreSQL), and
    # text with an offset (written by hand). Naive means UTC; every form is the same instant.
    from authz.policy.facts import _day, _micros

    exact = (
        moment.replace(tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ) // dt.timedelta(microseconds=1) or 1
    elsewhere = moment.replace(tzinfo=dt.UTC).astimezone(
        dt.timezone(dt.timedelta(minutes=offset_minutes))
    )
    for form in (moment, moment.replace(tzinfo=dt.UTC), elsewhere, str(moment), str(elsewhere)):
        assert _micros(form) == exact, form
    days: dict[object, int] = {}
    for form in (moment, str(moment), moment.isoformat(), str(moment)):
        assert _day(form, days) == moment.toordinal(), form
    assert _day(str(elsewhere), days) == elsewhere.toordinal()
