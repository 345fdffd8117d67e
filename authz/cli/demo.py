"""The demo practice of `authz init --demo` (`make run`), and the story `authz demo` tells.

`make run` seeds a practice with a provider, a reviewer and a portal backend, and a family to try
the README's examples on: Jenna Rivera and her child Sam (Jenna has active portal access to
Sam's account), Alex and Casey Rivera sharing one email, payment methods and invoices. Every
value the README uses is written to `instance/demo.json` and, for the shell, `instance/demo.env`.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any

from sqlalchemy import select

from authz.accounts import clients, invites, links, orgs, payments
from authz.base.principals import ADMIN_SCOPE, Principal
from authz.oauth import oauth_clients
from authz.service.runtime import Runtime
from authz.store.models import Organization

DEMO_ORG = "Demo Family Practice"
ACTOR = "operator:demo"
AUDIENCE = "https://portal.demo.example"
SHARED_EMAIL = "rivera.twins@demo.example"


def ensure_demo_org(rt: Runtime, creds_file: Path) -> dict[str, Any]:
    """Seed the demo practice and family once (dev only); every run rewrites the demo files with
    the URL the service will answer on (`AUTHZ_ISSUER`), so `make run PORT=…` is always right."""
    with rt.store.read() as session:
        exists = session.scalar(select(Organization.id).where(Organization.name == DEMO_ORG))
    creds: dict[str, Any] = {}
    if exists and creds_file.exists():
        creds = json.loads(creds_file.read_text())
    if "org_id" not in creds:
        creds = seed_practice(rt)
    if "family" not in creds:
        creds["family"] = seed_family(rt, creds)
    if "invite_url" not in creds:
        creds.update(ensure_demo_invites(rt, creds["org_id"], creds["provider_id"]))
    creds["url"] = rt.settings.issuer.rstrip("/")
    creds["database_url"] = rt.settings.database_url
    write_demo_files(creds, creds_file)
    return creds


def seed_practice(rt: Runtime) -> dict[str, Any]:
    """The practice, its provider and reviewer, and a portal backend that can do every sign-in."""
    org = orgs.create_org(rt.store, ACTOR, DEMO_ORG, ["linked_portal_access"])
    provider = orgs.create_provider(rt.store, ACTOR, org["id"], "dr.lee@demo.example", "Dr. Lee")
    reviewer = orgs.create_reviewer(
        rt.store, ACTOR, org["id"], "compliance@demo.example", "Morgan Compliance"
    )
    scopes = [*oauth_clients.presets()["portal"], *oauth_clients.presets()["reviewer"]]
    backend = oauth_clients.create_client(
        rt.store, ACTOR, org["id"], [AUDIENCE], scopes, "Demo portal backend"
    )
    return {
        "org_id": org["id"],
        "provider_id": provider["id"],
        "provider_email": provider["email"],
        "reviewer_id": reviewer["id"],
        "reviewer_email": reviewer["email"],
        "client_id": backend["client_id"],
        "client_secret": backend["client_secret"],
        "audience": AUDIENCE,
    }


def seed_family(rt: Runtime, practice: dict[str, Any]) -> dict[str, Any]:
    """Jenna and her child Sam (active portal access, granted by Dr. Lee and accepted by Jenna),
    Alex and Casey sharing an email, a card each for Jenna and Sam, and an invoice each."""
    org_id = practice["org_id"]

    def client(first: str, kind: str, email: str | None, born: str | None = None) -> str:
        data: dict[str, Any] = {"first_name": first, "last_name": "Rivera", "client_type": kind}
        if email:
            data["email"] = email
        if born:
            data["birth_date"] = born
        return str(clients.create_client(rt.store, ACTOR, org_id, data)["id"])

    eleven = dt.date.today().year - 11
    jenna = client("Jenna", "adult", "jenna@demo.example")
    sam = client("Sam", "minor", None, f"{eleven}-05-01")
    alex = client("Alex", "adult", SHARED_EMAIL)
    casey = client("Casey", "adult", SHARED_EMAIL)
    link = grant_portal_access(rt, practice, receiver=sam, caregiver=jenna, born=f"{eleven}-05-01")
    for owner, pm, label in (
        (jenna, "pm_demo_jenna_visa", "Jenna's Visa"),
        (sam, "pm_demo_sam_hsa", "Sam's HSA card"),
    ):
        payments.register(rt.store, ACTOR, org_id, owner, {"id": pm, "label": label})
    return {
        "jenna": jenna,
        "jenna_email": "jenna@demo.example",
        "sam": sam,
        "alex": alex,
        "casey": casey,
        "shared_email": SHARED_EMAIL,
        "sam_link": link,
        "jenna_card": "pm_demo_jenna_visa",
        "sam_card": "pm_demo_sam_hsa",
        "jenna_invoice": "inv_demo_jenna_1",
        "sam_invoice": "inv_demo_sam_1",
    }


def grant_portal_access(
    rt: Runtime, practice: dict[str, Any], receiver: str, caregiver: str, born: str
) -> str:
    """Dr. Lee links the caregiver as the receiver's parent with full portal access; the
    caregiver proves the relationship (the receiver's date of birth, `born`) and accepts the
    invite (development mode hands its token back). The link's id."""
    org_id = practice["org_id"]
    doctor = Principal("provider", practice["provider_id"], org_id, frozenset({ADMIN_SCOPE}))
    made = links.create_link(
        rt.store,
        rt.settings,
        doctor,
        org_id,
        receiver,
        {
            "client_id": caregiver,
            "relationship": "parent",
            "portal_access": {
                "enabled": True,
                "acknowledgement": "Jenna will have full access to Sam's portal account.",
            },
        },
    )
    jenna = Principal("client", caregiver, org_id)
    token = made["dev_invite_token"]
    invites.prove(rt.store, rt.settings, jenna, token, {"birth_date": born})
    invites.accept(rt.store, rt.settings, jenna, token)
    return str(made["id"])


#: The demo caregiver's two invites: Mia (a minor) and Luis (an adult), with the dates of birth
#: that prove the relationship.
MIA_BORN = "2016-04-09"
LUIS_BORN = "1948-09-12"
CAREGIVER = "carlos@demo.example"


def ensure_demo_invites(rt: Runtime, org_id: str, provider_id: str) -> dict[str, Any]:
    """Carlos is invited to help with Mia's account (full access) and Luis's (billing): the
    invite links the README's browser story opens (development mode writes them to demo.json)."""
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


#: demo.env's names for the values the README's examples use.
ENV_NAMES = {
    "SERVICE_URL": ("url",),
    "AUDIENCE": ("audience",),
    "ORG_ID": ("org_id",),
    "CLIENT_ID": ("client_id",),
    "CLIENT_SECRET": ("client_secret",),
    "PROVIDER_ID": ("provider_id",),
    "PROVIDER_EMAIL": ("provider_email",),
    "REVIEWER_ID": ("reviewer_id",),
    "REVIEWER_EMAIL": ("reviewer_email",),
    "JENNA": ("family", "jenna"),
    "JENNA_EMAIL": ("family", "jenna_email"),
    "SAM": ("family", "sam"),
    "ALEX": ("family", "alex"),
    "CASEY": ("family", "casey"),
    "SHARED_EMAIL": ("family", "shared_email"),
    "SAM_LINK": ("family", "sam_link"),
    "JENNA_CARD": ("family", "jenna_card"),
    "SAM_CARD": ("family", "sam_card"),
    "JENNA_INVOICE": ("family", "jenna_invoice"),
    "SAM_INVOICE": ("family", "sam_invoice"),
}


def write_demo_files(creds: dict[str, Any], creds_file: Path) -> None:
    """`demo.json` (for scripts) and `demo.env` beside it (`. instance/demo.env` in a shell),
    readable only by their owner: they hold the backend's secret."""
    creds_file.parent.mkdir(parents=True, exist_ok=True)
    creds_file.write_text(json.dumps(creds, indent=2) + "\n")
    creds_file.chmod(0o600)
    lines = [
        "# Written by `authz init --demo` (make run): the demo's values for the README's examples.",
        "export AUTHZ_DEV_MODE=1",
        f"export AUTHZ_DATABASE_URL={shlex.quote(creds['database_url'])}",
        f"export AUTHZ_ISSUER={shlex.quote(creds['url'])}",
    ]
    for name, path in ENV_NAMES.items():
        value: Any = creds
        for key in path:
            value = value[key]
        lines.append(f"export {name}={shlex.quote(str(value))}")
    env_file = creds_file.with_suffix(".env")
    env_file.write_text("\n".join(lines) + "\n")
    env_file.chmod(0o600)


def run_demo(database: str | None, as_json: bool = False) -> None:
    """The whole story on a throwaway store, over the real HTTP API, printed step by step."""
    from authz.cli.demo_story import Story

    Story.run(database, as_json)
