"""GET /v1/audit: reviewers read their organization's changes and decisions; reads are audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from authz.base import clock
from tests.compliance.chains import append_decisions
from tests.helpers import Api


def reviewer_token(api: Api) -> str:
    if "reviewer" not in api.tokens:
        api.tokens["reviewer"] = api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")
    return api.tokens["reviewer"]


def audit(api: Api, token: str | None = None, **query: Any) -> dict[str, Any]:
    r = api.call("GET", "/v1/audit", token=token or reviewer_token(api), query_string=query)
    assert r.status_code == 200, r.get_json()
    return dict(r.get_json())


def every_page(api: Api, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):  # reads add events, so an unbounded walk could chase its own tail
        page = audit(api, **query, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


@pytest.fixture
def family(api: Api) -> dict[str, Any]:
    """A minor with a caregiver who holds active portal access, and an unrelated client."""
    child = api.client("Mia", "minor", birth_date="2015-04-01")
    link, _token = api.grant(child["id"], "jenna@family.test")
    other = api.client("Omar", "adult", "omar@x.test")
    return {"child": child, "link": link, "caregiver": link["linked_client_id"], "other": other}


def test_reviewer_reads_changes_of_own_organization_only(app: Any, api: Api, family: Any) -> None:
    elsewhere = Api.bootstrap(app, name="Elsewhere")
    foreign = elsewhere.client("Zed", "adult", "zed@elsewhere.test")
    items = every_page(api)
    kinds = {e["kind"] for e in items}
    assert {"client.created", "link.created"} <= kinds
    assert all(e["source"] == "changes" for e in items)
    assert not [
        e
        for e in items
        if foreign["id"] in e["client_ids"] or e["entity_id"] in (foreign["id"], elsewhere.org_id)
    ]
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    created = next(e for e in items if e["entity_id"] == family["child"]["id"])
    assert created["after"]["first_name"] == "Mia" and len(created["hash"]) == 64


@pytest.mark.parametrize(
    ("who", "status"),
    [("provider", 403), ("client", 403), ("service_admin", 403), ("none", 401)],
)
def test_only_reviewers_may_read(api: Api, family: Any, who: str, status: int) -> None:
    token = {
        "provider": lambda: api.provider_token(),
        "client": lambda: api.sign_in(f"client:{family['other']['id']}", "omar@x.test"),
        "service_admin": lambda: api.service_token("authz:admin"),
        "none": lambda: "not-a-token",
    }[who]()
    before = api.snapshot()
    r = api.call("GET", "/v1/audit", token=token)
    assert r.status_code == status
    assert r.mimetype == "application/problem+json"
    assert api.snapshot() == before  # a refused read is not recorded and changes nothing


def test_service_with_review_scope_may_read(api: Api, family: Any) -> None:
    page = audit(api, token=api.service_token("authz:review"), kind="link")
    assert page["items"] and all(e["kind"].startswith("link.") for e in page["items"])


def test_each_read_is_audited_with_its_filters(api: Api, family: Any) -> None:
    child = family["child"]["id"]
    first = audit(api, client=child, kind="link")
    reads = audit(api, kind="audit.read")["items"]
    recorded = [r for r in reads if r["after"]["filters"].get("client") == child]
    assert len(recorded) == 1
    event = recorded[0]
    assert event["actor"] == f"reviewer:{api.reviewer_id}"
    assert event["after"]["filters"] == {"client": child, "kind": "link", "source": "all"}
    assert event["after"]["returned"] == len(first["items"])
    assert event["client_ids"] == [child]
    # A read is a row of the trail, not a change of facts: no process refreshes for it.
    assert int(first["revision"]) == int(audit(api)["revision"])


def test_filters_client_actor_kind_and_time(api: Api, family: Any) -> None:
    child, other = family["child"]["id"], family["other"]["id"]
    mine = every_page(api, client=child, source="changes")
    assert mine and all(child in e["client_ids"] or e["entity_id"] == child for e in mine)
    assert not [e for e in mine if other in e["client_ids"]]
    assert {"client.created", "link.created"} <= {e["kind"] for e in mine}

    by_provider = every_page(api, actor=f"provider:{api.provider_id}", kind="client")
    assert {e["entity_id"] for e in by_provider} >= {child, other}
    assert all(e["kind"].startswith("client.") for e in by_provider)

    exact = every_page(api, kind="link.created")
    assert [e["entity_id"] for e in exact] == [family["link"]["id"]]
    assert every_page(api, kind="lin") == []  # a kind prefix must end at a dot

    clock.travel(dt.timedelta(days=2))
    api.tokens.clear()  # tokens live minutes
    later = api.client("Late", "adult")
    cut = (clock.now() - dt.timedelta(days=1)).isoformat()
    recent = every_page(api, since=cut, kind="client")
    assert [e["entity_id"] for e in recent] == [later["id"]]
    older = every_page(api, until=cut, kind="client")
    assert later["id"] not in {e["entity_id"] for e in older}
    assert {child, other} <= {e["entity_id"] for e in older}


def test_pages_walk_every_event_once(api: Api, family: Any) -> None:
    for n in range(5):
        api.client(f"Extra{n}", "adult")
    everything = audit(api, limit=500, source="changes")["items"]
    paged = every_page(api, limit=2, source="changes")
    ids_paged = [e["id"] for e in paged]
    assert len(ids_paged) == len(set(ids_paged))
    # The walk also meets the audit.read events its own pages recorded.
    assert [e["id"] for e in everything] == ids_paged[: len(everything)]
    assert len(paged) > len(everything)


def test_decisions_are_included_and_scoped(app: Any, api: Api, family: Any) -> None:
    elsewhere = Api.bootstrap(app, name="Elsewhere")
    child, caregiver = family["child"]["id"], family["caregiver"]
    mine = append_decisions(
        api.rt.store,
        [
            {
                "org_id": api.org_id,
                "actor": f"client:{caregiver}",
                "subject": f"client:{child}",
                "owner": child,
                "action": "invoice.pay",
            },
            {
                "org_id": api.org_id,
                "actor": f"client:{caregiver}",
                "subject": f"client:{child}",
                "owner": child,
                "action": "document.read",
                "allowed": False,
            },
            {"org_id": elsewhere.org_id, "actor": "client:cli_foreign", "owner": "cli_foreign"},
        ],
    )
    only = every_page(api, source="decisions")
    assert [d["id"] for d in only] == mine[:2]
    assert only[0]["kind"] == "decision.allowed" and only[1]["kind"] == "decision.denied"
    assert only[0]["action"] == "invoice.pay" and only[0]["client_ids"] == [child]
    assert [d["id"] for d in every_page(api, source="decisions", kind="decision.denied")] == [
        mine[1]
    ]
    both = every_page(api, client=child)
    assert {"changes", "decisions"} == {e["source"] for e in both}
    assert set(mine[:2]) <= {e["id"] for e in both}
    assert [e["id"] for e in every_page(api, source="changes", kind="decision")] == []
    # Reads of this client's trail are part of it; bound the walk in time to see an end.
    until = clock.now().isoformat()
    bounded = [e["id"] for e in every_page(api, client=child, until=until)]
    assert [e["id"] for e in every_page(api, client=child, until=until, limit=1)] == bounded


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "501"}, "limit"),
        ({"limit": "zero"}, "limit"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
        ({"source": "everything"}, "source"),
        ({"client": "not-a-client"}, "client"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_filters_are_refused_and_change_nothing(
    api: Api, family: Any, query: dict[str, str], field: str
) -> None:
    token = reviewer_token(api)
    before = api.snapshot()
    r = api.call("GET", "/v1/audit", token=token, query_string=query)
    assert r.status_code == 400, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert field in {e["field"] for e in r.get_json()["errors"]}
    assert api.snapshot() == before


def test_unknown_client_is_not_found(app: Any, api: Api) -> None:
    foreign = Api.bootstrap(app, name="Elsewhere").client("Zed", "adult")
    token = reviewer_token(api)
    before = api.snapshot()
    r = api.call("GET", "/v1/audit", token=token, query_string={"client": foreign["id"]})
    assert r.status_code == 404
    assert api.snapshot() == before
