"""May this login act as that account: the one answer every part of the service takes.

The token exchange (Switch Account, the shared-email toggle, switching back), the Switch Account
list (`GET /v1/access/accounts`, both forms), the hosted "my access" page and the review all ask
`reachable`/`reach` here; `check`, who-can and the Casbin export ask the same relations of
`FactIndex.paths` that these are built from. The rules, in words (policies/README.md):

- A login acts from one of its own accounts: the account it signed in to, and every account of
  the organization recorded with the same email (the login proved that email when it signed in;
  its tokens carry a tag of the proven address, `email_group`, and die when the account's address
  is changed to another).
- It may act as each of those (`self` for the one it signed in to, `shared_email` for the others).
- It may act as a care receiver whose active, usable portal-access grant names one of its own
  accounts as the caregiver (`delegation`, through that grant, at its level). Usable means, at
  the moment asked (`authz.policy.grants.effective_state`): not expired, the care receiver not past the
  age of majority, both accounts live, and re-approved by its review-by date: a grant nobody
  re-approves in time has lapsed (policies/recertification.yaml), with no write at the lapse.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple

from authz.policy.facts import FactIndex


def email_tag(email: str) -> str:
    """A stable, non-reversible tag of the email a login proved (tokens carry it, not the
    address)."""
    return hashlib.sha256(b"authz-email-group\n" + email.encode()).hexdigest()[:32]


def proven_email_problem(facts: FactIndex, claims: dict[str, object]) -> str | None:
    """Why a client token's login no longer holds the address it proved, or None.

    The acting account (`act`, else `sub`) must still be recorded with the email the login
    proved at sign-in; a token without the tag (a staff or service token) has nothing to hold."""
    tag = claims.get("email_group")
    if tag is None:
        return None
    act = claims.get("act")
    actor = act.get("sub") if isinstance(act, dict) else claims.get("sub")
    kind, _, cid = str(actor).partition(":")
    email = facts.email_key(cid) if kind == "client" else None
    if email is None or email_tag(email) != tag:
        return "the account's email address changed since this login proved it; sign in again"
    return None


class Reach(NamedTuple):
    """One account a login may act as, and how."""

    #: The client account acted as.
    client_id: str
    #: `self`, `shared_email` or `delegation`.
    via: str
    #: The login's own account that acts (the token's `act`): the account signed in to, or,
    #: through a grant, the grant's caregiver.
    actor: str
    #: The grant's row in the `FactIndex` (delegation only; -1 otherwise).
    link: int = -1


def own_accounts(facts: FactIndex, cid: str, now: dt.datetime) -> list[str]:
    """The login's own accounts, `cid` first: it and every account sharing its email."""
    sub = f"client:{cid}"
    if not facts.has_relation(sub, "self", cid, now):
        return []
    return [cid] + [
        other
        for other in facts.shared_email_accounts(cid)
        if facts.has_relation(sub, "shared_email", other, now)
    ]


def reachable(facts: FactIndex, cid: str, now: dt.datetime) -> list[Reach]:
    """Every account a login signed in to `cid` may act as: its own accounts first, then the
    care receivers of their usable grants, each grant once."""
    own = own_accounts(facts, cid, now)
    out = [Reach(o, "self" if o == cid else "shared_email", cid) for o in own]
    for member in own:
        sub = f"client:{member}"
        for link in facts.grants_as_caregiver(member):
            receiver = facts.grant(link).receiver
            if any(path.link == link for path in facts.paths(sub, receiver, now)):
                out.append(Reach(receiver, "delegation", member, link))
    return out


def reach(facts: FactIndex, cid: str, target: str, now: dt.datetime) -> Reach | None:
    """How a login signed in to `cid` may act as `target` (its own accounts before grants),
    or None."""
    for found in reachable(facts, cid, now):
        if found.client_id == target:
            return found
    return None


def why_not(facts: FactIndex, cid: str, target: str, now: dt.datetime) -> tuple[bool, str]:
    """Why `reach` found nothing: (a grant exists but is not usable, the reason)."""
    for member in own_accounts(facts, cid, now):
        link = facts.link_between(member, target)
        if link is not None:
            return True, facts.grant_state(link, now).reason
    return False, "no portal access to that account"
