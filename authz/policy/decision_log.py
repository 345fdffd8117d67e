"""The decision log: every decision, batched, hash-chained, never silently dropped.

Checks append to memory; a background thread writes batches in one transaction each, chained
like the audit trail. If the store cannot take them (a failed write, or too many pending),
appending raises `DecisionLogUnavailable` so that checks fail closed until a write succeeds. A
check-batch writes its own decisions (`write`) before it answers, and fails if it cannot.

Each row's hash is sha256 over the previous row's hash and the row's content. Rows carry the
form of that content in `hash_format`: 2 (`canonical_v2`, several times cheaper to build than
JSON) for what this writer appends, NULL for rows written before formats were recorded (the
audit trail's sorted JSON object, `decision_fields`). Both verify in the one chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, NamedTuple

from authz.base.errors import StoreUnavailable
from authz.policy import decision_spool
from authz.policy.decision_spool import Spool
from authz.policy.engine import Decision
from authz.store import audit, deadline
from authz.store.db import Store

log = logging.getLogger("authz.decision_log")

# Any constant works; it only has to be the same in every worker.
_PG_LOCK_KEY = 0x617574687A  # "authz"


class DecisionLogUnavailable(StoreUnavailable):
    """Decisions cannot be recorded, so none are given."""

    title = "Decision log unavailable"
    slug = "decision-log-unavailable"


def decision_fields(row: Any) -> dict[str, Any]:
    """What a format-1 decision row's hash covers (all columns but seq and the hashes)."""
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


#: `hash_format` of the rows this writer appends; rows with NULL there are format 1.
HASH_FORMAT = 2
_SEP = "\x1f"  # ASCII unit separator: in no id, time, action or digest; rare in any text


def canonical_v2(
    id: str,
    at: str,
    org_id: str | None,
    actor: str | None,
    subject: str,
    action: str,
    resource: str,
    owner_client_id: str | None,
    allowed: bool,
    reason: str,
    rule: str,
    policy_digest: str,
    revision: int,
) -> str:
    """What a format-2 row's hash covers: its fields joined by U+001F.

    `at` is the UTC wall time as "YYYY-MM-DD HH:MM:SS.ffffff" and `resource` the canonical JSON
    text (sorted keys, no spaces, ASCII). A flags digit stands for `allowed` and for which
    nullable fields are NULL (stored as ""), so that NULL and "" differ. Joining is several
    times cheaper than JSON; it is unambiguous while no field holds U+001F, so a row with one
    there is hashed in the JSON array form instead (which never holds a raw U+001F).
    """
    flags = allowed | (org_id is None) << 1 | (actor is None) << 2 | (owner_client_id is None) << 3
    joined = _SEP.join(
        (
            id,
            at,
            org_id or "",
            actor or "",
            subject,
            action,
            resource,
            owner_client_id or "",
            _FLAGS[flags],
            reason,
            rule,
            policy_digest,
            str(revision),
        )
    )
    if joined.count(_SEP) == 12:
        return joined
    return json.dumps(
        [
            id,
            at,
            org_id,
            actor,
            subject,
            action,
            resource,
            owner_client_id,
            allowed,
            reason,
            rule,
            policy_digest,
            revision,
        ],
        separators=(",", ":"),
    )


class _Rows(NamedTuple):
    """Prepared rows for `_append`: canonical texts in chain order and their 13 column values
    each (`canonical_v2`'s order), one flat list row after row, so that whole columns are
    moved by slicing in C instead of a Python step a value."""

    texts: list[str]
    columns: list[Any]


_FLAGS = "0123456789abcdef"
#: Flags digits of a row with no NULL field: "0" denied, "1" allowed.
_NO_NULLS = frozenset(("0", "1"))


def _hash(prev: str, canon: str) -> str:
    return hashlib.sha256((prev + "\n" + canon).encode()).hexdigest()


def utc_wall(at: dt.datetime) -> str:
    """`at` as format 2 hashes it (and as SQLite stores a DateTime): UTC, microseconds."""
    if at.tzinfo is dt.UTC:
        # "+00:00" sliced off: one C call instead of a conversion and a second object.
        return at.isoformat(" ", "microseconds")[:26]
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at.isoformat(" ", "microseconds")


def decision_hash(row: Any) -> str:
    """The hash a decision row must carry (for `audit.verify_chain(rows, decision_hash)`)."""
    if row.hash_format is None or row.hash_format == 1:
        return audit.chain_hash(row.prev_hash, decision_fields(row))
    if row.hash_format != HASH_FORMAT:
        return ""  # an unknown format never matches: reported as an edited row
    resource = json.dumps(row.resource, sort_keys=True, separators=(",", ":"))
    return _hash(
        row.prev_hash,
        canonical_v2(
            row.id,
            utc_wall(row.at),
            row.org_id,
            row.actor,
            row.subject,
            row.action,
            resource,
            row.owner_client_id,
            bool(row.allowed),
            row.reason,
            row.rule,
            row.policy_digest,
            int(row.revision),
        ),
    )


