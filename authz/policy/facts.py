"""The facts behind Casbin's `g` and `g2`: grants, shared-email groups, staff and payment ownership.

One in-memory index over the store, kept compact (a flat integer record per client and per grant,
not one object per row) and refreshed by revision: only the clients, links, payment methods,
revoked tokens and OAuth clients named by newer audit rows are read again. Lookups never insert,
so unknown subjects cannot grow memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import sys
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from operator import floordiv, itemgetter, sub
from pathlib import Path as FilePath
from typing import Any, NamedTuple, TypeGuard, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authz.base import clock
from authz.base.emails import email_key
from authz.base.errors import StoreUnavailable
from authz.policy import grants, snapshot, vocabulary
from authz.policy.age_bands import Band, BandTable
from authz.store import deadline
from authz.store.db import Store
from authz.store.models import (
    AuditEvent,
    CategoryShare,
    Client,
    Link,
    OAuthClient,
    Organization,
    PaymentMethod,
    Provider,
    Reviewer,
    RevokedToken,
    State,
)
from authz.store.revision_hint import RevisionHint

# Client flags (one byte per client).
_LIVE, _ACTIVE, _VERIFIED, _MINOR = 1, 2, 4, 8
STATUSES = ("", "pending", "active", "revoked", "expired")
LEVELS = ("", "full", "billing", "scheduling")
_ST = {s: i for i, s in enumerate(STATUSES)}
_LV = {s: i for i, s in enumerate(LEVELS)}
_ACTIVE_STATUS = _ST["active"]
_NONE = -1
#: The relation a caregiver holds on a minor in the adolescent band (policies/adolescents.csv).
ADOLESCENT_PROXY = "adolescent_proxy"
_PROXY = frozenset((ADOLESCENT_PROXY,))
_NO_RELATIONS: frozenset[str] = frozenset()
_ONE_RELATION = {rel: frozenset((rel,)) for rel in vocabulary.RELATIONS}
# Smaller indexes read the store quickly enough without a snapshot.
SNAPSHOT_MIN_ROWS = 100_000
# Above this many touched rows, one full reload is cheaper than row-by-row refresh.
_FULL_RELOAD_AT = 50_000


class OrgRow(NamedTuple):
    id: str
    name: str
    entitlements: list[str]
    #: Where the organization practises (a row of policies/age_bands.yaml; None: the default).
    jurisdiction: str | None = None


class StaffRow(NamedTuple):
    id: str
    org_id: str
    name: str


class ClientRow(NamedTuple):
    id: str
    org_id: str
    first_name: str
    client_type: str
    birth_date: dt.date | None
    email: str | None
    email_verified: bool
    active: bool


class LinkRow(NamedTuple):
    id: str
    original_client_id: str
    linked_client_id: str
    relationship: str
    portal_status: str | None
    access_level: str | None
    expires_at: dt.datetime | None
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    #: When the caregiver last accepted: a switch token names it, so that a grant revoked and
    #: enabled again never lets an older token back in.
    activated_at: dt.datetime | None = None
    #: The grant's review-by date: an active grant nobody re-approved by then has lapsed.
    review_by: dt.datetime | None = None


class PaymentRow(NamedTuple):
    """A payment method: its id is its organization's own (the client's organization)."""

    id: str
    client_id: str


class Path(NamedTuple):
    """One way a subject reaches an owner: the relation and, for caregivers, the grant."""

    rel: str
    link: int = _NONE


class GrantInfo(NamedTuple):
    """A grant as a reason or a listing shows it."""

    link_id: str
    receiver: str
    caregiver: str
    relationship: str
    status: str
    level: str
    acknowledged_by: str | None
    acknowledged_on: dt.date | None
    expires_at: dt.datetime | None


_ORG_COLS = (
    Organization.id,
    Organization.name,
    Organization.entitlements,
    Organization.jurisdiction,
)
_CLIENT_COLS = (
    Client.id,
    Client.org_id,
    Client.first_name,
    Client.client_type,
    Client.birth_date,
    Client.email,
    Client.email_verified,
    Client.active,
)
_LINK_COLS = (
    Link.id,
    Link.original_client_id,
    Link.linked_client_id,
    Link.relationship,
    Link.portal_status,
    Link.access_level,
    Link.expires_at,
    Link.acknowledged_by,
    Link.acknowledged_at,
    Link.activated_at,
    Link.review_by,
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
_US = dt.timedelta(microseconds=1)
# Rows read per round trip when loading everything: few enough that a chunk's rows are still
# in the CPU's cache when each of its columns is read (2,000: a full load 6 % slower).
_CHUNK = 512

# NOTE: one record per client and per link, fields at fixed offsets in one flat array, so that a
# decision touches one or two cache lines per entity instead of one per column (that is what made
# a decision at 1,000,000 grants twice as slow as at 1,000). Reorder only with every user below.
_C = 8  # client record: org, flags, group, first grant out, first grant in, name, birth, group next
_C_ORG, _C_FLAGS, _C_GROUP, _C_OUT, _C_IN, _C_NAME, _C_BIRTH, _C_GNEXT = range(_C)
_L = 8  # link record: receiver, caregiver, status|level|relationship, ack by, ack day, expiry (µs
# since the epoch, 0: none), next grant of the caregiver, next grant of the receiver
_L_RECV, _L_CG, _L_KIND, _L_ACK_BY, _L_ACK_DAY, _L_EXP, _L_NEXT_OUT, _L_NEXT_IN = range(_L)


def _day(value: Any, cache: dict[Any, int] | None = None) -> int:
    """A date, datetime or ISO string (SQLite hands raw strings) as a proleptic ordinal; 0: none."""
    if value is None:
        return 0
    if isinstance(value, str):
        # Keyed by the date alone: the moments of a load are all different, their days few.
        value = value[:10]
    if cache is not None:
        found = cache.get(value)
        if found is not None:
            return found
    day = (dt.date.fromisoformat(value) if isinstance(value, str) else value).toordinal()
    if cache is not None and len(cache) < 4096:
        cache[value] = day
    return int(day)


def _micros(value: Any) -> int:
    """A datetime or ISO string as microseconds since the epoch (naive means UTC); 0: none."""
    if value is None:
        return 0
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    # Naive means UTC (`clock.aware`'s rule), applied here by taking a naive moment from the
    # naive epoch: no aware copy of each of a million rows (two thirds of this function's cost).
    return (moment - (_NAIVE_EPOCH if moment.tzinfo is None else _EPOCH)) // _US or 1


# Column-wise conversions (a full load): a chunk's column goes through C-level `map`s, and only a
# column holding something else than the common form goes value by value through the functions
# above, so that every value reads exactly as they read it.
_FIRST_TEN = itemgetter(slice(0, 10))
# Stands for a missing moment in a column of text: no store value equals it, and its day is 0.
_NO_DAY = ()
# A valid moment standing for a missing one, so that a column with gaps still converts at once.
_SOME_MOMENT = "2000-01-01 00:00:00"


_T = TypeVar("_T")


def _found(values: list[_T | None]) -> TypeGuard[list[_T]]:
    """No lookup of the column missed."""
    return None not in values


def _micros_column(values: Sequence[Any]) -> list[int]:
    """`_micros` of each value, 0 for a falsy one (the grant fields' rule)."""
    gaps = values.count(None)
    if gaps == len(values):
        return [0] * gaps
    texts = [_SOME_MOMENT if v is None else v for v in values] if gaps else values
    try:
        # Naive text (what SQLite hands) converts here; anything else raises and goes below.
        out = list(
            map(
                floordiv,
                map(sub, map(dt.datetime.fromisoformat, texts), repeat(_NAIVE_EPOCH)),
                repeat(_US),
            )
        )
    except (TypeError, ValueError):
        return [_micros(v) if v else 0 for v in values]
    if gaps:
        return [(m or 1) if v is not None else 0 for m, v in zip(out, values, strict=True)]
    return [m or 1 for m in out] if 0 in out else out


def _day_column(values: Sequence[Any], cache: dict[Any, int]) -> list[int]:
    """`_day(value, cache)` of each value; `cache` must map `_NO_DAY` to 0."""
    texts = [_NO_DAY if v is None else v for v in values] if None in values else values
    try:
        out = list(map(cache.get, map(_FIRST_TEN, texts)))
    except TypeError:  # dates and datetimes (PostgreSQL)
        return [_day(v, cache) for v in values]
    if _found(out):
        return out
    return [_day(v, cache) if d is None else d for d, v in zip(out, values, strict=True)]


def _return_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc only): a full read frees the
    temporaries of millions of rows, which the allocator would otherwise keep as resident
    memory (measured at a million grants: 456 MB resident after the load, 439 MB after this)."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not glibc
        ctypes.CDLL(None).malloc_trim(0)


