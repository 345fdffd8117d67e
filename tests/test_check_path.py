"""`POST /v1/access/check` on its hot path: decisions answered without Flask's request
machinery, everything else (every error) answered by the Flask view, the one way."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from authz.service import access
from authz.store.models import Decision as DecisionRow
from tests.helpers import Api
from tests.test_access_api import _family


def _boom() -> Any:
    raise RuntimeError("the Flask view was asked")


@pytest.fixture
def flask_view_broken(app: Any) -> Any:
    """The Flask view raises: whatever still answers 200 came from the hot path."""

    original = app.view_functions["access.check"]
    app.view_functions["access.check"] = _boom
    yield app
    app.view_functions["access.check"] = original


def _body(f: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "token": f["delegated"],
        "action": "invoice.pay",
        "resource": {"type": "invoice", "id": "inv_1", "owner": f["sam"]["id"]},
        "context": {"payment_method": "pm_sam"},
        **extra,
    }


def test_a_decision_is_answered_on_the_hot_path_as_the_view_answers_it(api: Api, app: Any) -> None:
    f = _family(api)
    headers = {"Authorization": f"Bearer {f['service']}"}
    # The Flask app alone (under the hot path), as the reference answer.
    by_view = Client(app.wsgi_app.flask_wsgi).post(
        "/v1/access/check", json=_body(f), headers=headers
    )
    app.view_functions["access.check"], original = _boom, app.view_functions["access.check"]
    try:
        fast = api.http.post("/v1/access/check", json=_body(f), headers=headers)
    finally:
        app.view_functions["access.check"] = original
    assert fast.status_code == by_view.status_code == 200
    assert fast.headers["Content-Type"] == by_view.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", fast.headers["X-Request-Id"])
    one, other = fast.get_json(), json.loads(by_view.get_data())
    assert one["allowed"] is other["allowed"] is True
    assert one.pop("decision_id") != other.pop("decision_id")
    assert one == other
    assert fast.get_data().endswith(b"}\n")


def test_request_ids_metrics_and_decisions_are_kept(api: Api, flask_view_broken: Any) -> None:
    f = _family(api)
    r = api.http.post(
        "/v1/access/check",
        json=_body(f),
        headers={"Authorization": f"Bearer {f['service']}", "X-Request-Id": "portal-42"},
    )
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "portal-42"
    text = api.http.get("/metrics").get_data(as_text=True)
    assert re.search(
        r'authz_http_requests_total\{method="POST",route="/v1/access/check",status="200"\} [1-9]',
        text,
    )
    assert re.search(r'authz_decisions_total\{endpoint="check",result="allowed"\} [1-9]', text)
    access.service(api.rt).log.flush()
    with api.rt.store.read() as session:
        row = session.scalars(
            select(DecisionRow).where(DecisionRow.id == r.get_json()["decision_id"])
        ).one()
        assert row.allowed and row.action == "invoice.pay"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, "{}", 401),  # no token
        ({"Authorization": "Bearer not-a-token"}, "{}", 401),
        ({"Authorization": "Basic eDp5"}, "{}", 401),
        (None, "{not json", 400),
        (None, "[1, 2]", 400),
        (None, '{"action": "invoice.pay", "extra": 1}', 400),
        (None, '{"token": "a\\u0000b", "action": "x"}', 400),
        (None, '{"consistency": {"at_least": "soon"}}', 400),
    ],
)
def test_every_error_is_a_problem_from_the_flask_view(
    api: Api, headers: dict[str, str] | None, body: str, status: int
) -> None:
    if headers is None:
        headers = {"Authorization": f"Bearer {api.service_token('authz:check')}"}
    r = api.http.post(
        "/v1/access/check",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["status"] == status
    assert r.headers["X-Request-Id"]


def test_a_body_that_is_not_plain_json_goes_to_the_view(api: Api) -> None:
    token = api.service_token("authz:check")
    r = api.http.post(
        "/v1/access/check",
        data="action=invoice.pay",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert r.status_code == 400 and "Content-Type" in json.dumps(r.get_json())
    r = api.http.post(
        "/v1/access/check",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.mimetype == "application/problem+json"
