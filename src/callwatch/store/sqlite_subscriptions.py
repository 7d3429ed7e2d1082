"""SQLite repository of WebHook notification subscriptions (ringcentral-api.md §2.11).

One row per subscription; ``event_filters`` is a JSON array of canonical filter URIs. Times are
POSIX seconds (UTC wall clock). All SQL is parameterised.
"""

from __future__ import annotations

import json
import sqlite3

from callwatch.store.repo import SubscriptionRecord
from callwatch.store.sqlite_db import Database, must_change

SUBSCRIPTIONS_SCHEMA = """
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    extension_id INTEGER NOT NULL REFERENCES extensions(id),
    client_id TEXT NOT NULL,
    event_filters TEXT NOT NULL,
    transport TEXT NOT NULL,
    address TEXT,
    verification_token TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    expires_in INTEGER NOT NULL,
    status TEXT NOT NULL,
    blacklisted_at REAL,
    blacklist_reason TEXT
);
CREATE INDEX subscriptions_owner ON subscriptions (extension_id, client_id);
CREATE INDEX subscriptions_expiry ON subscriptions (expires_at);
"""
"""A migration appended to ``sqlite.MIGRATIONS``; once shipped, never edit it."""

_MUTABLE = (
    "event_filters",
    "address",
    "verification_token",
    "expires_at",
    "expires_in",
    "status",
    "blacklisted_at",
    "blacklist_reason",
)


class SqliteSubscriptions:
    """WebHook subscriptions (:class:`~callwatch.store.repo.SubscriptionRepo`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, subscription_id: str) -> SubscriptionRecord | None:
        row = self._db.query_one("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,))
        return _record(row) if row else None

    def create(self, record: SubscriptionRecord) -> SubscriptionRecord:
        self._db.execute(
            "INSERT INTO subscriptions (id, account_id, extension_id, client_id, transport, "
            f"created_at, {', '.join(_MUTABLE)}) VALUES ({', '.join('?' * (6 + len(_MUTABLE)))})",
            (
                record.id,
                record.account_id,
                record.extension_id,
                record.client_id,
                record.transport,
                record.created_at,
                *_mutable_values(record),
            ),
        )
        return record

    def update(self, record: SubscriptionRecord) -> SubscriptionRecord:
        assignments = ", ".join(f"{column} = ?" for column in _MUTABLE)
        count = self._db.execute(
            f"UPDATE subscriptions SET {assignments} WHERE id = ?",
            (*_mutable_values(record), record.id),
        )
        must_change(count, f"subscription {record.id}")
        return record

    def delete(self, subscription_id: str) -> bool:
        return self._db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,)) > 0

    def list_for_owner(self, extension_id: int, client_id: str) -> list[SubscriptionRecord]:
        rows = self._db.query(
            "SELECT * FROM subscriptions WHERE extension_id = ? AND client_id = ? "
            "ORDER BY created_at, id",
            (extension_id, client_id),
        )
        return [_record(row) for row in rows]

    def list_active(self, now: float) -> list[SubscriptionRecord]:
        rows = self._db.query(
            "SELECT * FROM subscriptions WHERE status = 'Active' AND expires_at > ? "
            "ORDER BY created_at, id",
            (now,),
        )
        return [_record(row) for row in rows]

    def purge_expired(self, before: float) -> int:
        return self._db.execute("DELETE FROM subscriptions WHERE expires_at < ?", (before,))


def _mutable_values(record: SubscriptionRecord) -> tuple[object, ...]:
    return (
        json.dumps(list(record.event_filters)),
        record.address,
        record.verification_token,
        record.expires_at,
        record.expires_in,
        record.status,
        record.blacklisted_at,
        record.blacklist_reason,
    )


def _record(row: sqlite3.Row) -> SubscriptionRecord:
    filters = json.loads(row["event_filters"])
    return SubscriptionRecord(
        id=row["id"],
        account_id=row["account_id"],
        extension_id=row["extension_id"],
        client_id=row["client_id"],
        event_filters=tuple(str(f) for f in filters),
        transport=row["transport"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        expires_in=row["expires_in"],
        address=row["address"],
        verification_token=row["verification_token"],
        status=row["status"],
        blacklisted_at=row["blacklisted_at"],
        blacklist_reason=row["blacklist_reason"],
    )
