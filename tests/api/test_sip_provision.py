"""POST /restapi/v1.0/client-info/sip-provision (ringcentral-api.md §2.6) over real HTTP."""

from __future__ import annotations

import pytest

from .conftest import LiveServer, StartServer
from .helpers import assert_error

PROVISION = "/restapi/v1.0/client-info/sip-provision"


def test_wss_as_every_known_caller_sends_it(server: LiveServer) -> None:
    soft = server.tenant.user("101").devices[0]
    response = server.client().post(
        PROVISION, json={"sipInfo": [{"transport": "WSS"}]}, headers=server.auth()
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["device"]["id"] == soft.id
    assert body["device"]["type"] == "SoftPhone"
    assert body["device"]["extension"]["extensionNumber"] == "101"
    assert body["sipInfo"] == [
        {
            "username": soft.sip_username,
            "password": soft.sip_password,
            "authorizationTypes": ["SipDigest"],
            "authorizationId": soft.id,
            "domain": server.sip.domain,
            "outboundProxy": "127.0.0.1:5065",
            "transport": "WSS",
        }
    ]
    assert body["sipFlags"] == {
        "voipFeatureEnabled": True,
        "voipCountryBlocked": False,
        "outboundCallsEnabled": True,
    }
    assert isinstance(body["sipErrorCodes"], list)
    assert isinstance(body["pollingInterval"], int)


@pytest.mark.parametrize(
    ("transport", "proxy"),
    [("UDP", "127.0.0.1:5060"), ("TCP", "127.0.0.1:5062"), ("TLS", "127.0.0.1:5061")],
)
def test_each_transport(server: LiveServer, transport: str, proxy: str) -> None:
    response = server.client().post(
        PROVISION, json={"sipInfo": [{"transport": transport}]}, headers=server.auth()
    )
    (info,) = response.json()["sipInfo"]
    assert info["transport"] == transport
    assert info["outboundProxy"] == proxy


def test_no_body_means_every_transport(server: LiveServer) -> None:
    response = server.client().post(PROVISION, headers=server.auth())
    assert [i["transport"] for i in response.json()["sipInfo"]] == ["UDP", "TCP", "TLS", "WSS"]


def test_device_status_follows_registration(server: LiveServer) -> None:
    soft = server.tenant.user("101").devices[0]
    server.devices.online.add(soft.id)
    response = server.client().post(PROVISION, json={}, headers=server.auth())
    assert response.json()["device"]["status"] == "Online"


def test_softphone_is_created_when_the_user_has_none(server: LiveServer) -> None:
    alice = server.tenant.user("108")
    client = server.client()
    headers = server.auth("108")
    body = {"sipInfo": [{"transport": "TLS"}], "device": {"computerName": "ALICE-PC"}}
    first = client.post(PROVISION, json=body, headers=headers).json()
    assert first["device"]["type"] == "SoftPhone"
    assert first["device"]["computerName"] == "ALICE-PC"
    assert first["sipInfo"][0]["authorizationId"] == first["device"]["id"]
    stored = server.store.devices.get(first["device"]["id"])
    assert stored is not None and stored.extension_id == alice.extension.id
    again = client.post(PROVISION, json=body, headers=headers).json()
    assert again["device"]["id"] == first["device"]["id"]


def test_wss_without_websocket_listener(start_server: StartServer) -> None:
    server = start_server(ws_port=None)
    client = server.client()
    everything = client.post(PROVISION, headers=server.auth()).json()
    assert [i["transport"] for i in everything["sipInfo"]] == ["UDP", "TCP", "TLS"]
    response = client.post(
        PROVISION, json={"sipInfo": [{"transport": "WSS"}]}, headers=server.auth()
    )
    assert assert_error(response, 400, "CMN-101")["parameterName"] == "sipInfo"


def test_unknown_transport_names_the_field(server: LiveServer) -> None:
    response = server.client().post(
        PROVISION, json={"sipInfo": [{"transport": "SCTP"}]}, headers=server.auth()
    )
    body = assert_error(response, 400, "CMN-101")
    assert body["parameterName"] == "sipInfo[0].transport"


def test_malformed_json_is_cmn_103(server: LiveServer) -> None:
    response = server.client().post(
        PROVISION,
        content=b'{"sipInfo": [',
        headers={**server.auth(), "Content-Type": "application/json"},
    )
    assert_error(response, 400, "CMN-103")


def test_requires_voip_calling_permission(server: LiveServer) -> None:
    from dataclasses import replace

    app = server.tenant.app
    server.store.apps.update(replace(app, scopes=("ReadAccounts",)))
    response = server.client().post(PROVISION, headers=server.auth())
    assert assert_error(response, 403, "CMN-401")["permissionName"] == "VoipCalling"
