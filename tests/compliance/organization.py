"""A generated organization for the access review: families of four, built through the HTTP API,
with a known set of grants in need of attention (the review's summary must list exactly those).

Family i: a parent P (adult, signs in), their minor child C, a grandparent G and a spouse S.
P holds grants on C ("parent") and on G ("caregiver"); S is linked to P ("spouse", no portal
access, gets copies of P's emails and is P's emergency contact: two disclosures). By i % 10:

0: C's grant pending            1: G's grant expires in 20 days   2: C is in fact of age
3: both grants lapsed           4: C's grant widened              5: S shares P's email
6: G's grant ended with a reason                                   7-9: nothing to look at
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from authz.base import clock
from authz.policy import recertification as recertification_rules
from tests.helpers import Api

ACK = "I confirm the access is intended."


def _accept(api: Api, link: dict[str, Any], caregiver: str, email: str) -> None:
    token = api.sign_in(f"client:{caregiver}", email)
    api.accept(link["dev_invite_token"], token)


def _family(api: Api, i: int) -> dict[str, Any]:
    kind = i % 10
    email = f"parent{i}@families.test"
    p = api.client(f"Pat{i}", "adult", email)["id"]
    c = api.client(f"Cody{i}", "minor", birth_date="2016-03-01")["id"]
    g = api.client(f"Gwen{i}", "adult", f"gwen{i}@families.test")["id"]
    s = api.client(f"Sky{i}", "adult", email if kind == 5 else f"sky{i}@families.test")["id"]
    access: dict[str, Any] = {"enabled": True, "acknowledgement": ACK}
    if kind == 4:
        access["access_level"] = "billing"
    child = api.ok(
        "POST",
        f"/v1/clients/{c}/links",
        {"client_id": p, "relationship": "parent", "portal_access": access},
        status=201,
    )
    if kind != 0:
        _accept(api, child, p, email)
    gran_access: dict[str, Any] = {"enabled": True, "acknowledgement": ACK}
    if kind == 1:
        gran_access["expires_at"] = (clock.now() + dt.timedelta(days=20)).isoformat()
    gran = api.ok(
        "POST",
        f"/v1/clients/{g}/links",
        {"client_id": p, "relationship": "caregiver", "portal_access": gran_access},
        status=201,
    )
    _accept(api, gran, p, email)
    api.ok(
        "POST",
        f"/v1/clients/{p}/links",
        {"client_id": s, "relationship": "spouse", "notify": True, "emergency_contact": True},
        status=201,
    )
    if kind == 2:
        api.ok("PATCH", f"/v1/clients/{c}", {"birth_date": "2000-01-01"})
    if kind == 4:
        api.ok(
            "PATCH",
            f"/v1/clients/{c}/links/{child['id']}",
            {"portal_access": {"access_level": "full", "acknowledgement": "Full access now."}},
        )
    if kind == 6:
        api.ok(
            "POST",
            f"/v1/links/{gran['id']}/portal-access/revoke",
            {"reason": "moved to a care home"},
        )
    return {"p": p, "c": c, "g": g, "s": s, "child": child["id"], "gran": gran["id"]}


def generate(api: Api, families: int) -> dict[str, Any]:
    """`families` families of four; returns them and the attention the summary must list
    ({link id: kind})."""
    expected: dict[str, str] = {}
    built: list[dict[str, Any]] = []
    # The lapsed families first, then a year passes (no one re-approves), then the rest.
    order = [i for i in range(families) if i % 10 == 3] + [
        i for i in range(families) if i % 10 != 3
    ]
    lapsed_done = False
    for i in order:
        if i % 10 != 3 and not lapsed_done:
            clock.travel(dt.timedelta(days=recertification_rules.policy().period_days + 1))
            api.tokens.clear()
            lapsed_done = True
        f = _family(api, i) | {"i": i}
        built.append(f)
        kind = i % 10
        if kind == 0:
            expected[f["child"]] = "pending"
        elif kind == 1:
            expected[f["gran"]] = "expiring"
        elif kind == 2:
            expected[f["child"]] = "past_majority"
        elif kind == 3:
            expected[f["child"]] = expected[f["gran"]] = "lapsed"
        elif kind == 4:
            expected[f["child"]] = "widened"
    if not lapsed_done:
        clock.travel(dt.timedelta(days=recertification_rules.policy().period_days + 1))
        api.tokens.clear()
    return {"families": sorted(built, key=lambda f: f["i"]), "expected": expected}
