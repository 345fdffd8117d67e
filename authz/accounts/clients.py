"""Client accounts and the "linked" indicator a portal shows beside each."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from authz.base import clock, ids, pagination
from authz.base.emails import normalize_email
from authz.base.errors import NotFound, ValidationFailed
from authz.store.db import Store, WriteTxn
from authz.store.models import CLIENT_TYPES, Client, Link

CLIENT_FIELDS = ("first_name", "last_name", "client_type", "birth_date", "email", "client_group")


def client_view(client: Client, links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": client.id,
        "org_id": client.org_id,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "name": display_name(client),
        "client_type": client.client_type,
        "birth_date": client.birth_date.isoformat() if client.birth_date else None,
        "email": client.email,
        "email_verified": client.email_verified,
        "client_group": client.client_group,
        "active": client.active,
    }
    if links is not None:
        view["linked"] = bool(links)
        view["links"] = links
    return view


def display_name(client: Client) -> str:
    return f"{client.first_name} {client.last_name}".strip()


def get_in_org(session: Session, client_id: str, org_id: str, field: str = "") -> Client:
    """The client if it is in `org_id`; otherwise NotFound (existence elsewhere is not told)."""
    client = session.get(Client, client_id) if isinstance(client_id, str) else None
    if client is None or client.org_id != org_id:
        where = f" ({field})" if field else ""
        raise NotFound(f"client {client_id}{where} not found in this organization")
    return client


def link_indicators(session: Session, client_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """For each client, its links of both directions: other client, relationship, direction."""
    out: dict[str, list[dict[str, Any]]] = {cid: [] for cid in client_ids}
    if not client_ids:
        return out
    rows = session.execute(
        select(Link, Client).join(
            Client,
            or_(
                (Link.original_client_id == Client.id) & Link.linked_client_id.in_(client_ids),
                (Link.linked_client_id == Client.id) & Link.original_client_id.in_(client_ids),
            ),
        )
    ).all()
    for link, other in rows:
        for me, direction in (
            (link.original_client_id, "outgoing"),
            (link.linked_client_id, "incoming"),
        ):
            if me in out and other.id != me:
                out[me].append(
                    {
                        "link_id": link.id,
                        "client_id": other.id,
                        "name": display_name(other),
                        "relationship": link.relationship,
                        "direction": direction,
                        "portal_access": link.portal_status,
                    }
                )
    return out


def _validate(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    errors: list[tuple[str, str]] = []
    clean: dict[str, Any] = {}
    if creating:
        for required in ("first_name", "client_type"):
            if not data.get(required):
                errors.append((required, "is required"))
    for key, value in data.items():
        if key in ("first_name", "last_name", "client_group"):
            if value is None and key != "first_name":
                clean[key] = "" if key == "last_name" else None
                continue
            if not isinstance(value, str) or (key == "first_name" and not value.strip()):
                errors.append((key, "must be a non-empty string"))
            elif len(value) > 100:
                errors.append((key, "must be at most 100 characters"))
            else:
                clean[key] = value.strip()
        elif key == "client_type":
            if value not in CLIENT_TYPES:
                errors.append((key, f"must be one of {', '.join(CLIENT_TYPES)}"))
            else:
                clean[key] = value
        elif key == "birth_date":
            if value is None:
                clean[key] = None
            elif isinstance(value, dt.date):
                clean[key] = value
            else:
                try:
                    clean[key] = dt.date.fromisoformat(str(value))
                except ValueError:
                    errors.append((key, "must be a date (YYYY-MM-DD)"))
                    continue
            if clean.get(key) and clean[key] > clock.now().date():
                errors.append((key, "is in the future"))
        elif key == "email":
            if value is None:
                clean[key] = None
            else:
                try:
                    clean[key] = normalize_email(value)
                except ValidationFailed as exc:
                    errors.extend((e["field"], e["message"]) for e in exc.errors)
        elif key == "active":
            if not isinstance(value, bool):
                errors.append((key, "must be a boolean"))
            else:
                clean[key] = value
        else:
            errors.append((key, "unknown field"))
    if errors:
        raise ValidationFailed(errors)
    return clean


def add_client(txn: WriteTxn, org_id: str, data: dict[str, Any]) -> Client:
    """Create a client inside an ongoing write (also used by "link a new client")."""
    clean = _validate(data, creating=True)
    now = clock.now()
    client = Client(
        id=ids.new_id("cli"),
        org_id=org_id,
        first_name=clean["first_name"],
        last_name=clean.get("last_name", ""),
        client_type=clean["client_type"],
        birth_date=clean.get("birth_date"),
        email=clean.get("email"),
        client_group=clean.get("client_group"),
        email_verified=False,
        active=True,
        created_at=now,
        updated_at=now,
    )
    txn.session.add(client)
    txn.record("client.created", client.id, None, client_view(client), [client.id], org_id)
    return client


def create_client(store: Store, actor: str, org_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A new client account in the organization."""
    with store.write(actor, org_id) as txn:
        client = add_client(txn, org_id, data)
    return client_view(client, []) | {"revision": str(txn.revision)}


def get_client(store: Store, org_id: str, client_id: str) -> dict[str, Any]:
    """A client's profile with its links."""
    with store.read() as session:
        client = get_in_org(session, client_id, org_id)
        return client_view(client, link_indicators(session, [client.id])[client.id])


def list_clients(
    store: Store,
    org_id: str,
    page: pagination.Page,
    email: str | None = None,
    client_group: str | None = None,
) -> dict[str, Any]:
    """The organization's clients, each with its "linked" indicator."""
    with store.read() as session:
        stmt = select(Client).where(Client.org_id == org_id)
        if email:
            stmt = stmt.where(Client.email == normalize_email(email))
        if client_group:
            stmt = stmt.where(Client.client_group == client_group)
        rows = list(session.scalars(pagination.apply(stmt, Client.id, page)))
        rows, cursor = pagination.cursor_for(rows, page)
        links = link_indicators(session, [c.id for c in rows])
        return {"items": [client_view(c, links[c.id]) for c in rows], "next_cursor": cursor}


def patch_client(
    store: Store, actor: str, org_id: str, client_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a client's profile; a new email is unverified until a login proves it."""
    clean = _validate(data, creating=False)
    with store.write(actor, org_id) as txn:
        client = get_in_org(txn.session, client_id, org_id)
        before = client_view(client)
        for key, value in clean.items():
            setattr(client, key, value)
        if "email" in clean and clean["email"] != before["email"]:
            client.email_verified = False
        client.updated_at = clock.now()
        after = client_view(client)
        kind = "client.deactivated" if before["active"] and not client.active else "client.updated"
        txn.record(kind, client.id, before, after, [client.id])
        links = link_indicators(txn.session, [client.id])[client.id]
    return client_view(client, links) | {"revision": str(txn.revision)}
