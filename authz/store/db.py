"""Engine, sessions and the write transaction that bumps the revision and appends the audit."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, create_engine, event, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from authz.base import clock, ids
from authz.base.errors import StoreUnavailable
from authz.store import audit, deadline
from authz.store.models import AuditEvent, State
from authz.store.revision_hint import RevisionHint


def make_engine(url: str, pool_timeout: float = 2.0, statement_timeout_ms: int = 2000) -> Engine:
    """An engine that fails fast: bounded pool wait, connect and statement time."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": max(pool_timeout, 5.0), "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN reach SQLite, so that transactions are real.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: the decision log appends
            # tens of MB a second under load, and each checkpoint ends in an fsync that stalls
            # the writer behind it; measured on this VM's disk, check-batch went from 14-18k to
            # 25-33k decisions/s. Readers and crash recovery see a longer WAL in exchange.
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.execute(f"PRAGMA busy_timeout={int(max(pool_timeout, 5.0) * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(1, int(pool_timeout)),
            "options": f"-c statement_timeout={statement_timeout_ms}",
            # A partitioned network or a dead server host: the statement timeout cannot fire
            # there, so let the kernel give up on the socket in bounded time instead.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": statement_timeout_ms + 2000,
        },
    )
    if statement_timeout_ms > 0:
        # The server's own timeout gets the first second to answer with an error.
        deadline.install(engine, statement_timeout_ms / 1000 + 1.0)
    return engine


_UNAVAILABLE = (OperationalError, PoolTimeout)


@contextmanager
def _store_errors() -> Iterator[None]:
    """A store that does not answer, or a connection lost mid-write, as StoreUnavailable."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable("the store connection was lost") from exc
        raise


def _chain(events: list[AuditEvent], tail: str | None) -> None:
    """Hash `events` in order onto the chain whose newest hash is `tail` (None: empty)."""
    prev = tail or audit.GENESIS
    for ev in events:
        ev.prev_hash = prev
        ev.hash = prev = audit.event_hash(ev)


_HOLD_REVISION = (
    update(State).where(State.id == 1).values(revision=State.revision).returning(State.revision)
)
_CHAIN_TAIL = select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_AUDIT_COLUMNS = [c.key for c in AuditEvent.__table__.columns if c.key != "seq"]


class _AuditAppend:
    """`Store.append_audit`'s three statements as one dialect's driver SQL, with the columns'
    own bind processors (SQLAlchemy's encoding of times and JSON, taken from it, not copied).

    Driven on the driver's cursor: SQLAlchemy's execution of three small statements cost as
    much as SQLite's work for them (a switch of account: 450 µs for the audit row through
    SQLAlchemy Core against 255 µs on the driver, in-process on a 2-core VM)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        literal = {"literal_binds": True}
        self.hold = str(_HOLD_REVISION.compile(dialect=dialect, compile_kwargs=literal))
        self.tail = str(_CHAIN_TAIL.compile(dialect=dialect, compile_kwargs=literal))
        table = cast(Table, AuditEvent.__table__)
        stmt = insert(table).values({c: bindparam(c) for c in _AUDIT_COLUMNS})
        compiled = stmt.compile(dialect=dialect)
        self.insert = str(compiled)
        #: Positional drivers (SQLite) take values in the statement's order; others by name.
        self.order: list[str] | None = (
            list(compiled.positiontup or []) if compiled.positional else None
        )
        self.processors = {
            c: table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in _AUDIT_COLUMNS
        }
        #: The driver's errors that mean the store did not answer or the connection broke.
        self.unavailable: type[Exception] = dialect.loaded_dbapi.OperationalError

    def params(self, ev: AuditEvent) -> list[Any] | dict[str, Any]:
        values = {}
        for column, process in self.processors.items():
            value = getattr(ev, column)
            values[column] = process(value) if process is not None else value
        return [values[c] for c in self.order] if self.order is not None else values


@dataclass
class AuditTxn:
    """Audit rows being appended at a revision (`Store.append_audit`, and every write)."""

    revision: int
    actor: str
    org_id: str | None
    policy_digest: str
    events: list[AuditEvent] = field(default_factory=list)

    def record(
        self,
        kind: str,
        entity_id: str | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        client_ids: list[str] | None = None,
        org_id: str | None = None,
    ) -> None:
        """Append one audit event to this write (hashed in order at commit)."""
        self.events.append(
            AuditEvent(
                id=ids.new_id("aud"),
                at=clock.now(),
                org_id=org_id or self.org_id,
                actor=self.actor,
                kind=kind,
                entity_id=entity_id,
                client_ids=sorted(set(client_ids or [])),
                before=audit.jsonable(before),
                after=audit.jsonable(after),
                revision=self.revision,
                policy_digest=self.policy_digest,
            )
        )


@dataclass
class WriteTxn(AuditTxn):
    """A write in progress: its session, its revision, and the audit events it appends."""

    session: Session = field(kw_only=True)