def to_row(d: Decision) -> dict[str, Any]:
    """The row recorded for a decision: who, as whom, what, on what, result; no token."""
    req, subject = d.request, d.request.subject
    # Every value is a str or None already (the request's types), so this is its JSON form.
    resource: dict[str, Any] = {"type": req.resource.type, "id": req.resource.id, "owner": d.owner}
    if req.payment_method:
        resource["payment_method"] = req.payment_method
    if req.resource.labels:
        # Only when given, so that the rows (and hashes) of unlabelled checks stay as they were.
        resource["labels"] = list(req.resource.labels)
    account = f"client:{subject.account}" if subject.account else subject.actor
    owner = _client_owner(d.owner)
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


def resource_json(d: Decision) -> str:
    """The stored resource of `d` as canonical JSON text, built directly (sorted keys)."""
    req = d.request
    res = req.resource
    labels = ""
    if res.labels:
        # Only when given, so that the rows (and hashes) of unlabelled checks stay as they were.
        labels = '"labels":[' + ",".join(_s(label) for label in res.labels) + "],"
    return (
        f'{{"id":{_j(res.id)},{labels}"owner":{_j(d.owner)},'
        + (f'"payment_method":{_s(req.payment_method)},' if req.payment_method else "")
        + f'"type":{_s(res.type)}}}'
    )


