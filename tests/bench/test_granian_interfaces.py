"""`python -m bench granian_interfaces`: every server it compares answers the same POST the same
way, so that the table compares interfaces and nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import requests

from bench import granian_interfaces
from bench.common import free_port
from bench.http_checks import _start, _stop, live_in_group

ROOT = Path(__file__).resolve().parents[2]


def test_each_interface_reads_the_body_and_answers_the_constant() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in granian_interfaces.SERVERS:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        server = _start(granian_interfaces.command(name, port), env, url, "/")
        try:
            ok = requests.post(url, data=granian_interfaces.BODY, timeout=10)
            # The body is parsed: one that is not JSON fails the handler (a 500, not the answer).
            broken = requests.post(url, data=b"{not json", timeout=10)
        finally:
            # These servers hold nothing to write: a short grace, then the group is killed.
            _stop(server, grace=5)
        # Stopped means stopped: no worker outlives its master (none is left in the group).
        assert live_in_group(server.pid) == [], name
        assert ok.status_code == 200, name
        assert ok.headers["content-type"] == "application/json", name
        assert json.loads(ok.content) in ({"allowed": True}, {"ok": True}), name
        if name != "flask":  # the bare Flask ceiling ignores the body, as in http_checks
            assert broken.status_code == 500, name