def _snapshot_file(store: Store) -> FilePath | None:
    """Where an SQLite store's snapshot lives (beside its file); None for other stores."""
    database = RevisionHint.database_file(store.engine.url.render_as_string(hide_password=False))
    return database.with_name(database.name + "-facts") if database is not None else None


def _raw_chunks(session: Any, stmt: Any) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of `stmt` as plain DBAPI tuples, a chunk at a time: ORM rows and their type
    processing cost more than the whole index at a million grants. Values arrive as the driver
    gives them (SQLite: strings for dates, ints for booleans), so readers convert both forms."""
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect))
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        # A server-side cursor streams instead of materializing every row in the client.
        cursor = dbapi.cursor(name=f"facts_{id(stmt):x}")
        cursor.itersize = _CHUNK
    else:
        cursor = dbapi.cursor()
    driver = conn.connection.driver_connection
    try:
        # Each round trip bounded (a stalled store fails the load instead of hanging it).
        with deadline.guard(conn.engine, driver):
            cursor.execute(sql)
        while True:
            with deadline.guard(conn.engine, driver):
                chunk = cursor.fetchmany(_CHUNK)
            if not chunk:
                break
            yield chunk
    finally:
        cursor.close()


class _IdTable:
    """`id → row` over a list of ids, as an open-addressing hash table in one flat array.

    A dict of a million grant ids costs ~70 MB (its table and an int object per row); this costs
    8 bytes a slot. Grants are looked up by id only off the hot path (a grant resource, a
    refresh), where a few Python-level probes are cheap. A slot whose row now holds another id
    (a dropped link whose row was reused) is skipped by the comparison, so nothing is deleted."""

    __slots__ = ("filled", "ids", "mask", "slots")

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.mask = 7
        self.slots = array("i", [_NONE]) * 8
        self.filled = 0

    def get(self, key: str) -> int | None:
        ids, slots, mask = self.ids, self.slots, self.mask
        slot = hash(key) & mask
        while (row := slots[slot]) != _NONE:
            if ids[row] == key:
                return row
            slot = (slot + 1) & mask
        return None

    def add(self, key: str, row: int) -> None:
        """Map `key` (which `ids[row]` holds) to `row`."""
        if (self.filled + 1) * 2 > self.mask:
            self._grow()
        slots, mask = self.slots, self.mask
        slot = hash(key) & mask
        while slots[slot] != _NONE:
            slot = (slot + 1) & mask
        slots[slot] = row
        self.filled += 1

    def _grow(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        """Index every live id of `ids` again (after appending many at once)."""
        size = 8
        while size < 4 * (len(self.ids) + 1):
            size *= 2
        self.mask, self.slots, self.filled = size - 1, array("i", [_NONE]) * size, 0
        slots, mask = self.slots, self.mask
        for row, key in enumerate(self.ids):
            if key:  # ids are unique among live rows
                slot = hash(key) & mask
                while slots[slot] != _NONE:
                    slot = (slot + 1) & mask
                slots[slot] = row
                self.filled += 1


class FactIndex:
    """Store-backed relations: `paths(sub, owner)` and `pm_belongs(pm, owner)`; see module
    docstring."""

    def __init__(self, majority_age: int = 18, bands: BandTable | None = None) -> None:
        self.majority_age = majority_age
        #: The age bands of minors' grants per jurisdiction (policies/age_bands.yaml).
        self.bands = bands or BandTable.load()
        self.revision = 0
        #: What the last refresh read: audit rows and the entities it reloaded (for tests, metrics).
        self.last_refresh: dict[str, int] = {}
        #: The store state this index holds (revision, newest audit event), for snapshots.
        self.anchor: snapshot.Anchor | None = None
        #: Where the last full read came from: "store" or "snapshot".
        self.loaded_from = ""
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.orgs: dict[str, int] = {}
        self.org_ids: list[str] = []
        self.org_names: list[str] = []
        self.org_portal: bytearray = bytearray()
        self.org_jurisdiction: list[str | None] = []
        #: Categories a minor shares with a caregiver: (minor, caregiver) → labels.
        self.consents: dict[tuple[str, str], frozenset[str]] = {}
        self.providers: dict[str, tuple[int, str]] = {}
        self.reviewers: dict[str, tuple[int, str]] = {}
        # Small tables of repeated words (first names, relationships, staff ids), by index.
        self._words: dict[str, int] = {"": 0}
        self.words: list[str] = [""]
        # Clients: id → row, and one `_C`-wide record per row.
        self._ci: dict[str, int] = {}
        self.c_id: list[str] = []
        self.c_rec = array("i")
        # Shared-email groups (`org|email`): the first member; members chain through the records.
        self._groups: dict[str, int] = {}
        self.g_key: list[str] = []
        self.g_head = array("i")
        # Links with portal access (pending, active, revoked, expired): one `_L`-wide record each.
        self.l_id: list[str] = []  # "" in a dropped link's row
        self._li = _IdTable(self.l_id)
        self.l_rec = array("q")
        #: Each link's activation (µs since the epoch, 0: never), beside its record: read only
        #: when a delegated token's liveness is judged, never by a decision.
        self.l_act = array("q")
        #: Each link's review-by date (µs since the epoch, 0: none): it lapses then, unless
        #: re-approved (`authz.accounts.recertification`).
        self.l_rby = array("q")
        self._free: list[int] = []
        #: Payment methods: (organization's row, id) → the owning client's row. An id is only
        #: unique within its organization, so two organizations may each have their own `pm_x`.
        self.pm: dict[tuple[int, str], int] = {}
        #: Revoked access tokens still within their lifetime: jti → expiry (epoch seconds).
        self.revoked: dict[str, float] = {}
        #: Enabled OAuth clients (portal backends) → their organization's row.
        self.oauth: dict[str, int] = {}
        #: Enabled OAuth clients → the audiences they are registered for.
        self.oauth_audiences: dict[str, frozenset[str]] = {}

    def _word(self, text: str | None) -> int:
        if not text:
            return 0
        i = self._words.get(text)
        if i is None:
            i = self._words[text] = len(self.words)
            self.words.append(sys.intern(text))
        return i

    def _group(self, org: int, email: str) -> int:
        """The shared-email group of `email` in organization row `org`, made if new: the
        clients who may toggle between their accounts (see `authz.policy.delegation`)."""
        key = f"{org}|{email}"
        group = self._groups.get(key, _NONE)
        if group == _NONE:
            group = self._groups[key] = len(self.g_key)
            self.g_key.append(key)
            self.g_head.append(_NONE)
        return group

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_rows(
        cls,
        orgs: Iterable[OrgRow],
        providers: Iterable[StaffRow] = (),
        reviewers: Iterable[StaffRow] = (),
        clients: Iterable[ClientRow] = (),
        links: Iterable[LinkRow] = (),
        payments: Iterable[PaymentRow] = (),
        majority_age: int = 18,
        revision: int = 0,
    ) -> FactIndex:
        """An index over plain rows (policy tests, benchmarks, property tests)."""
        index = cls(majority_age)
        index._load_rows(
            orgs, providers, reviewers, [list(clients)], [list(links)], [list(payments)]
        )
        index.revision = revision
        return index

    def _load_rows(
        self,
        orgs: Iterable[Any],
        providers: Iterable[Any],
        reviewers: Iterable[Any],
        clients: Iterable[list[Any]],
        links: Iterable[list[Any]],
        payments: Iterable[list[Any]],
        unique: bool = False,
    ) -> None:
        for org in orgs:
            self.put_org(org)
        for p in providers:
            self.put_staff(self.providers, p)
        for r in reviewers:
            self.put_staff(self.reviewers, r)
        if not unique:
            for chunk in clients:
                self._add_clients(chunk)
            for chunk in links:
                self._add_links(chunk)
            for chunk in payments:
                for row in chunk:
                    self.put_payment(row)
            return
        # A full load: each chunk is taken a column at a time (`_Columns`), and a chunk that
        # holds anything the column-wise reading does not cover goes row by row as before.
        cols = _Columns()
        for chunk in clients:
            if not cols.clients(self, chunk):
                self._add_clients(chunk)
        for chunk in links:
            if not cols.links(self, chunk):
                self._add_links(chunk, unique=True)
        self._li.rebuild()
        for chunk in payments:
            if not cols.payments(self, chunk):
                for row in chunk:
                    self.put_payment(row)

    def _add_clients(self, rows: list[Any]) -> None:
        """Append clients never seen (a full load); a known id goes through `put_client`."""
        ci, orgs, rec, c_id, word = self._ci, self.orgs, self.c_rec, self.c_id, self._word
        g_head = self.g_head
        days: dict[Any, int] = {}
        for cid, org_id, first_name, ctype, birth, email, verified, active in rows:
            org = orgs.get(org_id)
            if org is None:
                continue
            i = ci.setdefault(cid, len(c_id))
            if i != len(c_id):
                self.put_client((cid, org_id, first_name, ctype, birth, email, verified, active))
                continue
            c_id.append(cid)
            group = gnext = _NONE
            if email:
                group = self._group(org, email)
                gnext, g_head[group] = g_head[group], i
            minor = ctype == "minor"
            rec.extend(
                (
                    org,
                    _LIVE
                    | (_ACTIVE if active else 0)
                    | (_VERIFIED if verified else 0)
                    | (_MINOR if minor else 0),
                    group,
                    _NONE,
                    _NONE,
                    word(first_name),
                    _day(birth, days) if minor else 0,
                    gnext,
                )
            )

    def _add_links(self, rows: list[Any], unique: bool = False) -> None:
        """Append links never seen (a full load); a known id goes through `put_link`.
        `unique`: the rows come from a primary-key scan of an empty index, so the id table is
        rebuilt once at the end instead of probed per row."""
        li, ci, crec, lrec, l_id = self._li, self._ci, self.c_rec, self.l_rec, self.l_id
        word, words = self._word, self._words
        days: dict[Any, int] = {}
        l_act, l_rby = self.l_act, self.l_rby
        for row in rows:
            lid, recv_id, cg_id, relationship, status, level, expires, ack_by, ack_at = row[:9]
            recv, cg = ci.get(recv_id), ci.get(cg_id)
            if status is None or recv is None or cg is None:
                continue
            if not unique and (self._free or li.get(lid) is not None):
                self.put_link(row)
                continue
            i = len(l_id)
            l_id.append(lid)
            rel = words.get(relationship)
            if rel is None:
                rel = word(relationship)
            by = words.get(ack_by) if ack_by else 0
            if by is None:
                by = word(ack_by)
            lrec.extend(
                (
                    recv,
                    cg,
                    _ST[status] | _LV[level or "full"] << 4 | rel << 8,
                    by,
                    _day(ack_at, days),
                    _micros(expires) if expires else 0,
                    crec[cg * _C + _C_OUT],
                    crec[recv * _C + _C_IN],
                )
            )
            l_act.append(_micros(row[9]) if len(row) > 9 and row[9] else 0)
            l_rby.append(_micros(row[10]) if len(row) > 10 and row[10] else 0)
            crec[cg * _C + _C_OUT] = i
            crec[recv * _C + _C_IN] = i
            if not unique:
                li.add(lid, i)

    @classmethod
    def load(cls, store: Store, majority_age: int = 18) -> FactIndex:
        """Every fact (start-up): the store's snapshot and the changes since, if it has a usable
        one (`authz.policy.snapshot`), else every row of the store."""
        index = cls._restore(store, majority_age)
        if index is None:
            index = cls(majority_age)
            index.reload(store)
        else:
            index.refresh(store)
            _return_free_memory()
        return index

    def reload(self, store: Store) -> None:
        """Replace everything with the store's current facts."""
        with self._lock, store.read() as session:
            revision = int(session.execute(select(State.revision)).scalar_one())
            self._clear()
            self._load_rows(
                session.execute(select(*_ORG_COLS)),
                session.execute(select(Provider.id, Provider.org_id, Provider.name)),
                session.execute(select(Reviewer.id, Reviewer.org_id, Reviewer.name)),
                _raw_chunks(session, select(*_CLIENT_COLS)),
                _raw_chunks(session, select(*_LINK_COLS).where(Link.portal_status.is_not(None))),
                _raw_chunks(session, select(PaymentMethod.id, PaymentMethod.client_id)),
                unique=True,
            )
            self._read_tokens_and_oauth(session)
            self._read_shares(session, None)
            newest = session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.revision <= revision)
                .order_by(AuditEvent.seq.desc())
                .limit(1)
            ).first()
            self.anchor = snapshot.Anchor(revision, *newest) if newest is not None else None
            self.revision = revision
            self.loaded_from = "store"
        _return_free_memory()

    def _read_shares(self, session: Any, minors: set[str] | None) -> None:
        """The categories minors share now (all, or those of `minors`)."""
        stmt = select(
            CategoryShare.minor_id, CategoryShare.caregiver_id, CategoryShare.label
        ).where(CategoryShare.withdrawn_at.is_(None))
        if minors is not None:
            if not minors:
                return
            stmt = stmt.where(CategoryShare.minor_id.in_(sorted(minors)))
            for key in [k for k in self.consents if k[0] in minors]:
                del self.consents[key]
        shared: dict[tuple[str, str], set[str]] = {}
        for minor, caregiver, label in session.execute(stmt):
            shared.setdefault((minor, caregiver), set()).add(label)
        for (minor, caregiver), labels in shared.items():
            self.put_consent(minor, caregiver, labels)

    def _read_tokens_and_oauth(self, session: Any) -> None:
        now = clock.now().timestamp()
        for row in session.execute(select(RevokedToken.jti, RevokedToken.expires_at)):
            self._put_revoked(row[0], row[1], now)
        for oc in session.execute(
            select(
                OAuthClient.client_id,
                OAuthClient.org_id,
                OAuthClient.disabled_at,
                OAuthClient.audiences,
            )
        ):
            self.put_oauth_client(oc)

    # -- snapshots (`authz.policy.snapshot`) ------------------------------------------------

    def save(self, store: Store, min_rows: int | None = None) -> bool:
        """Save this index as the snapshot of an SQLite store, if it holds at least `min_rows`
        (default `SNAPSHOT_MIN_ROWS`) clients and grants; True if saved."""
        path = _snapshot_file(store)
        least = SNAPSHOT_MIN_ROWS if min_rows is None else min_rows
        with self._lock:
            if path is None or self.anchor is None or len(self.c_id) + len(self.l_id) < least:
                return False
            saved = snapshot.read_anchor(path)
            if saved == self.anchor:
                return False
            sections = {
                "org_ids": self.org_ids,
                "org_names": self.org_names,
                "org_portal": list(self.org_portal),
                "org_jurisdiction": self.org_jurisdiction,
                "consents": {f"{m}|{c}": sorted(v) for (m, c), v in self.consents.items()},
                "providers": self.providers,
                "reviewers": self.reviewers,
                "words": self.words,
                "c_id": self.c_id,
                "c_rec": self.c_rec,
                "g_key": self.g_key,
                "g_head": self.g_head,
                "l_id": self.l_id,
                "l_rec": self.l_rec,
                "l_act": self.l_act,
                "l_rby": self.l_rby,
                "free": self._free,
                "pm_orgs": array("i", [org for org, _ in self.pm]),
                "pm_ids": [pm for _, pm in self.pm],
                "pm_rows": array("i", self.pm.values()),
            }
            try:
                snapshot.write(path, self.anchor, sections)
            except OSError:  # a cache: the next start reads the store instead
                return False
            return True

    @classmethod
    def _restore(cls, store: Store, majority_age: int) -> FactIndex | None:
        """The index of the store's snapshot, if the store's history still holds its anchor;
        not yet refreshed. The anchor (the file's header) is checked before the file is read."""
        path = _snapshot_file(store)
        anchor = snapshot.read_anchor(path) if path is not None else None
        if path is None or anchor is None:
            return None
        with store.read() as session:
            found = session.execute(
                select(AuditEvent.hash).where(AuditEvent.seq == anchor.seq)
            ).scalar_one_or_none()
            revision = int(session.execute(select(State.revision)).scalar_one())
            if found != anchor.hash or revision < anchor.revision:
                return None
            saved = snapshot.read(path)
            if saved is None or saved[0] != anchor:  # replaced since its header was read
                return None
            index = cls(majority_age)
            try:
                index._take(saved[1])
            except (KeyError, TypeError, ValueError):
                return None
            index._read_tokens_and_oauth(session)
        index.revision, index.anchor, index.loaded_from = anchor.revision, anchor, "snapshot"
        return index

    def _take(self, sections: dict[str, Any]) -> None:
        """Fill this empty index from a snapshot's sections; ValueError if they disagree."""
        c_rec, g_head, l_rec, l_act, l_rby, pm_rows, pm_orgs = (
            sections[k]
            for k in ("c_rec", "g_head", "l_rec", "l_act", "l_rby", "pm_rows", "pm_orgs")
        )
        c_id, g_key, l_id, pm_ids = (sections[k] for k in ("c_id", "g_key", "l_id", "pm_ids"))
        org_ids, org_names, org_portal = (
            sections[k] for k in ("org_ids", "org_names", "org_portal")
        )
        if (
            (c_rec.typecode, g_head.typecode, l_rec.typecode, pm_rows.typecode)
            != (self.c_rec.typecode, self.g_head.typecode, self.l_rec.typecode, "i")
            or len(c_rec) != _C * len(c_id)
            or len(l_rec) != _L * len(l_id)
            or l_act.typecode != "q"
            or len(l_act) != len(l_id)
            or l_rby.typecode != "q"
            or len(l_rby) != len(l_id)
            or len(g_head) != len(g_key)
            or len(pm_rows) != len(pm_ids)
            or pm_orgs.typecode != "i"
            or len(pm_orgs) != len(pm_ids)
            or not len(org_ids) == len(org_names) == len(org_portal)
        ):
            raise ValueError("snapshot sections disagree")
        self.org_ids, self.org_names = org_ids, org_names
        self.orgs = dict(zip(org_ids, range(len(org_ids)), strict=True))
        self.org_portal = bytearray(org_portal)
        self.org_jurisdiction = list(sections["org_jurisdiction"])
        if len(self.org_jurisdiction) != len(org_ids):
            raise ValueError("snapshot sections disagree")
        for key, labels in sections["consents"].items():
            minor, _, caregiver = key.partition("|")
            self.consents[(minor, caregiver)] = frozenset(labels)
        for table, rows in ((self.providers, "providers"), (self.reviewers, "reviewers")):
            table.update({k: (int(org), str(name)) for k, (org, name) in sections[rows].items()})
        self.words = [sys.intern(w) for w in sections["words"]]
        self._words = dict(zip(self.words, range(len(self.words)), strict=True))
        self.c_id, self.c_rec = c_id, c_rec
        # One int object a client row, which the payment methods below share as a full read
        # shares them (an int object a payment method otherwise: 14 MB at a million grants).
        numbers = list(range(len(c_id)))
        self._ci = dict(zip(c_id, numbers, strict=True))
        self.g_key, self.g_head = g_key, g_head
        self._groups = dict(zip(g_key, range(len(g_key)), strict=True))
        self.l_id, self.l_rec, self._free = l_id, l_rec, [int(i) for i in sections["free"]]
        self.l_act, self.l_rby = l_act, l_rby
        self._li = _IdTable(l_id)
        self._li.rebuild()
        # A snapshot written before ids were per organization has no `pm_orgs`: its KeyError
        # sends the start to the store, which is read in full instead.
        if pm_rows and not 0 <= min(pm_rows) <= max(pm_rows) < len(numbers):
            raise ValueError("snapshot sections disagree")
        owners = map(numbers.__getitem__, pm_rows)
        self.pm = dict(zip(zip(pm_orgs, pm_ids, strict=True), owners, strict=True))

    def put_org(self, row: Any) -> None:
        i = self.orgs.get(row[0])
        if i is None:
            i = self.orgs[row[0]] = len(self.org_ids)
            self.org_ids.append(row[0])
            self.org_names.append(row[1])
            self.org_portal.append(0)
            self.org_jurisdiction.append(None)
        self.org_names[i] = row[1]
        self.org_portal[i] = grants.ENTITLEMENT in (row[2] or [])
        self.org_jurisdiction[i] = row[3] if len(row) > 3 else None

    def put_consent(self, minor: str, caregiver: str, labels: Iterable[str]) -> None:
        """The categories `minor` now shares with `caregiver` (empty: none)."""
        shared = frozenset(labels)
        if shared:
            self.consents[(minor, caregiver)] = shared
        else:
            self.consents.pop((minor, caregiver), None)

    def shares(self, minor: str, caregiver: str, label: str) -> bool:
        """`g3(caregiver, label, minor)`: the minor shares that category with the caregiver."""
        kind, _, cid = caregiver.partition(":")
        return kind == "client" and label in self.consents.get((minor, cid), ())

    def band(self, cid: str, now: dt.datetime) -> Band | None:
        """A minor client's age band now (policies/age_bands.yaml), or None for an adult or a
        minor without a birth date."""
        i = self.client_index(cid)
        if i is None:
            return None
        birth = self.c_rec[i * _C + _C_BIRTH]
        if not birth:
            return None
        org = self.c_rec[i * _C + _C_ORG]
        return self.bands.band(self.org_jurisdiction[org], dt.date.fromordinal(birth), now.date())

    def birth_date(self, cid: str) -> dt.date | None:
        """A minor client's birth date (None for adults and unknown clients)."""
        i = self.client_index(cid)
        birth = self.c_rec[i * _C + _C_BIRTH] if i is not None else 0
        return dt.date.fromordinal(birth) if birth else None

    def relations(self, sub: str, owner: str, now: dt.datetime) -> frozenset[str]:
        """Every relation `g(sub, ·, owner)` holds: the paths', and `adolescent_proxy` for a
        caregiver of a minor in the adolescent band of the organization's jurisdiction."""
        held = self.path_relations(sub, owner, now)
        return held | _PROXY if self.proxy_of_adolescent(held, owner, now) else held

    def path_relations(self, sub: str, owner: str, now: dt.datetime) -> frozenset[str]:
        """The relations of `sub`'s paths to `owner`: `relations` but `adolescent_proxy`."""
        paths = self.paths(sub, owner, now)
        if len(paths) == 1:  # most pairs: one relation, its set made once
            return _ONE_RELATION.get(paths[0].rel) or frozenset((paths[0].rel,))
        return frozenset([p.rel for p in paths]) if paths else _NO_RELATIONS

    def proxy_of_adolescent(self, held: frozenset[str], owner: str, now: dt.datetime) -> bool:
        """Whether `adolescent_proxy` holds, given the path relations `held` on `owner`: a
        caregiver of a minor in the adolescent band. Asked apart from the paths, because most
        checks never ask it (the matcher asks it of labelled resources and messages only)."""
        for rel in held:
            if rel.startswith("caregiver_"):
                return self.adolescent(owner, now)
        return False

    def adolescent(self, cid: str, now: dt.datetime) -> bool:
        """`band(cid, now).name == "adolescent"`, without building the band (each caregiver's
        check asks)."""
        i = self.client_index(cid)
        if i is None:
            return False
        birth = self.c_rec[i * _C + _C_BIRTH]
        if not birth:
            return False
        jurisdiction = self.org_jurisdiction[self.c_rec[i * _C + _C_ORG]]
        name = self.bands.band_name(jurisdiction, dt.date.fromordinal(birth), now.date())
        return name == "adolescent"

    def put_staff(self, table: dict[str, tuple[int, str]], row: Any) -> None:
        org = self.orgs.get(row[1])
        if org is not None:
            table[row[0]] = (org, row[2] or "")

    def put_oauth_client(self, row: Any) -> None:
        """A portal backend: kept while enabled, with its audiences; its tokens die with it."""
        org = self.orgs.get(row[1])
        if org is None or row[2] is not None:
            self.oauth.pop(row[0], None)
            self.oauth_audiences.pop(row[0], None)
        else:
            self.oauth[row[0]] = org
            audiences = row[3] if len(row) > 3 else None
            self.oauth_audiences[row[0]] = frozenset(audiences or ())

    def _put_revoked(self, jti: str, expires: Any, now: float) -> None:
        at = _micros(expires) / 1e6
        if at > now - 3600:  # long expired tokens fail verification anyway
            self.revoked[jti] = at

    def put_client(self, row: Any) -> None:
        """Insert or update one client (its email group moves with it)."""
        cid, org_id, first_name, ctype, birth, email, verified, active = row
        org = self.orgs.get(org_id)
        if org is None:
            return
        i = self._ci.get(cid)
        if i is None:
            self._add_clients([row])
            return
        rec, b = self.c_rec, i * _C
        group = self._group(org, email) if email else _NONE
        old = rec[b + _C_GROUP]
        if old != group:
            if old != _NONE:
                self._group_unlink(old, i)
            if group != _NONE:
                rec[b + _C_GNEXT], self.g_head[group] = self.g_head[group], i
        minor = ctype == "minor"
        rec[b + _C_ORG] = org
        rec[b + _C_FLAGS] = (
            _LIVE
            | (_ACTIVE if active else 0)
            | (_VERIFIED if verified else 0)
            | (_MINOR if minor else 0)
        )
        rec[b + _C_GROUP] = group
        rec[b + _C_NAME] = self._word(first_name)
        rec[b + _C_BIRTH] = _day(birth) if minor else 0

    def _group_unlink(self, group: int, i: int) -> None:
        rec, j = self.c_rec, self.g_head[group]
        if j == i:
            self.g_head[group] = rec[i * _C + _C_GNEXT]
            return
        while j != _NONE:
            nxt = rec[j * _C + _C_GNEXT]
            if nxt == i:
                rec[j * _C + _C_GNEXT] = rec[i * _C + _C_GNEXT]
                return
            j = nxt

    def drop_client(self, cid: str) -> None:
        i = self._ci.get(cid)
        if i is not None:
            self.c_rec[i * _C + _C_FLAGS] = 0

    def put_link(self, row: Any) -> None:
        """Insert or update one link; a link without portal access is not kept."""
        lid, recv_id, cg_id, relationship, status, level, expires, ack_by, ack_at = row[:9]
        activated = _micros(row[9]) if len(row) > 9 and row[9] else 0
        review_by = _micros(row[10]) if len(row) > 10 and row[10] else 0
        self.drop_link(lid)
        recv, cg = self._ci.get(recv_id), self._ci.get(cg_id)
        if status is None or recv is None or cg is None:
            return
        crec, lrec = self.c_rec, self.l_rec
        kind = _ST[status] | _LV[level or "full"] << 4 | self._word(relationship) << 8
        record = (
            recv,
            cg,
            kind,
            self._word(ack_by),
            _day(ack_at),
            _micros(expires),
            crec[cg * _C + _C_OUT],
            crec[recv * _C + _C_IN],
        )
        if self._free:
            i = self._free.pop()
            self.l_id[i] = lid
            lrec[i * _L : (i + 1) * _L] = array("q", record)
            self.l_act[i] = activated
            self.l_rby[i] = review_by
        else:
            i = len(self.l_id)
            self.l_id.append(lid)
            lrec.extend(record)
            self.l_act.append(activated)
            self.l_rby.append(review_by)
        self._li.add(lid, i)
        crec[cg * _C + _C_OUT] = i
        crec[recv * _C + _C_IN] = i

    def drop_link(self, lid: str) -> None:
        i = self._li.get(lid)
        if i is None:
            return
        self.l_id[i] = ""
        b = i * _L
        self._unlink(_C_OUT, _L_NEXT_OUT, self.l_rec[b + _L_CG], i)
        self._unlink(_C_IN, _L_NEXT_IN, self.l_rec[b + _L_RECV], i)
        self.l_rec[b + _L_KIND] = 0
        self.l_rec[b + _L_EXP] = 0
        self.l_act[i] = 0
        self.l_rby[i] = 0
        self._free.append(i)

    def _unlink(self, head: int, nxt: int, owner: int, i: int) -> None:
        crec, lrec = self.c_rec, self.l_rec
        if crec[owner * _C + head] == i:
            crec[owner * _C + head] = lrec[i * _L + nxt]
            return
        j = crec[owner * _C + head]
        while j != _NONE:
            if lrec[j * _L + nxt] == i:
                lrec[j * _L + nxt] = lrec[i * _L + nxt]
                return
            j = lrec[j * _L + nxt]

    def put_payment(self, row: Any) -> None:
        """Record `(id, client_id)`: the payment method with that id in the client's
        organization belongs to that client."""
        owner = self._ci.get(row[1])
        if owner is not None:
            self.pm[(self.c_rec[owner * _C + _C_ORG], row[0])] = owner

    # -- freshness ------------------------------------------------------------------------

    def ensure_fresh(self, store: Store, min_revision: int | None = None) -> int:
        """Make the index at least as new as `min_revision` (or the store's newest revision:
        the revision published beside an SQLite file, else one cheap `SELECT`); return the
        index's revision."""
        if min_revision is not None and self.revision >= min_revision:
            return self.revision
        if min_revision is None:
            published = store.published_revision()
            if published is not None and published <= self.revision:
                return self.revision
        if read_revision(store) > self.revision:
            self.refresh(store)
        return self.revision

    def refresh(self, store: Store) -> int:
        """Apply every change since `self.revision`, reading only the rows they touched."""
        with self._lock, store.read() as session:
            newest = int(session.execute(select(State.revision)).scalar_one())
            if newest <= self.revision:
                return self.revision
            # Every revision <= newest has committed: writers take the state row lock in turn.
            events = session.execute(
                select(
                    AuditEvent.kind,
                    AuditEvent.entity_id,
                    AuditEvent.client_ids,
                    AuditEvent.seq,
                    AuditEvent.hash,
                )
                .where(AuditEvent.revision > self.revision, AuditEvent.revision <= newest)
                .order_by(AuditEvent.seq)
            ).all()
            touched: dict[str, set[str]] = {k: set() for k in _TOUCHED}
            for kind, entity, client_ids, _, _ in events:
                if kind in _NO_FACTS:
                    continue
                family = kind.partition(".")[0]
                key = _FAMILIES.get(family)
                if key is None:
                    continue
                if entity:
                    touched[key].add(entity)
                if family in ("link", "grant"):
                    touched["client"].update(client_ids or [])
                if family == "share":
                    touched["share"].update(client_ids or [])
        if sum(len(v) for v in touched.values()) > _FULL_RELOAD_AT:
            self.reload(store)
            return self.revision
        with self._lock:
            if any(touched.values()):
                with store.read() as session:
                    self._apply(session, touched)
            self.last_refresh = {"events": len(events)} | {k: len(v) for k, v in touched.items()}
            if events:
                self.anchor = snapshot.Anchor(newest, events[-1].seq, events[-1].hash)
            elif self.anchor is not None:
                self.anchor = self.anchor._replace(revision=newest)
            self.revision = max(self.revision, newest)
            return self.revision

    def _apply(self, session: Any, touched: dict[str, set[str]]) -> None:
        def rows(stmt: Any, col: Any, ids: set[str]) -> Iterator[Any]:
            items = sorted(ids)
            for start in range(0, len(items), 500):
                yield from session.execute(stmt.where(col.in_(items[start : start + 500])))

        for row in rows(select(*_ORG_COLS), Organization.id, touched["org"]):
            self.put_org(row)
        self._read_shares(session, touched["share"])
        for model, table in ((Provider, self.providers), (Reviewer, self.reviewers)):
            for row in rows(select(model.id, model.org_id, model.name), model.id, touched["staff"]):
                self.put_staff(table, row)
        seen: set[str] = set()
        for row in rows(select(*_CLIENT_COLS), Client.id, touched["client"]):
            self.put_client(row)
            seen.add(row[0])
        for cid in touched["client"] - seen:
            self.drop_client(cid)
        seen = set()
        for row in rows(select(*_LINK_COLS), Link.id, touched["link"]):
            self.put_link(row)
            seen.add(row[0])
        for lid in touched["link"] - seen:
            self.drop_link(lid)
        for row in rows(
            select(PaymentMethod.id, PaymentMethod.client_id), PaymentMethod.id, touched["pm"]
        ):
            self.put_payment(row)
        now = clock.now().timestamp()
        for row in rows(
            select(RevokedToken.jti, RevokedToken.expires_at), RevokedToken.jti, touched["token"]
        ):
            self._put_revoked(row[0], row[1], now)
        seen = set()
        for row in rows(
            select(
                OAuthClient.client_id,
                OAuthClient.org_id,
                OAuthClient.disabled_at,
                OAuthClient.audiences,
            ),
            OAuthClient.client_id,
            touched["oauth"],
        ):
            self.put_oauth_client(row)
            seen.add(row[0])
        for cid in touched["oauth"] - seen:
            self.oauth.pop(cid, None)
            self.oauth_audiences.pop(cid, None)
        if touched["token"] and len(self.revoked) > 1024:
            self.revoked = {k: v for k, v in self.revoked.items() if v > now - 3600}

    # -- relations (what `g` and `g2` answer) ---------------------------------------------

    def client_index(self, cid: str) -> int | None:
        """The row of a live client, or None."""
        i = self._ci.get(cid)
        return i if i is not None and self.c_rec[i * _C + _C_FLAGS] & _LIVE else None

    def org_of(self, owner: str) -> int | None:
        """The organization of a client id or of an organization id."""
        i = self.client_index(owner)
        if i is not None:
            return self.c_rec[i * _C + _C_ORG]
        return self.orgs.get(owner)

    def grant_state(self, link: int, now: dt.datetime) -> grants.GrantState:
        """The grant's effective state now (the one rule in `authz.policy.grants`)."""
        lrec, crec, b = self.l_rec, self.c_rec, link * _L
        recv, cg = lrec[b + _L_RECV] * _C, lrec[b + _L_CG] * _C
        rflags, cflags = crec[recv + _C_FLAGS], crec[cg + _C_FLAGS]
        if not self.org_portal[crec[recv + _C_ORG]]:
            return grants.GrantState(
                "revoked", False, f"the organization has no {grants.ENTITLEMENT} entitlement", None
            )
        exp, birth, rby = lrec[b + _L_EXP], crec[recv + _C_BIRTH], self.l_rby[link]
        facts = grants.GrantFacts(
            status=STATUSES[lrec[b + _L_KIND] & 0xF] or None,
            expires_at=_EPOCH + exp * _US if exp else None,
            receiver_type="minor" if rflags & _MINOR else "adult",
            receiver_birth_date=dt.date.fromordinal(birth) if birth else None,
            receiver_active=bool(rflags & _ACTIVE),
            caregiver_active=bool(cflags & _ACTIVE),
            review_by=_EPOCH + rby * _US if rby else None,
        )
        majority = self.majority_age
        jurisdiction = self.org_jurisdiction[crec[recv + _C_ORG]]
        if birth and jurisdiction:
            # The jurisdiction's row says when a minor's grant ends (policies/age_bands.yaml).
            majority = self.bands.ages(jurisdiction).adult
        return grants.effective_state(facts, now, majority)

    def paths(self, sub: str, owner: str, now: dt.datetime | None = None) -> list[Path]:
        """Every relation `sub` (`client:<id>`, `provider:<id>`, `reviewer:<id>`) holds on
        `owner` (a client or organization id) now, best first."""
        kind, _, ident = sub.partition(":")
        if kind == "client":
            xi = self._ci.get(ident)
            oi = self._ci.get(owner)
            if xi is None or oi is None:
                return []
            crec, x, o = self.c_rec, xi * _C, oi * _C
            xflags, oflags = crec[x + _C_FLAGS], crec[o + _C_FLAGS]
            if not (xflags & _ACTIVE and oflags & _ACTIVE and xflags & _LIVE):
                return []
            if xi == oi:
                return [Path("self")]
            if crec[x + _C_ORG] != crec[o + _C_ORG]:
                return []
            out: list[Path] = []
            g = crec[x + _C_GROUP]
            # The shared-email rule (policies/README.md): a login proves its email when it
            # signs in, so every account of the organization recorded with that email is
            # reachable from any of them; nothing else about the accounts counts.
            if g != _NONE and g == crec[o + _C_GROUP]:
                out.append(Path("shared_email"))
            lrec, link = self.l_rec, crec[x + _C_OUT]
            while link != _NONE:
                b = link * _L
                # The caregiver check guards against a slot recycled by a concurrent refresh.
                if lrec[b + _L_RECV] == oi and lrec[b + _L_CG] == xi:
                    kind_bits = lrec[b + _L_KIND]
                    if (
                        kind_bits & 0xF == _ACTIVE_STATUS
                        and self.grant_state(link, now or clock.now()).usable
                    ):
                        out.append(Path("caregiver_" + LEVELS[kind_bits >> 4 & 0xF], link))
                    break
                link = lrec[b + _L_NEXT_OUT]
            return out
        if kind in ("provider", "reviewer"):
            staff = (self.providers if kind == "provider" else self.reviewers).get(ident)
            if staff is None:
                return []
            org = self.org_of(owner)
            return [Path(kind)] if org is not None and org == staff[0] else []
        return []

    def has_relation(self, sub: str, rel: str, owner: str, now: dt.datetime | None = None) -> bool:
        """`g(sub, rel, owner)`."""
        if rel == ADOLESCENT_PROXY:
            return rel in self.relations(sub, owner, now or clock.now())
        return any(p.rel == rel for p in self.paths(sub, owner, now))

    def pm_belongs(self, pm: str, owner: str) -> bool:
        """`g2(pm, owner)`: the payment method `pm` of the owner's organization belongs to that
        client. A client id names one organization, so another organization's `pm` (the same
        id, another payment method) never answers for it."""
        i = self._ci.get(owner)
        return i is not None and self.pm.get((self.c_rec[i * _C + _C_ORG], pm)) == i

    def pm_owner(self, org_id: str, pm: str) -> str | None:
        """The client the organization's payment method `pm` belongs to, or None."""
        org = self.orgs.get(org_id)
        i = self.pm.get((org, pm)) if org is not None else None
        return self.c_id[i] if i is not None else None

    def payment_methods(self, org_id: str | None = None) -> list[tuple[str, str, str]]:
        """(organization, payment method, client) of every payment method of a live client,
        of one organization or all, in that order."""
        org = self.orgs.get(org_id) if org_id is not None else None
        if org_id is not None and org is None:
            return []
        return sorted(
            (self.org_ids[o], pm, self.c_id[i])
            for (o, pm), i in self.pm.items()
            if (org is None or o == org) and self.client_index(self.c_id[i]) is not None
        )

    # -- token liveness (what `authz.oauth.token_status` reads from the store, answered here) ------

    def is_revoked(self, jti: str) -> bool:
        return jti in self.revoked

    def oauth_client_audiences(self, client_id: str) -> frozenset[str]:
        """The audiences an enabled OAuth client is registered for (empty if none)."""
        return self.oauth_audiences.get(client_id, frozenset())

    def activated_micros(self, link: int) -> int:
        """When the grant was last accepted, in µs since the epoch (0: never)."""
        return self.l_act[link]

    def oauth_client_org(self, client_id: str) -> str | None:
        """The organization of an enabled OAuth client, or None."""
        org = self.oauth.get(client_id)
        return self.org_ids[org] if org is not None else None

    def staff_org(self, kind: str, staff_id: str) -> str | None:
        table = self.providers if kind == "provider" else self.reviewers
        found = table.get(staff_id)
        return self.org_ids[found[0]] if found is not None else None

    def client_org(self, cid: str) -> str | None:
        """The organization of a live client (active or not), or None."""
        i = self.client_index(cid)
        return self.org_ids[self.c_rec[i * _C + _C_ORG]] if i is not None else None

    def email_key(self, cid: str) -> str | None:
        """The client's email as stored (its shared-email group), or None."""
        i = self.client_index(cid)
        group = self.c_rec[i * _C + _C_GROUP] if i is not None else _NONE
        return self.g_key[group].partition("|")[2] if group != _NONE else None

    # -- descriptions and listings --------------------------------------------------------

    def name(self, cid: str) -> str:
        i = self._ci.get(cid)
        return self.words[self.c_rec[i * _C + _C_NAME]] if i is not None else cid

    def is_active(self, cid: str) -> bool:
        i = self.client_index(cid)
        return i is not None and bool(self.c_rec[i * _C + _C_FLAGS] & _ACTIVE)

    def is_verified(self, cid: str) -> bool:
        i = self.client_index(cid)
        return i is not None and bool(self.c_rec[i * _C + _C_FLAGS] & _VERIFIED)

    def staff_name(self, staff_id: str | None) -> str:
        if not staff_id:
            return "the practice"
        found = self.providers.get(staff_id) or self.reviewers.get(staff_id)
        return (found[1] or staff_id) if found else staff_id

    def grant(self, link: int) -> GrantInfo:
        lrec, b = self.l_rec, link * _L
        day, exp, kind = lrec[b + _L_ACK_DAY], lrec[b + _L_EXP], lrec[b + _L_KIND]
        return GrantInfo(
            self.l_id[link],
            self.c_id[lrec[b + _L_RECV]],
            self.c_id[lrec[b + _L_CG]],
            self.words[kind >> 8],
            STATUSES[kind & 0xF],
            LEVELS[kind >> 4 & 0xF],
            self.words[lrec[b + _L_ACK_BY]] or None,
            dt.date.fromordinal(day) if day else None,
            _EPOCH + exp * _US if exp else None,
        )

    def grant_terms(self, link: int) -> tuple[str, str, str, str | None, dt.date | None]:
        """A grant's id, relationship, level, acknowledging staff and day: what a reason names,
        read from the grant's record alone (`grant` also reads both clients' ids)."""
        lrec, b = self.l_rec, link * _L
        day, kind = lrec[b + _L_ACK_DAY], lrec[b + _L_KIND]
        return (
            self.l_id[link],
            self.words[kind >> 8],
            LEVELS[kind >> 4 & 0xF],
            self.words[lrec[b + _L_ACK_BY]] or None,
            dt.date.fromordinal(day) if day else None,
        )

    def link_index(self, lid: str) -> int | None:
        return self._li.get(lid)

    def link_between(self, caregiver: str, receiver: str) -> int | None:
        """The portal-access link from `receiver` to `caregiver`, whatever its state."""
        xi, oi = self._ci.get(caregiver), self._ci.get(receiver)
        if xi is None or oi is None:
            return None
        lrec, link = self.l_rec, self.c_rec[xi * _C + _C_OUT]
        while link != _NONE:
            if lrec[link * _L + _L_RECV] == oi:
                return link
            link = lrec[link * _L + _L_NEXT_OUT]
        return None

    def _members(self, group: int) -> list[int]:
        out, rec, j = [], self.c_rec, self.g_head[group]
        while j != _NONE:
            out.append(j)
            j = rec[j * _C + _C_GNEXT]
        out.reverse()  # in the order they joined
        return out

    def same_email(self, a: str, b: str) -> bool:
        """Two different live clients share an email group (verified or not)."""
        i, j = self.client_index(a), self.client_index(b)
        if i is None or j is None or i == j:
            return False
        group = self.c_rec[i * _C + _C_GROUP]
        return group != _NONE and group == self.c_rec[j * _C + _C_GROUP]

    def shared_email_accounts(self, cid: str) -> list[str]:
        """Other clients of the same organization with the same email (verified or not)."""
        i = self.client_index(cid)
        group = self.c_rec[i * _C + _C_GROUP] if i is not None else _NONE
        if group == _NONE:
            return []
        return [self.c_id[j] for j in self._members(group) if j != i]

    def accounts_with_email(self, org_id: str, email: str) -> list[str]:
        org = self.orgs.get(org_id)
        key = email_key(email)
        group = self._groups.get(f"{org}|{key}") if org is not None and key else None
        return [self.c_id[j] for j in self._members(group)] if group is not None else []

    def _chain(self, cid: str, head: int, nxt: int) -> list[int]:
        i = self.client_index(cid)
        out: list[int] = []
        link = self.c_rec[i * _C + head] if i is not None else _NONE
        while link != _NONE:
            out.append(link)
            link = self.l_rec[link * _L + nxt]
        return out

    def grants_as_caregiver(self, cid: str) -> list[int]:
        return self._chain(cid, _C_OUT, _L_NEXT_OUT)

    def grants_as_receiver(self, cid: str) -> list[int]:
        return self._chain(cid, _C_IN, _L_NEXT_IN)

    def staff_of(self, org_id: str) -> list[str]:
        org = self.orgs.get(org_id)
        return sorted(
            [f"provider:{k}" for k, v in self.providers.items() if v[0] == org]
            + [f"reviewer:{k}" for k, v in self.reviewers.items() if v[0] == org]
        )

    def client_ids(self) -> list[str]:
        rec = self.c_rec
        return [c for i, c in enumerate(self.c_id) if rec[i * _C + _C_FLAGS] & _LIVE]

    def counts(self) -> dict[str, int]:
        grants = len(self.l_id) - len(self._free)
        return {"clients": len(self._ci), "grants": grants, "payment_methods": len(self.pm)}


