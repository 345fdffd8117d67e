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
    creds_file.parent.mkdir(parents=True, exist_ok=True)
    creds_file.write_text(json.dumps(creds, indent=2))
    creds_file.chmod(0o600)
    return creds


def run_demo(database: str | None) -> None:
    """The whole story on the embedded store, over the real HTTP API, printed step by step."""
    from authz.cli.demo_story import Story

    Story.run(database)
