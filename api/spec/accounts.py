"""OpenAPI paths of `api/accounts.py`: clients, contacts, links, portal access, payments, outbox."""

from __future__ import annotations

from typing import Any

from api.spec.common import PAGE_PARAMS, nullable, obj, operation, path_param, query_param, ref
from authz.accounts.notifications import EVENTS
from authz.policy.vocabulary import LABELS
from authz.store.models import ACCESS_LEVELS, CLIENT_TYPES, PORTAL_STATES, RELATIONSHIPS

TAG = "administration"
STR = {"type": "string"}
BOOL = {"type": "boolean"}
REVISION = {"type": "string", "description": "Opaque consistency token; only grows"}
TIME = nullable({"type": "string", "format": "date-time"})
EMAIL = {"type": "string", "format": "email", "maxLength": 254}
NAME = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}

CLIENT_ID = path_param("client_id", "Client id (`cli_…`)")
CONTACT_ID = path_param("contact_id", "Contact id (`con_…`)")
LINK_ID = path_param("link_id", "Link id (`lnk_…`)")
INVITE_TOKEN = path_param("token", "The invite token from the email")
_TERMS = {
    "type": "array",
    "description": "By resource type, as the engine decides with the policy files in force",
    "items": obj(
        {
            "resource": STR,
            "label": STR,
            "actions": {"type": "array", "items": STR},
            "verbs": {"type": "array", "items": STR},
        },
        ("resource", "actions"),
        closed=False,
    ),
}


def _list(item: str) -> dict[str, Any]:
    return obj(
        {"items": {"type": "array", "items": ref(item)}, "next_cursor": nullable(STR)},
        ("items", "next_cursor"),
        closed=False,
    )


def _written(schema: str) -> dict[str, Any]:
    return {"allOf": [ref(schema)], "required": ["revision"]}


_CLIENT_FIELDS: dict[str, Any] = {
    "first_name": NAME,
    "last_name": nullable({"type": "string", "maxLength": 100}),
    "client_type": {"enum": list(CLIENT_TYPES)},
    "birth_date": nullable({"type": "string", "format": "date"}),
    "email": nullable(EMAIL),
    "client_group": nullable({"type": "string", "maxLength": 100}),
}
_PORTAL_INPUT = obj(
    {
        "enabled": BOOL,
        "acknowledgement": nullable(
            {
                "type": "string",
                "maxLength": 4000,
                "description": "The text the provider saw: the caregiver gets full access",
            }
        ),
        "access_level": {"enum": list(ACCESS_LEVELS)},
        "expires_at": nullable({"type": "string", "format": "date-time"}),
    },
    ("enabled",),
)
_LINK_FIELDS: dict[str, Any] = {
    "relationship": {"enum": list(RELATIONSHIPS)},
    "client_type": {"enum": list(CLIENT_TYPES)},
    "emergency_contact": BOOL,
    "notify": {"type": "boolean", "description": "The linked client gets copies of emails"},
    "portal_access": nullable(ref("PortalAccessInput")),
}

