"""POST /restapi/oauth/token and /restapi/oauth/revoke (ringcentral-api.md §2.1-2.2)."""

from __future__ import annotations

import httpx
import pytest

from callwatch.store.provisioning import JWT_BEARER_GRANT

from .conftest import LiveServer, StartServer
from .helpers import assert_error

TOKEN = "/restapi/oauth/token"
REVOKE = "/restapi/oauth/revoke"
ME = "/restapi/v1.0/account/~/extension/~"


def _post_token(server: LiveServer, data: dict[str, str], *, basic: bool = True) -> httpx.Response:
    auth = (server.tenant.client_id, server.tenant.client_secret) if basic else None
    return server.client().post(TOKEN, data=data, auth=auth)


def _password(server: LiveServer, **fields: str) -> httpx.Response:
    return _post_token(server, {"grant_type": "password", **fields})


class TestPasswordGrant:
    def test_python_sdk_form_with_separate_extension(self, server: LiveServer) -> None:
        sam = server.tenant.user("101")
        response = _password(
            server,
            username=server.tenant.account.main_number,
            password=sam.password,
            extension="101",
            access_token_ttl="3600",
            refresh_token_ttl="604800",
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["owner_id"] == str(sam.extension.id)
        assert isinstance(body["expires_in"], int) and body["expires_in"] == 3600
        assert isinstance(body["refresh_token_expires_in"], int)
        assert "CallControl" in body["scope"].split()
        assert body["session_id"] and body["endpoint_id"] and body["refresh_token"]
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"

    def test_js_sdk_form_number_star_extension(self, server: LiveServer) -> None:
        bob = server.tenant.user("102")
        response = _password(server, username="16505550100*102", password=bob.password)
        assert response.status_code == 200, response.text
        assert response.json()["owner_id"] == str(bob.extension.id)

    def test_email_username(self, server: LiveServer) -> None:
        alice = server.tenant.user("108")
        assert alice.extension.email is not None
        response = _password(server, username=alice.extension.email, password=alice.password)
        assert response.json()["owner_id"] == str(alice.extension.id)

    def test_client_credentials_in_body(self, server: LiveServer) -> None:
        sam = server.tenant.user("101")
        data = {
            "grant_type": "password",
            "username": "+16505550100",
            "extension": "101",
            "password": sam.password,
            "client_id": server.tenant.client_id,
            "client_secret": server.tenant.client_secret,
        }
        assert _post_token(server, data, basic=False).status_code == 200

    def test_wrong_password_is_oau_140(self, server: LiveServer) -> None:
        response = _password(server, username="+16505550100*101", password="nope")
        body = assert_error(response, 400, "OAU-140")
        assert body["error"] == "invalid_grant"
        assert body["error_description"] == body["message"]

    def test_unknown_extension_is_oau_140(self, server: LiveServer) -> None:
        response = _password(server, username="+16505550100*555", password="x")
        assert_error(response, 400, "OAU-140")

    def test_missing_password_names_parameter(self, server: LiveServer) -> None:
        body = assert_error(_password(server, username="+16505550100"), 400, "OAU-101")
        assert body["parameterName"] == "password"


class TestClientAuthentication:
    def test_bad_client_secret_is_oau_146(self, server: LiveServer) -> None:
        response = server.client().post(
            TOKEN,
            data={"grant_type": "password", "username": "+16505550100", "password": "x"},
            auth=(server.tenant.client_id, "wrong"),
        )
        body = assert_error(response, 401, "OAU-146")
        assert body["error"] == "invalid_client"

    def test_unknown_client_is_oau_146(self, server: LiveServer) -> None:
        response = server.client().post(
            TOKEN, data={"grant_type": "password"}, auth=("nobody", "x")
        )
        assert_error(response, 401, "OAU-146")

    def test_missing_client_names_client_id(self, server: LiveServer) -> None:
        response = _post_token(server, {"grant_type": "password"}, basic=False)
        assert assert_error(response, 400, "OAU-101")["parameterName"] == "client_id"


class TestRequestFormat:
    def test_json_body_is_415(self, server: LiveServer) -> None:
        response = server.client().post(
            TOKEN,
            json={"grant_type": "password"},
            auth=(server.tenant.client_id, server.tenant.client_secret),
        )
        body = assert_error(response, 415, "CMN-104")
        assert body["error"] == "invalid_request"

    def test_unsupported_grant(self, server: LiveServer) -> None:
        response = _post_token(server, {"grant_type": "client_credentials"})
        assert assert_error(response, 400, "OAU-125")["error"] == "unsupported_grant_type"

    def test_duplicated_parameter_is_oau_111(self, server: LiveServer) -> None:
        response = server.client().post(
            TOKEN,
            content=b"grant_type=password&grant_type=password",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(server.tenant.client_id, server.tenant.client_secret),
        )
        assert_error(response, 400, "OAU-111")


class TestJwtGrant:
    def test_jwt_credential_logs_in(self, server: LiveServer) -> None:
        nina = server.tenant.user("109")
        response = _post_token(server, {"grant_type": JWT_BEARER_GRANT, "assertion": nina.jwt})
        assert response.status_code == 200, response.text
        assert response.json()["owner_id"] == str(nina.extension.id)

    def test_forged_jwt_is_refused(self, server: LiveServer) -> None:
        forged = server.tenant.user("101").jwt[:-4] + "AAAA"
        response = _post_token(server, {"grant_type": JWT_BEARER_GRANT, "assertion": forged})
        assert_error(response, 400, "OAU-140")

    def test_revoked_jwt_is_refused(self, server: LiveServer) -> None:
        sam = server.tenant.user("101")
        for credential in server.store.credentials.list_for_extension(sam.extension.id):
            server.store.credentials.revoke(credential.jti)
        response = _post_token(server, {"grant_type": JWT_BEARER_GRANT, "assertion": sam.jwt})
        assert "revoked" in assert_error(response, 400, "OAU-140")["message"]  # type: ignore[operator]


class TestRefresh:
    def test_refresh_rotates_the_pair(self, server: LiveServer) -> None:
        first = server.token()
        refresh = {"grant_type": "refresh_token", "refresh_token": str(first["refresh_token"])}
        response = _post_token(server, refresh)
        assert response.status_code == 200, response.text
        second = response.json()
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        assert second["session_id"] == first["session_id"]
        reused = _post_token(server, refresh)
        assert assert_error(reused, 400, "OAU-211")["error"] == "invalid_grant"
        client = server.client()
        old = client.get(ME, headers={"Authorization": f"Bearer {first['access_token']}"})
        assert_error(old, 401, "OAU-129")
        new = client.get(ME, headers={"Authorization": f"Bearer {second['access_token']}"})
        assert new.status_code == 200

    def test_refresh_with_garbage_is_oau_211(self, server: LiveServer) -> None:
        response = _post_token(server, {"grant_type": "refresh_token", "refresh_token": "x"})
        assert_error(response, 400, "OAU-211")


class TestRevoke:
    @pytest.mark.parametrize("which", ["access_token", "refresh_token"])
    def test_revoke_ends_the_session(self, server: LiveServer, which: str) -> None:
        token = server.token()
        client = server.client()
        auth = (server.tenant.client_id, server.tenant.client_secret)
        response = client.post(REVOKE, data={"token": str(token[which])}, auth=auth)
        assert response.status_code == 200
        assert response.content == b""
        bearer = {"Authorization": f"bearer {token['access_token']}"}
        assert_error(client.get(ME, headers=bearer), 401, "OAU-129")
        refresh = {"grant_type": "refresh_token", "refresh_token": str(token["refresh_token"])}
        assert_error(_post_token(server, refresh), 400, "OAU-211")

    def test_revoke_token_in_query(self, server: LiveServer) -> None:
        token = server.token()
        client = server.client()
        response = client.post(REVOKE, params={"token": str(token["access_token"])})
        assert response.status_code == 200
        bearer = {"Authorization": f"bearer {token['access_token']}"}
        assert client.get(ME, headers=bearer).status_code == 401

    def test_revoke_unknown_token_is_ok(self, server: LiveServer) -> None:
        response = server.client().post(REVOKE, data={"token": "whatever"})
        assert response.status_code == 200


class TestBearer:
    def test_lowercase_and_capitalised_schemes(self, server: LiveServer) -> None:
        access = server.token()["access_token"]
        client = server.client()
        for scheme in ("bearer", "Bearer", "BEARER"):
            response = client.get(ME, headers={"Authorization": f"{scheme} {access}"})
            assert response.status_code == 200, scheme

    def test_missing_header_is_oau_123(self, server: LiveServer) -> None:
        response = server.client().get(ME)
        assert_error(response, 401, "OAU-123")
        assert response.headers["www-authenticate"].startswith("Bearer")

    def test_unparsable_token_is_oau_149(self, server: LiveServer) -> None:
        response = server.client().get(ME, headers={"Authorization": "bearer !!!"})
        assert_error(response, 401, "OAU-149")

    def test_unknown_token_is_oau_129(self, server: LiveServer) -> None:
        response = server.client().get(ME, headers={"Authorization": "bearer cwa_" + "a" * 48})
        assert_error(response, 401, "OAU-129")

    def test_basic_scheme_is_oau_134(self, server: LiveServer) -> None:
        response = server.client().get(ME, headers={"Authorization": "Basic abc"})
        assert_error(response, 401, "OAU-134")

    def test_expired_token_is_oau_128(self, start_server: StartServer) -> None:
        server = start_server(access_token_ttl=600)
        headers = server.auth()
        client = server.client()
        assert client.get(ME, headers=headers).status_code == 200
        server.clock.advance(601)
        assert_error(client.get(ME, headers=headers), 401, "OAU-128")

    def test_requested_ttl_is_honoured_within_bounds(self, server: LiveServer) -> None:
        sam = server.tenant.user("101")
        response = _password(
            server,
            username="+16505550100*101",
            password=sam.password,
            access_token_ttl="900",
        )
        assert response.json()["expires_in"] == 900
