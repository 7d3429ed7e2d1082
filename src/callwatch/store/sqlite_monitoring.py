"""SQLite repository of call-monitoring groups and their members (ringcentral-api.md §2.7).

Theory of operation: ``monitoring_groups`` holds one row per group, its name unique per account
(``COLLATE NOCASE``); ``monitoring_members`` holds one row per (group, extension) with one
0/1 column per permission and a CHECK that at least one is set, so "no permissions" is never
stored — it is the absence of the row. Members cascade with their group. A member must be an
extension of the group's account; SQLite cannot express that as a constraint, so every write
checks it inside the same ``BEGIN IMMEDIATE`` transaction as the change itself, which is what
makes :meth:`SqliteMonitoring.bulk_assign` all-or-nothing. All SQL is parameterised; the only
interpolated names come from :data:`_COLUMNS`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence

from callwatch.store.errors import InvalidRecord, RecordNotFound
from callwatch.store.repo import (
    MONITORED,
    MONITORING,
    MONITORING_PERMISSIONS,
    MemberAssignment,
    MonitoringGroup,
    MonitoringMember,
)
from callwatch.store.sqlite_db import Database, must_change

MONITORING_SCHEMA = """
CREATE TABLE monitoring_groups (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL COLLATE NOCASE,
    site_id TEXT,
    UNIQUE (account_id, name)
);
CREATE TABLE monitoring_members (
    group_id TEXT NOT NULL REFERENCES monitoring_groups(id) ON DELETE CASCADE,
    extension_id INTEGER NOT NULL REFERENCES extensions(id),
    monitoring INTEGER NOT NULL CHECK (monitoring IN (0, 1)),
    monitored INTEGER NOT NULL CHECK (monitored IN (0, 1)),
    PRIMARY KEY (group_id, extension_id),
    CHECK (monitoring + monitored > 0)
);
CREATE INDEX monitoring_members_extension ON monitoring_members (extension_id);
"""
"""Migration 2 (in ``sqlite.MIGRATIONS``); it has shipped once merged, so never edit it."""

_COLUMNS = {MONITORING: "monitoring", MONITORED: "monitored"}
_GROUP_ORDER = "ORDER BY g.name, g.id"


class SqliteMonitoring:
    """Call-monitoring groups and members (:class:`~callwatch.store.repo.MonitoringGroupRepo`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, group_id: str) -> MonitoringGroup | None:
        row = self._db.query_one("SELECT * FROM monitoring_groups WHERE id = ?", (group_id,))
        return _group(row) if row else None

    def find_by_name(self, account_id: int, name: str) -> MonitoringGroup | None:
        row = self._db.query_one(
            "SELECT * FROM monitoring_groups WHERE account_id = ? AND name = ?", (account_id, name)
        )
        return _group(row) if row else None

    def list_for_account(
        self, account_id: int, *, member_extension_id: int | None = None
    ) -> list[MonitoringGroup]:
        if member_extension_id is None:
            return self._groups("g.account_id = ?", (account_id,))
        return self._groups(
            "g.account_id = ? AND g.id IN "
            "(SELECT group_id FROM monitoring_members WHERE extension_id = ?)",
            (account_id, member_extension_id),
        )

    def create(self, group: MonitoringGroup) -> MonitoringGroup:
        _check_name(group.name)
        self._db.execute(
            "INSERT INTO monitoring_groups (id, account_id, name, site_id) VALUES (?, ?, ?, ?)",
            (group.id, group.account_id, group.name, group.site_id),
        )
        return group

    def update(self, group: MonitoringGroup) -> MonitoringGroup:
        _check_name(group.name)
        count = self._db.execute(
            "UPDATE monitoring_groups SET name = ?, site_id = ? WHERE id = ? AND account_id = ?",
            (group.name, group.site_id, group.id, group.account_id),
        )
        must_change(count, f"call monitoring group {group.id} of account {group.account_id}")
        return group

    def delete(self, group_id: str) -> None:
        count = self._db.execute("DELETE FROM monitoring_groups WHERE id = ?", (group_id,))
        must_change(count, f"call monitoring group {group_id}")

    def list_members(self, group_id: str) -> list[MonitoringMember]:
        return self._members("m.group_id = ?", (group_id,))

    def bulk_assign(
        self,
        group_id: str,
        added: Sequence[MemberAssignment] = (),
        updated: Sequence[MemberAssignment] = (),
        removed: Sequence[int] = (),
    ) -> list[MonitoringMember]:
        changes = plan_assignment(added, updated, removed)
        with self._db.transaction():
            account_id = self._group_account(group_id)
            for extension_id, permissions in changes.items():
                self._require_extension(account_id, extension_id)
                if permissions:
                    self._put(group_id, extension_id, permissions)
                else:
                    self._db.execute(
                        "DELETE FROM monitoring_members WHERE group_id = ? AND extension_id = ?",
                        (group_id, extension_id),
                    )
            return self.list_members(group_id)

    def groups_where(self, extension_id: int, permission: str) -> list[MonitoringGroup]:
        column = _COLUMNS.get(permission)
        if column is None:
            raise InvalidRecord(f"not a call monitoring permission: {permission!r}")
        return self._groups(
            f"g.id IN (SELECT group_id FROM monitoring_members "
            f"WHERE extension_id = ? AND {column} = 1)",
            (extension_id,),
        )

    def memberships_in_account(self, account_id: int) -> list[MonitoringMember]:
        return self._members("g.account_id = ?", (account_id,))

    def _groups(self, where: str, params: tuple[object, ...]) -> list[MonitoringGroup]:
        rows = self._db.query(
            f"SELECT g.* FROM monitoring_groups g WHERE {where} {_GROUP_ORDER}", params
        )
        return [_group(row) for row in rows]

    def _members(self, where: str, params: tuple[object, ...]) -> list[MonitoringMember]:
        rows = self._db.query(
            "SELECT m.* FROM monitoring_members m "
            "JOIN monitoring_groups g ON g.id = m.group_id "
            "JOIN extensions e ON e.id = m.extension_id "
            f"WHERE {where} ORDER BY g.name, g.id, length(e.number), e.number, e.id",
            params,
        )
        return [_member(row) for row in rows]

    def _group_account(self, group_id: str) -> int:
        row = self._db.query_one(
            "SELECT account_id FROM monitoring_groups WHERE id = ?", (group_id,)
        )
        if row is None:
            raise RecordNotFound(f"call monitoring group {group_id} does not exist")
        return int(row["account_id"])

    def _require_extension(self, account_id: int, extension_id: int) -> None:
        row = self._db.query_one(
            "SELECT 1 FROM extensions WHERE id = ? AND account_id = ?", (extension_id, account_id)
        )
        if row is None:
            raise InvalidRecord(f"extension {extension_id} is not in account {account_id}")

    def _put(self, group_id: str, extension_id: int, permissions: frozenset[str]) -> None:
        self._db.execute(
            "INSERT INTO monitoring_members (group_id, extension_id, monitoring, monitored) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, extension_id) DO UPDATE SET "
            "monitoring = excluded.monitoring, monitored = excluded.monitored",
            (group_id, extension_id, MONITORING in permissions, MONITORED in permissions),
        )


