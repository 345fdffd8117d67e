"""OAuth client lookup for client authentication, cached per process, never trusted stale.

Authenticating a client reads its row on every token request. The cache saves that read; what
keeps it safe is that every use of a cached client is confirmed against the store in the same
read that decides the request (`require_current`), so a disabled client, a new secret or a
changed registration takes effect at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from authlib.oauth2.rfc6749.errors import InvalidClientError
from sqlalchemy.orm import Session

from authz.oauth import oauth_clients
from authz.oauth.oauth_clients import RegisteredClient
from authz.store.db import Store
from authz.store.models import OAuthClient


class ClientCache:
    """`query_client` with a short time-to-live; entries are confirmed by `require_current`."""

    def __init__(self, store: Store, ttl: float = 5.0, max_entries: int = 1024) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, RegisteredClient]] = {}
        self._lock = threading.Lock()

    def __call__(self, client_id: str) -> RegisteredClient | None:
        now = time.monotonic()
        hit = self._entries.get(client_id) if isinstance(client_id, str) else None
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = oauth_clients.query_client(self.store, client_id)
        with self._lock:
            if found is None:
                self._entries.pop(client_id, None)
            else:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()  # unknown ids cannot fill it: only found ones enter
                self._entries[client_id] = (now, found)
        return found

    def forget(self, client_id: str) -> None:
        with self._lock:
            self._entries.pop(client_id, None)


class StoredClient(Protocol):
    """An OAuth client's stored registration: the ORM row or a plain row of the same fields."""

    @property
    def disabled_at(self) -> Any: ...
    @property
    def org_id(self) -> str: ...
    @property
    def secret_hash(self) -> str | None: ...
    @property
    def auth_method(self) -> str: ...
    @property
    def audiences(self) -> list[str] | None: ...
    @property
    def scopes(self) -> list[str] | None: ...
    @property
    def grant_types(self) -> list[str] | None: ...
    @property
    def jwks(self) -> dict[str, Any] | None: ...


def is_current(row: StoredClient | None, client: RegisteredClient) -> bool:
    """Whether the stored row still says what the authenticated client was checked against."""
    return (
        row is not None
        and row.disabled_at is None
        and row.org_id == client.org_id
        and row.secret_hash == client.secret_hash
        and row.auth_method == client.auth_method
        and tuple(row.audiences or ()) == client.audiences
        and frozenset(row.scopes or ()) == client.scopes
        and tuple(row.grant_types or ()) == client.grant_types
        and row.jwks == client.jwks
    )


def require_current(session: Session, client: RegisteredClient) -> None:
    """InvalidClientError unless the client, read through `session`, is as authenticated."""
    require_current_row(session.get(OAuthClient, client.client_id), client)


def require_current_row(row: StoredClient | None, client: RegisteredClient) -> None:
    """InvalidClientError unless `row`, read in the request's own read, is as authenticated."""
    if not is_current(row, client):
        raise InvalidClientError(
            status_code=401, description="the client's registration changed; authenticate again"
        )


def require_current_now(store: Store, client: RegisteredClient) -> None:
    """`require_current` in a read of its own."""
    with store.read() as session:
        require_current(session, client)
