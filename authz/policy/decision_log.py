"""The decision log: every decision, batched, hash-chained, never silently dropped.

Checks append to memory; a background thread writes batches in one transaction each, chained
like the audit trail. If the store cannot take them (a failed write, or too many pending),
`append` raises `DecisionLogUnavailable` so that checks fail closed until a write succeeds.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
import time
from collections import deque
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import select, text

from authz import audit
from authz.errors import StoreUnavailable
from authz.policy.engine import Decision
from authz.store.db import Store
from authz.store.models import Decision as DecisionRow

# Any constant works; it only has to be the same in every worker.
_PG_LOCK_KEY = 0x617574687A  # "authz"


class DecisionLogUnavailable(StoreUnavailable):
    """Decisions cannot be recorded, so none are given."""

    title = "Decision log unavailable"
    slug = "decision-log-unavailable"


def decision_fields(row: Any) -> dict[str, Any]:
    """What a decision row's hash covers (all columns but seq and the hashes)."""
    return {
        "id": row.id,
        "at": row.at,
        "org_id": row.org_id,
        "actor": row.actor,
        "subject": row.subject,
        "action": row.action,
        "resource": row.resource,
        "owner_client_id": row.owner_client_id,
        "allowed": row.allowed,
        "reason": row.reason,
        "rule": row.rule,
        "policy_digest": row.policy_digest,
        "revision": row.revision,
    }


def decision_hash(row: Any) -> str:
    """The hash a decision row must carry (for `audit.verify_chain(rows, decision_hash)`)."""
    return audit.chain_hash(row.prev_hash, decision_fields(row))


def to_row(d: Decision) -> dict[str, Any]:
    """The row recorded for a decision: who, as whom, what, on what, result; no token."""
    req, subject = d.request, d.request.subject
    # Every value is a str or None already (the request's types), so this is its JSON form.
    resource = {"type": req.resource.type, "id": req.resource.id, "owner": d.owner}
    if req.payment_method:
        resource["payment_method"] = req.payment_method
    account = f"client:{subject.account}" if subject.account else subject.actor
    owner = d.owner if d.owner and d.owner.startswith("cli_") else None
    return {
        "id": d.decision_id,
        "at": d.at,
        "org_id": subject.org or None,
        "actor": subject.actor[:80],
        "subject": account[:80],
        "action": req.action[:80],
        "resource": resource,
        "owner_client_id": owner,
        "allowed": d.allowed,
        "reason": d.reason,
        "rule": d.rule,
        "policy_digest": d.policy_digest,
        "revision": d.revision,
    }


def _client_owner(owner: str | None) -> str | None:
    return owner if owner and owner.startswith("cli_") else None


_s = encode_basestring_ascii


def _j(value: str | None) -> str:
    return "null" if value is None else _s(value)


def canonical_row(d: Decision) -> tuple[bytes, str, str]:
    """`audit.canonical(decision_fields(row))` of the row `d` becomes, built directly (the
    generic path costs several times the decision), with the resource's stored JSON and `at`
    as stored on SQLite.

    NOTE: keys in sorted order, `json.dumps(sort_keys=True, separators=(",", ":"))` byte for
    byte; a test holds it to `audit.canonical` for awkward values.
    """
    req, subject = d.request, d.request.subject
    res = req.resource
    resource = (
        f'{{"id":{_j(res.id)},"owner":{_j(d.owner)},'
        + (f'"payment_method":{_s(req.payment_method)},' if req.payment_method else "")
        + f'"type":{_s(res.type)}}}'
    )
    naive = (d.at if d.at.utcoffset() == _ZERO else d.at.astimezone(dt.UTC)).replace(tzinfo=None)
    full = naive.isoformat(" ", "microseconds")
    # `audit.jsonable`'s form: ISO with "T", no fraction when it is zero.
    stamp = (full.replace(" ", "T") if naive.microsecond else naive.isoformat()) + "Z"
    account = f"client:{subject.account}" if subject.account else subject.actor
    canon = (
        f'{{"action":{_w(req.action[:80])},"actor":{_s(subject.actor[:80])},'
        f'"allowed":{"true" if d.allowed else "false"},"at":"{stamp}",'
        f'"id":{_s(d.decision_id)},"org_id":{_w(subject.org or None)},'
        f'"owner_client_id":{_j(_client_owner(d.owner))},"policy_digest":{_w(d.policy_digest)},'
        f'"reason":{_s(d.reason)},"resource":{resource},"revision":{int(d.revision)},'
        f'"rule":{_w(d.rule)},"subject":{_s(account[:80])}}}'
    )
    # `full` is how SQLAlchemy stores a DateTime on SQLite (UTC wall time): the ORM reads it.
    return canon.encode(), resource, full


_WORDS: dict[str | None, str] = {}


def _w(value: str | None) -> str:
    """`_j` of a value from a small set (actions, rules, organizations, digests), memoized."""
    found = _WORDS.get(value)
    if found is None:
        found = _j(value)
        if len(_WORDS) < 4096:
            _WORDS[value] = found
    return found


_ZERO = dt.timedelta(0)