SCHEMAS: dict[str, Any] = {
    "LinkIndicator": obj(
        {
            "link_id": STR,
            "client_id": STR,
            "name": STR,
            "relationship": {
                "type": "string",
                "description": "What the other client is to this one (a parent's indicator "
                "for their child reads `child`)",
            },
            "direction": {"enum": ["outgoing", "incoming"]},
            "portal_access": nullable({"enum": list(PORTAL_STATES)}),
        },
        closed=False,
    ),
    "Client": obj(
        {
            "id": STR,
            "org_id": STR,
            "first_name": STR,
            "last_name": STR,
            "name": STR,
            "client_type": {"enum": list(CLIENT_TYPES)},
            "birth_date": nullable({"type": "string", "format": "date"}),
            "email": nullable(STR),
            "email_verified": BOOL,
            "client_group": nullable(STR),
            "active": BOOL,
            "linked": BOOL,
            "links": {"type": "array", "items": ref("LinkIndicator")},
            "revision": REVISION,
        },
        ("id", "org_id", "first_name", "client_type", "email_verified", "active"),
        closed=False,
    ),
    "ClientCreate": obj(_CLIENT_FIELDS, ("first_name", "client_type")),
    "NewLinkedClient": obj(_CLIENT_FIELDS, ("first_name",)),
    "ClientPatch": obj({**_CLIENT_FIELDS, "active": BOOL}),
    "Contact": obj(
        {
            "id": STR,
            "client_id": STR,
            "name": STR,
            "email": nullable(STR),
            "relationship": {"enum": list(RELATIONSHIPS)},
            "emergency_contact": BOOL,
            "notify": BOOL,
            "revision": REVISION,
        },
        ("id", "client_id", "name", "relationship"),
        closed=False,
    ),
    "ContactCreate": obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
            "email": nullable(EMAIL),
            "relationship": {"enum": list(RELATIONSHIPS)},
            "emergency_contact": BOOL,
            "notify": {"type": "boolean", "description": "Needs an email address"},
        },
        ("name", "relationship"),
    ),
    "ContactPatch": obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
            "email": nullable(EMAIL),
            "relationship": {"enum": list(RELATIONSHIPS)},
            "emergency_contact": BOOL,
            "notify": BOOL,
        }
    ),
    "PortalAccessInput": _PORTAL_INPUT,
    "PortalAccess": obj(
        {
            "status": {"enum": list(PORTAL_STATES)},
            "effective_status": STR,
            "effective_reason": nullable(STR),
            "ends_at": TIME,
            "access_level": nullable({"enum": list(ACCESS_LEVELS)}),
            "caregiver_client_id": STR,
            "care_receiver_client_id": STR,
            "acknowledgement": nullable(STR),
            "acknowledged_by": nullable(STR),
            "acknowledged_at": TIME,
            "activated_at": TIME,
            "revoked_at": TIME,
            "revoked_by": nullable(STR),
            "revoked_reason": nullable(STR),
            "expires_at": TIME,
            "review_by": TIME,
            "recertified_at": TIME,
            "recertified_by": nullable(STR),
            "recertified_note": nullable(STR),
        },
        ("status",),
        closed=False,
    ),
    "Link": obj(
        {
            "id": STR,
            "original_client_id": STR,
            "linked_client_id": STR,
            "relationship": {"enum": list(RELATIONSHIPS)},
            "client_type": {"enum": list(CLIENT_TYPES)},
            "emergency_contact": BOOL,
            "notify": BOOL,
            "created_by": STR,
            "created_at": TIME,
            "direction": {"enum": ["outgoing", "incoming"]},
            "portal_access": nullable(ref("PortalAccess")),
            "linked_client": ref("Client"),
            "revision": REVISION,
            "dev_invite_token": {
                "type": "string",
                "description": "Development mode only: the invite token the email carries",
            },
        },
        ("id", "original_client_id", "linked_client_id", "relationship", "portal_access"),
        closed=False,
    ),
    "LinkCreate": {
        **obj(
            {
                "client_id": {"type": "string", "description": "An existing client (B)"},
                "new_client": ref("NewLinkedClient"),
                "send_welcome_invite": {"type": "boolean", "default": True},
                **_LINK_FIELDS,
            },
            ("relationship",),
        ),
        "oneOf": [{"required": ["client_id"]}, {"required": ["new_client"]}],
    },
    "LinkPatch": obj(_LINK_FIELDS),
    "PaymentMethod": obj(
        {"id": STR, "client_id": STR, "label": STR, "revision": REVISION},
        ("id", "client_id", "label"),
        closed=False,
    ),
    "Invite": obj(
        {
            "id": STR,
            "status": {"enum": ["pending", "used", "declined", "cancelled", "expired", "locked"]},
            "status_text": STR,
            "practice": obj({"id": STR, "name": STR}, closed=False),
            "invited_by": obj({"id": nullable(STR), "name": nullable(STR)}, closed=False),
            "care_receiver": obj({"id": STR, "name": STR, "client_type": STR}, closed=False),
            "caregiver": obj({"id": STR, "name": STR}, closed=False),
            "relationship": STR,
            "link_id": STR,
            "access_level": STR,
            "access_ends_at": TIME,
            "expires_at": TIME,
            "acknowledgement": nullable(STR),
            "acknowledged_at": TIME,
            "proved": BOOL,
            "proof_attempts_left": {"type": "integer", "minimum": 0},
            "may": _TERMS,
            "may_not": _TERMS,
        },
        ("id", "status", "access_level", "may", "may_not"),
        closed=False,
    ),
    "InviteProofRequest": obj(
        {"birth_date": {"type": "string", "description": "The care receiver's, YYYY-MM-DD"}},
        ("birth_date",),
    ),
    "InviteProof": obj(
        {"proved": BOOL, "proof_attempts_left": {"type": "integer", "minimum": 0}},
        ("proved",),
        closed=False,
    ),
    "CategoryShareChange": obj(
        {
            "caregiver_id": {"type": "string", "description": "The linked caregiver (`cli_…`)"},
            "labels": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": sorted(LABELS)},
                "description": "Sensitivity categories (HL7 codes); any other is a 400",
            },
            "statement": {
                "type": "string",
                "maxLength": 2000,
                "description": "The minor's statement (required when a provider records it)",
            },
        },
        ("caregiver_id", "labels"),
    ),
    "CategoryShares": obj(
        {
            "client_id": STR,
            "items": {"type": "array", "items": {"type": "object"}},
            "revision": STR,
        },
        ("client_id", "items"),
        closed=False,
    ),
    "GrantEnd": obj(
        {"reason": {"type": "string", "maxLength": 2000, "description": "Why it ends"}}, ()
    ),
    "Recertification": obj(
        {
            "decision": {"enum": ["still_needed", "end"]},
            "note": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "description": "Why the grant is still needed, or why it ends",
            },
        },
        ("decision", "note"),
    ),
    "PaymentMethodCreate": obj(
        {
            "id": {
                "type": "string",
                "pattern": "^pm_[A-Za-z0-9_]{1,60}$",
                "description": "The organization's own id: other organizations may use the same "
                "one, and registering it does not tell. Twice in one organization: 409",
            },
            "label": {
                "type": "string",
                "maxLength": 100,
                "description": "Shown to people; never card data",
            },
        },
        ("id",),
    ),
    "Recipient": obj(
        {
            "email": STR,
            "name": STR,
            "kind": {"enum": ["client", "contact", "linked_client"]},
            "client_id": STR,
            "contact_id": STR,
            "link_id": STR,
            "relation": STR,
        },
        ("email", "kind", "relation"),
        closed=False,
    ),
    "OutboxMessage": obj(
        {
            "id": STR,
            "kind": STR,
            "to": STR,
            "subject": STR,
            "body": STR,
            "client_id": nullable(STR),
            "status": STR,
            "attempts": {"type": "integer"},
            "last_error": nullable(STR),
            "created_at": STR,
            "sent_at": TIME,
        },
        ("id", "kind", "to", "status"),
        closed=False,
    ),
    "Deleted": obj(
        {"id": STR, "deleted": {"const": True}, "revision": REVISION},
        ("id", "deleted", "revision"),
        closed=False,
    ),
}

