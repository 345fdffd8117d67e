"""Hand-made hostile inputs (issue 12, findings 7-9): each gets a clear 4xx problem or OAuth
error, never a 500, and nothing it carries reaches the store or an export."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.helpers import Api

PROBLEM = "application/problem+json"


def _problem(r: Any, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == PROBLEM, r.mimetype
    body = r.get_json()
    assert body["status"] == status and body["detail"]
    return dict(body)


def _oauth_error(r: Any, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    body = r.get_json()
    assert body["error"] and body.get("error_description"), body
    return dict(body)


# -- finding 7: inputs that answered 500 ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/clients/cli_%00abc",
        "/v1/clients/cli_%00abc/contacts",
        "/v1/clients/cli_%00abc/links",
        "/v1/clients/cli_%00abc/payment-methods",
        "/v1/clients/cli_%00abc/notification-recipients",
        "/v1/clients/cli_x/links/lnk_%00",
        "/v1/clients/cli_x/contacts/con_%01",
        "/v1/access/who-can?client=cli_%00x",
    ],
)
def test_a_control_character_in_a_path_or_query_is_a_400(api: Api, path: str) -> None:
    body = _problem(api.call("GET", path))
    assert "control character" in body["detail"]


def test_a_nul_in_the_basic_client_id_is_an_oauth_error(api: Api) -> None:
    raw = base64.b64encode(b"oc_\x00abc:secret").decode()
    r = api.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "authz:check"},
        headers={"Authorization": f"Basic {raw}"},
    )
    body = _oauth_error(r, 400)  # refused at the request's edge, as an RFC 6749 error
    assert body["error"] == "invalid_request" and "control character" in body["error_description"]


def test_a_nul_in_a_resource_is_an_oauth_error(api: Api) -> None:
    r = api.token_request(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": api.id_token("a@x.test"),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "resource": "client:cli_\x00x",
        }
    )
    assert _oauth_error(r)["error"] in {"invalid_request", "invalid_target"}


def test_a_token_request_over_the_body_limit_is_a_413(api: Api) -> None:
    limit = api.rt.settings.max_body_bytes
    r = api.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "x" * (limit + 10)},
        headers=api.basic(),
    )
    _problem(r, 413)


def test_a_deeply_nested_client_assertion_is_refused(api: Api) -> None:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    payload = b64(b'{"iss": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assertion = f"{header}.{payload}.{b64(b'sig')}"
    r = api.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "authz:check",
            "client_id": api.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert _oauth_error(r, r.status_code)["error"] in {"invalid_client", "invalid_request"}
    assert r.status_code in (400, 401)


def test_a_revision_of_five_thousand_digits_is_a_400(api: Api) -> None:
    token = api.service_token("authz:check authz:check:subjects")
    r = api.call(
        "POST",
        "/v1/access/check",
        {
            "subject": "client:cli_x",
            "action": "client.read",
            "resource": {"type": "client", "id": "cli_x", "owner": "cli_x"},
            "consistency": {"at_least": "9" * 5000},
        },
        token=token,
    )
    assert "consistency.at_least" in json.dumps(_problem(r)["errors"])


# -- finding 8: client_credentials is as strict as the exchange -------------------------------


def _credentials(api: Api, form: Any, query: str = "", headers: Any = None) -> Any:
    return api.http.post(
        f"/oauth/token{query}", data=form, headers=api.basic() if headers is None else headers
    )


@pytest.mark.parametrize(
    "form, query, needle",
    [
        (
            [("grant_type", "client_credentials"), ("grant_type", "client_credentials")],
            "",
            "more than once",
        ),
        (
            [
                ("grant_type", "client_credentials"),
                ("scope", "authz:check"),
                ("scope", "authz:admin"),
            ],
            "",
            "more than once",
        ),
        ([("grant_type", "client_credentials")], "?scope=authz:admin", "not the URL"),
    ],
)
def test_client_credentials_refuses_repeated_and_url_parameters(
    api: Api, form: list[tuple[str, str]], query: str, needle: str
) -> None:
    from werkzeug.datastructures import MultiDict

    body = _oauth_error(_credentials(api, MultiDict(form), query))
    assert body["error"] == "invalid_request" and needle in body["error_description"]


def test_client_credentials_refuses_two_authentication_methods(api: Api) -> None:
    form = {"grant_type": "client_credentials", "client_secret": api.client_secret}
    body = _oauth_error(_credentials(api, form))
    assert "one client authentication method" in body["error_description"]


def test_client_credentials_refuses_another_client_id_beside_basic(api: Api) -> None:
    other = Api.bootstrap(api.app, name="Other")
    form = {"grant_type": "client_credentials", "client_id": other.client_id}
    body = _oauth_error(_credentials(api, form))
    assert "another client" in body["error_description"]
    # The same client id in both places is what RFC 6749 §2.3.1 allows.
    same = _credentials(api, {"grant_type": "client_credentials", "client_id": api.client_id})
    assert same.status_code == 200, same.get_json()


def test_introspection_refuses_two_authentication_methods(api: Api) -> None:
    token = api.service_token("authz:check")
    r = api.http.post(
        "/oauth/introspect",
        data={"token": token, "client_secret": api.client_secret},
        headers=api.basic(),
    )
    assert _oauth_error(r)["error"] == "invalid_request"


# -- finding 9: validation gaps -----------------------------------------------------------------


def test_an_id_with_a_trailing_newline_is_not_an_id(api: Api) -> None:
    sam = api.client("Sam", "adult", "sam@x.test")
    path = f"/v1/clients/{sam['id']}/payment-methods"
    r = api.call("POST", path, {"id": "pm_one1\n", "label": "Visa"})
    assert "id" in json.dumps(_problem(r)["errors"])
    api.ok("POST", path, {"id": "pm_one1", "label": "Visa"})
    assert api.call("GET", f"/v1/clients/{sam['id']}%0A").status_code == 400


def test_creating_a_client_refuses_fields_it_would_ignore(api: Api) -> None:
    r = api.call(
        "POST", "/v1/clients", {"first_name": "Ann", "client_type": "adult", "active": False}
    )
    assert "active" in json.dumps(_problem(r)["errors"])


def test_the_export_refuses_a_value_that_would_break_a_line() -> None:
    from authz.base.errors import Conflict
    from authz.compliance.policy_review.live import _line

    assert _line("g2", "pm_1", "cli_a") == "g2, pm_1, cli_a"
    for hostile in ("pm_1\n", "pm_1, cli_b", "pm_1\ng, client:x, self, cli_b", "#x", 'a"b'):
        with pytest.raises(Conflict):
            _line("g2", hostile, "cli_a")
