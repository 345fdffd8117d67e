"""The emails an invite's outcome sends: to the provider who acknowledged the grant, and to an
adult care receiver (a minor's emails go to the practice and the caregiver only)."""

from __future__ import annotations

from authz.accounts import outbox
from authz.accounts.clients import display_name
from authz.store.db import WriteTxn
from authz.store.models import Client, Link, Provider

SUBJECTS = {
    "accepted": "{caregiver} accepted portal access to {receiver}'s account",
    "declined": "{caregiver} declined portal access to {receiver}'s account",
    "locked": "Invite locked: {caregiver} could not prove the relationship to {receiver}",
}
LINES = {
    "accepted": "{caregiver} proved the relationship and accepted {level} access to "
    "{receiver}'s account. The access is active now.",
    "declined": "{caregiver} declined {level} access to {receiver}'s account. Nothing was "
    "granted.",
    "locked": "The invite for {caregiver} to {receiver}'s account was locked after five wrong "
    "dates of birth. No access was granted; send a new invite if it was a mistake.",
}


def tell(txn: WriteTxn, link: Link, receiver: Client, caregiver: Client, what: str) -> None:
    """Queue the `what` notice (accepted, declined, locked) for the provider and, for an
    accepted or declined invite, for an adult care receiver."""
    names = {
        "caregiver": display_name(caregiver),
        "receiver": display_name(receiver),
        "level": link.access_level or "full",
    }
    subject, line = SUBJECTS[what].format(**names), LINES[what].format(**names)
    provider = txn.session.get(Provider, link.acknowledged_by) if link.acknowledged_by else None
    to: list[tuple[str, str, str | None]] = []
    if provider is not None and provider.email:
        to.append((provider.email, provider.name or provider.email, None))
    if what != "locked" and receiver.client_type == "adult" and receiver.email:
        to.append((receiver.email, display_name(receiver), receiver.id))
    for address, name, client_id in to:
        outbox.enqueue(
            txn,
            link.org_id,
            f"invite.{what}",
            address,
            subject,
            f"Hello {name},\n\n{line}\n",
            client_id,
        )
