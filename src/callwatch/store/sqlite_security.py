"""SQLite repositories of security data: OAuth apps, JWT credentials, tokens, secrets.

List-valued fields (scopes, grant types) are stored space-separated; tokens only as SHA-256
digests. All SQL is parameterised.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from callwatch.store.errors import RecordNotFound
from callwatch.store.repo import App, JwtCredential, TokenRecord
from callwatch.store.sqlite_db import Database, must_change


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


class SqliteApps:
    """OAuth applications table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, client_id: str) -> App | None:
        row = self._db.query_one("SELECT * FROM apps WHERE client_id = ?", (client_id,))
        return _app(row) if row else None

    def list_for_account(self, account_id: int) -> list[App]:
        rows = self._db.query(
            "SELECT * FROM apps WHERE account_id = ? ORDER BY name, client_id", (account_id,)
        )
        return [_app(row) for row in rows]

    def create(self, app: App) -> App:
        self._db.execute(
            "INSERT INTO apps (client_id, client_secret_hash, name, account_id, scopes, "
            "grant_types) VALUES (?, ?, ?, ?, ?, ?)",
            (app.client_id, *_app_values(app)),
        )
        return app

    def update(self, app: App) -> App:
        count = self._db.execute(
            "UPDATE apps SET client_secret_hash=?, name=?, account_id=?, scopes=?, grant_types=? "
            "WHERE client_id=?",
            (*_app_values(app), app.client_id),
        )
        must_change(count, f"app {app.client_id}")
        return app


def _app_values(app: App) -> tuple[object, ...]:
    return (
        app.client_secret_hash,
        app.name,
        app.account_id,
        " ".join(app.scopes),
        " ".join(app.grant_types),
    )


def _app(row: sqlite3.Row) -> App:
    return App(
        client_id=row["client_id"],
        client_secret_hash=row["client_secret_hash"],
        name=row["name"],
        account_id=row["account_id"],
        scopes=_words(row["scopes"]),
        grant_types=_words(row["grant_types"]),
    )


class SqliteCredentials:
    """JWT credentials table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, jti: str) -> JwtCredential | None:
        row = self._db.query_one("SELECT * FROM jwt_credentials WHERE jti = ?", (jti,))
        return _credential(row) if row else None

    def list_for_extension(self, extension_id: int) -> list[JwtCredential]:
        rows = self._db.query(
            "SELECT * FROM jwt_credentials WHERE extension_id = ? ORDER BY jti", (extension_id,)
        )
        return [_credential(row) for row in rows]

    def create(self, credential: JwtCredential) -> JwtCredential:
        self._db.execute(
            "INSERT INTO jwt_credentials (jti, extension_id, account_id, revoked) "
            "VALUES (?, ?, ?, ?)",
            (credential.jti, credential.extension_id, credential.account_id, credential.revoked),
        )
        return credential

    def revoke(self, jti: str) -> None:
        count = self._db.execute("UPDATE jwt_credentials SET revoked = 1 WHERE jti = ?", (jti,))
        must_change(count, f"JWT credential {jti}")


def _credential(row: sqlite3.Row) -> JwtCredential:
    return JwtCredential(
        jti=row["jti"],
        extension_id=row["extension_id"],
        account_id=row["account_id"],
        revoked=bool(row["revoked"]),
    )


_TOKEN_COLUMNS = (
    "access_hash, refresh_hash, extension_id, account_id, client_id, scopes, session_id, "
    "endpoint_id, access_expires_at, refresh_expires_at, revoked"
)


class SqliteTokens:
    """OAuth token pairs, keyed by the SHA-256 digests of the tokens."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, record: TokenRecord) -> TokenRecord:
        self._db.execute(
            f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            _token_values(record),
        )
        return record

    def find_by_access_hash(self, access_hash: str) -> TokenRecord | None:
        row = self._db.query_one("SELECT * FROM tokens WHERE access_hash = ?", (access_hash,))
        return _token(row) if row else None

    def find_by_refresh_hash(self, refresh_hash: str) -> TokenRecord | None:
        row = self._db.query_one("SELECT * FROM tokens WHERE refresh_hash = ?", (refresh_hash,))
        return _token(row) if row else None

    def rotate(self, old: TokenRecord, new: TokenRecord) -> bool:
        with self._db.transaction():
            count = self._db.execute(
                "UPDATE tokens SET revoked = 1 WHERE access_hash = ? AND revoked = 0",
                (old.access_hash,),
            )
            if count == 0:
                return False
            self.create(new)
        return True

    def revoke_session(self, session_id: str) -> int:
        return self._db.execute(
            "UPDATE tokens SET revoked = 1 WHERE session_id = ? AND revoked = 0", (session_id,)
        )

    def purge_expired(self, now: float) -> int:
        return self._db.execute("DELETE FROM tokens WHERE refresh_expires_at < ?", (now,))


def _token_values(record: TokenRecord) -> tuple[object, ...]:
    return (
        record.access_hash,
        record.refresh_hash,
        record.extension_id,
        record.account_id,
        record.client_id,
        " ".join(record.scopes),
        record.session_id,
        record.endpoint_id,
        record.access_expires_at,
        record.refresh_expires_at,
        int(record.revoked),
    )


def _token(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        access_hash=row["access_hash"],
        refresh_hash=row["refresh_hash"],
        extension_id=row["extension_id"],
        account_id=row["account_id"],
        client_id=row["client_id"],
        scopes=_words(row["scopes"]),
        session_id=row["session_id"],
        endpoint_id=row["endpoint_id"],
        access_expires_at=row["access_expires_at"],
        refresh_expires_at=row["refresh_expires_at"],
        revoked=bool(row["revoked"]),
    )


class SqliteSecrets:
    """Named server secrets (signing keys, demo credentials)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> str | None:
        row = self._db.query_one("SELECT value FROM secrets WHERE name = ?", (name,))
        return str(row["value"]) if row else None

    def get_or_create(self, name: str, factory: Callable[[], str]) -> str:
        existing = self.get(name)
        if existing is not None:
            return existing
        value = factory()
        self._db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, value))
        stored = self.get(name)
        if stored is None:
            raise RecordNotFound(f"secret {name} vanished while being created")
        return stored
