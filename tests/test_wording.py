"""Answers read as plain English: articles agree with their nouns, and a link's relationship is
said from the side of whoever reads it."""

from __future__ import annotations

from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject
from authz.policy.facts import FactIndex
from authz.service.access import about_the_token
from tests.helpers import Api


def test_an_action_on_the_wrong_type_reads_with_the_right_articles() -> None:
    facts = FactIndex.from_rows([("org_1", "Practice", [])], [], [("rev_1", "org_1", "R")])
    engine = Engine(PolicySet.load(), facts)
    denied = engine.check(
        CheckRequest(
            Subject("reviewer:rev_1", "org_1"),
            "invoice.pay",
            Resource("appointment", "apt_1", "cli_1"),
        )
    )
    assert not denied.allowed
    assert denied.reason == "invoice.pay applies to an invoice, not an appointment"


def test_the_linked_indicator_says_the_relationship_from_each_side(api: Api) -> None:
    mia = api.client("Mia", "minor")
    carlos = api.client("Carlos", "adult", "carlos@x.test")
    api.link(mia["id"], carlos["id"], "parent")  # Carlos is Mia's parent

    def indicator(me: str, other: str) -> tuple[str, str]:
        links = api.ok("GET", f"/v1/clients/{me}")["links"]
        (entry,) = [x for x in links if x["client_id"] == other]
        return entry["relationship"], entry["direction"]

    assert indicator(mia["id"], carlos["id"]) == ("parent", "outgoing")
    assert indicator(carlos["id"], mia["id"]) == ("child", "incoming")


def test_a_refused_user_token_is_named_once(api: Api) -> None:
    backend = api.service_token("authz:check")

    def reason(token: str) -> str:
        body = {
            "token": token,
            "action": "profile.read",
            "resource": {"type": "client", "id": "cli_x", "owner": "cli_x"},
        }
        return str(api.ok("POST", "/v1/access/check", body, token=backend)["reason"])

    assert reason("x") == "the user's access token: not a compact JWS"
    assert about_the_token("the token was revoked") == "the user's access token was revoked"
    assert about_the_token("token expired") == "the user's access token expired"
    assert about_the_token(
        "the token's audience is not one its OAuth client is registered for"
    ) == ("the user's access token's audience is not one its OAuth client is registered for")
