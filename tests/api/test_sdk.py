"""The official RingCentral Python SDK (``ringcentral`` 0.9.2) against our server, unmodified.

Only the server URL changes (ringcentral-api.md §5).
"""

from __future__ import annotations

from typing import Any

import pytest
from ringcentral import SDK
from ringcentral.http.api_exception import ApiException

from .conftest import LiveServer


def _platform(server: LiveServer) -> Any:
    """The SDK's Platform (the SDK has no type hints)."""
    sdk = SDK(server.tenant.client_id, server.tenant.client_secret, server.url)
    return sdk.platform()


def test_jwt_login_and_reads(server: LiveServer) -> None:
    platform = _platform(server)
    platform.login(jwt=server.tenant.user("101").jwt)
    extensions = platform.get("/restapi/v1.0/account/~/extension").json_dict()
    numbers = [record["extensionNumber"] for record in extensions["records"]]
    assert numbers == ["101", "102", "108", "109"]
    devices = platform.get("/restapi/v1.0/account/~/extension/~/device").json_dict()
    assert {d["type"] for d in devices["records"]} == {"SoftPhone", "OtherPhone"}
    me = platform.get("/account/~/extension/~").json()
    assert me.extensionNumber == "101"


def test_password_login_warns_and_works(server: LiveServer) -> None:
    platform = _platform(server)
    bob = server.tenant.user("102")
    with pytest.warns(UserWarning, match="username-password login"):
        platform.login(server.tenant.account.main_number, "102", bob.password)
    assert platform.auth().data()["owner_id"] == str(bob.extension.id)
    me = platform.get("/restapi/v1.0/account/~/extension/~").json_dict()
    assert me["id"] == bob.extension.id


def test_refresh_rotates_and_keeps_working(server: LiveServer) -> None:
    platform = _platform(server)
    platform.login(jwt=server.tenant.user("108").jwt)
    before = platform.auth().data()
    platform.refresh()
    after = platform.auth().data()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    me = platform.get("/restapi/v1.0/account/~/extension/~").json_dict()
    assert me["extensionNumber"] == "108"


def test_bad_token_raises_api_exception_with_error_body(server: LiveServer) -> None:
    platform = _platform(server)
    platform.auth().set_data({"token_type": "bearer", "access_token": "bogus", "expires_in": 3600})
    with pytest.raises(ApiException) as caught:
        platform.get("/restapi/v1.0/account/~/extension")
    text = str(caught.value)
    assert text.startswith("HTTP 401")
    assert '"errorCode":"OAU-149"' in text


def test_logout_revokes(server: LiveServer) -> None:
    platform = _platform(server)
    platform.login(jwt=server.tenant.user("101").jwt)
    access = platform.auth().access_token()
    platform.logout()
    response = server.client().get(
        "/restapi/v1.0/account/~/extension/~", headers={"Authorization": f"bearer {access}"}
    )
    assert response.status_code == 401


def test_sip_provision_through_the_sdk(server: LiveServer) -> None:
    platform = _platform(server)
    platform.login(jwt=server.tenant.user("101").jwt)
    body = platform.post(
        "/restapi/v1.0/client-info/sip-provision", {"sipInfo": [{"transport": "TLS"}]}
    ).json_dict()
    assert body["sipInfo"][0]["authorizationId"] == body["device"]["id"]
