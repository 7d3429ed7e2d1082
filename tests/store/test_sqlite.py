"""SqliteStore repositories: round trips, unique keys, lookups, migrations."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from callwatch.store import (
    Account,
    App,
    Device,
    DuplicateRecord,
    Extension,
    InvalidRecord,
    JwtCredential,
    RecordNotFound,
    SqliteStore,
    Store,
    StoreError,
    TokenRecord,
    Trunk,
)
from callwatch.store.sqlite import MIGRATIONS

ACCOUNT = Account(id=100, name="Acme", main_number="+16505550100", sip_domain="sip.acme")
SAM = Extension(
    id=200,
    account_id=100,
    number="101",
    name="Sam S",
    first_name="Sam",
    last_name="S",
    email="Sam@Acme.test",
    password_hash="h",
    is_admin=True,
)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "db" / "callwatch.db")
    s.accounts.create(ACCOUNT)
    s.extensions.create(SAM)
    return s


def _device(**overrides: object) -> Device:
    fields: dict[str, object] = {
        "id": "60727004",
        "account_id": 100,
        "extension_id": 200,
        "name": "Softphone - Digital Line",
        "type": "SoftPhone",
        "sku": "DV-1",
        "serial": "LMRC8531",
        "computer_name": "LMRC8531",
        "sip_username": "16505550101",
        "sip_password": "pw",
    }
    fields.update(overrides)
    return Device(**fields)  # type: ignore[arg-type]


def _token(**overrides: object) -> TokenRecord:
    fields: dict[str, object] = {
        "access_hash": "a1",
        "refresh_hash": "r1",
        "extension_id": 200,
        "account_id": 100,
        "client_id": "app",
        "scopes": ("ReadAccounts", "VoipCalling"),
        "session_id": "s1",
        "endpoint_id": "e1",
        "access_expires_at": 1000.0,
        "refresh_expires_at": 2000.0,
    }
    fields.update(overrides)
    return TokenRecord(**fields)  # type: ignore[arg-type]


def test_satisfies_the_store_protocol(store: SqliteStore) -> None:
    typed: Store = store
    assert typed.accounts.get(ACCOUNT.id) == ACCOUNT


def test_memory_database() -> None:
    memory = SqliteStore(":memory:")
    memory.accounts.create(ACCOUNT)
    assert memory.accounts.list_all() == [ACCOUNT]
    memory.close()


class TestAccountsAndExtensions:
    def test_lookups(self, store: SqliteStore) -> None:
        assert store.accounts.find_by_main_number("+16505550100") == ACCOUNT
        assert store.accounts.find_by_main_number("+1650") is None
        assert store.extensions.get(200) == SAM
        assert store.extensions.find_by_number(100, "101") == SAM
        assert store.extensions.find_by_number(999, "101") is None
        assert store.extensions.find_by_email("sam@acme.TEST") == SAM

    def test_list_orders_numerically(self, store: SqliteStore) -> None:
        for ext_id, number in ((201, "1000"), (202, "99"), (203, "102")):
            store.extensions.create(replace(SAM, id=ext_id, number=number, email=None))
        numbers = [e.number for e in store.extensions.list_for_account(100)]
        assert numbers == ["99", "101", "102", "1000"]

    def test_unique_keys(self, store: SqliteStore) -> None:
        with pytest.raises(DuplicateRecord):
            store.accounts.create(replace(ACCOUNT, id=101))
        with pytest.raises(DuplicateRecord):
            store.extensions.create(replace(SAM, id=201, email=None))
        with pytest.raises(DuplicateRecord):
            store.extensions.create(replace(SAM, id=201, number="102", email="SAM@acme.test"))

    def test_foreign_keys(self, store: SqliteStore) -> None:
        with pytest.raises(InvalidRecord):
            store.extensions.create(replace(SAM, id=201, account_id=999, email=None))

    def test_update(self, store: SqliteStore) -> None:
        disabled = replace(SAM, status="Disabled", is_admin=False)
        store.extensions.update(disabled)
        assert store.extensions.get(200) == disabled
        with pytest.raises(RecordNotFound):
            store.extensions.update(replace(SAM, id=999))


class TestDevices:
    def test_round_trip_and_lookups(self, store: SqliteStore) -> None:
        device = store.devices.create(_device())
        assert device.authorization_id == device.id
        assert store.devices.get("60727004") == device
        assert store.devices.find_by_sip_username("16505550101") == device
        assert store.devices.list_for_extension(200) == [device]
        assert store.devices.list_for_account(100) == [device]
        assert store.devices.get("1") is None

    def test_sip_username_is_unique(self, store: SqliteStore) -> None:
        store.devices.create(_device())
        with pytest.raises(DuplicateRecord):
            store.devices.create(_device(id="2"))

    def test_update(self, store: SqliteStore) -> None:
        store.devices.create(_device())
        store.devices.update(_device(sip_password="new"))
        stored = store.devices.get("60727004")
        assert stored is not None and stored.sip_password == "new"


class TestSecurity:
    def test_apps(self, store: SqliteStore) -> None:
        app = App(
            client_id="cid",
            client_secret_hash="x",
            name="n",
            account_id=100,
            scopes=("A", "B"),
            grant_types=("password",),
        )
        store.apps.create(app)
        assert store.apps.get("cid") == app
        assert store.apps.list_for_account(100) == [app]
        store.apps.update(replace(app, scopes=("C",)))
        assert store.apps.list_for_account(100)[0].scopes == ("C",)

    def test_credentials(self, store: SqliteStore) -> None:
        credential = JwtCredential(jti="j1", extension_id=200, account_id=100)
        store.credentials.create(credential)
        assert store.credentials.get("j1") == credential
        store.credentials.revoke("j1")
        assert store.credentials.list_for_extension(200) == [replace(credential, revoked=True)]
        with pytest.raises(RecordNotFound):
            store.credentials.revoke("nope")

    def test_token_rotation_and_session_revocation(self, store: SqliteStore) -> None:
        first = store.tokens.create(_token())
        second = _token(access_hash="a2", refresh_hash="r2")
        assert store.tokens.rotate(first, second)
        assert not store.tokens.rotate(first, _token(access_hash="a3", refresh_hash="r3"))
        assert store.tokens.find_by_access_hash("a3") is None
        old = store.tokens.find_by_refresh_hash("r1")
        assert old is not None and old.revoked
        assert store.tokens.find_by_access_hash("a2") == second
        assert store.tokens.revoke_session("s1") == 1
        current = store.tokens.find_by_access_hash("a2")
        assert current is not None and current.revoked

    def test_purge_expired(self, store: SqliteStore) -> None:
        store.tokens.create(_token())
        assert store.tokens.purge_expired(1999.0) == 0
        assert store.tokens.purge_expired(2001.0) == 1

    def test_secrets_get_or_create_keeps_the_first_value(self, store: SqliteStore) -> None:
        assert store.secrets.get("k") is None
        assert store.secrets.get_or_create("k", lambda: "one") == "one"
        assert store.secrets.get_or_create("k", lambda: "two") == "one"

    def test_secret_factory_may_use_the_store(self, store: SqliteStore) -> None:
        def factory() -> str:
            return store.secrets.get_or_create("inner", lambda: "x") + "y"

        assert store.secrets.get_or_create("outer", factory) == "xy"


class TestTrunks:
    def test_find_by_any_form_of_the_address(self, store: SqliteStore) -> None:
        trunk = Trunk(
            id="t1",
            account_id=100,
            name="pstn",
            source_addresses=("127.0.0.1", "0:0::1", "::1"),
            number="+16505550100",
        )
        created = store.trunks.create(trunk)
        assert created.source_addresses == ("127.0.0.1", "::1")
        assert store.trunks.find_by_source("::ffff:127.0.0.1") == created
        assert store.trunks.find_by_source("[::1]") == created
        assert store.trunks.find_by_source("10.0.0.1") is None
        assert store.trunks.find_by_source("not an ip") is None
        assert store.trunks.list_for_account(100) == [created]

    def test_an_address_belongs_to_one_trunk(self, store: SqliteStore) -> None:
        store.trunks.create(_trunk("t1", "a", "10.0.0.1"))
        with pytest.raises(DuplicateRecord):
            store.trunks.create(_trunk("t2", "b", "10.0.0.1"))
        assert store.trunks.get("t2") is None

    def test_bad_address(self, store: SqliteStore) -> None:
        with pytest.raises(InvalidRecord):
            store.trunks.create(_trunk("t1", "a", "x"))


def _trunk(trunk_id: str, name: str, address: str) -> Trunk:
    return Trunk(id=trunk_id, account_id=100, name=name, source_addresses=(address,), number="+1")


class TestSchema:
    def test_reopening_keeps_data_and_version(self, tmp_path: Path) -> None:
        path = tmp_path / "c.db"
        first = SqliteStore(path)
        first.accounts.create(ACCOUNT)
        first.close()
        second = SqliteStore(path)
        assert second.schema_version == len(MIGRATIONS)
        assert second.accounts.get(100) == ACCOUNT
        second.close()

    def test_wal_mode(self, tmp_path: Path) -> None:
        path = tmp_path / "c.db"
        SqliteStore(path).close()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "c.db"
        SqliteStore(path).close()
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE schema_version SET version = 99")
        with pytest.raises(StoreError, match="newer"):
            SqliteStore(path)

    def test_concurrent_writers(self, store: SqliteStore) -> None:
        def write(offset: int) -> None:
            for i in range(20):
                store.secrets.get_or_create(f"k{offset}-{i}", lambda: "v")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.secrets.get("k3-19") == "v"
