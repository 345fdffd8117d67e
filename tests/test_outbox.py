"""Emails are rows first, then delivered over real SMTP on loopback; failures are retried."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from authz.accounts import outbox
from authz.base import clock
from tests.helpers import Api


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_invite_is_delivered_over_smtp(api: Api, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    sam, jenna = api.client("Sam", "minor"), api.client("Jenna", "adult", "jenna@x.test")
    link = api.link(sam["id"], jenna["id"], portal=True)
    sender = outbox.SmtpSender(f"smtp://127.0.0.1:{port}", "practice@x.test")
    assert outbox.deliver_due(api.rt.store, sender) == {"sent": 2, "failed": 0}
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert subjects[0].startswith("Accept Invite") and all(
        m["To"] == "jenna@x.test" for m in inbox.messages
    )
    invite = next(m for m in inbox.messages if m["Subject"].startswith("Accept Invite"))
    assert link["dev_invite_token"] in invite.get_payload(decode=True).decode()
    statuses = {m["status"] for m in api.ok("GET", "/v1/outbox")["items"]}
    assert statuses == {"sent"}
    assert outbox.deliver_due(api.rt.store, sender) == {"sent": 0, "failed": 0}


def test_a_failed_delivery_stays_queued_and_is_retried(api: Api) -> None:
    inbox, port = Inbox(), _free_port()
    api.ok(
        "POST",
        f"/v1/clients/{api.client('Sam')['id']}/links",
        {"new_client": {"first_name": "Jenna", "email": "jenna@x.test"}, "relationship": "parent"},
        status=201,
    )
    sender = outbox.SmtpSender(f"smtp://127.0.0.1:{port}", "practice@x.test", timeout=2)
    assert outbox.deliver_due(api.rt.store, sender) == {"sent": 0, "failed": 1}
    [queued] = api.ok("GET", "/v1/outbox")["items"]
    assert queued["status"] == "queued" and queued["attempts"] == 1 and queued["last_error"]
    # Not due again until its backoff has passed.
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert outbox.deliver_due(api.rt.store, sender) == {"sent": 0, "failed": 0}
        clock.travel(dt.timedelta(seconds=5))
        api.tokens.clear()
        assert outbox.deliver_due(api.rt.store, sender) == {"sent": 1, "failed": 0}
    finally:
        controller.stop()
    assert [m["To"] for m in inbox.messages] == ["jenna@x.test"]
    [sent] = api.ok("GET", "/v1/outbox")["items"]
    assert sent["status"] == "sent" and sent["attempts"] == 2


def test_bad_smtp_url_is_refused() -> None:
    with pytest.raises(ValueError, match="AUTHZ_SMTP_URL"):
        outbox.SmtpSender("http://127.0.0.1:25", "x@x.test")