class DecisionLog:
    """Callable sink for `Engine.log`; see the module docstring."""

    def __init__(
        self,
        store: Store,
        batch_size: int = 1000,
        interval: float = 0.05,
        max_pending: int = 100_000,
        background: bool = True,
        high_water: int = 20_000,
    ) -> None:
        self.store = store
        self.batch_size, self.interval, self.max_pending = batch_size, interval, max_pending
        self.high_water = min(high_water, max_pending)
        self.pending: deque[Decision] = deque()
        self.failure: str | None = None
        self.written = 0
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
            self._thread.start()

    def __call__(self, decision: Decision) -> None:
        """Queue one decision, or refuse (fail closed) while the log cannot be written."""
        # Two attribute reads and an append: this runs inside every check. A dead writer
        # reports itself through `failure` (see `_run`) instead of being polled here.
        if self.failure is not None:
            raise DecisionLogUnavailable(f"decisions cannot be recorded: {self.failure}")
        if len(self.pending) >= self.high_water:
            # Deciding faster than the writer writes: the deciding thread writes a batch
            # itself, so an overload slows checks down instead of refusing them. A failed
            # write raises here (fail closed) and keeps the batch pending.
            self._write_batch()
        if len(self.pending) >= self.max_pending:
            raise DecisionLogUnavailable("the decision log is behind; refusing to decide")
        self.pending.append(decision)

    def flush(self) -> int:
        """Write everything pending now; return how many rows were written."""
        total = 0
        while self.pending:
            total += self._write_batch()
        return total

    def close(self) -> None:
        """Stop the writer after writing what is pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    while self.pending:
                        self._write_batch()
                except Exception:  # noqa: S112 - recorded in self.failure; retried next tick
                    continue
        finally:
            if not self._stop.is_set():
                self.failure = "the decision log writer stopped"

    def _write_batch(self) -> int:
        with self._write_lock:
            batch = [self.pending[i] for i in range(min(self.batch_size, len(self.pending)))]
            if not batch:
                return 0
            try:
                self._insert(batch)
            except Exception as exc:
                self.failure = f"{type(exc).__name__}"
                raise
            for _ in batch:
                self.pending.popleft()
            if self._thread is None or self._thread.is_alive() or self._stop.is_set():
                self.failure = None  # a dead writer stays reported
            self.written += len(batch)
            return len(batch)

    def _insert(self, decisions: list[Decision]) -> None:
        postgres = self.store.engine.dialect.name == "postgresql"
        # Everything but the chain is built before the chain's lock, which every writer of
        # every worker waits for: inside it, one sha256 a row and the insert.
        rows = []
        for n, d in enumerate(decisions, 1):
            if n % _YIELD_EVERY == 0:
                # Let request threads have the GIL: without this they wait out the switch
                # interval (5 ms) each time they release it (a socket read, a store read).
                time.sleep(0)
            canon, resource, at = canonical_row(d)
            req, subject = d.request, d.request.subject
            account = f"client:{subject.account}" if subject.account else subject.actor
            rows.append(
                (
                    canon,
                    (
                        d.decision_id,
                        d.at if postgres else at,
                        subject.org or None,
                        subject.actor[:80],
                        account[:80],
                        req.action[:80],
                        resource,
                        _client_owner(d.owner),
                        d.allowed,
                        d.reason,
                        d.rule,
                        d.policy_digest,
                        d.revision,
                    ),
                )
            )
        with self.store.sessions() as session:
            conn = session.connection()
            # Serialize chain writers across workers: the chain needs the true previous hash.
            if postgres:
                session.execute(text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})"))
            else:
                # An UPDATE takes SQLite's write lock before we read the chain's tail.
                session.execute(text("UPDATE state SET id = id WHERE id = 1"))
            prev = (
                session.execute(
                    select(DecisionRow.hash).order_by(DecisionRow.seq.desc()).limit(1)
                ).scalar_one_or_none()
                or audit.GENESIS
            )
            params = []
            for canon, values in rows:
                digest = hashlib.sha256(prev.encode() + b"\n" + canon).hexdigest()
                params.append((*values, prev, digest))
                prev = digest
            # Straight to the driver (SQLAlchemy's per-row parameter processing cost several
            # times the decision itself), many rows a statement: one step and one release of
            # the GIL per statement instead of per row, which matters beside request threads.
            for start in range(0, len(params), _ROWS_PER_STATEMENT):
                chunk = params[start : start + _ROWS_PER_STATEMENT]
                flat = tuple(value for row in chunk for value in row)
                conn.exec_driver_sql(_insert_sql(postgres, len(chunk)), flat)
            session.commit()


# Rows hashed between two offers of the GIL to request threads (~0.3 ms of work).
_YIELD_EVERY = 32
# 15 parameters a row: 60 rows stay under SQLite's oldest limit of 999 parameters.
_ROWS_PER_STATEMENT = 60
_COLUMNS = (
    "id, at, org_id, actor, subject, action, resource, owner_client_id, allowed, reason, rule, "
    "policy_digest, revision, prev_hash, hash"
)


@functools.lru_cache(maxsize=8)
def _insert_sql(postgres: bool, rows: int) -> str:
    """`INSERT … VALUES (…), (…)` for `rows` rows: placeholders only, never values."""
    one = (
        "(%s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s, %s, %s, %s, %s)"
        if postgres
        else "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    return "INSERT INTO decisions (" + _COLUMNS + ") VALUES " + ", ".join([one] * rows)  # noqa: S608


def wait_written(log: DecisionLog, timeout: float = 5.0) -> None:
    """Block until nothing is pending (tests and shutdown)."""
    deadline = time.monotonic() + timeout
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.01)
