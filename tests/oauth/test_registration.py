"""Registering a portal backend explains itself: `oauth-client create --for portal|reviewer`
gives the scopes each kind of sign-in needs and says which sign-ins the client can exchange,
audiences must be what tokens will carry, and the token endpoint says in plain words what was
wrong (RFC 6749 §5.2 `error_description`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import AUDIENCE, ID_TOKEN, Api
from tests.test_cli import ROOT

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _cli(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authz.cli", *args],
        env={**os.environ, **settings_env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _register(api: Api, settings_env: dict[str, str], *args: str) -> dict[str, Any]:
    done = _cli(
        settings_env, "oauth-client", "create", "--org", api.org_id, "--audience", AUDIENCE, *args
    )
    assert done.returncode == 0, done.stderr
    created = _cli(
        settings_env,
        "oauth-client",
        "create",
        "--org",
        api.org_id,
        "--audience",
        AUDIENCE,
        "--json",
        *args,
    )
    assert created.returncode == 0, created.stderr
    return dict(json.loads(created.stdout))


def _sign_in(api: Api, client: dict[str, Any], resource: str, email: str) -> Any:
    return api.token_request(
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": api.id_token(email),
            "subject_token_type": ID_TOKEN,
            "resource": resource,
            "audience": AUDIENCE,
        },
        client_id=client["client_id"],
        secret=client["client_secret"],
    )


def test_a_check_only_client_is_told_what_a_provider_sign_in_needs(
    api: Api, settings_env: dict[str, str]
) -> None:
    table = _cli(
        settings_env,
        "oauth-client",
        "create",
        "--org",
        api.org_id,
        "--audience",
        AUDIENCE,
        "--scope",
        "authz:check",
    ).stdout
    assert "provider sign-ins: refused: needs one of authz:admin" in table
    client = _register(api, settings_env, "--scope", "authz:check")
    assert client["sign_ins"]["reviewer"] == "refused: needs one of authz:review"
    refused = _sign_in(api, client, f"provider:{api.provider_id}", api.provider_email)
    assert refused.status_code == 400
    body = refused.get_json()
    assert body["error"] == "invalid_scope"
    assert body["error_description"] == (
        "this client holds none of the scopes a provider sign-in carries (authz:admin); "
        "register the backend with `authz oauth-client create --for portal` (or --for reviewer)"
    )


def test_presets_give_each_kind_of_backend_the_sign_ins_it_needs(
    api: Api, settings_env: dict[str, str]
) -> None:
    portal = _register(api, settings_env, "--for", "portal")
    assert portal["sign_ins"]["provider"] == "authz:admin"
    assert portal["sign_ins"]["client"].split() == sorted(
        ["profile", "appointments", "billing", "documents", "forms", "messages"]
    )
    assert portal["sign_ins"]["reviewer"].startswith("refused")
    signed_in = _sign_in(api, portal, f"provider:{api.provider_id}", api.provider_email)
    assert signed_in.status_code == 200, signed_in.get_json()

    reviewer = _register(api, settings_env, "--for", "reviewer")
    assert reviewer["scopes"] == ["authz:review"]
    reviewed = _sign_in(api, reviewer, f"reviewer:{api.reviewer_id}", "review@practice.test")
    assert reviewed.status_code == 200, reviewed.get_json()
    assert reviewed.get_json()["scope"] == "authz:review"


@pytest.mark.parametrize(
    ("audience", "message"),
    [
        (
            "notaurl",
            "'notaurl' is not an absolute https:// URL (a token's aud is the portal's URL)",
        ),
        ("https://p.test/?x=1", "no query, fragment or spaces"),
        ("ftp://p.test", "is not an absolute https:// URL"),
    ],
)
def test_an_audience_must_be_what_tokens_carry(
    api: Api, settings_env: dict[str, str], audience: str, message: str
) -> None:
    done = _cli(
        settings_env,
        "oauth-client",
        "create",
        "--org",
        api.org_id,
        "--audience",
        audience,
        "--for",
        "portal",
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("authz: audience: ") and message in lines[0]


def _basic(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


def test_token_endpoint_errors_say_what_was_wrong(api: Api) -> None:
    data = {"grant_type": "client_credentials", "scope": "authz:check"}
    cases = [
        (_basic(f"{api.client_id}:not-the-secret"), "the client secret does not match"),
        (
            {},
            "no client authentication: send client_id:client_secret with HTTP Basic "
            "(client_secret_basic), or a client_assertion (private_key_jwt)",
        ),
        (_basic("oc_nobody:secret"), "no active OAuth client oc_nobody (unknown, or disabled)"),
        (
            {"Authorization": "Basic !!!"},
            "the Authorization header is not Basic base64(client_id:client_secret)",
        ),
    ]
    for headers, description in cases:
        answer = api.http.post("/oauth/token", data=data, headers=headers)
        assert answer.status_code in (400, 401)
        body = answer.get_json()
        assert body == {"error": "invalid_client", "error_description": description}
    introspected = api.http.post(
        "/oauth/introspect", data={"token": "x"}, headers=_basic(f"{api.client_id}:wrong")
    )
    assert introspected.get_json()["error_description"] == "the client secret does not match"
