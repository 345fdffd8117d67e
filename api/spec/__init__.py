"""The pieces of the served OpenAPI document, one module per blueprint.

To document a new blueprint, write `api/spec/<name>.py` with `PATHS` (and `SCHEMAS` if it needs
any) using the helpers of `api/spec/common.py`, and add it to `SECTIONS` below.
"""

from __future__ import annotations

from types import ModuleType

from api.spec import access, accounts, compliance, oauth, ops

SECTIONS: tuple[ModuleType, ...] = (oauth, accounts, access, compliance, ops)