_CLIENT_LINKS = {
    "GetClient": {
        "operationId": "getClient",
        "parameters": {"client_id": "$response.body#/id"},
    },
    "PatchClient": {
        "operationId": "patchClient",
        "parameters": {"client_id": "$response.body#/id"},
    },
    "CreateLink": {
        "operationId": "createLink",
        "parameters": {"client_id": "$response.body#/id"},
        "requestBody": {
            "new_client": {"first_name": "Linked", "client_type": "adult"},
            "relationship": "family_member",
        },
    },
    "CreateContact": {
        "operationId": "createContact",
        "parameters": {"client_id": "$response.body#/id"},
    },
    "RegisterPaymentMethod": {
        "operationId": "registerPaymentMethod",
        "parameters": {"client_id": "$response.body#/id"},
    },
}
_LINK_LINKS = {
    name: {
        "operationId": op_id,
        "parameters": {
            "client_id": "$request.path.client_id",
            "link_id": "$response.body#/id",
        },
    }
    for name, op_id in (
        ("GetLink", "getLink"),
        ("PatchLink", "patchLink"),
        ("DeleteLink", "deleteLink"),
    )
}
_CONTACT_LINKS = {
    name: {
        "operationId": op_id,
        "parameters": {
            "client_id": "$request.path.client_id",
            "contact_id": "$response.body#/id",
        },
    }
    for name, op_id in (
        ("GetContact", "getContact"),
        ("PatchContact", "patchContact"),
        ("DeleteContact", "deleteContact"),
    )
}

