"""The recertification policy: how long a re-approval of a portal-access grant lasts and when
reminders go out, read from `recertification.yaml` beside the policy files in force
(`authz.policy.location`), so a deployment's reviewed copy governs it like the rules."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

from authz.policy import location

FILE_NAME = "recertification.yaml"


@dataclass(frozen=True)
class Policy:
    """How long a re-approval lasts and when reminders go out (policies/recertification.yaml)."""

    period_days: int = 365
    reminders_days: tuple[int, ...] = (30, 7)

    @property
    def period(self) -> dt.timedelta:
        return dt.timedelta(days=self.period_days)


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Policy:
    import yaml

    from authz.policy.engine import PolicyError

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path.name}: {exc}") from exc
    period = data.get("period_days", Policy.period_days)
    reminders = data.get("reminders_days", list(Policy.reminders_days))
    if not isinstance(period, int) or isinstance(period, bool) or not 1 <= period <= 3660:
        raise PolicyError(f"{path.name}: period_days must be a whole number of days, 1-3660")
    if not isinstance(reminders, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) and 0 < r < period for r in reminders
    ):
        raise PolicyError(f"{path.name}: reminders_days must be days before the review date")
    return Policy(period, tuple(sorted(set(reminders), reverse=True)))


def policy(path: Path | None = None) -> Policy:
    """The recertification policy in force (the defaults if the file is absent)."""
    path = path or location.in_force().policies / FILE_NAME
    return _load(path) if path.exists() else Policy()
