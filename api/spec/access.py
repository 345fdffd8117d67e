"""OpenAPI paths of `api/access.py`: decisions (check, check-batch) and the lists that agree.

The action vocabulary comes from `authz/policy/vocabulary.py`, so the document cannot drift from
the catalogue. An action outside it is still well-formed input: the contract answers it as a deny
whose reason says "unknown action", so `action` is the catalogue *or* any other non-empty string.
"""

from __future__ import annotations

from typing import Any

from api.spec.common import PAGE_PARAMS, nullable, obj, operation, query_param, ref
from authz.base.principals import VIA
from authz.policy.vocabulary import ACTIONS, LABELS, RELATIONS, RESOURCE_TYPES

TAG = "access"
STR = {"type": "string"}
REVISION = {"type": "string", "description": "Opaque consistency token; only grows"}
MAX_BATCH = 1000

_ACTION = {
    "description": (
        "`<resource type>.<verb>` from the catalogue (`authz/policy/vocabulary.py`). Any other "
        "string is answered with `allowed: false` and the reason `unknown action`."
    ),
    "anyOf": [
        {"enum": sorted(ACTIONS)},
        {"type": "string", "minLength": 1, "maxLength": 200},
    ],
}
_RESOURCE = obj(
    {
        "type": {
            "type": "string",
            "description": "The resource type: " + ", ".join(sorted(RESOURCE_TYPES)),
            "examples": sorted(RESOURCE_TYPES),
        },
        "id": nullable({"type": "string", "maxLength": 200}),
        "owner": nullable(
            {
                "type": "string",
                "maxLength": 200,
                "description": "The client (`cli_…`) or organization (`org_…`) that owns it",
            }
        ),
        "labels": nullable(
            {
                "type": "array",
                "maxItems": 16,
                "description": (
                    "Sensitivity labels (HL7 information-sensitivity codes): "
                    + "; ".join(f"`{k}` {v}" for k, v in sorted(LABELS.items()))
                    + ". Any other code is a 400. A caregiver of a minor in the adolescent "
                    "band is denied a labelled resource the minor has not shared with them "
                    "(policies/adolescents.csv)."
                ),
                "items": {"type": "string", "enum": sorted(LABELS)},
            }
        ),
    },
    ("type",),
)
_CONTEXT = nullable(
    obj(
        {
            "payment_method": {
                "type": "string",
                "description": "The payment method (`pm_…`) an `invoice.pay` would use",
            }
        }
    )
)
_CHECK_FIELDS: dict[str, Any] = {
    "token": {
        "type": "string",
        "minLength": 1,
        "description": (
            "The user's access token. An invalid, expired or revoked token is a deny with its "
            "reason, never an error"
        ),
    },
    "subject": {
        "type": "string",
        "pattern": "^[a-z]+:.+$",
        "description": "client:<id>, provider:<id> or reviewer:<id> (scope authz:check:subjects)",
    },
    "acting_as": nullable(
        {"type": "string", "pattern": "^client:", "description": "The client the subject acts as"}
    ),
    "action": _ACTION,
    "resource": ref("AccessResource"),
    "context": _CONTEXT,
}
# `token` or `subject` (+ `acting_as`), never both.
_WHO = {
    "oneOf": [
        {
            "required": ["token"],
            "not": {"anyOf": [{"required": ["subject"]}, {"required": ["acting_as"]}]},
        },
        {"required": ["subject"], "not": {"required": ["token"]}},
    ]
}

_PERSON = obj({"id": STR, "name": STR}, ("id",), closed=False)
_GRANT = obj(
    {
        "link_id": STR,
        "care_receiver": _PERSON,
        "caregiver": _PERSON,
        "relationship": STR,
        "access_level": STR,
        "status": STR,
        "effective_status": nullable(STR),
        "effective_reason": nullable(STR),
        "ends_at": nullable(STR),
        "revoked_reason": nullable(STR),
        "can_end": {
            "type": "boolean",
            "description": "POST /v1/links/{link_id}/portal-access/revoke ends it",
        },
    },
    ("link_id", "status", "can_end"),
    closed=False,
)