PATHS: dict[str, Any] = {
    "/v1/clients": {
        "post": operation(
            "createClient",
            "Create a client account",
            TAG,
            (201, _written("Client")),
            body=ref("ClientCreate"),
            errors=(400, 403),
            links=_CLIENT_LINKS,
        ),
        "get": operation(
            "listClients",
            "List the organization's clients, each with its links",
            TAG,
            (200, _list("Client")),
            parameters=[
                *PAGE_PARAMS,
                query_param("email", EMAIL, "Only clients with this email"),
                query_param("client_group", STR, "Only clients of this group"),
            ],
            errors=(400, 403),
        ),
    },
    "/v1/clients/{client_id}": {
        "parameters": [CLIENT_ID],
        "get": operation("getClient", "A client with its links", TAG, (200, ref("Client"))),
        "patch": operation(
            "patchClient",
            "Change a client's profile (a new email is unverified)",
            TAG,
            (200, _written("Client")),
            body=ref("ClientPatch"),
        ),
    },
    "/v1/clients/{client_id}/contacts": {
        "parameters": [CLIENT_ID],
        "post": operation(
            "createContact",
            "Add a contact (never gets access)",
            TAG,
            (201, _written("Contact")),
            body=ref("ContactCreate"),
            links=_CONTACT_LINKS,
        ),
        "get": operation("listContacts", "A client's contacts", TAG, (200, _list("Contact"))),
    },
    "/v1/clients/{client_id}/contacts/{contact_id}": {
        "parameters": [CLIENT_ID, CONTACT_ID],
        "get": operation("getContact", "One contact", TAG, (200, ref("Contact"))),
        "patch": operation(
            "patchContact",
            "Change a contact",
            TAG,
            (200, _written("Contact")),
            body=ref("ContactPatch"),
        ),
        "delete": operation("deleteContact", "Remove a contact", TAG, (200, ref("Deleted"))),
    },
    "/v1/clients/{client_id}/links": {
        "parameters": [CLIENT_ID],
        "post": operation(
            "createLink",
            "Link the client (original, A) to an existing or a new client (B)",
            TAG,
            (201, _written("Link")),
            body=ref("LinkCreate"),
            errors=(400, 403, 404, 409),
            links=_LINK_LINKS,
        ),
        "get": operation(
            "listLinks", "The client's links of both directions", TAG, (200, _list("Link"))
        ),
    },
    "/v1/clients/{client_id}/links/{link_id}": {
        "parameters": [CLIENT_ID, LINK_ID],
        "get": operation("getLink", "One link with its portal access", TAG, (200, ref("Link"))),
        "patch": operation(
            "patchLink",
            "Edit a link or its portal access (original client's side only; else 409)",
            TAG,
            (200, _written("Link")),
            body=ref("LinkPatch"),
            errors=(400, 401, 403, 404, 409),
        ),
        "delete": operation(
            "deleteLink",
            "Remove a link and its portal access (original client's side only; else 409)",
            TAG,
            (200, ref("Deleted")),
            errors=(400, 403, 404, 409),
        ),
    },
    "/v1/invites/{token}": {
        "parameters": [INVITE_TOKEN],
        "get": operation(
            "getInvite",
            "The invite as its caregiver reads it: who invited, for whom, the access level and "
            "what it allows (from the policy files), and its state; anyone else gets 403",
            TAG,
            (200, ref("Invite")),
            errors=(400, 403, 404),
        ),
    },
    "/v1/invites/{token}/proof": {
        "parameters": [INVITE_TOKEN],
        "post": operation(
            "proveInvite",
            "Proof of relationship: the care receiver's date of birth. A wrong answer is a 400 "
            "that says how many tries are left; the fifth locks the invite (410) and tells the "
            "provider; every attempt is audited",
            TAG,
            (200, ref("InviteProof")),
            body=ref("InviteProofRequest"),
            errors=(400, 403, 404, 409, 410),
        ),
    },
    "/v1/invites/{token}/accept": {
        "parameters": [INVITE_TOKEN],
        "post": operation(
            "acceptInvite",
            "The caregiver, signed in as themselves and having proved the relationship (else "
            "409), accepts portal access; the provider and an adult care receiver are emailed",
            TAG,
            (200, _written("Link")),
            errors=(400, 403, 404, 409, 410),
        ),
    },
    "/v1/invites/{token}/decline": {
        "parameters": [INVITE_TOKEN],
        "post": operation(
            "declineInvite",
            "The caregiver declines, with an optional reason: the offered access ends; the "
            "provider and an adult care receiver are emailed",
            TAG,
            (200, _written("Link")),
            body=ref("GrantEnd"),
            body_required=False,
            errors=(400, 403, 404, 410),
        ),
    },
    "/v1/links/{link_id}/portal-access/revoke": {
        "parameters": [LINK_ID],
        "post": operation(
            "revokePortalAccess",
            "End portal access: a provider, the adult care receiver, or the caregiver "
            "(renouncing), with an optional reason; recorded with who and when",
            TAG,
            (200, _written("Link")),
            body=ref("GrantEnd"),
            body_required=False,
            errors=(400, 403, 404, 409),
        ),
    },
    "/v1/links/{link_id}/portal-access/recertify": {
        "parameters": [LINK_ID],
        "post": operation(
            "recertifyPortalAccess",
            "Re-approve a grant as still needed (a new review-by date one policy period from "
            "now, policies/recertification.yaml) or end it; a provider or reviewer, with a "
            "note; audited",
            TAG,
            (200, _written("Link")),
            body=ref("Recertification"),
            errors=(400, 403, 404, 409),
        ),
    },
    "/v1/clients/{client_id}/shares": {
        "parameters": [CLIENT_ID],
        "post": operation(
            "shareCategories",
            "An adolescent shares sensitivity categories with a named, linked caregiver (their "
            "own token, or a provider recording their statement); audited as share.given",
            TAG,
            (200, ref("CategoryShares")),
            body=ref("CategoryShareChange"),
            errors=(400, 401, 403, 404, 409),
        ),
    },
    "/v1/clients/{client_id}/shares/withdraw": {
        "parameters": [CLIENT_ID],
        "post": operation(
            "withdrawCategories",
            "The adolescent withdraws shared categories from a caregiver, effective at the "
            "next check; audited as share.withdrawn",
            TAG,
            (200, ref("CategoryShares")),
            body=ref("CategoryShareChange"),
            errors=(400, 401, 403, 404, 409),
        ),
    },
    "/v1/clients/{client_id}/payment-methods": {
        "parameters": [CLIENT_ID],
        "post": operation(
            "registerPaymentMethod",
            "Register a payment method's owner (id and label, never card data)",
            TAG,
            (201, _written("PaymentMethod")),
            body=ref("PaymentMethodCreate"),
            errors=(400, 403, 404, 409),
        ),
        "get": operation(
            "listPaymentMethods",
            "The client's own payment methods, and no one else's",
            TAG,
            (200, _list("PaymentMethod")),
        ),
    },
    "/v1/clients/{client_id}/notification-recipients": {
        "parameters": [CLIENT_ID],
        "get": operation(
            "notificationRecipients",
            "Who receives copies of an event's emails for this client",
            TAG,
            (
                200,
                obj(
                    {
                        "client_id": STR,
                        "event": STR,
                        "recipients": {"type": "array", "items": ref("Recipient")},
                    },
                    ("client_id", "event", "recipients"),
                    closed=False,
                ),
            ),
            parameters=[query_param("event", {"enum": list(EVENTS)}, "The event", True)],
        ),
    },
    "/v1/outbox": {
        "get": operation(
            "listOutbox",
            "Queued and sent emails of the organization (admin)",
            TAG,
            (200, _list("OutboxMessage")),
            parameters=[
                *PAGE_PARAMS,
                query_param("status", STR, "Only messages in this status (queued, sent)"),
            ],
            errors=(400, 403),
        ),
    },
}
