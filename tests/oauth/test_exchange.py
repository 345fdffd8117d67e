"""RFC 8693 token exchange over HTTP with a real OAuth client: every flow and every refusal."""

from __future__ import annotations

import json

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

from authz.oauth import oauth_clients
from authz.oauth.oauth_clients import TOKEN_EXCHANGE
from tests.helpers import ACCESS, AUDIENCE, ID_TOKEN
from tests.oauth.conftest import Live

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
FULL = "appointments billing documents forms messages profile"


def test_sign_in_issues_an_rfc9068_token_that_verifies_against_the_jwks(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.exchange(live.api.id_token("sam@x.test"), f"client:{sam['id']}", ID_TOKEN)
    assert token["issued_token_type"] == ACCESS
    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    assert 0 < token["expires_in"] <= 900
    claims = live.verify(token["access_token"])
    assert claims["sub"] == f"client:{sam['id']}"
    assert claims["aud"] == AUDIENCE
    assert claims["client_id"] == live.api.client_id
    assert claims["org"] == live.api.org_id
    assert claims["authz_via"] == "self"
    assert claims["scope"] == FULL == token["scope"]
    assert "act" not in claims and "grant" not in claims
    assert len(claims["jti"]) >= 16


def test_sign_in_as_staff_and_with_a_generic_jwt(live: Live) -> None:
    api = live.api
    token = live.exchange(api.id_token(api.provider_email), f"provider:{api.provider_id}", JWT_TYPE)
    claims = live.verify(token["access_token"])
    assert claims["sub"] == f"provider:{api.provider_id}" and claims["scope"] == "authz:admin"
    # A provider's token administers the organization.
    r = requests.get(
        f"{live.url}/v1/clients",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    )
    assert r.status_code == 200


def test_sign_in_refusals(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    other = live.api.client("Ann", "adult", "ann@x.test")
    id_token = live.api.id_token("sam@x.test")
    live.refused("invalid_target", id_token, f"client:{other['id']}", subject_token_type=ID_TOKEN)
    live.assert_refusal_audited("not bound to this login", id_token)
    live.refused("invalid_target", id_token, "client:cli_nosuch", subject_token_type=ID_TOKEN)
    live.refused("invalid_target", id_token, "account:x", subject_token_type=ID_TOKEN)
    unverified = live.api.id_token("sam@x.test", verified=False)
    live.refused("invalid_request", unverified, f"client:{sam['id']}", subject_token_type=ID_TOKEN)
    live.assert_refusal_audited("not verified", unverified)
    # One of our access tokens is not an ID token.
    mine = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    live.refused("invalid_request", mine, f"client:{sam['id']}", subject_token_type=ID_TOKEN)


def test_shared_email_toggle_and_back(live: Live) -> None:
    mum = live.api.client("Maria", "adult", "family@x.test")
    kid = live.api.client("Leo", "adult", "family@x.test")
    mine = live.sign_in(f"client:{mum['id']}", "family@x.test")
    toggled = live.exchange(mine, f"client:{kid['id']}")
    claims = live.verify(toggled["access_token"])
    assert claims["sub"] == f"client:{kid['id']}" and claims["authz_via"] == "shared_email"
    # API.md: `act` names the login's own account, so every decision says which login acted.
    assert claims["act"] == {"sub": f"client:{mum['id']}"}
    assert "family@x.test" not in json.dumps(claims)  # the group tag, never the address
    back = live.exchange(toggled["access_token"], f"client:{mum['id']}")
    assert live.verify(back["access_token"])["sub"] == f"client:{mum['id']}"


def test_switch_account_and_back(live: Live) -> None:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, caregiver_token = live.api.grant(receiver["id"], "jenna@x.test")
    caregiver = live.verify(caregiver_token, AUDIENCE)["sub"]
    switched = live.exchange(caregiver_token, f"client:{receiver['id']}")
    assert switched["issued_token_type"] == ACCESS
    claims = live.verify(switched["access_token"])
    assert claims["sub"] == f"client:{receiver['id']}"
    assert claims["act"] == {"sub": caregiver}
    assert claims["grant"] == link["id"]
    assert claims["authz_via"] == "delegation"
    assert claims["scope"] == FULL
    back = live.exchange(switched["access_token"], caregiver)
    back_claims = live.verify(back["access_token"])
    assert back_claims["sub"] == caregiver and back_claims["authz_via"] == "self"
    assert "act" not in back_claims


def test_scope_is_narrowed_never_widened(live: Live) -> None:
    receiver = live.api.client("Sam", "adult", "sam@x.test")
    link, caregiver_token = live.api.grant(receiver["id"], "jenna@x.test")
    target = f"client:{receiver['id']}"
    narrowed = live.exchange(caregiver_token, target, scope="billing")
    assert narrowed["scope"] == "billing" == live.verify(narrowed["access_token"])["scope"]
    live.api.ok(
        "PATCH",
        f"/v1/clients/{receiver['id']}/links/{link['id']}",
        {"portal_access": {"enabled": True, "access_level": "billing"}},
    )
    level = live.exchange(caregiver_token, target)
    assert level["scope"] == "billing profile"
    err = live.refused("invalid_scope", caregiver_token, target, scope="billing documents")
    assert "exceeds" in err.description
    live.assert_refusal_audited("exceeds", caregiver_token)
    live.refused("invalid_scope", caregiver_token, target, scope="authz:admin")


def test_audience_must_be_registered_for_the_client(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    mine = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    live.refused("invalid_target", mine, f"client:{sam['id']}", audience="https://evil.test")
    live.assert_refusal_audited("audience", mine)


def _post(live: Live, data: list[tuple[str, str]], query: str = "") -> requests.Response:
    return requests.post(
        f"{live.token_url}{query}",
        data=data,
        auth=(live.api.client_id, live.api.client_secret),
        timeout=10,
    )


def test_request_parameters_follow_rfc8693(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    mine = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    base = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", mine),
        ("subject_token_type", ACCESS),
        ("resource", f"client:{sam['id']}"),
    ]

    def error(data: list[tuple[str, str]], query: str = "") -> str:
        r = _post(live, data, query)
        assert r.status_code in (400, 401), r.text
        assert r.headers["Cache-Control"] == "no-store"
        return str(r.json()["error"])

    assert error([p for p in base if p[0] != "subject_token"]) == "invalid_request"
    assert error([p for p in base if p[0] != "subject_token_type"]) == "invalid_request"
    assert error([p for p in base if p[0] != "resource"]) == "invalid_request"
    assert error([*base[:2], ("subject_token_type", "urn:x"), base[3]]) == "invalid_request"
    assert error([*base, ("requested_token_type", ID_TOKEN)]) == "invalid_request"
    assert error([*base, ("subject_token", mine)]) == "invalid_request"
    assert error([*base, ("resource", "client:cli_other")]) == "invalid_target"
    assert error([*base, ("audience", AUDIENCE), ("audience", "x")]) == "invalid_target"
    assert error([*base, ("actor_token", mine)]) == "invalid_request"
    assert error([*base, ("actor_token_type", ACCESS)]) == "invalid_request"
    other = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    assert error([*base, ("actor_token", other), ("actor_token_type", ACCESS)]) == (
        "invalid_request"
    )
    # Tokens never travel in the URL.
    assert error(base[:1] + base[2:], f"?subject_token={mine}") == "invalid_request"
    # The actor may be given when it is the subject itself (the human acting).
    r = _post(live, [*base, ("actor_token", mine), ("actor_token_type", ACCESS)])
    assert r.status_code == 200 and r.json()["issued_token_type"] == ACCESS
    # A wrong client secret is an authentication failure, not an exchange refusal.
    r = requests.post(live.token_url, data=base, auth=(live.api.client_id, "nope"), timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_a_client_without_the_grant_type_is_unauthorized(live: Live) -> None:
    sam = live.api.client("Sam", "adult", "sam@x.test")
    mine = live.sign_in(f"client:{sam['id']}", "sam@x.test")
    oc = oauth_clients.create_client(
        live.api.rt.store,
        "test",
        live.api.org_id,
        [AUDIENCE],
        ["authz:check", "profile"],
        grant_types=["client_credentials"],
    )
    session = live.session(oc["client_id"], oc["client_secret"])
    live.refused("unauthorized_client", mine, f"client:{sam['id']}", session=session)
    live.assert_refusal_audited("may not exchange", mine)


def test_private_key_jwt_client_exchanges_and_introspects(live: Live) -> None:
    key = ECKey.generate_key("P-256")
    public = key.as_dict(private=False) | {"kid": "portal-1", "alg": "ES256", "use": "sig"}
    oc = oauth_clients.create_client(
        live.api.rt.store,
        "test",
        live.api.org_id,
        [AUDIENCE],
        ["profile", "billing"],
        auth_method="private_key_jwt",
        jwks={"keys": [public]},
    )
    session = OAuth2Session(
        oc["client_id"],
        key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
    )
    session.register_client_auth_method(
        PrivateKeyJWT(live.token_url, alg="ES256", headers={"kid": "portal-1"})
    )
    sam = live.api.client("Sam", "adult", "sam@x.test")
    token = live.exchange(
        live.api.id_token("sam@x.test"), f"client:{sam['id']}", ID_TOKEN, session=session
    )
    claims = live.verify(token["access_token"])
    assert claims["client_id"] == oc["client_id"] and claims["scope"] == "billing profile"
    assert live.introspect(token["access_token"], session)["active"] is True
    assert live.revoke(token["access_token"], session).status_code == 200
    assert live.introspect(token["access_token"], session) == {"active": False}
