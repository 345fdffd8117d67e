"""The decision log's fast row building agrees with the audit trail's canonical form."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from authz import audit
from authz.policy.decision_log import DecisionLog, canonical_row, decision_fields, to_row
from authz.policy.engine import CheckRequest, Decision, Resource, Subject


def _decision(
    at: dt.datetime, reason: str, org: str, pm: str | None, owner: str | None, res_id: str | None
) -> Decision:
    subject = Subject("client:cli_a", org, "cli_b", "lnk_1", "delegation")
    request = CheckRequest(subject, "invoice.pay", Resource("invoice", res_id, owner), pm)
    return Decision(
        False,
        "dec_x1",
        reason,
        'rule "quoted" \\ back',
        7,
        at,
        request,
        owner,
        "sha256:" + "ab" * 32,
    )


@pytest.mark.parametrize(
    ("at", "reason", "org", "pm", "owner", "res_id"),
    [
        (dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), "plain", "org_a", "pm_1", "cli_b", "i"),
        (
            dt.datetime(2026, 11, 2, 9, 0, 0, 5, tzinfo=dt.UTC),
            "Zo\u00eb\u2019s \u201ccard\u201d\n\t\x01",
            "",
            None,
            None,
            None,
        ),
        (
            dt.datetime(2026, 11, 2, 11, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            'emoji 🙂 and \\ and "',
            "org_a",
            "",
            "org_a",
            "inv_9",
        ),
    ],
)
def test_canonical_row_is_audit_canonical_of_the_stored_row(
    at: dt.datetime, reason: str, org: str, pm: str | None, owner: str | None, res_id: str | None
) -> None:
    d = _decision(at, reason, org, pm, owner, res_id)
    canon, resource, stored = canonical_row(d)
    row = to_row(d)
    # What the store hands back: a naive UTC time on SQLite, the resource parsed from JSON.
    row["at"] = dt.datetime.fromisoformat(stored)
    row["resource"] = json.loads(resource)
    assert canon == audit.canonical(decision_fields(SimpleNamespace(**row)))
    assert row["resource"] == to_row(d)["resource"]


# The writer thread's death is the point of the test, not a leak.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_writer_fails_checks_closed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from authz.policy.decision_log import DecisionLogUnavailable
    from authz.store.db import Store, make_engine

    def die(self: DecisionLog) -> int:
        raise KeyboardInterrupt  # not an Exception: the writer's loop does not survive it

    monkeypatch.setattr(DecisionLog, "_write_batch", die)
    log = DecisionLog(Store(make_engine(f"sqlite:///{tmp_path}/x.db")), interval=0.01)
    d = _decision(dt.datetime.now(dt.UTC), "r", "org_a", None, "cli_b", "i")
    log(d)
    assert log._thread is not None
    log._thread.join(2)
    assert not log._thread.is_alive()
    with pytest.raises(DecisionLogUnavailable, match="writer stopped"):
        log(d)


def test_deciding_faster_than_the_writer_writes_slows_checks_instead_of_refusing(
    tmp_path,
) -> None:
    from sqlalchemy import func, select

    from authz.store import migrate
    from authz.store.db import Store, make_engine
    from authz.store.models import Decision as DecisionRow

    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    migrate.upgrade(engine)
    store = Store(engine)
    log = DecisionLog(store, batch_size=4, background=False, high_water=5, max_pending=6)
    for i in range(30):
        d = _decision(dt.datetime.now(dt.UTC), "r", "org_a", None, "cli_b", "i")
        log(Decision(**{**{f: getattr(d, f) for f in d.__slots__}, "decision_id": f"dec_{i}"}))
        assert len(log.pending) <= 5
    assert log.written >= 25  # the deciding thread wrote as it went
    log.flush()
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == 30
