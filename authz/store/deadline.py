"""A client-side deadline on every PostgreSQL call: a stalled store fails, it does not hang.

PostgreSQL's `statement_timeout` is enforced by the server and TCP keepalives and
`tcp_user_timeout` by the kernel; none of them fires when the path to the server accepts and
acknowledges bytes but answers none (a stalled proxy, a frozen server, a half-dead load
balancer). So each call the engine makes on a connection (execute, commit, rollback, the pool's
ping) and each raw-driver block (`Watchdog.guard`) is registered with a watchdog thread, which
shuts the connection's socket down once the call has run past `limit` seconds: the driver's
wait then ends with an error, SQLAlchemy discards the connection, and the caller gets
`StoreUnavailable` (a 503). Nothing restarts: the next call opens a fresh connection.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.engine import Engine

_TICK = 0.1
_GUARDED = ("do_execute", "do_executemany", "do_execute_no_params", "do_commit", "do_rollback")


class Watchdog:
    """Shuts down the socket of a connection stuck in one call past its deadline."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        #: id(driver connection) → (deadline, connection); set and popped without a lock (the
        #: GIL makes each one atomic); the thread reads a copy.
        self._armed: dict[int, tuple[float, Any]] = {}
        self.fired = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="store-deadline", daemon=True
                    )
                    self._thread.start()

    @contextlib.contextmanager
    def guard(self, conn: Any, limit: float | None = None) -> Iterator[None]:
        """Bound the calls made on the driver connection `conn` inside the block."""
        key = id(conn)
        self._armed[key] = (time.monotonic() + (limit or self.limit), conn)
        self._ensure_thread()
        try:
            yield
        finally:
            self._armed.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(_TICK)
            now = time.monotonic()
            for key, (deadline, conn) in list(self._armed.items()):
                if now >= deadline and self._armed.get(key, (None,))[0] == deadline:
                    self._armed.pop(key, None)
                    self._shut(conn)

    def _shut(self, conn: Any) -> None:
        try:
            fd = conn.fileno()  # raises once the connection is closed: nothing to cut then
        except Exception:
            return
        with contextlib.suppress(OSError):
            # On a duplicate of the descriptor: the driver still owns (and closes) its own.
            sock = socket.socket(fileno=os.dup(fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        self.fired += 1


def install(engine: Engine, limit: float) -> Watchdog:
    """Guard every call `engine`'s dialect makes on a connection (and the pool's ping)."""
    dog = Watchdog(limit)
    dialect: Any = engine.dialect

    def wrap(name: str, conn_of: Callable[..., Any]) -> None:
        inner = getattr(dialect, name)

        @functools.wraps(inner)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            with dog.guard(conn_of(*args)):
                return inner(*args, **kwargs)

        setattr(dialect, name, guarded)

    for name in _GUARDED:
        # do_execute(cursor, …): the cursor knows its connection; the others take it directly.
        if name.startswith("do_execute"):
            wrap(name, lambda cursor, *_a, **_k: cursor.connection)
        else:
            wrap(name, lambda conn, *_a, **_k: conn)
    wrap("do_ping", lambda conn, *_a, **_k: conn)
    dialect.authz_deadline = dog
    return dog


def watchdog_of(engine: Engine) -> Watchdog | None:
    """The engine's watchdog (PostgreSQL engines), if any."""
    dog = getattr(engine.dialect, "authz_deadline", None)
    return dog if isinstance(dog, Watchdog) else None


def guard(engine: Engine, conn: Any) -> contextlib.AbstractContextManager[None]:
    """`Watchdog.guard` of `engine`'s watchdog for a raw driver connection, or nothing."""
    dog = watchdog_of(engine)
    return dog.guard(conn) if dog is not None else contextlib.nullcontext()
