"""Contacts: people on a client's account who are not clients. They never get access."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from authz.accounts.clients import get_in_org
from authz.base import clock, ids
from authz.base.emails import normalize_email
from authz.base.errors import NotFound, ValidationFailed
from authz.store.db import Store
from authz.store.models import RELATIONSHIPS, Contact


def contact_view(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "client_id": c.client_id,
        "name": c.name,
        "email": c.email,
        "relationship": c.relationship,
        "emergency_contact": c.emergency_contact,
        "notify": c.notify,
    }


def _validate(data: dict[str, Any], creating: bool) -> dict[str, Any]:
    errors: list[tuple[str, str]] = []
    clean: dict[str, Any] = {}
    if creating:
        for required in ("name", "relationship"):
            if required not in data:
                errors.append((required, "is required"))
    for key, value in data.items():
        if key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                errors.append((key, "must be a non-empty string of at most 200 characters"))
            else:
                clean[key] = value.strip()
        elif key == "email":
            if value is None:
                clean[key] = None
            else:
                try:
                    clean[key] = normalize_email(value)
                except ValidationFailed as exc:
                    errors.extend((e["field"], e["message"]) for e in exc.errors)
        elif key == "relationship":
            if value not in RELATIONSHIPS:
                errors.append((key, f"must be one of {', '.join(RELATIONSHIPS)}"))
            else:
                clean[key] = value
        elif key in ("emergency_contact", "notify"):
            if not isinstance(value, bool):
                errors.append((key, "must be a boolean"))
            else:
                clean[key] = value
        else:
            errors.append((key, "unknown field"))
    if clean.get("notify") and not clean.get("email", data.get("email")) and creating:
        errors.append(("notify", "needs an email address"))
    if errors:
        raise ValidationFailed(errors)
    return clean


def create_contact(
    store: Store, actor: str, org_id: str, client_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    clean = _validate(data, creating=True)
    with store.write(actor, org_id) as txn:
        get_in_org(txn.session, client_id, org_id)
        contact = Contact(
            id=ids.new_id("con"),
            org_id=org_id,
            client_id=client_id,
            name=clean["name"],
            email=clean.get("email"),
            relationship=clean["relationship"],
            emergency_contact=clean.get("emergency_contact", False),
            notify=clean.get("notify", False),
            created_at=clock.now(),
        )
        txn.session.add(contact)
        txn.record("contact.created", contact.id, None, contact_view(contact), [client_id])
    return contact_view(contact) | {"revision": str(txn.revision)}


def _get(session: Any, org_id: str, client_id: str, contact_id: str) -> Contact:
    get_in_org(session, client_id, org_id)
    contact = session.get(Contact, contact_id)
    if contact is None or contact.client_id != client_id:
        raise NotFound(f"contact {contact_id} not found on client {client_id}")
    return contact  # type: ignore[no-any-return]


def list_contacts(store: Store, org_id: str, client_id: str) -> dict[str, Any]:
    with store.read() as session:
        get_in_org(session, client_id, org_id)
        rows = session.scalars(
            select(Contact).where(Contact.client_id == client_id).order_by(Contact.id)
        )
        return {"items": [contact_view(c) for c in rows], "next_cursor": None}


def get_contact(store: Store, org_id: str, client_id: str, contact_id: str) -> dict[str, Any]:
    with store.read() as session:
        return contact_view(_get(session, org_id, client_id, contact_id))


def patch_contact(
    store: Store, actor: str, org_id: str, client_id: str, contact_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    clean = _validate(data, creating=False)
    with store.write(actor, org_id) as txn:
        contact = _get(txn.session, org_id, client_id, contact_id)
        before = contact_view(contact)
        for key, value in clean.items():
            setattr(contact, key, value)
        if contact.notify and not contact.email:
            raise ValidationFailed([("notify", "needs an email address")])
        txn.record("contact.updated", contact.id, before, contact_view(contact), [client_id])
    return contact_view(contact) | {"revision": str(txn.revision)}


def delete_contact(
    store: Store, actor: str, org_id: str, client_id: str, contact_id: str
) -> dict[str, Any]:
    with store.write(actor, org_id) as txn:
        contact = _get(txn.session, org_id, client_id, contact_id)
        txn.record("contact.deleted", contact.id, contact_view(contact), None, [client_id])
        txn.session.delete(contact)
    return {"id": contact_id, "deleted": True, "revision": str(txn.revision)}
