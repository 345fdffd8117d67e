"""Adolescent confidentiality through the check API: a caregiver's delegated token for a
14-year-old, labelled records, the minor's consent and its withdrawal, and the 18th birthday,
with no write between the consent's changes and the decisions they change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from authz.accounts import category_shares
from authz.base import clock
from authz.base.errors import Conflict, Forbidden, ValidationFailed
from authz.store.models import AuditEvent
from tests.helpers import Api


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield
    clock.reset()


def _years_before(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year - years)


def _check(api: Api, token: str, owner: str, rtype: str, labels: list[str] | None = None) -> Any:
    service = api.service_token("authz:check")
    resource: dict[str, Any] = {"type": rtype, "id": f"{rtype}_1", "owner": owner}
    if labels is not None:
        resource["labels"] = labels
    action = f"{rtype}.read"
    return api.ok(
        "POST",
        "/v1/access/check",
        {"token": token, "action": action, "resource": resource},
        token=service,
    )


def _family(api: Api, birth: dt.date) -> tuple[dict[str, Any], dict[str, Any], str]:
    sam = api.client("Sam", "minor", "fam@x.test", birth_date=birth.isoformat())
    link, caregiver = api.grant(sam["id"], "care@x.test")
    delegated = api.exchange(caregiver, f"client:{sam['id']}").get_json()["access_token"]
    return sam, link, delegated


def test_a_14_year_old_shares_psy_then_withdraws_then_comes_of_age(api: Api) -> None:
    # Five minutes before midnight: Sam is 14; Alex turns 18 at midnight.
    midnight = dt.datetime.combine(clock.now().date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    clock.travel(midnight - clock.now() - dt.timedelta(minutes=5))
    tomorrow = midnight.date()
    sam, link, delegated = _family(api, _years_before(tomorrow, 14) - dt.timedelta(days=30))
    caregiver_id = link["linked_client_id"]

    psy = _check(api, delegated, sam["id"], "document", ["PSY"])
    assert psy["allowed"] is False
    assert "adolescent band of US (13 to 17" in psy["reason"]
    assert "PSY-labelled" in psy["reason"]
    assert (
        psy["rule"] == "policies/adolescents.csv:8: p, adolescent_confidential, document.read, deny"
    )
    assert _check(api, delegated, sam["id"], "invoice")["allowed"] is True
    assert _check(api, delegated, sam["id"], "document")["allowed"] is True  # unlabelled

    # The caregiver's switched token cannot consent for Sam.
    body = {"caregiver_id": caregiver_id, "labels": ["PSY"]}
    forged = api.call("POST", f"/v1/clients/{sam['id']}/shares", body, token=delegated)
    assert forged.status_code == 403
    assert (
        api.call(
            "POST", f"/v1/clients/{sam['id']}/shares", {**body, "labels": ["XYZ"]}, token=delegated
        ).status_code
        == 400
    )
    minor = api.sign_in(f"client:{sam['id']}", "fam@x.test")
    shared = api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/shares",
        {**body, "statement": "I want my mum to see my therapy notes"},
        token=minor,
    )
    assert [(s["label"], s["withdrawn_at"]) for s in shared["items"]] == [("PSY", None)]
    assert _check(api, delegated, sam["id"], "document", ["PSY"])["allowed"] is True
    # Sharing PSY shares nothing else.
    assert _check(api, delegated, sam["id"], "document", ["PSY", "SEX"])["allowed"] is False

    api.ok(
        "POST",
        f"/v1/clients/{sam['id']}/shares/withdraw",
        {**body, "statement": "Sam asked at today's visit to stop sharing"},
    )  # the provider, on Sam's behalf
    assert _check(api, delegated, sam["id"], "document", ["PSY"])["allowed"] is False
    with api.rt.store.read() as session:
        kinds = list(
            session.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("share.%")))
        )
    assert kinds == ["share.given", "share.withdrawn"]

    alex, _, alex_token = _family(api, _years_before(tomorrow, 18))
    assert _check(api, alex_token, alex["id"], "invoice")["allowed"] is True
    before = api.rt.store.revision()
    clock.travel(dt.timedelta(minutes=6))  # midnight: Alex is 18
    assert api.rt.store.revision() == before
    for rtype in ("invoice", "document", "appointment"):
        assert _check(api, alex_token, alex["id"], rtype)["allowed"] is False


def test_unknown_labels_are_a_400(api: Api) -> None:
    service = api.service_token("authz:check")
    body = {
        "subject": "provider:x",
        "action": "document.read",
        "resource": {"type": "document", "owner": "cli_1", "labels": ["PSY", "XYZ"]},
    }
    r = api.call("POST", "/v1/access/check", body, token=service)
    assert r.status_code == 400
    assert "resource.labels" in r.get_data(as_text=True)


def test_only_the_minor_or_a_provider_with_their_statement_decides(api: Api) -> None:
    today = clock.now().date()
    sam, link, _ = _family(api, _years_before(today, 14))
    cg = link["linked_client_id"]
    store = api.rt.store
    with pytest.raises(Forbidden):
        category_shares.share(store, f"client:{cg}", api.org_id, sam["id"], cg, ["PSY"])
    with pytest.raises(ValidationFailed):
        category_shares.share(store, "provider:p", api.org_id, sam["id"], cg, ["PSY"], " ")
    with pytest.raises(ValidationFailed):
        category_shares.share(store, f"client:{sam['id']}", api.org_id, sam["id"], cg, ["XYZ"])
    child = api.client("Kit", "minor", "fam@x.test", birth_date=_years_before(today, 9).isoformat())
    api.link(child["id"], cg)
    with pytest.raises(Conflict, match="sharing starts at 13"):
        category_shares.share(store, f"client:{child['id']}", api.org_id, child["id"], cg, ["PSY"])


def test_explain_and_the_review_show_the_band_and_the_next_transition(api: Api) -> None:
    from authz.compliance.policy_review import explain
    from authz.service.access import service

    today = clock.now().date()
    birthday = today + dt.timedelta(days=40)
    leo = api.client(
        "Leo", "minor", "leo@x.test", birth_date=_years_before(birthday, 13).isoformat()
    )
    link, _ = api.grant(leo["id"], "dad@x.test")
    svc = service(api.rt)
    svc.facts.ensure_fresh(api.rt.store)
    question = explain.Question(
        None,
        f"client:{link['linked_client_id']}",
        leo["id"],
        "document.read",
        f"document:doc_1@{leo['id']}#PSY",
        None,
    )
    result = explain.explain(api.rt.store, svc.engine, question)
    assert result["allowed"] is True  # 12 in the US default band table: still a child
    band = result["age_band"]
    assert (band["band"], band["age"], band["jurisdiction"]) == ("child", 12, "US")
    assert band["next_transition"] == (
        f"Leo turns 13 on {birthday.isoformat()}: access narrows to no sensitivity-labelled "
        "records the minor has not shared, and no messages"
    )
    page = api.call("GET", "/v1/review", token=_reviewer(api)).get_data(as_text=True)
    assert f"Leo turns 13 on {birthday.isoformat()}: access narrows to" in page


def _reviewer(api: Api) -> str:
    from tests.test_delegation_integrity import _reviewer as reviewer_token

    return reviewer_token(api)


def test_policy_diff_names_the_live_grants_a_band_table_change_narrows(
    api: Api, db_url: str, tmp_path: Any
) -> None:
    import shutil

    from authz.policy.engine import MODEL_PATH, POLICY_DIR
    from tests.compliance.cli import authz_json

    today = clock.now().date()
    eli = api.client("Eli", "minor", "eli@x.test", birth_date=_years_before(today, 12).isoformat())
    link, _ = api.grant(eli["id"], "dan@x.test")
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        shutil.copytree(POLICY_DIR, root / "policies")
        shutil.copy(MODEL_PATH, root / "model.conf")
    bands = new / "policies" / "age_bands.yaml"
    bands.write_text(bands.read_text().replace("US: {adolescent: 13", "US: {adolescent: 12"))
    code, result = authz_json(db_url, "policy", "diff", str(old), str(new))
    assert code == 0, result
    assert result["changes"] == []
    [change] = result["age_bands"]
    assert (change["link_id"], change["before"], change["after"]) == (
        link["id"],
        "child",
        "adolescent",
    )
    assert change["summary"].startswith(f"Jenna ({link['linked_client_id']}) loses access to Eli")


def test_an_organizations_jurisdiction_moves_its_minors_band_at_the_next_check(
    api: Api, db_url: str
) -> None:
    from tests.compliance.cli import authz

    today = clock.now().date()
    leo = api.client("Leo", "minor", "leo@x.test", birth_date=_years_before(today, 12).isoformat())
    _link, caregiver = api.grant(leo["id"], "dad@x.test")
    delegated = api.exchange(caregiver, f"client:{leo['id']}").get_json()["access_token"]
    assert _check(api, delegated, leo["id"], "document", ["PSY"])["allowed"] is True  # US: 13
    done = authz(db_url, "org", "jurisdiction", "--org", api.org_id, "US-CA")
    assert done.returncode == 0, done.stderr
    denied = _check(api, delegated, leo["id"], "document", ["PSY"])
    assert denied["allowed"] is False and "US-CA (12 to 17" in denied["reason"]
    bad = authz(db_url, "org", "jurisdiction", "--org", api.org_id, "XX")
    assert bad.returncode != 0 and bad.stderr.startswith("authz: ") and "US-CA" in bad.stderr
