"""The demo organization of `authz init --demo`, and the story `authz demo` tells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from authz.accounts import clients, orgs
from authz.oauth import oauth_clients
from authz.oauth.oauth_clients import SERVICE_SCOPES
from authz.policy.grants import CLIENT_SCOPES
from authz.service.runtime import Runtime
from authz.store.models import Organization

DEMO_ORG = "Demo Family Practice"
ACTOR = "operator:demo"


def ensure_demo_org(rt: Runtime, creds_file: Path) -> dict[str, Any]:
    """Create the demo organization once; its credentials live in `creds_file` (dev only)."""
    with rt.store.read() as session:
        exists = session.scalar(select(Organization.id).where(Organization.name == DEMO_ORG))
    if exists and creds_file.exists():
        loaded: dict[str, Any] = json.loads(creds_file.read_text())
        return loaded
    org = orgs.create_org(rt.store, ACTOR, DEMO_ORG, ["linked_portal_access"])
    provider = orgs.create_provider(rt.store, ACTOR, org["id"], "dr.lee@demo.example", "Dr. Lee")
    reviewer = orgs.create_reviewer(
        rt.store, ACTOR, org["id"], "compliance@demo.example", "Casey Compliance"
    )
    client = oauth_clients.create_client(
        rt.store,
        ACTOR,
        org["id"],
        ["https://portal.demo.example"],
        list(SERVICE_SCOPES) + list(CLIENT_SCOPES),
        "Demo portal backend",
    )
    people = {}
    for first, last, kind, email in (
        ("Jenna", "Rivera", "adult", "jenna@demo.example"),
        ("Sam", "Rivera", "minor", "jenna@demo.example"),
        ("Alex", "Rivera", "adult", "alex@demo.example"),
    ):
        people[first.lower()] = clients.create_client(
            rt.store,
            ACTOR,
            org["id"],
            {"first_name": first, "last_name": last, "client_type": kind, "email": email},
        )["id"]
    creds = {
        "org_id": org["id"],
        "provider_id": provider["id"],
        "provider_email": provider["email"],
        "reviewer_id": reviewer["id"],
        "reviewer_email": reviewer["email"],
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "audience": "https://portal.demo.example",
        "clients": people,
    }
    creds.update(ensure_demo_invites(rt, org["id"], provider["id"]))
    creds_file.parent.mkdir(parents=True, exist_ok=True)
    creds_file.write_text(json.dumps(creds, indent=2))
    creds_file.chmod(0o600)
    return creds


#: The demo caregiver's two invites: Mia (a minor) and Luis (an adult), with the dates of birth
#: that prove the relationship.
MIA_BORN = "2016-04-09"
LUIS_BORN = "1948-09-12"
CAREGIVER = "carlos@demo.example"


def ensure_demo_invites(rt: Runtime, org_id: str, provider_id: str) -> dict[str, Any]:
    """Carlos is invited to help with Mia's account (full access) and Luis's (billing): the
    invite links the README's browser story opens (development mode writes them to demo.json)."""
    from authz.accounts import links
    from authz.base.principals import ADMIN_SCOPE, Principal

    lee = Principal(kind="provider", id=provider_id, org_id=org_id, scopes=frozenset({ADMIN_SCOPE}))

    def person(first: str, kind: str, born: str | None, email: str | None) -> str:
        data = {"first_name": first, "last_name": "Rivera", "client_type": kind}
        data.update({k: v for k, v in (("birth_date", born), ("email", email)) if v})
        return str(clients.create_client(rt.store, ACTOR, org_id, data)["id"])

    mia = person("Mia", "minor", MIA_BORN, None)
    luis = person("Luis", "adult", LUIS_BORN, "luis@demo.example")
    carlos = person("Carlos", "adult", None, CAREGIVER)
    portal = rt.settings.portal_url.rstrip("/")
    out: dict[str, Any] = {"caregiver_email": CAREGIVER}
    for name, receiver, relationship, level, born, ack in (
        ("invite", mia, "parent", "full", MIA_BORN, "Carlos is Mia's father: full access."),
        ("second_invite", luis, "caregiver", "billing", LUIS_BORN, "Carlos pays Luis's bills."),
    ):
        link = links.create_link(
            rt.store,
            rt.settings,
            lee,
            org_id,
            receiver,
            {
                "client_id": carlos,
                "relationship": relationship,
                "portal_access": {"enabled": True, "access_level": level, "acknowledgement": ack},
            },
        )
        out[f"{name}_url"] = f"{portal}/invites/{link['dev_invite_token']}"
        out[f"{name}_birth_date"] = born
    return out


def run_demo(database: str | None) -> None:
    """The whole story on the embedded store, over the real HTTP API, printed step by step."""
    from authz.cli.demo_story import Story

    Story.run(database)
