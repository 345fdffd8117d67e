"""The access review as one self-contained HTML page: inline CSS and SVG, no script, no links."""

from __future__ import annotations

import itertools
import math
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

NODE_W, NODE_H = 168, 46
STATUS_STYLE = {
    "active": ("#1b7f3b", ""),
    "pending": ("#b86e00", "6 4"),
    "revoked": ("#8a8a8a", "2 4"),
    "expired": ("#8a8a8a", "2 4"),
    None: ("#5b6b7f", ""),
}
#: A Content-Security-Policy under which the page renders completely and nothing else runs.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)


def when(value: str | None) -> str:
    """An ISO time as a reviewer reads it: to the minute, in UTC."""
    return f"{value[:16].replace('T', ' ')} UTC" if value else ""


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("authz.compliance", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env


def _clip(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float]:
    """Where the segment from box centre 1 to box centre 2 leaves box 2."""
    dx, dy = x1 - x2, y1 - y2
    if dx == 0 and dy == 0:
        return x2, y2
    t = min(
        (NODE_W / 2 + 4) / abs(dx) if dx else math.inf,
        (NODE_H / 2 + 4) / abs(dy) if dy else math.inf,
    )
    return x2 + dx * t, y2 + dy * t


def family_picture(family: dict[str, Any]) -> dict[str, Any]:
    """Positions for a family's account graph: clients on a circle, links and shared emails."""
    members = family["clients"]
    n = len(members)
    radius = 0 if n == 1 else max(160.0, n * (NODE_W + 24) / (2 * math.pi))
    width = int(2 * radius + NODE_W + 40)
    height = int(2 * radius * (0.8 if n > 2 else 0.0) + NODE_H + 90)
    cx, cy = width / 2, height / 2
    pos: dict[str, tuple[float, float]] = {}
    nodes = []
    for i, m in enumerate(members):
        angle = math.pi + 2 * math.pi * i / n
        x = cx + radius * math.cos(angle)
        y = cy + radius * 0.8 * math.sin(angle)
        pos[m["id"]] = (x, y)
        nodes.append({**m, "x": x - NODE_W / 2, "y": y - NODE_H / 2, "cx": x, "cy": y})
    edges = []
    for link in family["links"]:
        (x1, y1), (x2, y2) = pos[link["caregiver"]], pos[link["receiver"]]
        ex, ey = _clip(x1, y1, x2, y2)
        sx, sy = _clip(x2, y2, x1, y1)
        colour, dash = STATUS_STYLE.get(link["portal_status"], STATUS_STYLE[None])
        edges.append(
            {
                **link,
                "x1": sx,
                "y1": sy,
                "x2": ex,
                "y2": ey,
                # Labels sit nearer the care receiver, so that one caregiver's edges differ.
                "mx": x1 + (x2 - x1) * 0.62,
                "my": y1 + (y2 - y1) * 0.62 - 6,
                "colour": colour,
                "dash": dash,
                "arrow": link["portal_status"] is not None,
                "label": link["relationship"].replace("_", " ")
                + (f" · portal {link['portal_status']}" if link["portal_status"] else ""),
            }
        )
    shared = []
    for group in family["shared_email"]:
        for a, b in itertools.pairwise(group):
            (x1, y1), (x2, y2) = pos[a], pos[b]
            shared.append({"x1": x1, "y1": y1 + NODE_H / 2, "x2": x2, "y2": y2 + NODE_H / 2})
    return {"width": width, "height": height, "nodes": nodes, "edges": edges, "shared": shared}


def render(report: dict[str, Any]) -> str:
    """The HTML page for report data from `authz.compliance.review.build`."""
    pictures = {f["number"]: family_picture(f) for f in report["families"]}
    return (
        _env()
        .get_template("access_review.html")
        .render(report=report, pictures=pictures, csp=CSP, node_w=NODE_W, node_h=NODE_H)
    )
