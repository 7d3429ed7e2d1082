"""The locked SQLite connection shared by the repositories of :mod:`callwatch.store.sqlite`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from callwatch.store.errors import DuplicateRecord, InvalidRecord, RecordNotFound, StoreError

Params = Sequence[object]


class Database:
    """One locked SQLite connection; the repositories' only way to the database."""

    def __init__(self, path: Path | Literal[":memory:"]) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run one statement and return all rows."""
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Run one statement and return its first row, if any."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one writing statement; returns the number of rows changed.

        Raises:
            DuplicateRecord: a UNIQUE or PRIMARY KEY constraint failed.
        """
        with self._lock:
            return _translate(lambda: self._conn.execute(sql, tuple(params)).rowcount)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and run the body's ``execute`` calls in one ``BEGIN IMMEDIATE``."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def migrate(self, migrations: Sequence[str]) -> int:
        """Apply the scripts not applied yet; returns the resulting schema version."""
        with self._lock:
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            row = self._conn.execute("SELECT version FROM schema_version").fetchone()
            version = int(row[0]) if row else 0
            if version > len(migrations):
                raise StoreError(f"database schema {version} is newer than this callwatch")
            for index in range(version, len(migrations)):
                self._apply(migrations[index], index + 1)
            return len(migrations)

    def _apply(self, script: str, version: int) -> None:
        try:
            self._conn.executescript(
                f"BEGIN;\n{script}\nDELETE FROM schema_version;\n"
                f"INSERT INTO schema_version (version) VALUES ({version});\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreError(f"migration {version} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection (a WAL file is checkpointed and removed)."""
        with self._lock:
            self._conn.close()


def _translate(action: Callable[[], int]) -> int:
    try:
        return action()
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise DuplicateRecord(str(exc)) from exc
        if "FOREIGN KEY" in str(exc):
            raise InvalidRecord(f"refers to a record that does not exist: {exc}") from exc
        raise StoreError(str(exc)) from exc


def must_change(count: int, what: str) -> None:
    """Raise :class:`RecordNotFound` naming ``what`` if a write changed no row."""
    if count == 0:
        raise RecordNotFound(f"{what} does not exist")