class DecisionLog:
    """Callable sink for `Engine.log`; see the module docstring.

    The writer wakes every `interval` (1 s): a busy worker's thousands of decisions then share
    the fixed costs (transactions, the chain's lock, the writer's hand-offs of the GIL with the
    request thread). Measured on `authz serve --workers 2` (granian, paired wrk runs): the log
    cost a check 24 % more CPU at 1 s against 29-36 % at 0.2 s, with 0.5 s and 2 s in between
    or worse. A graceful stop writes what is pending; a killed process leaves it in the spool."""

    def __init__(
        self,
        store: Store,
        batch_size: int = 1000,
        interval: float = 1.0,
        max_pending: int = 100_000,
        background: bool = True,
        high_water: int = 20_000,
        spool: Spool | None = None,
    ) -> None:
        self.store = store
        #: Where queued decisions wait on disk until written (`authz.policy.decision_spool`).
        self.spool = spool
        self._spool_lock = threading.Lock()
        self._popped = 0  # decisions taken off `pending` into the store, in queue order
        self._replayed = spool is None
        self.batch_size, self.interval, self.max_pending = batch_size, interval, max_pending
        self.high_water = min(high_water, max_pending)
        #: Queued decisions, as their canonical texts (`spool_text`).
        self.pending: deque[str] = deque()
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
        # The row's canonical text is built once, here: the spool keeps it, and the writer
        # hashes it and takes the columns back from it (`_spooled_row`), as a replay does.
        canonical = spool_text(decision)
        spool = self.spool
        if spool is None:
            self.pending.append(canonical)
            return
        line = decision_spool.encode(canonical)
        with self._spool_lock:
            spool.append(line)
            self.pending.append(canonical)

    def write(self, decisions: list[Decision]) -> None:
        """Record `decisions` now, in the caller's thread, or raise `DecisionLogUnavailable`:
        a check-batch answers only what is recorded. Its rows go in one transaction here
        instead of through the writer thread, which would fight the request threads for the
        GIL over them (check-batch, paired runs: see `AccessService.check_batch`)."""
        if not decisions:
            return
        with self._write_lock:
            try:
                self._record(self._rows(decisions))
            except Exception as exc:
                raise DecisionLogUnavailable(
                    f"decisions cannot be recorded: {self.failure}"
                ) from exc

    def flush(self) -> int:
        """Write everything pending now; return how many rows were written."""
        total = 0
        while self.pending:
            total += self._write_batch()
        return total

    def close(self) -> int:
        """Stop the writer after writing what is pending; return how many decisions could not
        be written and stay in the spool for the next start (without a spool, raise)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:
            if self.spool is None:
                raise
        if self.spool is None:
            return 0
        with self._spool_lock:
            left = self.spool.close(self._popped)
        if left:
            # The one trace of an unwritten answer: said loudly, and kept for the next start.
            msg = (
                f"{left} answered decisions could not be written to the store (it did not "
                f"answer); they are kept in {self.spool.directory} and written at the next start"
            )
            log.error(msg, extra={"spooled": left, "failure": self.failure})
        return left

    def replay(self) -> int:
        """Write the decisions that processes now gone left in the spool and the store does not
        hold yet; return how many (see `authz.policy.decision_spool`)."""
        if self.spool is None:
            return 0
        total = 0
        with decision_spool.orphans(self.spool.directory) as found:
            for path, lines in found:
                rows = []
                for line in lines:
                    try:
                        rows.append(_spooled_row(decision_spool.decode(line), self._postgres))
                    except (ValueError, IndexError):
                        log.error(
                            "unreadable line in the decision spool", extra={"file": path.name}
                        )
                with self._write_lock:
                    have = self._existing([values[0] for _, values in rows])
                    missing = [r for r in rows if r[1][0] not in have]
                    for start in range(0, len(missing), self.batch_size):
                        self._append(_joined(missing[start : start + self.batch_size]))
                total += len(missing)
        if total:
            log.warning("decisions replayed from the spool", extra={"replayed": total})
        return total

    def _existing(self, ids: list[str]) -> set[str]:
        from sqlalchemy import select

        from authz.store.models import Decision as Row

        have: set[str] = set()
        with self.store.sessions() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                have.update(session.scalars(select(Row.id).where(Row.id.in_(chunk))))
        return have

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self._replayed:
                        self.replay()
                        self._replayed = True
                    while self.pending:
                        self._write_batch()
                except Exception:  # recorded in self.failure; retried next tick
                    self._spool_sync()
                    continue
                self._spool_trim()
        finally:
            if not self._stop.is_set():
                self.failure = "the decision log writer stopped"

    def _spool_trim(self) -> None:
        if self.spool is not None:
            with self._spool_lock:
                self.spool.rotate()
                self.spool.drop_written(self._popped)

    def _spool_sync(self) -> None:
        if self.spool is not None:
            with self._spool_lock:
                self.spool.fsync()

    def _write_batch(self) -> int:
        with self._write_lock:
            batch = list(itertools.islice(self.pending, self.batch_size))
            if not batch:
                return 0
            self._record(_queued_rows(batch, self._postgres))
            for _ in batch:
                self.pending.popleft()
            self._popped += len(batch)
            return len(batch)

    def _record(self, rows: _Rows) -> None:
        """Insert prepared rows (the caller holds `_write_lock`), keeping `failure` current: set
        by a failed write, cleared by a good one."""
        try:
            self._append(rows)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}"
            raise
        if self._thread is None or self._thread.is_alive() or self._stop.is_set():
            self.failure = None  # a dead writer stays reported
        self.written += len(rows.texts)

    def _rows(self, decisions: list[Decision]) -> _Rows:
        """The rows of a check-batch's decisions (canonical text, column values), built with
        what they share (moment, subject) formatted once."""
        postgres = self._postgres
        # Everything but the chain is built before the chain's lock, which every writer of
        # every worker waits for: inside it, one sha256 a row and the insert.
        texts: list[str] = []
        columns: list[Any] = []
        revision, revision_s = -1, ""
        # The decisions of one check-batch share their moment and their subject object: their
        # text is built once.
        when: Any = None
        at = ""
        subject: Any = None
        org: str | None = None
        actor = account = ""
        for n, d in enumerate(decisions, 1):
            if n % _YIELD_EVERY == 0:
                # Let request threads have the GIL: without this they wait out the switch
                # interval (5 ms) each time they release it (a socket read, a store read).
                time.sleep(0)
            req = d.request
            if d.at is not when:
                when = d.at
                at = _utc_wall_cached(when)
            if req.subject is not subject:
                subject = req.subject
                org = subject.org or None
                actor = subject.actor[:80]
                account = (f"client:{subject.account}" if subject.account else subject.actor)[:80]
            action = req.action[:80]
            resource = resource_json(d)
            owner = _client_owner(d.owner)
            if d.revision != revision:
                revision, revision_s = d.revision, str(d.revision)
            # `canonical_v2` inlined (a call and a keyword tuple a row are most of its cost);
            # a test holds the two to the same bytes.
            joined = _SEP.join(
                (
                    d.decision_id,
                    at,
                    org or "",
                    actor,
                    account,
                    action,
                    resource,
                    owner or "",
                    _FLAGS[d.allowed | (org is None) << 1 | (owner is None) << 3],
                    d.reason,
                    d.rule,
                    d.policy_digest,
                    revision_s,
                )
            )
            if joined.count(_SEP) != 12:
                joined = canonical_v2(
                    d.decision_id, at, org, actor, account, action, resource, owner,
                    d.allowed, d.reason, d.rule, d.policy_digest, d.revision,
                )  # fmt: skip
            columns += (
                d.decision_id,
                # A naive time is UTC here as on SQLite, whatever the server's TimeZone.
                (when if when.tzinfo else when.replace(tzinfo=dt.UTC)) if postgres else at,
                org,
                actor,
                account,
                action,
                resource,
                owner,
                # SQLite binds an exact int directly; a bool goes through the driver's adapter
                # lookup first, 1.4 µs a row measured (it stores the same 0 or 1).
                d.allowed if postgres else int(d.allowed),
                d.reason,
                d.rule,
                d.policy_digest,
                d.revision,
            )
            texts.append(joined)
        return _Rows(texts, columns)

    @functools.cached_property
    def _postgres(self) -> bool:
        return self.store.engine.dialect.name == "postgresql"

    def _append(self, rows: _Rows) -> None:
        """Chain and insert prepared rows in one transaction."""
        postgres = self._postgres
        texts = rows.texts
        n = len(texts)
        with self.store.sessions() as session:
            # Straight to the driver: SQLAlchemy's per-row parameter processing costs several
            # times the decision itself.
            dbapi: Any = session.connection().connection.driver_connection
            cur = dbapi.cursor()
            bounded = deadline.guard(self.store.engine, dbapi)
            bounded.__enter__()
            try:
                # Serialize chain writers across workers: the chain needs the true previous hash.
                if postgres:
                    cur.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
                else:
                    # An UPDATE takes SQLite's write lock before we read the chain's tail.
                    cur.execute("UPDATE state SET id = id WHERE id = 1")
                cur.execute("SELECT hash FROM decisions ORDER BY seq DESC LIMIT 1")
                tail = cur.fetchone()
                prev: str = tail[0] if tail else audit.GENESIS
                first = prev
                digests: list[str] = []
                chain = digests.append
                sha256 = hashlib.sha256
                for canon in texts:
                    prev = sha256(f"{prev}\n{canon}".encode()).hexdigest()
                    chain(prev)
                # The 16 values of each row, moved a column at a time (slices run in C).
                flat: list[Any] = [None] * (16 * n)
                columns = rows.columns
                for c in range(13):
                    flat[c::16] = columns[c::13]
                flat[13::16] = [first, *digests[:-1]]
                flat[14::16] = digests
                flat[15::16] = [HASH_FORMAT] * n
                if postgres:
                    # COPY: one stream for the batch, rows formatted by the driver in C; a
                    # tenth of the client CPU of INSERT … VALUES and a third of the server's.
                    with cur.copy(f"COPY decisions ({_COLUMNS}) FROM STDIN") as copy:
                        for start in range(0, 16 * n, 16):
                            copy.write_row(flat[start : start + 16])
                else:
                    # Many rows a statement: one step and one release of the GIL per statement
                    # instead of per row, which matters beside request threads. Statements are
                    # of power-of-two sizes, so that the few texts are parsed once and reused.
                    start = 0
                    while start < n:
                        size = min(_ROWS_PER_STATEMENT, 1 << (n - start).bit_length() - 1)
                        cur.execute(_insert_sql(size), flat[16 * start : 16 * (start + size)])
                        start += size
                    # The chain's head moves once a write, here, in the rows' transaction
                    # (migration f4a8d2c6b913: a row trigger cost 3 µs a decision). The last
                    # statement's last row is the batch's newest.
                    if n:
                        cur.execute(_MOVE_HEAD, (cur.lastrowid, prev, cur.lastrowid))
            finally:
                cur.close()
                bounded.__exit__(None, None, None)
            session.commit()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECOND = dt.timedelta(seconds=1)
# Rows prepared between two offers of the GIL to request threads (~1.5 ms of work). Each offer
# taken costs both threads a switch (measured: offering every 32 rows made the writer's own
# CPU 1.6x what it is alone), and the interpreter forces one every 5 ms anyway.
_YIELD_EVERY = 256
# 16 parameters a row. SQLite 3.32+ takes 32,766 parameters a statement, so a batch is a few
# statements (each one releases and retakes the GIL); older SQLite takes 999, so 32 rows.
_ROWS_PER_STATEMENT = 1024 if sqlite3.sqlite_version_info >= (3, 32, 0) else 32
_COLUMNS = (
    "id, at, org_id, actor, subject, action, resource, owner_client_id, allowed, reason, rule, "
    "policy_digest, revision, prev_hash, hash, hash_format"
)


_MOVE_HEAD = "UPDATE chain_heads SET seq = ?, hash = ? WHERE name = 'decisions' AND seq < ?"


@functools.lru_cache(maxsize=16)  # one text per power of two up to _ROWS_PER_STATEMENT
def _insert_sql(rows: int) -> str:
    """SQLite's `INSERT … VALUES (…), (…)` for `rows` rows: placeholders only, never values."""
    one = "(" + ", ".join(["?"] * 16) + ")"
    return "INSERT INTO decisions (" + _COLUMNS + ") VALUES " + ", ".join([one] * rows)  # noqa: S608


