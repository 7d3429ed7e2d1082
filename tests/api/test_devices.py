"""Device list/read and device SIP info (ringcentral-api.md §2.5) over real HTTP."""

from __future__ import annotations

from callwatch.ids import IdGenerator
from callwatch.store.provisioning import create_account, create_device, create_extension

from .conftest import LiveServer
from .helpers import assert_error

MY_DEVICES = "/restapi/v1.0/account/~/extension/~/device"


class TestList:
    def test_supervisor_devices_with_live_status(self, server: LiveServer) -> None:
        client = server.client()
        headers = server.auth("101")
        soft, other = server.tenant.user("101").devices
        body = client.get(MY_DEVICES, headers=headers).json()
        records = {record["id"]: record for record in body["records"]}
        assert set(records) == {soft.id, other.id}
        assert all(isinstance(device_id, str) for device_id in records)
        assert {r["status"] for r in records.values()} == {"Offline"}
        server.devices.online.add(other.id)
        records = {r["id"]: r for r in client.get(MY_DEVICES, headers=headers).json()["records"]}
        assert records[other.id]["status"] == "Online"
        assert records[soft.id]["status"] == "Offline"
        server.devices.online.discard(other.id)
        records = {r["id"]: r for r in client.get(MY_DEVICES, headers=headers).json()["records"]}
        assert records[other.id]["status"] == "Offline"

    def test_record_fields(self, server: LiveServer) -> None:
        soft = server.tenant.user("101").devices[0]
        body = server.client().get(MY_DEVICES, headers=server.auth()).json()
        record = next(r for r in body["records"] if r["id"] == soft.id)
        sam = server.tenant.user("101").extension
        assert record["type"] == "SoftPhone"
        assert record["sku"] == "DV-1"
        assert record["name"] == "Softphone - Digital Line"
        assert record["computerName"] == "LMRC8531"
        assert record["extension"]["id"] == sam.id
        assert record["extension"]["extensionNumber"] == "101"
        assert record["uri"] == (
            f"{server.url}/restapi/v1.0/account/{sam.account_id}/device/{soft.id}"
        )
        assert body["paging"]["totalElements"] == 2
        assert "firstPage" in body["navigation"]

    def test_admin_may_list_another_extensions_devices(self, server: LiveServer) -> None:
        alice = server.tenant.user("108")
        path = f"/restapi/v1.0/account/~/extension/{alice.extension.id}/device"
        body = server.client().get(path, headers=server.auth("101")).json()
        assert [r["id"] for r in body["records"]] == [alice.devices[0].id]
        assert "computerName" not in body["records"][0]

    def test_non_admin_may_not(self, server: LiveServer) -> None:
        sam = server.tenant.user("101")
        path = f"/restapi/v1.0/account/~/extension/{sam.extension.id}/device"
        response = server.client().get(path, headers=server.auth("108"))
        body = assert_error(response, 403, "CMN-408")
        assert body["permissionName"] == "ReadCompanyDevices"


class TestRead:
    def test_read_device_status_flips(self, server: LiveServer) -> None:
        device = server.tenant.user("108").devices[0]
        path = f"/restapi/v1.0/account/~/device/{device.id}"
        client = server.client()
        headers = server.auth("108")
        assert client.get(path, headers=headers).json()["status"] == "Offline"
        server.devices.online.add(device.id)
        body = client.get(path, headers=headers).json()
        assert body["status"] == "Online"
        assert body["id"] == device.id
        assert body["type"] == "HardPhone"

    def test_numeric_account_id(self, server: LiveServer) -> None:
        device = server.tenant.user("101").devices[0]
        path = f"/restapi/v1.0/account/{server.tenant.account.id}/device/{device.id}"
        assert server.client().get(path, headers=server.auth()).status_code == 200

    def test_unknown_device_is_cmn_102(self, server: LiveServer) -> None:
        response = server.client().get(
            "/restapi/v1.0/account/~/device/11111111", headers=server.auth()
        )
        assert assert_error(response, 404, "CMN-102")["parameterName"] == "deviceId"

    def test_other_accounts_device_is_invisible(self, server: LiveServer) -> None:
        ids = IdGenerator()
        other = create_account(
            server.store, ids=ids, name="O", main_number="+14155550001", sip_domain="o"
        )
        eve = create_extension(
            server.store, ids=ids, account_id=other.id, number="101", first_name="Eve"
        )
        device = create_device(
            server.store, ids=ids, extension=eve, type="OtherPhone", name="Existing Phone"
        )
        client = server.client()
        headers = server.auth()
        for path in (
            f"/restapi/v1.0/account/~/device/{device.id}",
            f"/restapi/v1.0/account/~/device/{device.id}/sip-info",
        ):
            assert_error(client.get(path, headers=headers), 404, "CMN-102")
        response = client.get(
            f"/restapi/v1.0/account/{other.id}/device/{device.id}", headers=headers
        )
        assert_error(response, 404, "CMN-102")


class TestSipInfo:
    def test_fields(self, server: LiveServer) -> None:
        device = server.tenant.user("101").devices[1]
        path = f"/restapi/v1.0/account/~/device/{device.id}/sip-info"
        response = server.client().get(path, headers=server.auth())
        assert response.status_code == 200, response.text
        assert response.json() == {
            "domain": server.sip.domain,
            "outboundProxies": [
                {"region": "NA", "proxy": "127.0.0.1:5060", "proxyTLS": "127.0.0.1:5061"}
            ],
            "userName": device.sip_username,
            "password": device.sip_password,
            "authorizationId": device.id,
        }

    def test_ports_are_read_at_request_time(self, server: LiveServer) -> None:
        device = server.tenant.user("101").devices[1]
        path = f"/restapi/v1.0/account/~/device/{device.id}/sip-info"
        server.sip.host = "::1"
        server.sip.tls_port = 35061
        body = server.client().get(path, headers=server.auth()).json()
        assert body["outboundProxies"][0]["proxyTLS"] == "[::1]:35061"

    def test_other_users_credentials_are_refused(self, server: LiveServer) -> None:
        device = server.tenant.user("101").devices[1]
        path = f"/restapi/v1.0/account/~/device/{device.id}/sip-info"
        assert_error(server.client().get(path, headers=server.auth("109")), 403, "CMN-408")
