"""Telephony sessions and parties over real HTTP (ringcentral-api.md §1 rows 20–26, §2.9)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from callwatch.ids import IdGenerator
from callwatch.pbx.sessions import PartyStatus, TelephonySession
from callwatch.store.provisioning import create_account, create_extension

from .conftest import LiveServer, StartServer
from .fake_calls import FakeCalls, start_with_calls
from .helpers import assert_error

SESSIONS = "/restapi/v1.0/account/~/telephony/sessions"
CUSTOMER = "+16505550100"


@pytest.fixture
def pbx(start_server: StartServer) -> tuple[LiveServer, FakeCalls]:
    return start_with_calls(start_server)


def agent_call(server: LiveServer, calls: FakeCalls, *, answered: bool = True) -> TelephonySession:
    agent = server.tenant.user("108").extension
    return calls.call(customer=CUSTOMER, agent=agent, answered=answered)


def party_path(session: TelephonySession, index: int, action: str = "") -> str:
    return f"{SESSIONS}/{session.id}/parties/{session.parties[index].id}{action}"


def assert_json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Rate-Limit-Group"] == "light"
    for header in ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Window"):
        assert header in response.headers
    return response.json()


class TestReadSession:
    def test_session_fields(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        alice = server.tenant.user("108").extension
        session = agent_call(server, calls)
        response = server.client().get(f"{SESSIONS}/{session.id}", headers=server.auth("108"))
        body = assert_json(response)
        account = str(server.tenant.account.id)
        assert body == {
            "id": session.id,
            "origin": {"type": "Call"},
            "creationTime": "2026-01-01T00:00:00.000Z",
            "parties": [
                {
                    "id": session.parties[0].id,
                    "accountId": account,
                    "status": {"code": "Answered", "rcc": False},
                    "muted": False,
                    "standAlone": False,
                    "direction": "Outbound",
                    "from": {"phoneNumber": CUSTOMER, "name": "Customer"},
                    "to": {
                        "phoneNumber": "108",
                        "name": alice.name,
                        "extensionId": str(alice.id),
                        "deviceId": "dev-agent",
                    },
                    "park": {},
                    "recordings": [],
                },
                {
                    "id": session.parties[1].id,
                    "accountId": account,
                    "extensionId": str(alice.id),
                    "status": {"code": "Answered", "rcc": False},
                    "muted": False,
                    "standAlone": False,
                    "direction": "Inbound",
                    "from": {"phoneNumber": CUSTOMER, "name": "Customer"},
                    "to": {
                        "phoneNumber": "108",
                        "name": alice.name,
                        "extensionId": str(alice.id),
                        "deviceId": "dev-agent",
                    },
                    "park": {},
                    "recordings": [],
                },
            ],
        }
        assert session.id.startswith("s-") and len(session.id) == 34
        assert session.parties[1].id == f"p-{session.id[2:]}-2"

    def test_supervisor_party_status_reason(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        sam, alice = server.tenant.user("101").extension, server.tenant.user("108").extension
        session, party = calls.supervise(agent_call(server, calls), supervisor=sam, agent=alice)
        body = assert_json(
            server.client().get(f"{SESSIONS}/{session.id}", headers=server.auth("101"))
        )
        parties = body["parties"]
        assert isinstance(parties, list)
        supervisor = parties[2]
        assert supervisor["id"] == party.id
        assert supervisor["status"] == {"code": "Answered", "reason": "Supervising", "rcc": False}
        assert supervisor["extensionId"] == str(sam.id)
        assert supervisor["from"]["extensionId"] == str(sam.id)
        assert supervisor["to"]["phoneNumber"] == "108"

    def test_numeric_account_id(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        path = f"/restapi/v1.0/account/{server.tenant.account.id}/telephony/sessions/{session.id}"
        assert assert_json(server.client().get(path, headers=server.auth()))["id"] == session.id

    def test_another_account_id_is_404(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        path = f"/restapi/v1.0/account/123456789/telephony/sessions/{session.id}"
        body = assert_error(server.client().get(path, headers=server.auth()), 404, "CMN-102")
        assert body["parameterName"] == "accountId"
        assert body["message"] == "Resource for parameter [accountId] is not found"

    def test_non_numeric_account_id_is_400(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        path = f"/restapi/v1.0/account/abc/telephony/sessions/{session.id}"
        body = assert_error(server.client().get(path, headers=server.auth()), 400, "CMN-101")
        assert body["parameterName"] == "accountId"

    def test_unknown_session_is_404(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        response = server.client().get(f"{SESSIONS}/s-nope", headers=server.auth())
        body = assert_error(response, 404, "CMN-102")
        assert body["parameterName"] == "telephonySessionId"
        assert body["errors"] == [
            {
                "errorCode": "CMN-102",
                "message": "Resource for parameter [telephonySessionId] is not found",
                "parameterName": "telephonySessionId",
            }
        ]

    def test_session_of_another_account_is_404(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        ids = IdGenerator(3)
        other = create_account(
            server.store, ids=ids, name="Other", main_number="+16505550999", sip_domain="o.test"
        )
        stranger = create_extension(
            server.store, ids=ids, account_id=other.id, number="101", first_name="Eve"
        )
        session = calls.call(customer=CUSTOMER, agent=stranger)
        response = server.client().get(f"{SESSIONS}/{session.id}", headers=server.auth())
        assert assert_error(response, 404, "CMN-102")["parameterName"] == "telephonySessionId"

    def test_overlong_id_is_400(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, _ = pbx
        response = server.client().get(f"{SESSIONS}/s-{'a' * 200}", headers=server.auth())
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "telephonySessionId"

    def test_without_call_control_503(self, start_server: StartServer) -> None:
        server = start_server()
        response = server.client().get(f"{SESSIONS}/s-abc", headers=server.auth())
        body = assert_error(response, 503, "CMN-201")
        assert body["message"] == "Service Temporary Unavailable"
        assert response.headers["X-Rate-Limit-Group"] == "light"

    def test_requires_call_control_permission(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        app = server.tenant.app
        server.store.apps.update(replace(app, scopes=("ReadAccounts", "ReadPresence")))
        response = server.client().get(f"{SESSIONS}/{session.id}", headers=server.auth())
        assert assert_error(response, 403, "CMN-401")["permissionName"] == "CallControl"

    def test_requires_token(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        assert server.client().get(f"{SESSIONS}/{session.id}").status_code == 401


class TestParty:
    def test_read_party(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        body = assert_json(server.client().get(party_path(session, 1), headers=server.auth("108")))
        assert body["id"] == session.parties[1].id
        assert body["direction"] == "Inbound"
        assert body["extensionId"] == str(server.tenant.user("108").extension.id)

    def test_unknown_party_is_404(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        response = server.client().get(
            f"{SESSIONS}/{session.id}/parties/p-nope-9", headers=server.auth()
        )
        body = assert_error(response, 404, "CMN-102")
        assert body["parameterName"] == "partyId"
        assert body["message"] == "Resource for parameter [partyId] is not found"

    @pytest.mark.parametrize(
        "body",
        [
            {"party": {"muted": True, "standAlone": True}},
            {"muted": True, "standAlone": True},
            {"muted": False, "standAlone": True, "party": {"muted": True}},
        ],
        ids=["nested", "flat", "nested-wins"],
    )
    def test_patch_party(self, pbx: tuple[LiveServer, FakeCalls], body: dict[str, object]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        client, headers = server.client(), server.auth("108")
        party = assert_json(client.patch(party_path(session, 1), json=body, headers=headers))
        assert (party["muted"], party["standAlone"]) == (True, True)
        assert party["id"] == session.parties[1].id
        again = assert_json(client.get(party_path(session, 1), headers=headers))
        assert (again["muted"], again["standAlone"]) == (True, True)

    def test_patch_bad_value_names_the_field(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        response = server.client().patch(
            party_path(session, 1), json={"party": {"muted": "loud"}}, headers=server.auth("108")
        )
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "party.muted"

    def test_patch_needs_a_body(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        response = server.client().patch(party_path(session, 1), headers=server.auth("108"))
        assert_error(response, 400, "CMN-101")

    def test_hold_and_unhold(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        client, headers = server.client(), server.auth("108")
        held = assert_json(client.post(party_path(session, 1, "/hold"), headers=headers))
        assert held["status"] == {"code": "Hold", "rcc": False}
        presence = client.get("/restapi/v1.0/account/~/extension/~/presence", headers=headers)
        assert presence.json()["telephonyStatus"] == "OnHold"
        resumed = client.post(
            party_path(session, 1, "/unhold"), json={"proto": "RC"}, headers=headers
        )
        assert assert_json(resumed)["status"] == {"code": "Answered", "rcc": False}
        assert calls.sessions[session.id].parties[1].status is PartyStatus.ANSWERED

    def test_hold_with_unknown_proto(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        response = server.client().post(
            party_path(session, 1, "/hold"), json={"proto": "Carrier"}, headers=server.auth("108")
        )
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "proto"

    def test_hold_of_a_ringing_party_is_409(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls, answered=False)
        response = server.client().post(party_path(session, 1, "/hold"), headers=server.auth("108"))
        assert_error(response, 409, "TAS-101")

    def test_another_extensions_party_needs_admin(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        client = server.client()
        response = client.post(party_path(session, 1, "/hold"), headers=server.auth("102"))
        assert_error(response, 403, "CMN-404")
        admin = client.post(party_path(session, 1, "/hold"), headers=server.auth("101"))
        assert assert_json(admin)["status"]["code"] == "Hold"

    def test_delete_supervisor_party(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        sam, alice = server.tenant.user("101").extension, server.tenant.user("108").extension
        session, party = calls.supervise(agent_call(server, calls), supervisor=sam, agent=alice)
        client, headers = server.client(), server.auth("101")
        response = client.delete(party_path(session, 2), headers=headers)
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["X-Rate-Limit-Group"] == "light"
        remaining = calls.sessions[session.id]
        assert remaining.party(party.id).status is PartyStatus.DISCONNECTED
        assert remaining.parties[1].status is PartyStatus.ANSWERED
        presence = client.get("/restapi/v1.0/account/~/extension/~/presence", headers=headers)
        assert presence.json()["telephonyStatus"] == "NoCall"


class TestDropSession:
    def test_drop_is_204_and_the_session_is_gone(self, pbx: tuple[LiveServer, FakeCalls]) -> None:
        server, calls = pbx
        session = agent_call(server, calls)
        client, headers = server.client(), server.auth("108")
        response = client.delete(f"{SESSIONS}/{session.id}", headers=headers)
        assert (response.status_code, response.content) == (204, b"")
        after = client.get(f"{SESSIONS}/{session.id}", headers=headers)
        assert assert_error(after, 404, "CMN-102")["parameterName"] == "telephonySessionId"
        again = client.delete(f"{SESSIONS}/{session.id}", headers=headers)
        assert_error(again, 404, "CMN-102")