#: The second `_utc_wall_cached` formatted last: (start, end, text up to the second). One tuple,
#: replaced whole, so that request threads sharing it never read halves of two seconds.
_second: tuple[dt.datetime, dt.datetime, str] = (_EPOCH, _EPOCH, "")


def _utc_wall_cached(when: dt.datetime) -> str:
    """`utc_wall(when)`, formatted once a second: the decisions of a second share the text up
    to it, and formatting a datetime is costly."""
    global _second
    start, end, prefix = _second
    if when.tzinfo is dt.UTC and start <= when < end:
        return f"{prefix}{when.microsecond:06d}"
    at = utc_wall(when)
    if when.tzinfo is dt.UTC:
        start = when.replace(microsecond=0)
        _second = (start, start + _SECOND, at[:20])
    return at


def spool_text(d: Decision) -> str:
    """The canonical text (`canonical_v2`) of one decision, as the spool keeps it."""
    # `canonical_v2` inlined, as in `_rows` (this runs inside every check); a test holds the
    # two to the same text. A subject's actor is never NULL here.
    req = d.request
    subject = req.subject
    org = subject.org or ""
    owner = _client_owner(d.owner)
    joined = _SEP.join(
        (
            d.decision_id,
            _utc_wall_cached(d.at),
            org,
            subject.actor[:80],
            (f"client:{subject.account}" if subject.account else subject.actor)[:80],
            req.action[:80],
            resource_json(d),
            owner or "",
            _FLAGS[d.allowed | (not org) << 1 | (owner is None) << 3],
            d.reason,
            d.rule,
            d.policy_digest,
            str(d.revision),
        )
    )
    if joined.count(_SEP) == 12:
        return joined
    return canonical_v2(
        d.decision_id, _utc_wall_cached(d.at), org or None, subject.actor[:80],
        (f"client:{subject.account}" if subject.account else subject.actor)[:80],
        req.action[:80], resource_json(d), owner, d.allowed, d.reason, d.rule, d.policy_digest,
        d.revision,
    )  # fmt: skip


