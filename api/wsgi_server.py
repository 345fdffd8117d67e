"""`authz serve --workers N`: granian (a Rust HTTP server) in front of the WSGI app.

granian parses HTTP and handles connections outside the interpreter, so a worker's Python time
goes to the request itself: on the same two cores the check endpoint answered 2.6x as many
requests as under gunicorn (`python -m bench http_checks` measures both).

Each worker is a process of its own (forked by granian's master) and a replica of its own: it
builds the app, starts its listener and catches up, loads the policy and every grant and takes
them out of the garbage collector, all before it accepts its first connection. On SIGTERM the
master stops the workers; each stops accepting, lets in-flight requests finish (up to
`GRACEFUL_TIMEOUT` seconds, then it is killed), then writes the decisions still batched in
memory before the process goes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from granian.server.mp import MPServer

from api.metrics import worker_exit
from api.observability import configure_logging

GRACEFUL_TIMEOUT = 20
#: Python threads a worker runs requests on; granian queues the others in Rust. One: nearly all
#: of a request's time needs the GIL, so a second thread only adds switching. Measured with
#: checks at 16 connections, 2 workers, SQLite (paired rounds): 1 thread 12.1k checks/s, p99
#: 27 ms; 2 threads 8.8k/s, p99 36 ms. A request waiting on the store holds up its worker's
#: queue, for at most the store's timeouts (the same bounds that make checks fail closed).
BLOCKING_THREADS = 1
log = logging.getLogger("authz.server")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: This worker's app, once loaded (None in the master).
_worker_app: Any = None

#: granian's own lines (start, stop, worker exits) go through the service's JSON log on stderr.
_GRANIAN_LOGGING = {
    "formatters": {},
    "handlers": {},
    "loggers": {
        "_granian": {"propagate": True},
        "granian.access": {"propagate": True, "level": "WARNING"},
    },
}


def settle(app: Any) -> None:
    """Load the policy and every grant before the first request, then take what is loaded
    out of the garbage collector's full collections.

    A check-batch makes thousands of short-lived objects, so full collections come often, and
    each one walks every object the process holds: the app, the drivers and the fact index.
    Frozen, those are never walked (they live as long as the worker); measured on a
    check-batch load, 15 % less CPU a decision."""
    import gc

    from authz.service import access

    access.service(app.extensions["authz"])
    gc.collect()
    gc.freeze()


def start_replication(app: Any) -> None:
    """Listen for other replicas' writes and keep this process's policy facts warm."""
    from api.metrics import observe_replica
    from authz.service import access

    access.start_replication(app.extensions["authz"], on_state=observe_replica)


def _load_worker(_target: str) -> WsgiApp:
    """In each worker, before it listens: the app, its listener, its loaded facts."""
    global _worker_app
    from api.app import create_app

    configure_logging(os.environ.get("AUTHZ_LOG_LEVEL", "INFO"))
    app = create_app()
    start_replication(app)
    settle(app)
    _worker_app = app
    wsgi: WsgiApp = app
    if log.isEnabledFor(logging.DEBUG):
        wsgi = _announced(app)
    return wsgi


def _announced(app: WsgiApp) -> WsgiApp:
    """Log each request's start (debug only: it costs every request a log call)."""

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # Only the method: the raw path can hold an invite token.
        log.debug(
            "request started",
            extra={"method": environ.get("REQUEST_METHOD"), "worker_pid": os.getpid()},
        )
        return app(environ, start_response)

    return wsgi


def _run_worker(*args: Any, **kwargs: Any) -> None:
    """A worker's life: granian's WSGI worker, which returns once its in-flight requests are
    done after SIGTERM; then the decisions still batched in memory are written (a graceful
    stop loses none) and the worker's live gauges leave `/metrics`."""
    try:
        MPServer._spawn_wsgi_worker(*args, **kwargs)
    finally:
        if _worker_app is not None:
            log.info("worker stopping", extra={"worker_pid": os.getpid()})
            _worker_app.extensions["authz"].close()
        worker_exit(os.getpid())


class _Server(MPServer):
    """granian's multi-process server; a worker that died and was replaced leaves `/metrics`."""

    def _respawn_workers(self, workers: Any, *args: Any, **kwargs: Any) -> Any:
        gone = [self.wrks[idx]._id() for idx in workers]
        result = super()._respawn_workers(workers, *args, **kwargs)
        for pid in gone:
            worker_exit(pid)
        return result

    def shutdown(self, exit_code: int = 0) -> None:
        if self.interrupt_signal:
            # A stop sent to the whole process group (Ctrl-C, a service manager) reaches the
            # workers too: their exit is the stop itself, not a crash to report with status 1.
            self.interrupt_children.clear()
        super().shutdown(exit_code)  # type: ignore[no-untyped-call]


def ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on. Each worker binds with SO_REUSEPORT, which
    would otherwise let a second `authz serve` share the port with the first, silently."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        # Connections of an earlier run in TIME_WAIT do not count; a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve_workers(
    host: str,
    port: int,
    workers: int,
    loader: Callable[[str], WsgiApp] = _load_worker,
    blocking_threads: int = BLOCKING_THREADS,
) -> None:
    """Serve with N granian worker processes until SIGTERM or SIGINT (then a graceful stop).

    `loader` builds the WSGI app in each worker (the benchmarks pass their own)."""
    ensure_port_free(host, port)
    # The master built an app to check the store and keys before forking; its gauges (all
    # zero) must not count as a live worker's, or `livemin` gauges would always read 0.
    worker_exit(os.getpid())
    level = os.environ.get("AUTHZ_LOG_LEVEL", "INFO").lower()
    server = _Server(
        "authz",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=blocking_threads,
        http=HTTPModes.http1,
        # On Linux each worker binds the port with SO_REUSEPORT, so the kernel spreads new
        # connections over the workers (one shared socket let a client's keep-alive
        # connections all land on one worker while the other idled).
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT,
        log_level=LogLevels(level) if level in LogLevels.__members__ else LogLevels.info,
        log_dictconfig=_GRANIAN_LOGGING,
        log_access=False,  # the app writes the access log, with request ids
        process_name=None,
    )
    server.serve(spawn_target=_run_worker, target_loader=loader)
