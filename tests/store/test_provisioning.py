"""Provisioning functions and the idempotent demo tenant."""

from __future__ import annotations

from pathlib import Path

import pytest

from callwatch.ids import IdGenerator
from callwatch.store import DuplicateRecord, InvalidRecord, SqliteStore
from callwatch.store.jwt_credentials import decode_credential, signing_key
from callwatch.store.passwords import secret_matches, verify_password
from callwatch.store.provisioning import (
    DEMO_MAIN_NUMBER,
    DemoTenant,
    create_account,
    create_app,
    create_device,
    create_extension,
    issue_jwt_credential,
    provision_demo_tenant,
)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, DemoTenant]:
    store = SqliteStore(tmp_path_factory.mktemp("demo") / "callwatch.db")
    return store, provision_demo_tenant(store, sip_domain="sip.demo", ids=IdGenerator(1))


def _counts(store: SqliteStore, account_id: int) -> tuple[int, ...]:
    extensions = store.extensions.list_for_account(account_id)
    return (
        len(store.accounts.list_all()),
        len(extensions),
        len(store.devices.list_for_account(account_id)),
        len(store.apps.list_for_account(account_id)),
        len(store.trunks.list_for_account(account_id)),
        sum(len(store.credentials.list_for_extension(e.id)) for e in extensions),
    )


class TestDemoTenant:
    def test_second_call_returns_the_same_and_creates_nothing(
        self, demo_store: tuple[SqliteStore, DemoTenant]
    ) -> None:
        store, first = demo_store
        before = _counts(store, first.account.id)
        again = provision_demo_tenant(store, sip_domain="other", ids=IdGenerator(2))
        assert again == first
        assert again.to_json("http://x") == first.to_json("http://x")
        assert _counts(store, first.account.id) == before == (1, 4, 5, 1, 1, 4)

    def test_survives_reopening(self, tmp_path: Path) -> None:
        path = tmp_path / "c.db"
        store = SqliteStore(path)
        first = provision_demo_tenant(store, sip_domain="d", ids=IdGenerator(3))
        store.close()
        store = SqliteStore(path)
        assert provision_demo_tenant(store, sip_domain="d", ids=IdGenerator(4)) == first
        store.close()

    def test_contents(self, demo_store: tuple[SqliteStore, DemoTenant]) -> None:
        store, tenant = demo_store
        assert tenant.account.name == "Callwatch Demo"
        assert tenant.account.main_number == DEMO_MAIN_NUMBER
        assert tenant.app.name == "callwatch demo app"
        assert "VoipCalling" in tenant.app.scopes
        assert tenant.trunk.source_addresses == ("127.0.0.1", "::1")
        assert store.trunks.find_by_source("127.0.0.1") == tenant.trunk
        sam = tenant.user("101")
        assert sam.extension.name == "Sam Supervisor" and sam.extension.is_admin
        assert [(d.type, d.name, d.sku) for d in sam.devices] == [
            ("SoftPhone", "Softphone - Digital Line", "DV-1"),
            ("OtherPhone", "Existing Phone", "OP-1"),
        ]
        assert tenant.user("108").extension.name == "Alice Agent"
        assert tenant.user("102").extension.name == "Bob Agent"
        assert tenant.user("109").role == "no-monitoring"
        for user in tenant.users:
            assert user.devices
            assert user.extension.password_hash is not None
            assert verify_password(user.password, user.extension.password_hash)
            assert all(device.authorization_id == device.id for device in user.devices)
        app = store.apps.get(tenant.client_id)
        assert app is not None and app.client_secret_hash is not None
        assert secret_matches(tenant.client_secret, app.client_secret_hash)

    def test_jwt_identifies_the_extension(self, demo_store: tuple[SqliteStore, DemoTenant]) -> None:
        store, tenant = demo_store
        alice = tenant.user("108")
        claims = decode_credential(alice.jwt, key=signing_key(store, IdGenerator()))
        assert claims.extension_id == alice.extension.id
        assert claims.account_id == tenant.account.id
        credential = store.credentials.get(claims.jti)
        assert credential is not None and not credential.revoked

    def test_to_json(self, demo_store: tuple[SqliteStore, DemoTenant]) -> None:
        _, tenant = demo_store
        data = tenant.to_json("http://127.0.0.1:8080")
        assert data["server_url"] == "http://127.0.0.1:8080"
        assert data["main_number"] == "+16505550100"
        assert data["sip_domain"] == "sip.demo"
        assert {"account_id", "client_id", "client_secret", "trunk"} <= data.keys()
        assert data["trunk"] == {
            "id": tenant.trunk.id,
            "name": "pstn",
            "source_addresses": ["127.0.0.1", "::1"],
            "number": "+16505550100",
        }
        extensions = data["extensions"]
        assert isinstance(extensions, list)
        first = extensions[0]
        assert isinstance(first, dict)
        assert first["extension_number"] == "101"
        assert first["username"] == "+16505550100"
        assert {"extension_id", "name", "password", "jwt", "devices"} <= first.keys()
        devices = first["devices"]
        assert isinstance(devices, list) and isinstance(devices[0], dict)
        assert devices[0]["authorization_id"] == devices[0]["id"]
        assert {"type", "name", "sip_username", "sip_password"} <= devices[0].keys()

    def test_unknown_demo_user(self, demo_store: tuple[SqliteStore, DemoTenant]) -> None:
        with pytest.raises(KeyError):
            demo_store[1].user("555")