def _spooled_row(canonical: str, postgres: bool) -> tuple[str, list[Any]]:
    """A spooled decision as the rows `_append` takes: the same canonical text, so that its
    hash is what the writer would have given it."""
    if not postgres:
        parts = canonical.split(_SEP)
        if len(parts) == 13 and parts[8] in _NO_NULLS:
            # Nearly every row: no NULL field, so the fields are the columns as they are. The
            # flags digit is `allowed` and the revision its digits; SQLite's column affinity
            # (NUMERIC, INTEGER) stores either text as the integer, as `int()` would (1.1 µs a
            # row saved; a test holds the stored types).
            return canonical, parts
    f = decision_spool.fields(canonical)
    at = decision_spool.parse_at(f[1]) if postgres else f[1]
    values = [f[0], at, *f[2:8], f[8] if postgres else int(f[8]), *f[9:13]]
    return canonical, values


def _queued_rows(texts: list[str], postgres: bool) -> _Rows:
    """Queued canonical texts (`spool_text`) as `_append` takes them."""
    if not postgres:
        # Nearly every batch: one split of the whole batch gives every column at once when
        # each text is 13 fields with no NULL (`_spooled_row`'s fast case). A text in the JSON
        # form has no raw separator (one part) and `spool_text` never makes more than 13, so
        # 13 parts a text means each text gave exactly 13.
        columns = _SEP.join(texts).split(_SEP)
        if len(columns) == 13 * len(texts) and _NO_NULLS.issuperset(columns[8::13]):
            return _Rows(texts, columns)
    return _joined([_spooled_row(text, postgres) for text in texts])


def _joined(rows: list[tuple[str, list[Any]]]) -> _Rows:
    """Rows prepared one by one (`_spooled_row`) as one `_Rows`."""
    columns: list[Any] = []
    for _, values in rows:
        columns += values
    return _Rows([text for text, _ in rows], columns)


def wait_written(log: DecisionLog, timeout: float = 5.0) -> None:
    """Block until nothing is pending (tests and shutdown)."""
    deadline = time.monotonic() + timeout
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.01)
