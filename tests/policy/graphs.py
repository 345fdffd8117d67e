"""Random account graphs for property tests and benchmarks."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from authz.policy.facts import ClientRow, FactIndex, LinkRow, OrgRow, PaymentRow, StaffRow

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
ORGS = ["org_a", "org_b"]
EMAILS = ["x@example.org", "y@example.org", None]
#: Minors' birth dates: a child, one turning 12 soon, adolescents of 13 and 14, one of age.
BIRTHS = [
    None,
    dt.date(2015, 1, 1),
    dt.date(2014, 12, 10),
    dt.date(2013, 6, 1),
    dt.date(2012, 6, 1),
    dt.date(2008, 6, 1),
]
LABELS = ["ETH", "HIV", "PSY", "SDV", "SEX", "STD"]


@st.composite
def graphs(draw: st.DrawFn) -> dict:
    n = draw(st.integers(2, 7))
    clients = []
    for i in range(n):
        minor = draw(st.booleans())
        birth = draw(st.sampled_from(BIRTHS)) if minor else None
        clients.append(
            ClientRow(
                f"cli_{i}",
                draw(st.sampled_from(ORGS)),
                f"C{i}",
                "minor" if minor else "adult",
                birth,
                draw(st.sampled_from(EMAILS)),
                draw(st.booleans()),
                draw(st.booleans() | st.just(True)),
            )
        )
    links, pairs = [], set()
    for k in range(draw(st.integers(0, 6))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if a == b or frozenset((a, b)) in pairs or clients[a].org_id != clients[b].org_id:
            continue
        pairs.add(frozenset((a, b)))
        expires = draw(
            st.sampled_from([None, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)])
        )
        links.append(
            LinkRow(
                f"lnk_{k}",
                f"cli_{a}",
                f"cli_{b}",
                "parent",
                draw(st.sampled_from([None, "pending", "active", "active", "revoked", "expired"])),
                draw(st.sampled_from(["full", "billing", "scheduling"])),
                expires,
                "prv_a",
                NOW - dt.timedelta(days=30),
            )
        )
    pms = [
        PaymentRow(f"pm_{i}", f"cli_{draw(st.integers(0, n - 1))}")
        for i in range(draw(st.integers(0, 4)))
    ]
    entitled = draw(st.booleans() | st.just(True))
    jurisdiction = draw(st.sampled_from([None, "US", "US-CA", "GB-ENG"]))
    consents = [
        (f"cli_{draw(st.integers(0, n - 1))}", f"cli_{draw(st.integers(0, n - 1))}", label)
        for label in draw(st.lists(st.sampled_from(LABELS), max_size=3))
    ]
    return {
        "orgs": [
            OrgRow("org_a", "A", ["linked_portal_access"] if entitled else [], jurisdiction),
            OrgRow("org_b", "B", []),
        ],
        "consents": consents,
        "providers": [StaffRow("prv_a", "org_a", "Dr. A"), StaffRow("prv_b", "org_b", "Dr. B")],
        "reviewers": [StaffRow("rev_a", "org_a", "R")],
        "clients": clients,
        "links": links,
        "pms": pms,
    }


def index_of(g: dict) -> FactIndex:
    index = FactIndex.from_rows(
        g["orgs"], g["providers"], g["reviewers"], g["clients"], g["links"], g["pms"]
    )
    shared: dict[tuple[str, str], set[str]] = {}
    for minor, caregiver, label in g.get("consents", ()):
        shared.setdefault((minor, caregiver), set()).add(label)
    for (minor, caregiver), labels in shared.items():
        index.put_consent(minor, caregiver, labels)
    return index