class _Columns:
    """A full load's chunks read a column at a time: the per-row work of `_add_clients`,
    `_add_links` and `put_payment` done by C-level `map`s over each column, with the same
    values as those (the tests hold every field to theirs). Each method returns False, having
    changed nothing, for a chunk it does not cover: a row those skip or are to fail on, a word
    the index has not seen yet (the row-by-row pass numbers new words in row order)."""

    __slots__ = ("birth_days", "days", "flags", "kinds")

    def __init__(self) -> None:
        self.days: dict[Any, int] = {_NO_DAY: 0}
        self.birth_days: dict[Any, int] = {_NO_DAY: 0}
        #: (active, verified, client type) → a client's flags.
        self.flags: dict[tuple[Any, Any, Any], int] = {}
        #: (status, level, relationship's word) → a link's kind bits.
        self.kinds: dict[tuple[Any, Any, int], int] = {}

    def clients(self, index: FactIndex, rows: list[Any]) -> bool:
        """`index._add_clients(rows)` of clients never seen (unique ids, an empty index)."""
        if not rows:
            return True
        try:
            cids, org_ids, names, ctypes, births, emails, verified, active = zip(*rows, strict=True)
        except ValueError:
            return False
        orgs = list(map(index.orgs.get, org_ids))
        if not _found(orgs):
            return False
        flag_of = self.flags
        keys = list(zip(active, verified, ctypes, strict=True))
        if None in map(flag_of.get, keys):
            for key in keys:
                if key not in flag_of:
                    on, checked, ctype = key
                    flag_of[key] = (
                        _LIVE
                        | (_ACTIVE if on else 0)
                        | (_VERIFIED if checked else 0)
                        | (_MINOR if ctype == "minor" else 0)
                    )
        flags = list(map(flag_of.__getitem__, keys))
        try:
            birth_days = _day_column(
                [b if f & _MINOR else None for b, f in zip(births, flags, strict=True)],
                self.birth_days,
            )
        except (TypeError, ValueError, AttributeError):
            return False
        words, word = index._words, index._word
        known = list(map(words.get, names))
        # In row order: new names are numbered as the row-by-row pass numbers them.
        first = (
            known
            if _found(known)
            else [word(n) if w is None else w for w, n in zip(known, names, strict=True)]
        )
        ci, c_id, g_head = index._ci, index.c_id, index.g_head
        start, n = len(c_id), len(rows)
        ci.update(zip(cids, range(start, start + n), strict=True))
        c_id.extend(cids)
        group_of: list[int] = []
        group_next: list[int] = []
        for i, org, email in zip(range(start, start + n), orgs, emails, strict=True):
            if email:
                group = index._group(org, email)
                group_of.append(group)
                group_next.append(g_head[group])
                g_head[group] = i
            else:
                group_of.append(_NONE)
                group_next.append(_NONE)
        block = array("i", [_NONE]) * (_C * n)
        for field, column in (
            (_C_ORG, orgs),
            (_C_FLAGS, flags),
            (_C_GROUP, group_of),
            (_C_NAME, first),
            (_C_BIRTH, birth_days),
            (_C_GNEXT, group_next),
        ):
            block[field::_C] = array("i", column)
        index.c_rec.extend(block)
        return True

    def links(self, index: FactIndex, rows: list[Any]) -> bool:
        """`index._add_links(rows, unique=True)` (unique ids, none seen, no free rows)."""
        if not rows:
            return True
        if index._free:
            return False
        try:
            lids, recv_ids, cg_ids, rels, statuses, levels, expires, by_ids, ack_at, act, rby = zip(
                *rows, strict=True
            )
        except ValueError:
            return False
        ci, words = index._ci, index._words
        recvs = list(map(ci.get, recv_ids))
        cgs = list(map(ci.get, cg_ids))
        if not _found(recvs) or not _found(cgs) or None in statuses:
            return False
        rel_words = list(map(words.get, rels))
        staff = list(map(words.get, by_ids))
        # A grant nobody acknowledged reads 0, not a word.
        by = [w if b else 0 for w, b in zip(staff, by_ids, strict=True)]
        if not _found(rel_words) or not _found(by):
            return False
        kind_of = self.kinds
        keys = list(zip(statuses, levels, rel_words, strict=True))
        try:
            if None in map(kind_of.get, keys):
                for key in keys:
                    if key not in kind_of:
                        status, level, rel = key
                        kind_of[key] = _ST[status] | _LV[level or "full"] << 4 | rel << 8
            kinds = list(map(kind_of.__getitem__, keys))
            ack_days = _day_column(ack_at, self.days)
            columns = (
                (_L_RECV, recvs),
                (_L_CG, cgs),
                (_L_KIND, kinds),
                (_L_ACK_BY, by),
                (_L_ACK_DAY, ack_days),
                (_L_EXP, _micros_column(expires)),
            )
            activated, review_by = array("q", _micros_column(act)), array("q", _micros_column(rby))
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        crec, l_id = index.c_rec, index.l_id
        start, n = len(l_id), len(rows)
        next_out: list[int] = []
        next_in: list[int] = []
        # Each link goes first in its caregiver's and its receiver's chains, in row order.
        for i, recv, cg in zip(range(start, start + n), recvs, cgs, strict=True):
            at = cg * _C + _C_OUT
            next_out.append(crec[at])
            crec[at] = i
            at = recv * _C + _C_IN
            next_in.append(crec[at])
            crec[at] = i
        block = array("q", bytes(8 * _L * n))
        for field, column in (*columns, (_L_NEXT_OUT, next_out), (_L_NEXT_IN, next_in)):
            block[field::_L] = array("q", column)
        l_id.extend(lids)
        index.l_rec.extend(block)
        index.l_act.extend(activated)
        index.l_rby.extend(review_by)
        return True

    def payments(self, index: FactIndex, rows: list[Any]) -> bool:
        """`index.put_payment` of each row."""
        try:
            pm_ids, client_ids = zip(*rows, strict=True)
        except ValueError:
            return not rows
        owners = list(map(index._ci.get, client_ids))
        if not _found(owners):
            return False
        at = map(int.__add__, map(int.__mul__, owners, repeat(_C)), repeat(_C_ORG))
        orgs = map(index.c_rec.__getitem__, at)
        index.pm.update(zip(zip(orgs, pm_ids, strict=True), owners, strict=True))
        return True


