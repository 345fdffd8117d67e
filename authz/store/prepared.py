"""One SELECT, compiled once, run on a pooled DBAPI connection: the store's fast read path.

The token exchange and token checks read a handful of rows in one statement on every request.
Through a `Session` (or even a Core `Connection`) most of that request's store time went to
SQLAlchemy itself: building the statement's cache key on every execution, the SQLite `BEGIN`
our engine issues for real transactions, and ORM row loading. None of it buys anything for a
single statement: one SELECT is one consistent snapshot on SQLite and on PostgreSQL (READ
COMMITTED takes a snapshot per statement), so it needs no explicit transaction.

So `PreparedRead` compiles its statement with the engine's dialect once, and runs the SQL text
on a connection checked out of the engine's pool, converting values with the dialect's own type
processors so that rows look as they would through SQLAlchemy (booleans, dates, JSON).

Fail closed: a pool timeout, a refused connection, a dropped connection or a statement timeout is
`StoreUnavailable`, exactly as `Store.read` reports it; a dropped connection is invalidated so
that the pool does not hand it out again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql import Select

from authz.base.errors import StoreUnavailable

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """The statement as one dialect runs it."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.construct_params = compiled.construct_params
        # NOTE: `positiontup` is None for named paramstyles (psycopg's pyformat).
        self.positions: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup is not None else None
        )
        self.binds: dict[str, _Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        #: Every bind is a caller's parameter passed to the driver as is: then the arguments
        #: are picked straight from the caller's mapping (SQLAlchemy's `construct_params` cost
        #: more than the statement on SQLite).
        self.direct = all(
            processor is None and bind.required
            for processor, bind in zip(self.binds.values(), compiled.binds.values(), strict=True)
        )
        processors = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        #: Only the columns whose values the driver returns raw (SQLite: booleans, dates, JSON).
        self.converters = tuple((i, p) for i, p in enumerate(processors) if p is not None)

    def arguments(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self.direct:
            if self.positions is None:
                return {name: params[name] for name in self.binds}
            return tuple(params[name] for name in self.positions)
        values = dict(self.construct_params(params))
        for name, processor in self.binds.items():
            if processor is not None and name in values:
                values[name] = processor(values[name])
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)

    def row(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.converters:
            return tuple(raw)
        values = list(raw)
        for i, processor in self.converters:
            if values[i] is not None:
                values[i] = processor(values[i])
        return tuple(values)


class PreparedRead:
    """A SELECT that returns at most one row, run as `read.one(engine, params)`."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._by_dialect: dict[int, _Compiled] = {}
        self._lock = threading.Lock()

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(id(dialect))
        if compiled is None:
            compiled = _Compiled(self.statement, dialect)
            with self._lock:
                self._by_dialect[id(dialect)] = compiled
        return compiled

    def one(self, engine: Engine, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The statement's first row as plain values, or None when it returned none."""
        dialect = engine.dialect
        compiled = self._compiled(dialect)
        arguments = compiled.arguments(params)
        dbapi = dialect.loaded_dbapi
        try:
            connection = engine.raw_connection()
        except (OperationalError, PoolTimeout, dbapi.OperationalError) as exc:
            # NOTE: unlike `Connection`, `raw_connection` lets the driver's own connect error
            # (e.g. psycopg's ConnectionTimeout) through unwrapped.
            raise StoreUnavailable(f"the store did not answer: {type(exc).__name__}") from exc
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(compiled.sql, arguments)
                raw = cursor.fetchone()
            except dbapi.Error as exc:
                if dialect.is_disconnect(exc, connection.dbapi_connection, cursor):
                    connection.invalidate(exc)
                if isinstance(exc, dbapi.OperationalError):
                    raise StoreUnavailable(
                        f"the store did not answer: {type(exc).__name__}"
                    ) from exc
                raise
            finally:
                # The statement's own outcome, above, is what counts.
                with contextlib.suppress(dbapi.Error):
                    cursor.close()
        finally:
            # Back to the pool, which rolls back whatever the driver opened (PostgreSQL).
            connection.close()
        return None if raw is None else compiled.row(raw)
