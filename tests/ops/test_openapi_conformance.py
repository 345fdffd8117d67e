"""Schemathesis against the served OpenAPI document: generated requests, authenticated.

Zero server errors, zero responses that break the document, and no endpoint that answers a
missing or invalid token as if it were valid (`ignored_auth`). The operations are driven one by
one with Hypothesis (schemathesis' pytest plugin does not run under pytest 9), then as a state
machine that follows the document's links from creating a client to deleting its links.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks as oa

from api import openapi
from authz.service import access
from tests.helpers import Api

CHECKS = [
    schemathesis.checks.not_a_server_error,
    oa.status_code_conformance,
    oa.content_type_conformance,
    oa.response_schema_conformance,
    oa.response_headers_conformance,
    oa.ignored_auth,
]
NEGATIVE_CHECKS = [*CHECKS, oa.negative_data_rejection]
EXAMPLES = 25
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


def _schema(api: Api) -> Any:
    config = SchemathesisConfig.from_dict({"generation": {"max-examples": EXAMPLES}})
    return schemathesis.openapi.from_wsgi("/openapi.json", api.app, config=config)


#: Decisions and compliance reads are for portal backends and reviewers, not providers: they run
#: with a service token that holds those scopes, so the generated requests reach the engine.
SERVICE_PATHS = ("/v1/access/", "/v1/audit", "/v1/review", "/v1/policy")
SERVICE_SCOPES = "authz:check authz:check:subjects authz:review"


def _seed(api: Api) -> dict[str, dict[str, str]]:
    """A few real records so that generated requests sometimes hit something; the auth headers
    of a provider and of a portal backend."""
    sam = api.client("Sam", "adult", "sam@x.test")
    api.grant(sam["id"], "jenna@x.test")
    return {
        "provider": {"Authorization": f"Bearer {api.provider_token()}"},
        "service": {"Authorization": f"Bearer {api.service_token(SERVICE_SCOPES)}"},
        "client": api.basic(),
    }


def _headers(case: Any, auth: dict[str, dict[str, str]]) -> dict[str, str]:
    # The OAuth endpoints authenticate OAuth clients, not bearers: the generated requests come
    # from a registered client, so they reach the grants rather than stop at authentication.
    if case.operation.path.startswith("/oauth/"):
        return auth["client"]
    return auth["service" if case.operation.path.startswith(SERVICE_PATHS) else "provider"]


FORM = "application/x-www-form-urlencoded"
#: A form's fields are all strings and its schema is open (a page takes fields it ignores), so
#: the only invalid form is one without a required field: a few negative examples find it, and
#: each costs Hypothesis many rejected draws (a whole form operation took ~5 s of CPU at 25).
FORM_NEGATIVE_EXAMPLES = 6


def _form_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of the operations whose body is an HTML form."""
    return {
        (method.upper(), path)
        for path, item in openapi.document()["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and FORM in op.get("requestBody", {}).get("content", {})
    }


FORMS = _form_operations()


def _run(operation: Any, mode: GenerationMode, auth: dict[str, dict[str, str]]) -> str | None:
    checks = NEGATIVE_CHECKS if mode is GenerationMode.NEGATIVE else CHECKS
    examples = EXAMPLES
    if mode is GenerationMode.NEGATIVE and (operation.method.upper(), operation.path) in FORMS:
        examples = FORM_NEGATIVE_EXAMPLES

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(SETTINGS, max_examples=examples)
    def run(case: Any) -> None:
        case.call_and_validate(headers=_headers(case, auth), checks=checks)

    try:
        run()
    except Unsatisfiable:
        # No parameters and no body: there is no invalid input to make.
        assert mode is GenerationMode.NEGATIVE, operation.label
    except (
        Exception,
        BaseExceptionGroup,
    ) as exc:  # one report per operation, then go on to the next
        return f"{operation.label} [{mode.value}]: {exc}"
    return None


#: The operations are tested in this many parts (every PARTS-th from the first, second…), so
#: that the test workers share them: whole, this was two minutes on one worker a store.
PARTS = 4


@pytest.fixture(autouse=True)
def _no_wait_for_unreached_revisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated `consistency` revisions are mostly ones the store has not reached: each would
    wait out the 2 s before its 409 (half a minute of a run). The answer is checked here, the
    wait in tests/test_delegation_integrity.py."""
    monkeypatch.setattr(access, "AT_LEAST_WAIT", 0.05)


@pytest.mark.parametrize("part", range(PARTS))
def test_every_operation_conforms(api: Api, part: int) -> None:
    schema = _schema(api)
    auth = _seed(api)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    # Invalid input is refused by the HTTP layer's validation before any store is read, the
    # same code whichever store is behind it: negative examples run on SQLite only (half of this
    # test's time on PostgreSQL went to generating them). Valid input, which reaches the store
    # and whatever it enforces (PostgreSQL's column lengths), runs on both.
    sqlite = api.app.extensions["authz"].store.engine.dialect.name == "sqlite"
    modes = (
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if sqlite else (GenerationMode.POSITIVE,)
    )
    failures = []
    for operation in operations[part::PARTS]:
        for mode in modes:
            failure = _run(operation, mode, auth)
            if failure:
                failures.append(failure)
    assert not failures, "\n\n".join(failures)


def test_state_machine_follows_the_documents_links(api: Api) -> None:
    schema = _schema(api)
    auth = _seed(api)

    class Authenticated(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": _headers(case, auth)}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=kwargs.get("headers"))

    # Generation only: every step changes the store, so a replayed prefix would not replay.
    Authenticated.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
            phases=[Phase.generate],
        )
    )


def test_link_from_create_to_delete_with_generated_bodies(api: Api) -> None:
    """Create, read, edit and delete links with generated bodies, each answer checked."""
    schema = _schema(api)
    auth = _seed(api)["provider"]
    links_op = schema["/v1/clients/{client_id}/links"]["POST"]
    one_link = "/v1/clients/{client_id}/links/{link_id}"
    outcomes: list[int] = []

    def step(case: Any, *expected: int) -> Any:
        response = case.call(headers=auth)
        case.validate_response(response, checks=CHECKS, headers=auth)
        assert response.status_code in expected, (case.path, response.status_code, response.text)
        return response

    @given(data=st.data())
    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    def scenario(data: st.DataObject) -> None:
        a = api.client("Ann", "adult")["id"]
        b = api.client("Ben", "adult", "ben@x.test")["id"]
        create = data.draw(links_op.as_strategy(path_parameters={"client_id": a}))
        create.body.pop("new_client", None)
        create.body["client_id"] = b
        created = step(create, 201, 400, 403)
        outcomes.append(created.status_code)
        if created.status_code == 201:
            link = created.json()
        else:
            # Refused input changed nothing: the pair can still be linked plainly.
            link = api.ok(
                "POST", f"/v1/clients/{a}/links", {"client_id": b, "relationship": "spouse"}
            )
        ids = {"client_id": a, "link_id": link["id"]}
        other_side = {"client_id": b, "link_id": link["id"]}
        step(data.draw(schema[one_link]["GET"].as_strategy(path_parameters=ids)), 200)
        patch = data.draw(schema[one_link]["PATCH"].as_strategy(path_parameters=ids))
        step(patch, 200, 400, 403)
        step(data.draw(schema[one_link]["PATCH"].as_strategy(path_parameters=other_side)), 409, 400)
        step(data.draw(schema[one_link]["DELETE"].as_strategy(path_parameters=other_side)), 409)
        step(data.draw(schema[one_link]["DELETE"].as_strategy(path_parameters=ids)), 200)
        step(data.draw(schema[one_link]["GET"].as_strategy(path_parameters=ids)), 404)

    scenario()
    assert 201 in outcomes, outcomes


@pytest.fixture(autouse=True)
def _quiet_schemathesis_warnings(recwarn: pytest.WarningsRecorder) -> None:
    """Schemathesis warns about its own configuration; those are not failures of the service."""
