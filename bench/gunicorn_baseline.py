"""The server `authz serve --workers N` ran on before granian (gunicorn, gthread), kept here
only as the baseline `python -m bench http_checks` measures the new one against, with exactly
the settings it had: 4 threads a worker, a listening socket per worker (SO_REUSEPORT), each
worker building the app, its listener and its frozen facts before the first request, and
writing its pending decisions when it exits."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from api import wsgi_server
from api.metrics import worker_exit
from api.observability import configure_logging


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], load: Callable[[], Any]) -> None:
        self.options, self._load = options, load
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()


def load_authz() -> Any:
    """What each of today's gunicorn workers loaded: the app, a replica of its own, settled."""
    from api.app import create_app

    configure_logging(os.environ.get("AUTHZ_LOG_LEVEL", "INFO"))
    app = create_app()
    wsgi_server.start_replication(app)
    wsgi_server.settle(app)
    return app


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        app.extensions["authz"].close()


def _child_exit(server: Any, worker: Any) -> None:
    worker_exit(worker.pid)


def run(host: str, port: int, workers: int, load: Callable[[], Any] = load_authz) -> None:
    """gunicorn with N gthread workers, as `authz serve --workers N` ran before granian."""
    wsgi_server.ensure_port_free(host, port)
    worker_exit(os.getpid())
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": 4,
            "reuse_port": True,
            "graceful_timeout": wsgi_server.GRACEFUL_TIMEOUT,
            "timeout": 30,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "preload_app": False,
            "worker_exit": _worker_exit,
            "child_exit": _child_exit,
        },
        load,
    ).run()


def serve_authz(port: int) -> None:
    """Today's `authz serve --workers 2` on gunicorn (as `authz serve` sets the process up)."""
    import tempfile

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="authz-metrics-"))
    from api.app import create_app

    configure_logging(os.environ.get("AUTHZ_LOG_LEVEL", "INFO"))
    create_app().extensions["authz"].check()
    run("127.0.0.1", port, 2)