# Audit event families → the kind of entity the refresh reads again.
_FAMILIES = {
    "client": "client",
    "link": "link",
    "grant": "link",
    "payment_method": "pm",
    "org": "org",
    "provider": "staff",
    "reviewer": "staff",
    "token": "token",
    "oauth_client": "oauth",
    "share": "share",
}
_TOUCHED = ("org", "staff", "client", "link", "pm", "token", "oauth", "share")
#: Audit kinds that name an entity of a family above but change nothing a decision reads: a
#: token is judged by its signature and the revoked list, never by its issuance.
_NO_FACTS = frozenset({"token.issued"})


def read_revision(store: Store) -> int:
    """The store's newest revision with one statement on a pooled DBAPI connection: it runs on
    every check, where a session's set-up costs more than the query."""
    dbapi_error = store.engine.dialect.loaded_dbapi.Error
    try:
        # The pool hands the driver's own errors through here (no SQLAlchemy wrapping).
        conn = store.engine.raw_connection()
    except (OperationalError, PoolTimeout, dbapi_error) as exc:
        raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc
    try:
        with deadline.guard(store.engine, conn.driver_connection):
            cursor = conn.cursor()
            try:
                cursor.execute("SELECT revision FROM state WHERE id = 1")
                row = cursor.fetchone()
            finally:
                cursor.close()
            conn.rollback()
    except dbapi_error as exc:
        conn.invalidate()
        raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc
    finally:
        conn.close()
    if row is None:
        raise StoreUnavailable("the store has no state row: run `authz init`")
    return int(row[0])