def plan_assignment(
    added: Sequence[MemberAssignment],
    updated: Sequence[MemberAssignment],
    removed: Sequence[int],
) -> dict[int, frozenset[str]]:
    """The bulk-assign change per extension (an empty set = remove), validated.

    Raises:
        InvalidRecord: an unknown permission, or an extension named more than once.
    """
    changes: dict[int, frozenset[str]] = {}
    items = [*added, *updated, *((extension_id, ()) for extension_id in removed)]
    for extension_id, permissions in items:
        if extension_id in changes:
            raise InvalidRecord(f"extension {extension_id} is named more than once")
        changes[extension_id] = _permissions(extension_id, permissions)
    return changes


def _permissions(extension_id: int, permissions: Collection[str]) -> frozenset[str]:
    unknown = sorted(set(permissions).difference(MONITORING_PERMISSIONS))
    if unknown:
        raise InvalidRecord(
            f"extension {extension_id}: not a call monitoring permission: {', '.join(unknown)}"
        )
    return frozenset(permissions)


def _check_name(name: str) -> None:
    if not name.strip():
        raise InvalidRecord("call monitoring group name must not be blank")


def _group(row: sqlite3.Row) -> MonitoringGroup:
    return MonitoringGroup(
        id=row["id"], account_id=row["account_id"], name=row["name"], site_id=row["site_id"]
    )


def _member(row: sqlite3.Row) -> MonitoringMember:
    permissions = {p for p, column in _COLUMNS.items() if row[column]}
    return MonitoringMember(
        group_id=row["group_id"],
        extension_id=row["extension_id"],
        permissions=frozenset(permissions),
    )
