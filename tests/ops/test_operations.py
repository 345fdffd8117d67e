"""Health, readiness, metrics, request ids, logs and rate limits, through HTTP."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from api import create_app
from api.observability import JsonFormatter
from authz.tokens import keys
from tests.helpers import Api


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if match and match[1] == name:
            got = ",".join(sorted(match[2].split(",")))
            if got == want:
                return float(match[3])
    return 0.0


def test_healthz_and_readyz(api: Api) -> None:
    live = api.http.get("/healthz")
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    body = ready.get_json()
    assert body["revision"] == str(api.rt.store.revision())
    assert body["checks"]["store"]["ok"] and body["checks"]["signing_keys"]["ok"]
    api.client("Sam")
    assert int(api.http.get("/readyz").get_json()["revision"]) > int(body["revision"])


def test_readyz_is_503_without_a_signing_key(settings_env: dict[str, str]) -> None:
    app = create_app(settings_env)
    try:
        r = app.test_client().get("/readyz")
        assert r.status_code == 503
        assert r.mimetype == "application/problem+json"
        problem = r.get_json()
        assert problem["checks"]["signing_keys"]["ok"] is False
        assert problem["checks"]["store"]["ok"] is True
        assert "signing" in problem["detail"]
        assert app.test_client().get("/healthz").status_code == 200
        keys.ensure_key(app.extensions["authz"].store, "test", keys.ACCESS_TOKEN)
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        app.extensions["authz"].close()


def test_request_id_is_echoed_or_made(api: Api) -> None:
    given = api.http.get("/healthz", headers={"X-Request-Id": "abc-123.x"})
    assert given.headers["X-Request-Id"] == "abc-123.x"
    made = api.http.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    hostile = api.http.get("/healthz", headers={"X-Request-Id": "x\u2028y" + "z" * 300})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-Id"])
    problem = api.http.get("/v1/clients", headers={"X-Request-Id": "req-401"})
    assert problem.status_code == 401 and problem.headers["X-Request-Id"] == "req-401"


def test_metrics_count_requests_tokens_and_latency(api: Api) -> None:
    before = api.http.get("/metrics").get_data(as_text=True)
    api.service_token("authz:admin")
    bad = api.token_request({"grant_type": "client_credentials", "scope": "authz:nope"})
    assert bad.status_code == 400
    api.call("GET", "/v1/clients")
    r = api.http.get("/metrics")
    assert r.status_code == 200 and r.mimetype.startswith("text/plain")
    after = r.get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    issued = {"grant_type": "client_credentials", "result": "issued"}
    assert delta("authz_token_requests_total", **issued) == 1
    scope = {"grant_type": "client_credentials", "result": "invalid_scope"}
    assert delta("authz_token_requests_total", **scope) == 1
    ok = {"method": "GET", "route": "/v1/clients", "status": "200"}
    assert delta("authz_http_requests_total", **ok) == 1
    latency = {"method": "GET", "route": "/v1/clients"}
    assert delta("authz_http_request_duration_seconds_count", **latency) == 1
    assert "authz_store_errors_total" in after or "authz_store_errors_created" in after


def test_metrics_count_decisions_by_result(api: Api) -> None:
    sam = api.client("Sam", "adult", "sam@x.test")
    user = api.sign_in(f"client:{sam['id']}", "sam@x.test")
    service = api.service_token("authz:check")
    before = api.http.get("/metrics").get_data(as_text=True)
    check = {
        "token": user,
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": sam["id"]},
    }
    api.ok("POST", "/v1/access/check", check, token=service)
    api.ok(
        "POST",
        "/v1/access/check-batch",
        {"checks": [check, dict(check, action="invoice.steal")]},
        token=service,
    )
    after = api.http.get("/metrics").get_data(as_text=True)

    def delta(**labels: str) -> float:
        return _sample(after, "authz_decisions_total", **labels) - _sample(
            before, "authz_decisions_total", **labels
        )

    assert delta(endpoint="check", result="allowed") == 1
    assert delta(endpoint="check-batch", result="allowed") == 1
    assert delta(endpoint="check-batch", result="denied") == 1


def test_access_log_is_json_with_request_id_and_no_secrets(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    _link, token = api.grant(api.client("Sam")["id"], "jenna@x.test")
    invite_token = "tok" + "A" * 40
    with caplog.at_level(logging.INFO, logger="authz.access"):
        api.call("POST", f"/v1/invites/{invite_token}/accept", {}, token=token)
        api.token_request({"grant_type": "client_credentials"})
        api.http.get("/healthz", headers={"X-Request-Id": "trace-7"})
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert lines
    parsed = [json.loads(line) for line in lines]
    for line in lines:
        for secret in (token, invite_token, api.client_secret, api.provider_token()):
            assert secret not in line
    accept = next(p for p in parsed if p.get("route") == "/v1/invites/<token>/accept")
    assert accept["status"] in (404, 410) and accept["request_id"]
    assert accept["principal"].startswith("client:")
    assert any(p.get("request_id") == "trace-7" for p in parsed)


def test_formatter_masks_tokens_and_secrets_in_any_message() -> None:
    record = logging.makeLogRecord(
        {
            "name": "authz.x",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "got %s with client_secret=hunter2&subject_token=abc and Bearer xyz.abc",
            "args": ("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",),
        }
    )
    line = JsonFormatter().format(record)
    for secret in ("eyJhbGciOiJFUzI1NiJ9", "hunter2", "=abc", "xyz.abc"):
        assert secret not in line
    assert json.loads(line)["level"] == "warning"


def _limited_app(settings_env: dict[str, str], **extra: str) -> tuple[Any, Api]:
    app = create_app({**settings_env, "AUTHZ_RATE_LIMIT": "3/minute", **extra})
    rt = app.extensions["authz"]
    keys.ensure_key(rt.store, "test", keys.ACCESS_TOKEN)
    keys.ensure_key(rt.store, "test", keys.DEV_ISSUER)
    return app, Api.bootstrap(app)


def test_token_endpoint_is_limited_per_client(settings_env: dict[str, str]) -> None:
    app, api = _limited_app(settings_env)
    try:
        other = Api.bootstrap(app, name="Other")
        grant = {"grant_type": "client_credentials"}
        assert [api.token_request(grant).status_code for _ in range(3)] == [200] * 3
        refused = api.token_request(grant)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.get_json()["error"] == "temporarily_unavailable"
        assert "access_token" not in refused.get_json()
        # Another OAuth client has its own budget; other endpoints are not limited.
        assert other.token_request(grant).status_code == 200
        assert all(api.http.get("/healthz").status_code == 200 for _ in range(5))
    finally:
        app.extensions["authz"].close()


def test_replicas_share_limits_through_redis(settings_env: dict[str, str]) -> None:
    redis = {"AUTHZ_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379"}
    first, api = _limited_app(settings_env, **redis)
    second = create_app({**settings_env, "AUTHZ_RATE_LIMIT": "3/minute", **redis})
    try:
        grant = {"grant_type": "client_credentials"}
        on_second = second.test_client()
        assert api.token_request(grant).status_code == 200
        assert api.token_request(grant).status_code == 200
        r = on_second.post("/oauth/token", data=grant, headers=api.basic())
        assert r.status_code == 200
        refused = on_second.post("/oauth/token", data=grant, headers=api.basic())
        assert refused.status_code == 429 and refused.headers["Retry-After"]
        assert api.token_request(grant).status_code == 429
    finally:
        for app in (first, second):
            app.extensions["authz"].close()


def test_checks_are_limited_per_client_even_on_the_hot_path(settings_env: dict[str, str]) -> None:
    app, api = _limited_app(settings_env)
    try:
        sam = api.client("Sam", "adult", "sam@x.test")
        user = api.sign_in(f"client:{sam['id']}", "sam@x.test")
        service = api.service_token("authz:check")
        check = {
            "token": user,
            "action": "invoice.read",
            "resource": {"type": "invoice", "id": "inv_1", "owner": sam["id"]},
        }
        answers = [api.call("POST", "/v1/access/check", check, token=service) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[-1].mimetype == "application/problem+json"
        assert int(answers[-1].headers["Retry-After"]) >= 1
    finally:
        app.extensions["authz"].close()
