"""SqliteMonitoring: groups, members, atomic bulk-assign, cascades, filters; the demo group."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from callwatch.ids import IdGenerator
from callwatch.store import (
    Account,
    DuplicateRecord,
    Extension,
    InvalidRecord,
    MonitoringGroup,
    MonitoringMember,
    RecordNotFound,
    SqliteStore,
)
from callwatch.store.provisioning import create_monitoring_group, provision_demo_tenant
from callwatch.store.repo import MONITORED, MONITORING
from callwatch.store.sqlite import MIGRATIONS
from callwatch.store.sqlite_db import Database

ACME = Account(id=100, name="Acme", main_number="+16505550100", sip_domain="sip.acme")
OTHER = Account(id=900, name="Other", main_number="+16505550900", sip_domain="sip.other")
BOTH = frozenset({MONITORING, MONITORED})
SUP = frozenset({MONITORING})
AGENT = frozenset({MONITORED})


def _ext(ext_id: int, account_id: int, number: str) -> Extension:
    return Extension(
        id=ext_id,
        account_id=account_id,
        number=number,
        name=f"E {number}",
        first_name="E",
        last_name=number,
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "callwatch.db")
    s.accounts.create(ACME)
    s.accounts.create(OTHER)
    for ext_id, number in ((201, "101"), (208, "108"), (202, "102"), (209, "109"), (210, "11")):
        s.extensions.create(_ext(ext_id, 100, number))
    s.extensions.create(_ext(901, 900, "101"))
    return s


def _group(group_id: str, name: str, account_id: int = 100) -> MonitoringGroup:
    return MonitoringGroup(id=group_id, account_id=account_id, name=name)


def _members(store: SqliteStore, group_id: str) -> dict[int, frozenset[str]]:
    return {m.extension_id: m.permissions for m in store.monitoring.list_members(group_id)}


class TestGroups:
    def test_create_get_update(self, store: SqliteStore) -> None:
        group = store.monitoring.create(_group("1", "Support"))
        assert store.monitoring.get("1") == group
        renamed = store.monitoring.update(replace(group, name="Sales", site_id="55"))
        assert store.monitoring.get("1") == renamed
        assert store.monitoring.find_by_name(100, "sales") == renamed
        assert store.monitoring.get("2") is None

    def test_name_unique_per_account_case_insensitive(self, store: SqliteStore) -> None:
        store.monitoring.create(_group("1", "Support"))
        with pytest.raises(DuplicateRecord):
            store.monitoring.create(_group("2", "SUPPORT"))
        store.monitoring.create(_group("3", "Support", account_id=900))
        store.monitoring.create(_group("4", "Sales"))
        with pytest.raises(DuplicateRecord):
            store.monitoring.update(_group("4", "support"))

    def test_blank_name_is_invalid(self, store: SqliteStore) -> None:
        with pytest.raises(InvalidRecord):
            store.monitoring.create(_group("1", "  "))

    def test_update_cannot_move_or_invent_a_group(self, store: SqliteStore) -> None:
        store.monitoring.create(_group("1", "Support"))
        with pytest.raises(RecordNotFound):
            store.monitoring.update(_group("1", "Moved", account_id=900))
        with pytest.raises(RecordNotFound):
            store.monitoring.update(_group("7", "Ghost"))
        assert store.monitoring.get("1") == _group("1", "Support")

    def test_list_ordered_by_name_and_filtered_by_member(self, store: SqliteStore) -> None:
        for group_id, name in (("1", "b"), ("2", "a"), ("3", "c")):
            store.monitoring.create(_group(group_id, name))
        store.monitoring.create(_group("9", "x", account_id=900))
        store.monitoring.bulk_assign("1", added=[(201, SUP)])
        store.monitoring.bulk_assign("3", added=[(201, AGENT), (208, AGENT)])
        assert [g.id for g in store.monitoring.list_for_account(100)] == ["2", "1", "3"]
        mine = store.monitoring.list_for_account(100, member_extension_id=201)
        assert [g.id for g in mine] == ["1", "3"]
        assert store.monitoring.list_for_account(100, member_extension_id=209) == []
        assert store.monitoring.list_for_account(900, member_extension_id=201) == []

    def test_delete_cascades_to_members(self, store: SqliteStore) -> None:
        store.monitoring.create(_group("1", "Support"))
        store.monitoring.create(_group("2", "Sales"))
        store.monitoring.bulk_assign("1", added=[(201, SUP), (208, AGENT)])
        store.monitoring.bulk_assign("2", added=[(201, SUP)])
        store.monitoring.delete("1")
        assert store.monitoring.get("1") is None
        assert store.monitoring.list_members("1") == []
        assert store.monitoring.memberships_in_account(100) == [
            MonitoringMember(group_id="2", extension_id=201, permissions=SUP)
        ]
        with pytest.raises(RecordNotFound):
            store.monitoring.delete("1")


class TestBulkAssign:
    @pytest.fixture
    def group(self, store: SqliteStore) -> MonitoringGroup:
        return store.monitoring.create(_group("1", "Support"))

    def test_add_update_remove(self, store: SqliteStore, group: MonitoringGroup) -> None:
        result = store.monitoring.bulk_assign("1", added=[(201, SUP), (208, AGENT), (202, AGENT)])
        assert [m.extension_id for m in result] == [201, 202, 208]
        store.monitoring.bulk_assign("1", updated=[(201, BOTH)], removed=[202])
        assert _members(store, "1") == {201: BOTH, 208: AGENT}

    def test_empty_permissions_remove(self, store: SqliteStore, group: MonitoringGroup) -> None:
        store.monitoring.bulk_assign("1", added=[(201, SUP), (208, AGENT)])
        store.monitoring.bulk_assign("1", updated=[(208, ())], added=[(202, [])])
        assert _members(store, "1") == {201: SUP}

    def test_one_record_per_extension(self, store: SqliteStore, group: MonitoringGroup) -> None:
        store.monitoring.bulk_assign("1", added=[(201, SUP)])
        store.monitoring.bulk_assign("1", added=[(201, AGENT)])
        store.monitoring.bulk_assign("1", updated=[(208, AGENT)])
        assert _members(store, "1") == {201: AGENT, 208: AGENT}

    def test_removing_a_non_member_is_a_no_op(
        self, store: SqliteStore, group: MonitoringGroup
    ) -> None:
        assert store.monitoring.bulk_assign("1", removed=[209]) == []

    @pytest.mark.parametrize(
        ("added", "updated", "removed"),
        [
            ([(208, AGENT), (999, AGENT)], [], []),
            ([(208, AGENT)], [(901, SUP)], []),
            ([(208, AGENT)], [], [901]),
            ([(208, AGENT), (202, {"Listening"})], [], []),
            ([(208, AGENT)], [(208, SUP)], []),
            ([(208, AGENT)], [], [208]),
        ],
        ids=["unknown", "other-account", "remove-foreign", "bad-permission", "twice", "both"],
    )
    def test_a_failing_item_applies_nothing(
        self,
        store: SqliteStore,
        group: MonitoringGroup,
        added: list[tuple[int, frozenset[str]]],
        updated: list[tuple[int, frozenset[str]]],
        removed: list[int],
    ) -> None:
        store.monitoring.bulk_assign("1", added=[(201, SUP), (202, AGENT)])
        before = store.monitoring.list_members("1")
        with pytest.raises(InvalidRecord):
            store.monitoring.bulk_assign("1", added, [*updated, (201, ())], removed)
        assert store.monitoring.list_members("1") == before

    def test_unknown_group(self, store: SqliteStore) -> None:
        with pytest.raises(RecordNotFound):
            store.monitoring.bulk_assign("404", added=[(201, SUP)])


class TestQueries:
    def test_groups_where(self, store: SqliteStore) -> None:
        store.monitoring.create(_group("1", "Support"))
        store.monitoring.create(_group("2", "Sales"))
        store.monitoring.bulk_assign("1", added=[(201, SUP), (208, AGENT)])
        store.monitoring.bulk_assign("2", added=[(201, BOTH)])
        assert [g.id for g in store.monitoring.groups_where(201, MONITORING)] == ["2", "1"]
        assert [g.id for g in store.monitoring.groups_where(201, MONITORED)] == ["2"]
        assert [g.id for g in store.monitoring.groups_where(208, MONITORED)] == ["1"]
        assert store.monitoring.groups_where(209, MONITORING) == []
        with pytest.raises(InvalidRecord):
            store.monitoring.groups_where(201, "Listening")

    def test_memberships_in_account_excludes_other_accounts(self, store: SqliteStore) -> None:
        store.monitoring.create(_group("1", "Support"))
        store.monitoring.create(_group("9", "Support", account_id=900))
        store.monitoring.bulk_assign("1", added=[(201, SUP)])
        store.monitoring.bulk_assign("9", added=[(901, BOTH)])
        assert store.monitoring.memberships_in_account(100) == [
            MonitoringMember(group_id="1", extension_id=201, permissions=SUP)
        ]


def test_create_monitoring_group_generates_numeric_ids(store: SqliteStore) -> None:
    ids = IdGenerator(3)
    first = create_monitoring_group(store, ids=ids, account_id=100, name="A")
    second = create_monitoring_group(store, ids=ids, account_id=100, name="B", site_id="7")
    assert first.id.isdigit() and second.id.isdigit() and first.id != second.id
    assert second.site_id == "7"
    with pytest.raises(DuplicateRecord):
        create_monitoring_group(store, ids=ids, account_id=100, name="a")


class TestDemoGroup:
    def test_support_group(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "demo.db")
        tenant = provision_demo_tenant(store, sip_domain="sip.demo", ids=IdGenerator(1))
        (demo,) = tenant.monitoring_groups
        assert demo.group.name == "Support"
        by_number = {m.extension.number: m.permissions for m in demo.members}
        assert by_number == {"101": SUP, "102": AGENT, "108": AGENT}
        nina = tenant.user("109").extension
        assert (
            store.monitoring.list_for_account(tenant.account.id, member_extension_id=nina.id) == []
        )

    def test_idempotent_and_keeps_admin_changes(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "demo.db")
        first = provision_demo_tenant(store, sip_domain="sip.demo", ids=IdGenerator(1))
        again = provision_demo_tenant(store, sip_domain="sip.demo", ids=IdGenerator(2))
        assert again == first
        group_id = first.monitoring_groups[0].group.id
        bob = first.user("102").extension.id
        store.monitoring.bulk_assign(group_id, removed=[bob])
        third = provision_demo_tenant(store, sip_domain="sip.demo", ids=IdGenerator(3))
        assert len(store.monitoring.list_for_account(first.account.id)) == 1
        assert bob not in {m.extension.id for m in third.monitoring_groups[0].members}

    def test_to_json(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "demo.db")
        tenant = provision_demo_tenant(store, sip_domain="sip.demo", ids=IdGenerator(1))
        data = tenant.to_json("http://127.0.0.1:8080")
        group = tenant.monitoring_groups[0].group
        ids = {n: tenant.user(n).extension.id for n in ("101", "102", "108")}
        assert data["monitoring_groups"] == [
            {
                "id": group.id,
                "name": "Support",
                "members": [
                    {
                        "extension_number": "101",
                        "extension_id": ids["101"],
                        "permissions": ["Monitoring"],
                    },
                    {
                        "extension_number": "102",
                        "extension_id": ids["102"],
                        "permissions": ["Monitored"],
                    },
                    {
                        "extension_number": "108",
                        "extension_id": ids["108"],
                        "permissions": ["Monitored"],
                    },
                ],
            }
        ]
        assert {"server_url", "extensions", "trunk", "client_id"} <= data.keys()


def test_a_version_1_database_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    assert old.migrate(MIGRATIONS[:1]) == 1
    old.execute(
        "INSERT INTO accounts (id, name, main_number, sip_domain) VALUES (?, ?, ?, ?)",
        (ACME.id, ACME.name, ACME.main_number, ACME.sip_domain),
    )
    old.close()
    store = SqliteStore(path)
    assert store.schema_version == len(MIGRATIONS) >= 2
    assert store.accounts.get(ACME.id) == ACME
    assert store.monitoring.create(_group("1", "Support")).name == "Support"
