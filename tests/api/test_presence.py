"""Extension and account presence over real HTTP (ringcentral-api.md §1 rows 16–18, §2.8)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from callwatch.ids import IdGenerator
from callwatch.store.provisioning import create_account, create_extension

from .conftest import LiveServer, StartServer
from .fake_calls import FakeCalls, start_with_calls
from .helpers import assert_error

MY_PRESENCE = "/restapi/v1.0/account/~/extension/~/presence"
ACCOUNT_PRESENCE = "/restapi/v1.0/account/~/presence"
CUSTOMER = "+16505550100"
USELESS = "do-not-use-me-I-am-useless"


@pytest.fixture
def pbx(start_server: StartServer) -> tuple[LiveServer, FakeCalls]:
    return start_with_calls(start_server)


def assert_json(response: httpx.Response, group: str, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Rate-Limit-Group"] == group
    assert "X-Rate-Limit-Remaining" in response.headers
    return response.json()


def alice_on_a_call(server: LiveServer, calls: FakeCalls) -> None:
    calls.call(customer=CUSTOMER, agent=server.tenant.user("108").extension)


class TestExtensionPresence:
    def test_fields_without_calls(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        alice = server.tenant.user("108").extension
        body = assert_json(server.client().get(MY_PRESENCE, headers=server.auth("108")), "light")
        extension_uri = f"{server.url}/restapi/v1.0/account/{alice.account_id}/extension/{alice.id}"
        assert body == {
            "uri": f"{extension_uri}/presence",
            "extension": {"id": alice.id, "uri": extension_uri, "extensionNumber": "108"},
            "presenceStatus": "Available",
            "telephonyStatus": "NoCall",
            "userStatus": "Available",
            "dndStatus": "TakeAllCalls",
            "allowSeeMyPresence": True,
            "callerIdVisibility": "All",
            "ringOnMonitoredCall": False,
            "pickUpCallsOnHold": False,
            "acceptCallQueueCalls": True,
            "meetingStatus": "Disconnected",
        }

    def test_active_calls_only_when_detailed(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        alice_on_a_call(server, calls)
        client, headers = server.client(), server.auth("108")
        plain = assert_json(client.get(MY_PRESENCE, headers=headers), "light")
        assert (plain["telephonyStatus"], plain["presenceStatus"]) == ("CallConnected", "Busy")
        assert "activeCalls" not in plain
        sip_only = client.get(MY_PRESENCE, params={"sipData": "true"}, headers=headers).json()
        assert "activeCalls" not in sip_only

        detailed = client.get(
            MY_PRESENCE, params={"detailedTelephonyState": "true"}, headers=headers
        ).json()
        session = next(iter(calls.sessions.values()))
        agent_party = session.parties[1]
        assert detailed["activeCalls"] == [
            {
                "id": session.id,
                "direction": "Inbound",
                "from": CUSTOMER,
                "fromName": "Customer",
                "to": "108",
                "toName": server.tenant.user("108").extension.name,
                "startTime": "2026-01-01T00:00:00.000Z",
                "telephonyStatus": "CallConnected",
                "sessionId": session.session_id,
                "telephonySessionId": session.id,
                "partyId": agent_party.id,
                "queueCall": False,
            }
        ]

    def test_sip_data_with_detailed(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        alice_on_a_call(server, calls)
        body = server.client().get(
            MY_PRESENCE,
            params={"detailedTelephonyState": "true", "sipData": "true"},
            headers=server.auth("108"),
        )
        (call,) = assert_json(body, "light")["activeCalls"]
        assert call["sipData"] == {
            "callId": "call-a@test",
            "toTag": "to-a",
            "fromTag": "from-a",
            "remoteUri": USELESS,
            "localUri": USELESS,
        }

    def test_supervisor_sees_own_party(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        """The seed's check that the supervisor joined (ringcentral-api.md §2.8)."""
        server, calls = pbx
        sam, alice = server.tenant.user("101").extension, server.tenant.user("108").extension
        session = calls.call(customer=CUSTOMER, agent=alice)
        session, party = calls.supervise(session, supervisor=sam, agent=alice)
        body = server.client().get(
            MY_PRESENCE, params={"detailedTelephonyState": "true"}, headers=server.auth("101")
        )
        (call,) = assert_json(body, "light")["activeCalls"]
        assert call["partyId"] == party.id
        assert call["telephonySessionId"] == session.id
        assert (call["direction"], call["from"], call["to"]) == ("Outbound", "101", "108")
        assert call["telephonyStatus"] == "CallConnected"

    def test_another_extension_by_id(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        alice_on_a_call(server, calls)
        alice = server.tenant.user("108").extension
        path = f"/restapi/v1.0/account/~/extension/{alice.id}/presence"
        body = assert_json(server.client().get(path, headers=server.auth("102")), "light")
        assert body["extension"] == {
            "id": alice.id,
            "uri": f"{server.url}/restapi/v1.0/account/{alice.account_id}/extension/{alice.id}",
            "extensionNumber": "108",
        }
        assert body["telephonyStatus"] == "CallConnected"

    def test_unknown_and_foreign_extensions_are_404(
        self, pbx: tuple[LiveServer, FakeCalls]
    ) -> None:
        server, _ = pbx
        ids = IdGenerator(5)
        other = create_account(
            server.store, ids=ids, name="Other", main_number="+16505550998", sip_domain="o.test"
        )
        stranger = create_extension(
            server.store, ids=ids, account_id=other.id, number="101", first_name="Eve"
        )
        client, headers = server.client(), server.auth()
        for extension_id in ("999", str(stranger.id)):
            path = f"/restapi/v1.0/account/~/extension/{extension_id}/presence"
            body = assert_error(client.get(path, headers=headers), 404, "CMN-102")
            assert body["parameterName"] == "extensionId"
        foreign = f"/restapi/v1.0/account/{other.id}/extension/{stranger.id}/presence"
        body = assert_error(client.get(foreign, headers=headers), 404, "CMN-102")
        assert body["parameterName"] == "accountId"

    def test_without_call_control_503(self, start_server: StartServer) -> None:
        server = start_server()
        assert_error(server.client().get(MY_PRESENCE, headers=server.auth()), 503, "CMN-201")


class TestAccountPresence:
    def test_records_and_paging(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        alice_on_a_call(server, calls)
        response = server.client().get(
            ACCOUNT_PRESENCE, params={"detailedTelephonyState": "true"}, headers=server.auth()
        )
        body = assert_json(response, "heavy")
        assert body["uri"] == f"{server.url}{ACCOUNT_PRESENCE}?detailedTelephonyState=true"
        records = body["records"]
        assert isinstance(records, list)
        by_number = {r["extension"]["extensionNumber"]: r for r in records}
        assert set(by_number) == {"101", "102", "108", "109"}
        assert by_number["108"]["telephonyStatus"] == "CallConnected"
        assert len(by_number["108"]["activeCalls"]) == 1
        assert "sipData" not in by_number["108"]["activeCalls"][0]
        assert by_number["102"]["activeCalls"] == []
        assert body["paging"] == {
            "page": 1,
            "totalPages": 1,
            "perPage": 100,
            "totalElements": 4,
            "pageStart": 0,
            "pageEnd": 3,
        }
        assert "firstPage" in body["navigation"]

    def test_second_page(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        response = server.client().get(
            "/restapi/v1.0/account/~/presence?page=2&perPage=3", headers=server.auth()
        )
        body = assert_json(response, "heavy")
        assert len(body["records"]) == 1
        assert body["paging"]["page"] == 2
        assert "activeCalls" not in body["records"][0]
        navigation = body["navigation"]
        assert isinstance(navigation, dict)
        assert "nextPage" not in navigation
        assert navigation["previousPage"]["uri"].endswith("page=1&perPage=3")

    def test_another_account_is_404(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        response = server.client().get("/restapi/v1.0/account/42/presence", headers=server.auth())
        assert assert_error(response, 404, "CMN-102")["parameterName"] == "accountId"

    def test_requires_read_presence(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        app = server.tenant.app
        server.store.apps.update(replace(app, scopes=("ReadAccounts", "CallControl")))
        response = server.client().get(ACCOUNT_PRESENCE, headers=server.auth())
        assert assert_error(response, 403, "CMN-401")["permissionName"] == "ReadPresence"


class TestUpdatePresence:
    def test_put_echoes_and_persists(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        client, headers = server.client(), server.auth("108")
        update = {
            "userStatus": "Busy",
            "dndStatus": "DoNotAcceptAnyCalls",
            "dndStatusPersonal": "DoNotAcceptAnyCalls",
            "message": "in a meeting",
            "allowSeeMyPresence": False,
            "ringOnMonitoredCall": True,
            "pickUpCallsOnHold": True,
            "callerIdVisibility": "None",
            "acceptCallQueueCalls": False,
        }
        body = assert_json(client.put(MY_PRESENCE, json=update, headers=headers), "medium")
        for key, value in update.items():
            assert body[key] == value, key
        assert (body["presenceStatus"], body["telephonyStatus"]) == ("Busy", "NoCall")
        assert "activeCalls" not in body
        again = client.get(MY_PRESENCE, headers=headers).json()
        assert again == body
        assert calls.events[-1].presence.extension_id == server.tenant.user("108").extension.id

    def test_partial_update_keeps_other_fields(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        client, headers = server.client(), server.auth("108")
        client.put(MY_PRESENCE, json={"dndStatus": "DoNotAcceptAnyCalls"}, headers=headers)
        body = client.put(MY_PRESENCE, json={"userStatus": "Offline"}, headers=headers).json()
        assert (body["dndStatus"], body["userStatus"]) == ("DoNotAcceptAnyCalls", "Offline")
        assert body["presenceStatus"] == "Offline"

    @pytest.mark.parametrize(
        ("update", "parameter"),
        [
            ({"userStatus": "Away"}, "userStatus"),
            ({"dndStatus": "Never"}, "dndStatus"),
            ({"callerIdVisibility": "Friends"}, "callerIdVisibility"),
            ({"allowSeeMyPresence": "perhaps"}, "allowSeeMyPresence"),
            ({"userStatus": 3}, "userStatus"),
        ],
    )
    def test_invalid_values(
        self, pbx: tuple[LiveServer, FakeCalls], update: dict[str, object], parameter: str
    ) -> None:
        server, _ = pbx
        client, headers = server.client(), server.auth("108")
        response = client.put(MY_PRESENCE, json={**update, "message": "kept?"}, headers=headers)
        body = assert_error(response, 400, "CMN-101")
        assert body["parameterName"] == parameter
        assert body["message"] == f"Parameter [{parameter}] value is invalid"
        assert "message" not in client.get(MY_PRESENCE, headers=headers).json()

    def test_malformed_json(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        response = server.client().put(
            MY_PRESENCE,
            content=b'{"userStatus": ',
            headers={**server.auth(), "Content-Type": "application/json"},
        )
        assert_error(response, 400, "CMN-103")

    def test_another_extension_needs_admin(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        alice = server.tenant.user("108").extension
        path = f"/restapi/v1.0/account/~/extension/{alice.id}/presence"
        client = server.client()
        refused = client.put(path, json={"userStatus": "Busy"}, headers=server.auth("102"))
        assert_error(refused, 403, "CMN-404")
        allowed = client.put(path, json={"userStatus": "Busy"}, headers=server.auth("101"))
        assert assert_json(allowed, "medium")["userStatus"] == "Busy"

    def test_requires_edit_presence(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        app = server.tenant.app
        server.store.apps.update(replace(app, scopes=("ReadAccounts", "ReadPresence")))
        response = server.client().put(MY_PRESENCE, json={}, headers=server.auth())
        assert assert_error(response, 403, "CMN-401")["permissionName"] == "EditPresence"
