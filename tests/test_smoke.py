from tests.helpers import Api


def test_discovery_and_sign_in(api: Api) -> None:
    meta = api.http.get("/.well-known/oauth-authorization-server").get_json()
    assert meta["issuer"] == "http://authz.test"
    jwks = api.http.get("/.well-known/jwks.json").get_json()
    assert jwks["keys"][0]["alg"] == "ES256"
    token = api.provider_token()
    assert token.count(".") == 2
    created = api.client("Sam", "minor", "jenna@x.test")
    assert created["id"].startswith("cli_")
