"""The REST client against a real callwatch server (ringcentral-api.md §2.1–2.3, §2.12): logins,
refresh before expiry and after a 401, revoke, typed errors, 429 with Retry-After, and the
supervisor's resources — monitoring groups, devices, SIP credentials, sessions, supervise.

Two servers are used: the REST server of ``tests/api/conftest.py`` (uvicorn in a thread, a
FakeClock the tests move, settings per test, calls from ``tests/api/fake_calls.py``), and the
whole platform (``CallwatchServer``) with real SIP user agents for supervise.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from callwatch.client import UserAgent
from callwatch.client.api_errors import (
    ApiError,
    AuthError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    NotLoggedIn,
    RateLimited,
    ResponseError,
    ServerError,
    api_error,
)
from callwatch.client.auth import Token, refresh_lead
from callwatch.client.resources import (
    MonitoredAgent,
    SipInfo,
    account_path,
    extension_path,
    monitored_agents,
    supervise_body,
)
from callwatch.client.rest import RestClient, RetryPolicy
from callwatch.clock import FakeClock
from callwatch.sip.events import Address
from tests.api import conftest as api_conftest
from tests.api.conftest import LiveServer, StartServer
from tests.api.fake_calls import start_with_calls
from tests.integration import conftest as integration_conftest
from tests.integration.conftest import RunningServer

template_db = api_conftest.template_db
start_server = api_conftest.start_server
server = api_conftest.server
platform = integration_conftest.server

CUSTOMER = "+16505550100"
SIP_DOMAIN = "sip.callwatch.local"


def client_for(server: LiveServer, clock: FakeClock | None = None, **kwargs: Any) -> RestClient:
    tenant = server.tenant
    return RestClient(server.url, tenant.client_id, tenant.client_secret, clock=clock, **kwargs)


async def logged_in(server: LiveServer, number: str = "101", **kwargs: Any) -> RestClient:
    client = client_for(server, **kwargs)
    await client.login_jwt(server.tenant.user(number).jwt)
    return client


def raw_status(server: LiveServer, access_token: str) -> tuple[int, str]:
    """What the server says about an access token (status, errorCode) — outside the client."""
    response = server.client().get(
        extension_path(), headers={"Authorization": f"bearer {access_token}"}
    )
    return response.status_code, response.json().get("errorCode", "")


class TestLogin:
    async def test_jwt(self, server: LiveServer) -> None:
        async with client_for(server) as client:
            token = await client.login_jwt(server.tenant.user("101").jwt)
            assert token.owner_id == str(server.tenant.user("101").extension.id)
            assert {"CallControl", "WebSocket"} <= set(token.scope)
            assert token.session_id and token.refresh_token
            assert (await client.extension())["extensionNumber"] == "101"

    async def test_password_with_extension(self, server: LiveServer) -> None:
        user = server.tenant.user("108")
        async with client_for(server) as client:
            await client.login_password(server.tenant.account.main_number, user.password, "108")
            assert client.owner_id == str(user.extension.id)
            assert (await client.extension())["extensionNumber"] == "108"

    async def test_password_in_number_star_extension_form(self, server: LiveServer) -> None:
        user = server.tenant.user("102")
        username = f"{server.tenant.account.main_number}*102"
        async with client_for(server) as client:
            await client.login_password(username, user.password)
            assert client.owner_id == str(user.extension.id)

    async def test_wrong_password_is_an_auth_error(self, server: LiveServer) -> None:
        async with client_for(server) as client:
            with pytest.raises(AuthError) as error:
                await client.login_password(server.tenant.account.main_number, "nope", "101")
        assert (error.value.status, error.value.error_code) == (400, "OAU-140")
        assert error.value.oauth_error == "invalid_grant"
        assert client.token is None

    async def test_wrong_client_secret(self, server: LiveServer) -> None:
        async with RestClient(server.url, server.tenant.client_id, "wrong") as client:
            with pytest.raises(AuthError) as error:
                await client.login_jwt(server.tenant.user("101").jwt)
        assert (error.value.status, error.value.error_code) == (401, "OAU-146")

    async def test_requests_need_a_login(self, server: LiveServer) -> None:
        async with client_for(server) as client:
            with pytest.raises(NotLoggedIn):
                await client.extension()


class TestRefresh:
    async def test_refreshed_before_expiry_on_the_clients_clock(
        self, start_server: StartServer
    ) -> None:
        server = start_server(access_token_ttl=60)
        clock = FakeClock()
        async with client_for(server, clock) as client:
            first = await client.login_jwt(server.tenant.user("101").jwt)
            assert first.expires_in == 60
            clock.advance(60 - refresh_lead(60) - 1)
            await client.extension()
            assert client.token is first
            clock.advance(1)
            await client.extension()
            second = client.token
            assert second is not None and second is not first
        assert second.access_token != first.access_token
        assert second.refresh_token != first.refresh_token
        assert second.session_id == first.session_id  # rotation keeps the OAuth session
        assert raw_status(server, first.access_token) == (401, "OAU-129")
        assert raw_status(server, second.access_token)[0] == 200

    async def test_a_401_expired_refreshes_once_and_retries(
        self, start_server: StartServer
    ) -> None:
        server = start_server(access_token_ttl=60)
        async with client_for(server, FakeClock()) as client:
            first = await client.login_jwt(server.tenant.user("101").jwt)
            server.clock.advance(61)  # the server's clock ran ahead: it sees an expired token
            assert (await client.extension())["extensionNumber"] == "101"
            assert client.token is not first

    async def test_expired_refresh_token_logs_in_again_with_the_jwt(
        self, start_server: StartServer
    ) -> None:
        server = start_server(access_token_ttl=60, refresh_token_ttl=60)
        clock = FakeClock()
        async with client_for(server, clock) as client:
            first = await client.login_jwt(server.tenant.user("101").jwt)
            clock.advance(61)
            server.clock.advance(61)
            await client.extension()
            assert client.token is not None
            assert client.token.session_id != first.session_id

    async def test_refused_refresh_without_jwt_is_an_auth_error(self, server: LiveServer) -> None:
        clock = FakeClock()
        user = server.tenant.user("108")
        async with client_for(server, clock) as client:
            token = await client.login_password(
                server.tenant.account.main_number, user.password, "108"
            )
            revoke_outside(server, token)
            clock.advance(token.expires_in)
            with pytest.raises(AuthError) as error:
                await client.extension()
            assert error.value.error_code == "OAU-211"
            assert client.token is None


def revoke_outside(server: LiveServer, token: Token) -> None:
    response = server.client().post(
        "/restapi/oauth/revoke",
        data={"token": token.access_token},
        auth=(server.tenant.client_id, server.tenant.client_secret),
    )
    assert response.status_code == 200, response.text


class TestRevoke:
    async def test_revoke_ends_the_session(self, server: LiveServer) -> None:
        async with await logged_in(server) as client:
            token = client.token
            assert token is not None
            await client.revoke()
            assert client.token is None
            with pytest.raises(NotLoggedIn):
                await client.extension()
            await client.revoke()  # nothing to revoke: no error
        assert raw_status(server, token.access_token) == (401, "OAU-129")

    async def test_revoked_elsewhere_is_a_401_without_refresh(self, server: LiveServer) -> None:
        async with await logged_in(server) as client:
            assert client.token is not None
            revoke_outside(server, client.token)
            with pytest.raises(AuthError) as error:
                await client.extension()
        assert (error.value.status, error.value.error_code) == (401, "OAU-129")


class TestErrors:
    async def test_404_is_not_found_with_the_parameter(self, server: LiveServer) -> None:
        async with await logged_in(server) as client:
            with pytest.raises(NotFound) as error:
                await client.extension(999_999_999)
        assert (error.value.status, error.value.error_code) == (404, "CMN-102")
        assert error.value.parameter_name == "extensionId"
        assert error.value.errors[0].error_code == "CMN-102"
        assert "CMN-102" in str(error.value)

    async def test_403_is_forbidden(self, server: LiveServer) -> None:
        async with await logged_in(server, "108") as client:  # not an admin
            with pytest.raises(Forbidden) as error:
                await client.post(account_path("call-monitoring-groups"), {"name": "Mine"})
        assert error.value.status == 403
        assert error.value.error_code

    async def test_409_is_conflict(self, start_server: StartServer) -> None:
        server, calls = start_with_calls(start_server)
        ringing = calls.call(
            customer=CUSTOMER, agent=server.tenant.user("108").extension, answered=False
        )
        path = account_path("telephony/sessions", ringing.id, "parties", ringing.parties[1].id)
        async with await logged_in(server, "108") as client:
            with pytest.raises(Conflict) as error:
                await client.post(f"{path}/hold")
        assert (error.value.status, error.value.error_code) == (409, "TAS-101")

    async def test_non_json_success_is_a_response_error(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/restapi/oauth/token":
                return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
            return httpx.Response(200, text="<html>proxy page</html>")

        async with RestClient(
            "http://rc.test", "id", "s", transport=httpx.MockTransport(handler)
        ) as client:
            await client.login_jwt("jwt")
            with pytest.raises(ResponseError):
                await client.extension()

    @pytest.mark.parametrize(
        ("status", "body", "cls", "code", "message"),
        [
            (
                404,
                {"errors": [{"errorCode": "CMN-102", "message": "gone", "parameterName": "id"}]},
                NotFound,
                "CMN-102",
                "gone",
            ),
            (
                400,
                {"error": "invalid_grant", "error_description": "bad", "errors": []},
                BadRequest,
                None,
                "bad",
            ),
            (
                403,
                {
                    "errorCode": "CMN-408",
                    "message": "[X] permission required",
                    "errors": [{"errorCode": "CMN-408", "message": "m", "permissionName": "X"}],
                    "permissionName": "X",
                },
                Forbidden,
                "CMN-408",
                "[X] permission required",
            ),
            (503, "<html>down</html>", ServerError, None, "Service Unavailable"),
            (418, "", ApiError, None, "I'm a teapot"),
        ],
    )
    def test_error_bodies_of_every_shape(
        self, status: int, body: object, cls: type[ApiError], code: str | None, message: str
    ) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        reason = httpx.codes.get_reason_phrase(status)
        error = api_error(status, text, reason=reason)
        assert type(error) is cls
        assert (error.status, error.error_code, error.message) == (status, code, message)


LIMITS = {"Light": 2, "Medium": 1000, "Heavy": 1000, "Auth": 1000}
"""Two reads per window: the third is refused."""


class TestRateLimits:
    async def test_429_waits_retry_after_then_succeeds(self, start_server: StartServer) -> None:
        server = start_server(rate_limits=LIMITS, rate_window=1, rate_penalty=1)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:  # time passes on the server instead
            slept.append(seconds)
            server.clock.advance(seconds)

        async with await logged_in(server, sleep=sleep) as client:
            for _ in range(3):
                assert (await client.extension())["extensionNumber"] == "101"
        assert slept == [1.0]

    async def test_attempts_are_bounded(self, start_server: StartServer) -> None:
        server = start_server(rate_limits=LIMITS, rate_window=60, rate_penalty=60)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        retry = RetryPolicy(max_attempts=2, max_wait=120)
        async with await logged_in(server, sleep=sleep, retry=retry) as client:
            await client.extension()
            await client.extension()
            with pytest.raises(RateLimited) as error:
                await client.extension()
        assert (error.value.status, error.value.error_code) == (429, "CMN-301")
        assert error.value.retry_after == 60
        assert slept == [60.0]  # one retry, refused again (the penalty restarted)

    async def test_a_long_retry_after_is_raised_at_once(self, start_server: StartServer) -> None:
        server = start_server(rate_limits=LIMITS, rate_window=60, rate_penalty=60)

        async def sleep(seconds: float) -> None:
            raise AssertionError("must not wait")

        retry = RetryPolicy(max_wait=30)
        async with await logged_in(server, sleep=sleep, retry=retry) as client:
            await client.extension()
            await client.extension()
            with pytest.raises(RateLimited) as error:
                await client.extension()
        assert error.value.retry_after == 60


class TestResources:
    async def test_monitorable_agents_of_the_supervisor(self, server: LiveServer) -> None:
        async with await logged_in(server, "101") as client:
            agents = await client.monitorable_agents()
        ids = {str(server.tenant.user(n).extension.id): n for n in ("108", "102")}
        assert {a.extension_id for a in agents} == set(ids)
        assert {a.extension_number for a in agents} == {"108", "102"}
        group = str(server.tenant.monitoring_groups[0].group.id)
        assert all(a.group_ids == (group,) for a in agents)

    @pytest.mark.parametrize("number", ["109", "108"])
    async def test_nobody_for_others(self, server: LiveServer, number: str) -> None:
        async with await logged_in(server, number) as client:
            assert await client.monitorable_agents() == []

    async def test_groups_and_members(self, server: LiveServer) -> None:
        async with await logged_in(server) as client:
            groups = await client.monitoring_groups()
            members = await client.group_members(str(groups[0]["id"]))
        assert [g["name"] for g in groups] == ["Support"]
        numbers = {m["extensionNumber"]: set(m["permissions"]) for m in members}
        assert numbers == {"101": {"Monitoring"}, "102": {"Monitored"}, "108": {"Monitored"}}

    async def test_extensions_devices_and_sip_credentials(self, server: LiveServer) -> None:
        async with await logged_in(server) as client:
            numbers = {e["extensionNumber"] for e in await client.extensions()}
            devices = await client.devices()
            info = await client.device_sip_info(str(devices[0]["id"]))
            udp = await client.device_sip_info(str(devices[0]["id"]), transport="UDP")
            provisioned = await client.sip_provision(("TLS", "UDP"))
        assert {"101", "102", "108", "109"} <= numbers
        assert len(devices) == 2
        assert info.authorization_id == devices[0]["id"]
        assert (info.transport, info.outbound_proxy) == ("TLS", "127.0.0.1:5061")
        assert udp.outbound_proxy == "127.0.0.1:5060"
        assert info.domain == api_conftest.SIP_DOMAIN
        assert provisioned.device_id in {str(d["id"]) for d in devices}
        tls = provisioned.for_transport("tls")
        assert (tls.transport, tls.outbound_proxy) == ("TLS", "127.0.0.1:5061")
        assert tls.authorization_id == provisioned.device_id
        assert provisioned.for_transport("UDP").outbound_proxy == "127.0.0.1:5060"

    async def test_records_follow_pages(self, server: LiveServer) -> None:
        async with await logged_in(server) as client:
            paged = await client.records(account_path("extension"), {"perPage": 1})
            whole = await client.extensions()
        assert [e["id"] for e in paged] == [e["id"] for e in whole]

    async def test_session_and_presence(self, start_server: StartServer) -> None:
        server, calls = start_with_calls(start_server)
        agent = server.tenant.user("108").extension
        session = calls.call(customer=CUSTOMER, agent=agent)
        async with await logged_in(server, "101") as client:
            body = await client.session(session.id)
            presence = await client.presence(agent.id)
            with pytest.raises(NotFound) as error:
                await client.session("s-unknown")
        assert [p["id"] for p in body["parties"]] == [p.id for p in session.parties]
        assert presence["telephonyStatus"] == "CallConnected"
        [active] = presence["activeCalls"]
        assert active["telephonySessionId"] == session.id
        assert "sipData" in active
        assert error.value.parameter_name == "telephonySessionId"


class TestPureHelpers:
    def test_monitored_agents_rule(self) -> None:
        members: list[dict[str, Any]] = [
            {"id": "1", "extensionNumber": "101", "permissions": ["Monitoring", "Monitored"]},
            {"id": "2", "extensionNumber": "102", "permissions": ["Monitored"]},
            {"id": 3, "extensionNumber": "103", "permissions": ["Monitoring"]},
        ]
        others: list[dict[str, Any]] = [{"id": "4", "permissions": ["Monitored"]}]
        found = monitored_agents("1", [("g1", members), ("g2", others), ("g3", members)])
        assert found == [
            MonitoredAgent(extension_id="2", extension_number="102", group_ids=("g1", "g3"))
        ]

    def test_supervise_body(self) -> None:
        assert supervise_body(device_id="d", agent_extension_number="108") == {
            "mode": "Listen",
            "supervisorDeviceId": "d",
            "agentExtensionNumber": "108",
            "autoAnswer": True,
        }
        party = supervise_body(
            device_id="d",
            agent_extension_id=7,
            auto_answer=False,
            media_sdp="sendOnly",
            party_level=True,
        )
        assert party["agentExtensionId"] == "7" and party["mediaSDP"] == "sendOnly"
        refused: list[dict[str, Any]] = [
            {},
            {"agent_extension_id": 1, "agent_extension_number": "1"},
            {"agent_extension_number": "1", "party_level": True},
            {"agent_extension_id": 1, "media_sdp": "both"},
        ]
        for bad in refused:
            with pytest.raises(ValueError):
                supervise_body(device_id="d", **bad)

    def test_sip_info_needs_a_proxy_for_the_transport(self) -> None:
        body = {
            "domain": "d",
            "userName": "u",
            "password": "p",
            "authorizationId": "1",
            "outboundProxies": [{"region": "NA", "proxy": "h:5060"}],
        }
        assert SipInfo.from_device(body, transport="udp").outbound_proxy == "h:5060"
        with pytest.raises(ResponseError, match="TLS"):
            SipInfo.from_device(body)

    def test_token_deadlines(self) -> None:
        token = Token.parse(
            {
                "access_token": "a",
                "expires_in": 3600,
                "refresh_token": "r",
                "refresh_token_expires_in": 7200,
                "scope": "A B",
                "owner_id": 5,
            },
            now=100.0,
        )
        assert (token.expires_at, token.refresh_at) == (3700.0, 3640.0)
        assert token.scope == ("A", "B") and token.owner_id == "5"
        assert token.authorization == "Bearer a"
        assert not token.due(3639.9) and token.due(3640.0)
        assert token.refreshable(7299.0) and not token.refreshable(7300.0)
        with pytest.raises(ResponseError, match="expires_in"):
            Token.parse({"access_token": "a", "expires_in": "soon"}, now=0)


# -- supervise on the whole platform, with real SIP devices ------------------------------------


async def register(server: RunningServer, device: dict[str, Any]) -> UserAgent:
    ua = UserAgent(username=device["sip_username"], auto_answer_after=0.0)
    await ua.start()
    await ua.register(
        Address("UDP", "127.0.0.1", server.ports.sip),
        username=device["sip_username"],
        auth_username=device["authorization_id"],
        password=device["sip_password"],
        domain=SIP_DOMAIN,
    )
    return ua


async def platform_client(server: RunningServer, number: str) -> RestClient:
    tenant = server.tenant
    client = RestClient(server.url, tenant["client_id"], tenant["client_secret"])
    await client.login_jwt(server.extension(number)["jwt"])
    return client


async def test_supervise_refusals_are_typed_then_supervise_and_stop(
    platform: RunningServer,
) -> None:
    agent_ua = await register(platform, platform.extension("108")["devices"][0])
    sup_device = platform.extension("101")["devices"][0]
    offline_device = platform.extension("101")["devices"][1]
    customer_ua = UserAgent(username=CUSTOMER)
    await customer_ua.start()
    supervisor_ua: UserAgent | None = None
    try:
        await customer_ua.call(
            f"sip:108@{SIP_DOMAIN}", Address("UDP", "127.0.0.1", platform.ports.sip)
        )
        await (await agent_ua.next_call()).confirmed()
        [session_id] = list(platform.server.b2bua.calls)
        async with (
            await platform_client(platform, "109") as nina,
            await platform_client(platform, "101") as sam,
        ):
            with pytest.raises(NotFound) as unknown:
                await sam.supervise(
                    "s-nope", device_id=sup_device["id"], agent_extension_number="108"
                )
            assert unknown.value.parameter_name == "telephonySessionId"
            with pytest.raises(Forbidden) as forbidden:
                await nina.supervise(
                    session_id,
                    device_id=platform.extension("109")["devices"][0]["id"],
                    agent_extension_number="108",
                )
            assert forbidden.value.error_code == "SUP-101"
            with pytest.raises(Conflict) as offline:
                await sam.supervise(
                    session_id, device_id=offline_device["id"], agent_extension_number="108"
                )
            assert offline.value.error_code == "SUP-103"
            with pytest.raises(ValueError):
                await sam.supervise(session_id, device_id=sup_device["id"])

            supervisor_ua = await register(platform, sup_device)
            agent_id = platform.extension("108")["extension_id"]
            party = await sam.supervise(
                session_id, device_id=sup_device["id"], agent_extension_id=agent_id
            )
            assert party["status"]["reason"] == "Supervising"
            assert party["from"]["deviceId"] == sup_device["id"]
            session = await sam.session(session_id)
            assert party["id"] in {p["id"] for p in session["parties"]}
            presence = await sam.presence()
            assert party["id"] in {c["partyId"] for c in presence["activeCalls"]}
            with pytest.raises(Conflict):  # one supervisor at a time
                await sam.supervise(
                    session_id, device_id=sup_device["id"], agent_extension_number="108"
                )
            await sam.delete_party(session_id, str(party["id"]))
            session = await sam.session(session_id)
            mine = next(p for p in session["parties"] if p["id"] == party["id"])
            assert mine["status"]["code"] == "Disconnected"
    finally:
        for ua in (customer_ua, agent_ua, supervisor_ua):
            if ua is not None:
                await ua.close()
