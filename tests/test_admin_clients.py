"""Clients, contacts and the linked indicator, through the HTTP API."""

from __future__ import annotations

import pytest

from tests.helpers import Api


def test_client_lifecycle_and_revisions_grow(api: Api) -> None:
    first = api.client(
        "Sam",
        "minor",
        "Jenna@Example.TEST",
        birth_date="2015-03-04",
        client_group="Active Therapy Clients",
    )
    assert first["email"] == "jenna@example.test"  # normalized once, in one place
    assert first["linked"] is False and first["client_type"] == "minor"
    second = api.ok("PATCH", f"/v1/clients/{first['id']}", {"last_name": "Lee"})
    assert int(second["revision"]) > int(first["revision"])
    got = api.ok("GET", f"/v1/clients/{first['id']}")
    assert got["last_name"] == "Lee" and got["client_group"] == "Active Therapy Clients"


def test_list_is_paginated_with_an_opaque_cursor(api: Api) -> None:
    ids = {api.client(f"C{i}")["id"] for i in range(5)}
    page = api.ok("GET", "/v1/clients?limit=2")
    seen = {c["id"] for c in page["items"]}
    while page["next_cursor"]:
        page = api.ok("GET", f"/v1/clients?limit=2&cursor={page['next_cursor']}")
        seen |= {c["id"] for c in page["items"]}
    assert seen == ids
    assert api.call("GET", "/v1/clients?limit=501").status_code == 400
    assert api.call("GET", "/v1/clients?cursor=@@@").status_code == 400


def test_linked_indicator_names_the_other_client_both_ways(api: Api) -> None:
    sam = api.client("Sam", "minor")
    jenna = api.client("Jenna", "adult", "jenna@x.test")
    link = api.link(sam["id"], jenna["id"], "parent")
    listed = {c["id"]: c for c in api.ok("GET", "/v1/clients")["items"]}
    assert listed[sam["id"]]["linked"] is True
    assert listed[sam["id"]]["links"] == [
        {
            "link_id": link["id"],
            "client_id": jenna["id"],
            "name": "Jenna Rivera",
            "relationship": "parent",
            "direction": "outgoing",
            "portal_access": None,
        }
    ]
    assert listed[jenna["id"]]["links"][0]["direction"] == "incoming"
    assert listed[jenna["id"]]["links"][0]["client_id"] == sam["id"]


def test_contacts_crud_and_they_get_no_access(api: Api) -> None:
    sam = api.client("Sam", "minor")
    contact = api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/contacts",
        {
            "name": "Grandma Rose",
            "email": "ROSE@x.test",
            "relationship": "family_member",
            "emergency_contact": True,
            "notify": True,
        },
    )
    assert contact["email"] == "rose@x.test" and contact["emergency_contact"] is True
    path = f"/v1/clients/{sam['id']}/contacts/{contact['id']}"
    assert api.ok("PATCH", path, {"notify": False})["notify"] is False
    assert [c["id"] for c in api.ok("GET", f"/v1/clients/{sam['id']}/contacts")["items"]] == [
        contact["id"]
    ]
    api.ok("DELETE", path)
    assert api.call("GET", path).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_type": "adult"}, "first_name"),
        ({"first_name": "A", "client_type": "teen"}, "client_type"),
        ({"first_name": "A", "client_type": "adult", "email": "nope"}, "email"),
        ({"first_name": "A", "client_type": "adult", "birth_date": "2099-01-01"}, "birth_date"),
        ({"first_name": "A", "client_type": "adult", "birth_date": "03/04/2015"}, "birth_date"),
        ({"first_name": "A", "client_type": "adult", "nickname": "x"}, "nickname"),
        ({"first_name": 7, "client_type": "adult"}, "first_name"),
    ],
)
def test_bad_client_input_is_a_problem_and_changes_nothing(
    api: Api, body: dict, field: str
) -> None:
    api.provider_token()
    before = api.snapshot()
    r = api.call("POST", "/v1/clients", body)
    assert r.status_code == 400
    assert r.mimetype == "application/problem+json"
    problem = r.get_json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert field in [e["field"] for e in problem["errors"]]
    assert api.snapshot() == before


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b"first_name=A", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies_are_refused(api: Api, data: bytes, content_type: str) -> None:
    token = api.provider_token()
    before = api.snapshot()
    r = api.http.post(
        "/v1/clients",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert api.snapshot() == before


def test_oversized_body_is_413(api: Api) -> None:
    token = api.provider_token()
    before = api.snapshot()
    big = b'{"first_name": "' + b"a" * (2 * 1024 * 1024) + b'", "client_type": "adult"}'
    r = api.http.post(
        "/v1/clients",
        data=big,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.mimetype == "application/problem+json"
    assert api.snapshot() == before


def test_missing_or_bad_token_is_401(api: Api) -> None:
    assert api.http.get("/v1/clients").status_code == 401
    r = api.http.get("/v1/clients", headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 401 and r.mimetype == "application/problem+json"
    assert "Bearer" in r.headers["WWW-Authenticate"]


def test_another_organization_is_invisible(app, api: Api) -> None:
    other = Api.bootstrap(app, name="Other")
    theirs = other.client("Zoe")
    mine = api.client("Sam")
    before = api.snapshot()
    for method, path, body in [
        ("GET", f"/v1/clients/{theirs['id']}", None),
        ("PATCH", f"/v1/clients/{theirs['id']}", {"first_name": "X"}),
        ("POST", f"/v1/clients/{theirs['id']}/contacts", {"name": "N", "relationship": "other"}),
        (
            "POST",
            f"/v1/clients/{mine['id']}/links",
            {"client_id": theirs["id"], "relationship": "parent"},
        ),
        ("POST", f"/v1/clients/{theirs['id']}/payment-methods", {"id": "pm_1", "label": "Visa"}),
    ]:
        r = api.call(method, path, body)
        assert r.status_code == 404, (path, r.get_json())
        assert r.mimetype == "application/problem+json"
    assert api.snapshot() == before
    assert theirs["id"] not in {c["id"] for c in api.ok("GET", "/v1/clients")["items"]}


def test_clients_cannot_administer(api: Api) -> None:
    sam = api.client("Sam", "adult", "sam@x.test")
    token = api.sign_in(f"client:{sam['id']}", "sam@x.test")
    before = api.snapshot()
    r = api.call("POST", "/v1/clients", {"first_name": "X", "client_type": "adult"}, token=token)
    assert r.status_code == 403
    assert api.call("GET", "/v1/clients", token=token).status_code == 403
    assert api.snapshot() == before


def test_reviewer_reads_but_cannot_write(api: Api) -> None:
    api.client("Sam")
    token = api.sign_in(f"reviewer:{api.reviewer_id}", "review@practice.test")
    assert api.call("GET", "/v1/clients", token=token).status_code == 200
    assert (
        api.call(
            "POST", "/v1/clients", {"first_name": "X", "client_type": "adult"}, token=token
        ).status_code
        == 403
    )


def test_service_token_with_admin_scope_administers(api: Api) -> None:
    token = api.service_token("authz:admin")
    r = api.call("POST", "/v1/clients", {"first_name": "X", "client_type": "adult"}, token=token)
    assert r.status_code == 201
    check_only = api.service_token("authz:check")
    assert api.call("GET", "/v1/clients", token=check_only).status_code == 403
