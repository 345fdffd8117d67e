"""Who receives a client's emails: the client, contacts and linked clients with notify on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from authz.accounts.clients import display_name, get_in_org
from authz.base.errors import ValidationFailed
from authz.store.db import Store
from authz.store.models import Client, Contact, Link

EVENTS = (
    "appointment.reminder",
    "appointment.confirmation",
    "appointment.cancellation",
    "invoice.issued",
    "payment.receipt",
    "document.shared",
    "form.requested",
    "message.received",
)


def recipients(store: Store, org_id: str, client_id: str, event: str) -> dict[str, Any]:
    """Every address that gets a copy of `event` for this client, with its relation."""
    if event not in EVENTS:
        raise ValidationFailed([("event", f"must be one of {', '.join(EVENTS)}")])
    with store.read() as session:
        client = get_in_org(session, client_id, org_id)
        out: list[dict[str, Any]] = []
        if client.email:
            out.append(
                {
                    "email": client.email,
                    "name": display_name(client),
                    "kind": "client",
                    "client_id": client.id,
                    "relation": "self",
                }
            )
        for contact in session.scalars(
            select(Contact)
            .where(Contact.client_id == client_id, Contact.notify.is_(True))
            .order_by(Contact.id)
        ):
            if contact.email:
                out.append(
                    {
                        "email": contact.email,
                        "name": contact.name,
                        "kind": "contact",
                        "contact_id": contact.id,
                        "relation": contact.relationship,
                    }
                )
        # `notify` on a link: the linked client B receives copies of the original client A's emails.
        for link, other in session.execute(
            select(Link, Client)
            .join(Client, Client.id == Link.linked_client_id)
            .where(Link.original_client_id == client_id, Link.notify.is_(True))
            .order_by(Link.id)
        ):
            if other.email and other.active:
                out.append(
                    {
                        "email": other.email,
                        "name": display_name(other),
                        "kind": "linked_client",
                        "client_id": other.id,
                        "link_id": link.id,
                        "relation": link.relationship,
                    }
                )
        return {"client_id": client_id, "event": event, "recipients": out}
