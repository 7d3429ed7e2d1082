"""The default store: SQLite through the standard library.

Theory of operation: one ``sqlite3`` connection in autocommit mode, shared by every thread
(``check_same_thread=False``) and serialised by one re-entrant lock; multi-statement writes run in
``BEGIN IMMEDIATE`` transactions. File databases use WAL journaling so readers in other processes
(``callwatch admin``) do not block the server. The schema is versioned: :data:`MIGRATIONS` is an
append-only list of SQL scripts and ``schema_version`` records how many have been applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from callwatch.store.sqlite_db import Database
from callwatch.store.sqlite_directory import (
    SqliteAccounts,
    SqliteDevices,
    SqliteExtensions,
    SqliteTrunks,
)
from callwatch.store.sqlite_monitoring import MONITORING_SCHEMA, SqliteMonitoring
from callwatch.store.sqlite_security import (
    SqliteApps,
    SqliteCredentials,
    SqliteSecrets,
    SqliteTokens,
)
from callwatch.store.sqlite_subscriptions import SUBSCRIPTIONS_SCHEMA, SqliteSubscriptions

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        main_number TEXT NOT NULL UNIQUE,
        sip_domain TEXT NOT NULL
    );
    CREATE TABLE extensions (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        number TEXT NOT NULL,
        name TEXT NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        email TEXT UNIQUE COLLATE NOCASE,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        password_hash TEXT,
        is_admin INTEGER NOT NULL,
        UNIQUE (account_id, number)
    );
    CREATE TABLE apps (
        client_id TEXT PRIMARY KEY,
        client_secret_hash TEXT,
        name TEXT NOT NULL,
        account_id INTEGER REFERENCES accounts(id),
        scopes TEXT NOT NULL,
        grant_types TEXT NOT NULL
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        extension_id INTEGER NOT NULL REFERENCES extensions(id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        sku TEXT NOT NULL,
        serial TEXT NOT NULL,
        computer_name TEXT NOT NULL,
        sip_username TEXT NOT NULL UNIQUE,
        sip_password TEXT NOT NULL
    );
    CREATE INDEX devices_extension ON devices (extension_id);
    CREATE TABLE jwt_credentials (
        jti TEXT PRIMARY KEY,
        extension_id INTEGER NOT NULL REFERENCES extensions(id),
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE tokens (
        access_hash TEXT PRIMARY KEY,
        refresh_hash TEXT NOT NULL UNIQUE,
        extension_id INTEGER NOT NULL,
        account_id INTEGER NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        session_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        access_expires_at REAL NOT NULL,
        refresh_expires_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_session ON tokens (session_id);
    CREATE INDEX tokens_refresh_expiry ON tokens (refresh_expires_at);
    CREATE TABLE trunks (
        id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        name TEXT NOT NULL,
        number TEXT NOT NULL,
        UNIQUE (account_id, name)
    );
    CREATE TABLE trunk_sources (
        address TEXT PRIMARY KEY,
        trunk_id TEXT NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,
        position INTEGER NOT NULL
    );
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    MONITORING_SCHEMA,
    SUBSCRIPTIONS_SCHEMA,
)
"""Schema scripts, applied in order; never edit one that has shipped, append a new one."""


class SqliteStore:
    """The SQLite implementation of :class:`callwatch.store.repo.Store`.

    Args:
        path: a database file (created with its parent directory if missing), or
            ``":memory:"`` for a private in-memory database (tests).
    """

    def __init__(self, path: Path | str) -> None:
        target: Path | Literal[":memory:"] = ":memory:" if path == ":memory:" else Path(path)
        if isinstance(target, Path):
            target.parent.mkdir(parents=True, exist_ok=True)
        self._db = Database(target)
        self.schema_version = self._db.migrate(MIGRATIONS)
        self._accounts = SqliteAccounts(self._db)
        self._extensions = SqliteExtensions(self._db)
        self._apps = SqliteApps(self._db)
        self._devices = SqliteDevices(self._db)
        self._credentials = SqliteCredentials(self._db)
        self._tokens = SqliteTokens(self._db)
        self._trunks = SqliteTrunks(self._db)
        self._secrets = SqliteSecrets(self._db)
        self._monitoring = SqliteMonitoring(self._db)
        self._subscriptions = SqliteSubscriptions(self._db)

    @property
    def accounts(self) -> SqliteAccounts:
        return self._accounts

    @property
    def extensions(self) -> SqliteExtensions:
        return self._extensions

    @property
    def apps(self) -> SqliteApps:
        return self._apps

    @property
    def devices(self) -> SqliteDevices:
        return self._devices

    @property
    def credentials(self) -> SqliteCredentials:
        return self._credentials

    @property
    def tokens(self) -> SqliteTokens:
        return self._tokens

    @property
    def trunks(self) -> SqliteTrunks:
        return self._trunks

    @property
    def secrets(self) -> SqliteSecrets:
        return self._secrets

    @property
    def monitoring(self) -> SqliteMonitoring:
        return self._monitoring

    @property
    def subscriptions(self) -> SqliteSubscriptions:
        return self._subscriptions

    def close(self) -> None:
        """Close the database; the store must not be used afterwards."""
        self._db.close()
