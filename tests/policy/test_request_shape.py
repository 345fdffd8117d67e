"""A check request is accepted exactly when it has no itemized error (the quick test and the
explanation of what is wrong never disagree)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.base.errors import ValidationFailed
from authz.base.principals import Principal
from authz.policy.engine import Subject
from authz.service.access import AccessService, _request_errors

_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=3), st.lists(st.none(), max_size=1)
)
_resource = st.one_of(
    _values,
    st.dictionaries(st.sampled_from(["type", "id", "owner", "other"]), _values, max_size=4),
)
_context = st.one_of(
    _values, st.dictionaries(st.sampled_from(["payment_method", "other"]), _values, max_size=2)
)
_item = st.fixed_dictionaries(
    {},
    optional={
        "action": _values,
        "resource": _resource,
        "context": _context,
        "subject": st.just("client:cli_x"),
        "surprise": _values,
    },
)


class _Service(AccessService):
    """Only the request parsing: the subject is a fixed one, no store behind it."""

    def __init__(self) -> None:
        pass

    def subject_of(self, caller: Principal, item: dict[str, Any], *args: Any) -> Subject:
        return Subject("client:cli_x", "org_x", "cli_x")


@settings(max_examples=400, deadline=None)
@given(_item)
def test_a_request_is_refused_exactly_when_it_has_errors(item: dict[str, Any]) -> None:
    errors = _request_errors(item, "")
    try:
        request, rejected = _Service()._request(None, item)  # type: ignore[arg-type]
    except ValidationFailed as exc:
        assert errors and exc.errors == [{"field": f, "message": m} for f, m in errors]
    else:
        assert errors == [], errors
        assert rejected is None and request.action == item["action"]
        assert request.resource.type == item["resource"]["type"]
        assert request.payment_method == (item.get("context") or {}).get("payment_method")
