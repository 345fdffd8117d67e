"""Every setting the code reads is in the README's configuration table, with the default the
code uses: the table is compared with the source and with `authz.base.config.Settings`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from authz.base.config import Settings

ROOT = Path(__file__).resolve().parents[1]
READ = re.compile(r"""["'](AUTHZ_[A-Z_]*[A-Z])["']""")


def _table() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`AUTHZ_"):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def _read_by_the_code() -> set[str]:
    names: set[str] = set()
    for folder in ("authz", "api"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(READ.findall(path.read_text()))
    return names


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if value is False:
        return "off"
    if value == ():
        return "[]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_every_setting_the_code_reads_is_in_the_table() -> None:
    table = _table()
    assert sorted(_read_by_the_code()) == sorted(table)
    assert all(meaning and default for meaning, default in table.values())


def test_the_table_gives_the_defaults_the_code_uses() -> None:
    defaults = Settings()
    fields = {f.name for f in dataclasses.fields(Settings)}
    compared = 0
    for name, (_, default) in _table().items():
        field = name.removeprefix("AUTHZ_").lower()
        if field not in fields:
            continue
        first = re.match(r"`([^`]*)`", default)
        assert first, f"{name}: the default column starts with the value in backticks"
        assert first[1] == _shown(getattr(defaults, field)), name
        compared += 1
    assert compared >= 15
