"""The service's long-lived parts, built once by an app factory or a command (never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authz.base.config import Settings
from authz.service import replication
from authz.store.db import Store, make_engine
from authz.tokens.keys import ACCESS_TOKEN, DEV_ISSUER, KeyRing


@dataclass
class Runtime:
    """Settings, store and key rings shared by every request of one process."""

    settings: Settings
    store: Store
    keys: KeyRing
    dev_keys: KeyRing | None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        """Connect lazily: nothing is read until the first use or `check()`."""
        store = Store(
            make_engine(settings.database_url, settings.pool_timeout, settings.statement_timeout_ms)
        )
        replication.install(store)  # every write announces its revision to the other replicas
        from authz.policy.engine import files_digest

        # Every change records the digest of the policy files in force (issue 5).
        digest = files_digest()
        store.policy_digest = lambda: digest
        dev_keys = KeyRing(store, DEV_ISSUER) if settings.dev_mode else None
        return cls(settings, store, KeyRing(store, ACCESS_TOKEN), dev_keys)

    def check(self) -> None:
        """Refuse to start without a store, a usable signing key and loadable policy files."""
        from authz.policy.engine import PolicySet

        PolicySet.load()
        self.store.ping()
        self.keys.load()
        if self.dev_keys is not None:
            self.dev_keys.load()

    def close(self) -> None:
        """Stop this process's background threads, write what the decision log still holds and
        close the store's connections (a worker's graceful exit, a test's end)."""
        listener = replication.listener_of(self)
        if listener is not None:
            listener.stop()
        service = self.extras.pop("access", None)
        if service is not None:
            service.close()
        self.store.close()