class TestCreation:
    @pytest.fixture
    def store(self) -> SqliteStore:
        return SqliteStore(":memory:")

    def test_account_number_is_normalised(self, store: SqliteStore) -> None:
        ids = IdGenerator(5)
        account = create_account(
            store, ids=ids, name="A", main_number="1 (650) 555-0199", sip_domain="d"
        )
        assert account.main_number == "+16505550199"
        with pytest.raises(DuplicateRecord):
            create_account(store, ids=ids, name="B", main_number="+16505550199", sip_domain="d")
        with pytest.raises(InvalidRecord):
            create_account(store, ids=ids, name="C", main_number="12", sip_domain="d")

    def test_extension_and_device(self, store: SqliteStore) -> None:
        ids = IdGenerator(6)
        account = create_account(store, ids=ids, name="A", main_number="+15550001", sip_domain="d")
        ext = create_extension(
            store, ids=ids, account_id=account.id, number="201", first_name="Ann", password="pw"
        )
        assert ext.name == "Ann" and ext.status == "Enabled"
        assert ext.password_hash is not None and verify_password("pw", ext.password_hash)
        device = create_device(store, ids=ids, extension=ext, type="HardPhone", name="Desk")
        assert device.id.isdigit() and len(device.id) == 8
        assert device.sku == "HP-1" and device.serial == device.id
        assert len(device.sip_password) >= 16
        with pytest.raises(InvalidRecord):
            create_device(store, ids=ids, extension=ext, type="Fax", name="x")
        with pytest.raises(InvalidRecord):
            create_extension(store, ids=ids, account_id=account.id, number="x1", first_name="B")
        with pytest.raises(InvalidRecord):
            create_extension(store, ids=ids, account_id=999, number="1", first_name="B")

    def test_app_secret_is_hashed(self, store: SqliteStore) -> None:
        created = create_app(store, ids=IdGenerator(7), name="app")
        stored = store.apps.get(created.app.client_id)
        assert stored is not None and stored.client_secret_hash != created.client_secret
        assert secret_matches(created.client_secret, stored.client_secret_hash or "")

    def test_jwt_credential_can_expire(self, store: SqliteStore) -> None:
        from datetime import UTC, datetime

        ids = IdGenerator(8)
        account = create_account(store, ids=ids, name="A", main_number="+15550002", sip_domain="d")
        ext = create_extension(store, ids=ids, account_id=account.id, number="1", first_name="A")
        token = issue_jwt_credential(
            store, ids=ids, extension=ext, expires_at=datetime(2030, 1, 1, tzinfo=UTC)
        )
        claims = decode_credential(token, key=signing_key(store, ids))
        assert claims.expires_at == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