SCHEMAS: dict[str, Any] = {
    "MyAccess": obj(
        {
            "client_id": STR,
            "can_act_as": {"type": "array", "items": ref("Account")},
            "accounts": {
                "type": "array",
                "items": obj(
                    {
                        "client_id": STR,
                        "name": STR,
                        "client_type": STR,
                        "via": STR,
                        "who_can_act": {"type": "array", "items": ref("AccessPath")},
                        "grants_on_me": {"type": "array", "items": _GRANT},
                        "grants_i_hold": {"type": "array", "items": _GRANT},
                    },
                    ("client_id", "who_can_act", "grants_on_me", "grants_i_hold"),
                    closed=False,
                ),
            },
            "revision": REVISION,
        },
        ("client_id", "can_act_as", "accounts", "revision"),
        closed=False,
    ),
    "Activity": obj(
        {
            "client_id": STR,
            "items": {
                "type": "array",
                "items": obj(
                    {
                        "kind": {"enum": ["switch", "decision"]},
                        "at": STR,
                        "actor": STR,
                        "actor_name": STR,
                    },
                    ("kind", "at", "actor"),
                    closed=False,
                ),
            },
            "next_cursor": nullable(STR),
            "revision": REVISION,
        },
        ("client_id", "items", "next_cursor", "revision"),
        closed=False,
    ),
    "AccessResource": _RESOURCE,
    "Consistency": {
        "description": (
            "`at_least`: answer on a policy state at least that fresh (a `revision` a write "
            "returned); `full`: the newest. Absent: the newest too (one cheap revision read), "
            "so a revoke that returned is never followed by an allow, on any replica."
        ),
        "oneOf": [
            obj({"at_least": {"type": "string", "pattern": "^[0-9]+$"}}, ("at_least",)),
            obj({"full": {"const": True}}, ("full",)),
        ],
    },
    "CheckRequest": {
        **obj({**_CHECK_FIELDS, "consistency": ref("Consistency")}, ("action", "resource")),
        **_WHO,
    },
    "BatchCheck": {**obj(_CHECK_FIELDS, ("action", "resource")), **_WHO},
    "CheckBatchRequest": obj(
        {
            "checks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": ref("BatchCheck"),
            },
            "consistency": ref("Consistency"),
        },
        ("checks",),
    ),
    "Decision": obj(
        {
            "allowed": {"type": "boolean"},
            "decision_id": {"type": "string", "pattern": "^dec_"},
            "reason": {"type": "string", "description": "Human-readable why"},
            "rule": {"type": "string", "description": "The policy line(s) that decided"},
            "revision": REVISION,
        },
        ("allowed", "decision_id", "reason", "rule", "revision"),
        closed=False,
    ),
    "CheckBatchResult": obj(
        {"results": {"type": "array", "items": ref("Decision")}, "revision": REVISION},
        ("results", "revision"),
        closed=False,
    ),
    "Account": obj(
        {
            "client_id": STR,
            "name": STR,
            "via": {"enum": list(VIA)},
            "link_id": nullable(STR),
            "access_level": nullable(STR),
        },
        ("client_id", "via"),
        closed=False,
    ),
    "Accounts": obj(
        {"accounts": {"type": "array", "items": ref("Account")}, "revision": REVISION},
        ("accounts", "revision"),
        closed=False,
    ),
    "AccessPath": obj(
        {
            "subject": STR,
            "relation": {"type": "string", "examples": list(RELATIONS)},
            "link_id": nullable(STR),
            "reason": STR,
        },
        ("subject", "relation"),
        closed=False,
    ),
    "WhoCan": obj(
        {
            "client_id": STR,
            "access": {"type": "array", "items": ref("AccessPath")},
            "revision": REVISION,
        },
        ("client_id", "access", "revision"),
        closed=False,
    ),
}

PATHS: dict[str, Any] = {
    "/v1/access/check": {
        "post": operation(
            "checkAccess",
            "One decision with its reason, rule and decision id (scope authz:check)",
            TAG,
            (200, ref("Decision")),
            body=ref("CheckRequest"),
            # 409: `consistency.at_least` names a revision this store has not reached.
            errors=(400, 403, 409, 429),
        ),
    },
    "/v1/access/check-batch": {
        "post": operation(
            "checkAccessBatch",
            f"Up to {MAX_BATCH} decisions on one fresh view, answered in order",
            TAG,
            (200, ref("CheckBatchResult")),
            body=ref("CheckBatchRequest"),
            errors=(400, 403, 409, 429),
        ),
    },
    "/v1/access/accounts": {
        "get": operation(
            "listAccounts",
            "The Switch Account list: of the caller's client token, or of a login by email",
            TAG,
            (200, ref("Accounts")),
            parameters=[
                query_param(
                    "login",
                    {"type": "string", "format": "email", "maxLength": 254},
                    "The login's verified email (scope authz:check); omit with a client's token",
                )
            ],
            errors=(400, 403),
        ),
    },
    "/v1/access/who-can": {
        "get": operation(
            "whoCan",
            "Every login/account that can act as or on a client, and through which grant",
            TAG,
            (200, ref("WhoCan")),
            parameters=[
                query_param(
                    "client",
                    {"type": "string", "minLength": 1, "maxLength": 200},
                    "The client (`cli_…`)",
                    required=True,
                )
            ],
        ),
    },
    "/v1/access/my-access": {
        "get": operation(
            "myAccess",
            "For a client's own token: the accounts it may act as, and for each of its own "
            "accounts who else may act for it and the grants on both sides",
            TAG,
            (200, ref("MyAccess")),
            errors=(400, 403),
        ),
    },
    "/v1/access/activity": {
        "get": operation(
            "myActivity",
            "Who acted for one of the caller's own accounts: every switch into it and every "
            "decision taken with `act`, newest first, paged",
            TAG,
            (200, ref("Activity")),
            parameters=[
                query_param(
                    "client",
                    {"type": "string", "minLength": 1, "maxLength": 200},
                    "One of the caller's own accounts (`cli_…`)",
                    required=True,
                ),
                *PAGE_PARAMS,
            ],
            errors=(400, 403),
        ),
    },
}
