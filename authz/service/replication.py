"""Replicas that agree: each write announces its revision with PostgreSQL LISTEN/NOTIFY, and every
serving process refreshes its policy facts incrementally when it hears one.

Flow: `Store.write` → `NOTIFY authz_revision, '<rev>'` (same transaction) → `Listener` thread of
every replica → `AccessService.fresh(at_least=<rev>)` → only the rows newer audit rows name.

The notification commits with the write or not at all (PostgreSQL delivers NOTIFY at commit), but
freshness never depends on it: a default check still reads the revision itself and
`consistency.at_least` forces catch-up. Notifications only keep replicas warm, so that those
reads rarely find anything to do. A lost channel reconnects with backoff and catches up, and a
periodic poll covers notifications dropped for any other reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from authz.base.errors import AuthzError
from authz.store.db import Store, WriteTxn

if TYPE_CHECKING:
    from authz.service.runtime import Runtime

CHANNEL = "authz_revision"
#: Seconds between revision polls while notifications are quiet (the belt to LISTEN's braces).
POLL_INTERVAL = 5.0
#: Longest wait between reconnection attempts.
MAX_BACKOFF = 2.0
log = logging.getLogger("authz.replication")


def is_postgresql(store: Store) -> bool:
    return store.engine.dialect.name == "postgresql"


def _notify(txn: WriteTxn) -> None:
    txn.session.execute(
        text("SELECT pg_notify(:channel, :revision)"),
        {"channel": CHANNEL, "revision": str(txn.revision)},
    )


def install(store: Store) -> None:
    """Make every write of `store` announce its revision (PostgreSQL only; idempotent)."""
    if is_postgresql(store) and _notify not in store.before_commit:
        store.before_commit.append(_notify)


@dataclass
class ReplicaState:
    """What one process knows about its freshness (for `/readyz` and `/metrics`)."""

    #: Whether this process has a notification channel at all (PostgreSQL, `authz serve`).
    channel: bool = False
    listening: bool = False
    #: The newest revision announced or read from the store.
    seen: int = 0
    #: The revision of this process's policy facts (0 until they are loaded).
    facts: int = 0
    notifications: int = 0
    reconnects: int = 0
    last_error: str | None = None

    @property
    def lag(self) -> int:
        return max(0, self.seen - self.facts)


class Listener:
    """One thread per process: LISTEN, refresh on each announced revision, poll, reconnect."""

    def __init__(
        self,
        runtime: Runtime,
        poll_interval: float = POLL_INTERVAL,
        on_state: Callable[[ReplicaState], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.poll_interval = poll_interval
        self.on_state = on_state
        self.state = ReplicaState(channel=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authz-replication", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        import psycopg

        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._connect_args()) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.state.listening, backoff = True, 0.1
                    self._changed()
                    # Whatever was committed while we were away (or before we started).
                    self._catch_up(None)
                    self._listen(conn)
            except psycopg.Error as exc:
                self._lost(exc)
            except Exception as exc:  # the thread must outlive any one failure
                log.exception("replication listener failed")
                self._lost(exc)
            if not self._stop.is_set():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _listen(self, conn: Any) -> None:
        next_poll = time.monotonic() + self.poll_interval
        while not self._stop.is_set():
            for note in conn.notifies(timeout=0.5):
                self.state.notifications += 1
                try:
                    revision = int(note.payload)
                except ValueError:
                    continue
                self.state.seen = max(self.state.seen, revision)
                if revision > self.state.facts:
                    self._catch_up(revision)
                if self._stop.is_set():
                    return
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_interval
                self._catch_up(None)

    def _catch_up(self, revision: int | None) -> None:
        """Refresh the facts to `revision` (None: the store's newest, one cheap read)."""
        from authz.service import access

        try:
            service = access.service(self.runtime)
            if revision is None:
                self.state.seen = max(self.state.seen, self.runtime.store.revision())
            self.state.facts = service.fresh(access.Consistency(revision))
        except AuthzError as exc:
            # The store is away: checks fail closed meanwhile; the next poll or notice retries.
            self.state.last_error = type(exc).__name__
        self._changed()

    def _lost(self, exc: BaseException) -> None:
        if self.state.listening:
            log.warning(
                "replication channel lost; reconnecting", extra={"error": type(exc).__name__}
            )
        self.state.listening = False
        self.state.reconnects += 1
        self.state.last_error = type(exc).__name__
        self._changed()

    def _changed(self) -> None:
        if self.on_state is not None:
            self.on_state(self.state)

    def _connect_args(self) -> dict[str, Any]:
        """libpq parameters of the store's URL, failing as fast as the store's own pool."""
        url = self.runtime.store.engine.url
        settings = self.runtime.settings
        args: dict[str, Any] = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "dbname": url.database,
            "user": url.username,
            "autocommit": True,
            "application_name": "authz-replication",
            "connect_timeout": max(2, int(settings.pool_timeout)),
            # A half-open connection (a partition, a dead host) must not look like silence.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": settings.statement_timeout_ms + 2000,
        }
        if url.password:
            args["password"] = url.password
        args.update({k: v for k, v in url.query.items() if isinstance(v, str)})
        return args


def start(
    runtime: Runtime,
    poll_interval: float = POLL_INTERVAL,
    on_state: Callable[[ReplicaState], None] | None = None,
) -> Listener | None:
    """Start this process's listener (PostgreSQL only; once per runtime)."""
    if not is_postgresql(runtime.store):
        return None
    found = runtime.extras.get("replication")
    if isinstance(found, Listener):
        return found
    listener = Listener(runtime, poll_interval, on_state)
    runtime.extras["replication"] = listener
    return listener.start()


def listener_of(runtime: Runtime) -> Listener | None:
    found = runtime.extras.get("replication")
    return found if isinstance(found, Listener) else None