class Store:
    """The one way the core reads and writes the database."""

    def __init__(self, engine: Engine, policy_digest: Callable[[], str] = lambda: "") -> None:
        self.engine = engine
        #: An SQLite file's revision hint (`authz.store.revision_hint`), opened on first use
        #: (the file may not exist before `authz init`).
        self._hint_file = (
            RevisionHint.database_file(engine.url.render_as_string(hide_password=False))
            if engine.dialect.name == "sqlite"
            else None
        )
        self._hint: RevisionHint | None = None
        self._hint_lock = threading.Lock()
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.policy_digest = policy_digest
        self.after_write: list[Callable[[int], None]] = []
        #: Run inside each write just before it commits (e.g. a NOTIFY that must commit with it).
        self.before_commit: list[Callable[[WriteTxn], None]] = []

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        """A store on a fresh engine."""
        return cls(make_engine(url, **kwargs))

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session; store failures surface as StoreUnavailable."""
        try:
            with self.sessions() as session:
                yield session
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc

    def _revision_hint(self) -> RevisionHint | None:
        if self._hint is None and self._hint_file is not None:
            with self._hint_lock:
                if self._hint is None and self._hint_file.exists():
                    try:
                        self._hint = RevisionHint(self._hint_file)
                    except OSError:
                        return None
        return self._hint

    def published_revision(self) -> int | None:
        """The newest revision any process has committed and returned from, without a query
        (SQLite files); None when only a query can tell."""
        hint = self._revision_hint()
        return hint.read() if hint is not None else None

    @contextmanager
    def write(self, actor: str, org_id: str | None = None) -> Iterator[WriteTxn]:
        """One atomic change: revision bump, the change and its audit rows commit together."""
        hint = self._revision_hint()
        if self._hint_file is not None and hint is None and self._hint_file.exists():
            # Readers elsewhere trust the hint to announce every write: an unannounced one
            # could be missed by their next check, so it is not made at all.
            raise StoreUnavailable(
                f"cannot open {self._hint_file}-revision to announce writes; check permissions"
            )
        with _store_errors(), self.sessions() as session:
            # First statement of the transaction: it takes the writers' lock (a row lock on
            # PostgreSQL, the database lock on SQLite), which also orders the audit chain.
            revision = session.execute(
                update(State)
                .where(State.id == 1)
                .values(revision=State.revision + 1)
                .returning(State.revision)
            ).scalar_one()
            txn = WriteTxn(revision, actor, org_id, self.policy_digest(), session=session)
            yield txn
            session.flush()
            if txn.events:
                _chain(txn.events, session.execute(_CHAIN_TAIL).scalar_one_or_none())
                session.add_all(txn.events)
            for before in self.before_commit:
                before(txn)
            session.commit()
        if hint is not None:
            hint.publish(revision)
        for hook in self.after_write:
            hook(revision)

    @contextmanager
    def append_audit(self, actor: str, org_id: str | None = None) -> Iterator[AuditTxn]:
        """Audit rows that change nothing a decision reads (an issued token, a refusal, a
        reading of the trail): the same writers' lock and chain as `write`, but the revision
        stays where it is (the rows carry it), so no process refreshes its facts for them.
        In SQLAlchemy Core: a token request writes one, and the ORM was most of its cost.

        The block only records events: they are built before the writers' lock is taken (a
        token request's are most of its time under it, and on SQLite a writer that finds the
        lock taken sleeps a millisecond or more), then the lock is taken, the revision
        read, and the rows hashed and inserted. `txn.revision` is known after the block."""
        txn = AuditTxn(0, actor, org_id, self.policy_digest())
        yield txn
        if not txn.events:
            return
        sql = self._audit_append
        with _store_errors(), self.engine.begin() as conn:
            dbapi: Any = conn.connection.driver_connection
            try:
                with deadline.guard(self.engine, dbapi):
                    cur = dbapi.cursor()
                    try:
                        # Takes the writers' lock as `write` does, without moving the revision.
                        cur.execute(sql.hold)
                        txn.revision = int(cur.fetchone()[0])
                        for ev in txn.events:
                            ev.revision = txn.revision
                        cur.execute(sql.tail)
                        tail = cur.fetchone()
                        _chain(txn.events, tail[0] if tail else None)
                        cur.executemany(sql.insert, [sql.params(ev) for ev in txn.events])
                    finally:
                        cur.close()
            except sql.unavailable as exc:
                # Not through SQLAlchemy, so not wrapped by it: a broken connection must not
                # go back to the pool, and the caller sees the store's unavailability.
                conn.invalidate()
                raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc

    @functools.cached_property
    def _audit_append(self) -> _AuditAppend:
        return _AuditAppend(self.engine)

    def close(self) -> None:
        """Close the connections and the revision hint."""
        self.engine.dispose()
        if self._hint is not None:
            self._hint.close()
            self._hint = None

    def revision(self) -> int:
        """The newest committed revision."""
        with self.read() as session:
            return int(session.execute(select(State.revision)).scalar_one())

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        with self.read() as session:
            session.execute(text("SELECT 1"))


def utcnow() -> dt.datetime:
    """Alias kept for readability in store code."""
    return clock.now()
