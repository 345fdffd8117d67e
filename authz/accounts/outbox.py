"""Emails are rows first (in the same transaction as the change), then delivered over SMTP."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import select

from authz.base import clock, ids, pagination
from authz.store.db import Store, WriteTxn
from authz.store.models import OutboxMessage

MAX_BACKOFF = dt.timedelta(hours=1)
log = logging.getLogger(__name__)


def message_view(m: OutboxMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "to": m.to_address,
        "subject": m.subject,
        "body": m.body,
        "client_id": m.client_id,
        "status": m.status,
        "attempts": m.attempts,
        "last_error": m.last_error,
        "created_at": clock.aware(m.created_at).isoformat(),  # type: ignore[union-attr]
        "sent_at": clock.aware(m.sent_at).isoformat() if m.sent_at else None,  # type: ignore[union-attr]
    }


def enqueue(
    txn: WriteTxn,
    org_id: str,
    kind: str,
    to: str,
    subject: str,
    body: str,
    client_id: str | None = None,
) -> OutboxMessage:
    """Queue an email as part of the current write."""
    now = clock.now()
    msg = OutboxMessage(
        id=ids.new_id("msg"),
        org_id=org_id,
        kind=kind,
        to_address=to,
        subject=subject,
        body=body,
        client_id=client_id,
        status="queued",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    txn.session.add(msg)
    # The audit keeps that an email went out, not its body (invite links are secrets).
    txn.record(
        "outbox.queued", msg.id, None, {"kind": kind, "to": to}, [client_id] if client_id else []
    )
    return msg


def list_messages(
    store: Store, org_id: str, page: pagination.Page, status: str | None = None
) -> dict[str, Any]:
    with store.read() as session:
        stmt = select(OutboxMessage).where(OutboxMessage.org_id == org_id)
        if status:
            stmt = stmt.where(OutboxMessage.status == status)
        rows = list(session.scalars(pagination.apply(stmt, OutboxMessage.id, page)))
        rows, cursor = pagination.cursor_for(rows, page)
        return {"items": [message_view(m) for m in rows], "next_cursor": cursor}


class SmtpSender:
    """Sends through `smtp://host:port`, `smtps://…` or `smtp+starttls://…` (with user:pass@)."""

    def __init__(self, url: str, sender: str, timeout: float = 10.0) -> None:
        self.url = urlparse(url)
        if self.url.scheme not in ("smtp", "smtps", "smtp+starttls"):
            raise ValueError("AUTHZ_SMTP_URL must be smtp://, smtps:// or smtp+starttls://")
        self.sender = sender
        self.timeout = timeout

    def send(self, to: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(body)
        host, port = self.url.hostname or "127.0.0.1", self.url.port
        smtp: smtplib.SMTP
        if self.url.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(
                host, port or 465, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port or 25, timeout=self.timeout)
        with smtp:
            if self.url.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.url.username:
                smtp.login(unquote(self.url.username), unquote(self.url.password or ""))
            smtp.send_message(msg)


LEASE = dt.timedelta(minutes=2)


def _claim(store: Store, msg_id: str, org_id: str) -> OutboxMessage | None:
    """Take one message for sending; a lease lets another worker retry it if we die mid-send."""
    with store.write("system:outbox", org_id) as txn:
        row = txn.session.get(OutboxMessage, msg_id)
        now = clock.now()
        due = clock.aware(row.next_attempt_at) if row else None
        if row is None or row.status not in ("queued", "sending") or (due and due > now):
            return None
        row.status, row.next_attempt_at = "sending", now + LEASE
        return row


def deliver_due(store: Store, sender: SmtpSender, limit: int = 50) -> dict[str, int]:
    """Send what is due; a failure stays queued with backoff and is retried, never lost."""
    now = clock.now()
    with store.read() as session:
        due = list(
            session.execute(
                select(OutboxMessage.id, OutboxMessage.org_id)
                .where(
                    OutboxMessage.status.in_(("queued", "sending")),
                    OutboxMessage.next_attempt_at <= now,
                )
                .order_by(OutboxMessage.created_at)
                .limit(limit)
            )
        )
    sent = failed = 0
    for msg_id, org_id in due:
        msg = _claim(store, msg_id, org_id)
        if msg is None:
            continue  # another worker has it
        error: str | None = None
        try:
            sender.send(msg.to_address, msg.subject, msg.body)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        with store.write("system:outbox", org_id) as txn:
            row = txn.session.get(OutboxMessage, msg_id)
            if row is None or row.status != "sending":
                continue
            row.attempts += 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", clock.now(), None
                sent += 1
            else:
                row.status, row.last_error = "queued", error
                backoff = min(dt.timedelta(seconds=2 ** min(row.attempts, 12)), MAX_BACKOFF)
                row.next_attempt_at = clock.now() + backoff
                failed += 1
            txn.record(
                "outbox.sent" if error is None else "outbox.failed",
                row.id,
                None,
                {"attempts": row.attempts, "error": error},
                [row.client_id] if row.client_id else [],
            )
    return {"sent": sent, "failed": failed}


class DeliveryLoop:
    """A daemon thread that delivers the outbox every few seconds while the service runs."""

    def __init__(self, store: Store, sender: SmtpSender, interval: float = 5.0) -> None:
        self.store, self.sender, self.interval = store, sender, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                deliver_due(self.store, self.sender)
            except Exception:  # keep delivering after a store outage; the rows stay queued
                log.exception("outbox delivery failed; will retry")
            self._stop.wait(self.interval)
