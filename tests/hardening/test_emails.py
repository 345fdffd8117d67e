"""Emails are compared as identities (issue 12, finding 4): one rule, `normalize_email`."""

from __future__ import annotations

import secrets
import time

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.base.emails import normalize_email
from authz.base.errors import ValidationFailed
from authz.oauth.identity import DEV_AUDIENCE
from tests.helpers import ID_TOKEN, Api


def _raw_id_token(api: Api, email: str) -> str:
    """A development ID token carrying `email` exactly as given (an issuer that does not
    normalize)."""
    key = api.rt.dev_keys.signing_key()
    now = int(time.time())
    claims = {
        "iss": api.rt.settings.dev_issuer,
        "sub": f"dev|{secrets.token_hex(4)}",
        "aud": DEV_AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "email": email,
        "email_verified": True,
        "nonce": secrets.token_urlsafe(8),
    }
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})


def test_a_kelvin_sign_does_not_sign_in_to_kate(api: Api) -> None:
    kate = api.client("Kate", "adult", "kate@one.test")
    for look_alike in ("\u212aate@one.test", "\uff4bate@one.test", "kate@one.tes\u0442"):
        r = api.token_request(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": _raw_id_token(api, look_alike),
                "subject_token_type": ID_TOKEN,
                "resource": f"client:{kate['id']}",
            }
        )
        assert r.status_code in (400, 401), (look_alike, r.get_json())
        assert "access_token" not in (r.get_json() or {})
    # The address itself, in any ASCII case, still signs in.
    r = api.token_request(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": _raw_id_token(api, "KATE@One.Test"),
            "subject_token_type": ID_TOKEN,
            "resource": f"client:{kate['id']}",
        }
    )
    assert r.status_code == 200, r.get_json()


@pytest.mark.parametrize(
    "bad",
    [
        "\u212aate@one.test",  # KELVIN SIGN
        "\u2126mega@one.test",  # OHM SIGN
        "\uff4bate@one.test",  # FULLWIDTH k
        "\ufb01x@one.test",  # LIGATURE fi
        "ka\u200bte@one.test",  # ZERO WIDTH SPACE
        "ka\u202ete@one.test",  # RIGHT-TO-LEFT OVERRIDE
        "ka\x07te@one.test",  # BEL
        "ka\x7fte@one.test",  # DEL
        "ka\x00te@one.test",  # NUL
    ],
)
def test_confusable_and_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValidationFailed):
        normalize_email(bad)


def test_the_rule_lowers_ascii_only_composes_and_encodes_the_domain() -> None:
    assert normalize_email("  Kate@One.TEST ") == "kate@one.test"
    # NFD from a keyboard and NFC are one address; non-ASCII case is not folded.
    assert normalize_email("e\u0301mile@x.test") == normalize_email("\u00e9mile@x.test")
    assert normalize_email("\u00c9mile@x.test") != normalize_email("\u00e9mile@x.test")
    assert normalize_email("ana@b\u00fccher.test") == "ana@xn--bcher-kva.test"
    assert normalize_email("ana@xn--bcher-kva.test") == "ana@xn--bcher-kva.test"


@given(st.text(min_size=1, max_size=30))
def test_normalizing_twice_changes_nothing(text: str) -> None:
    try:
        once = normalize_email(text + "@x.test")
    except ValidationFailed:
        return
    assert normalize_email(once) == once
