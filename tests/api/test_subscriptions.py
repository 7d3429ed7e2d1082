"""The subscription REST API (ringcentral-api.md §2.11) with real WebHook receivers on loopback:
lifecycle, validation, authorisation, expiry, limits, persistence, ordered deliveries of real
call transitions, retries and blacklisting, refused addresses."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from callwatch.ids import IdGenerator
from callwatch.store.tenants import create_app as create_oauth_app
from callwatch.store.tenants import create_monitoring_group

from ..events.live import FAST, Live, live_server
from ..events.names import Names
from ..events.receiver import Receiver, Reply
from .conftest import LiveServer
from .helpers import assert_error

PREFIX = "/restapi/v1.0/account/~"
SUBSCRIPTIONS = "/restapi/v1.0/subscription"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
async def live(template_db: Path, tmp_path: Path) -> AsyncIterator[Live]:
    async with live_server(template_db, tmp_path) as server:
        yield server


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


async def create(
    live: Live, address: str, filters: list[str], *, number: str = "101", **extra: Any
) -> httpx.Response:
    mode = {"transportType": "WebHook", "address": address, **extra.pop("mode", {})}
    body = {"eventFilters": filters, "deliveryMode": mode, **extra}
    return await live.client.post(SUBSCRIPTIONS, headers=await live.auth(number), json=body)


def agent_sessions(live: Live, number: str = "108", query: str = "") -> str:
    return f"{PREFIX}/extension/{live.extension(number).id}/telephony/sessions{query}"


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.deliveries]


class TestCreate:
    async def test_webhook_subscription_info(self, live: Live, hook: Receiver) -> None:
        response = await create(live, hook.url, [agent_sessions(live)], expiresIn=3600)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        info = response.json()
        assert UUID.fullmatch(info["id"])
        assert info["uri"] == f"{live.url}/restapi/v1.0/subscription/{info['id']}"
        account, agent = live.tenant.account.id, live.extension("108").id
        assert info["eventFilters"] == [
            f"/restapi/v1.0/account/{account}/extension/{agent}/telephony/sessions"
        ]
        assert info["status"] == "Active"
        assert info["expiresIn"] == 3600
        assert info["creationTime"] == "2026-01-01T00:00:00.000Z"
        assert info["expirationTime"] == "2026-01-01T01:00:00.000Z"
        assert info["deliveryMode"] == {
            "transportType": "WebHook",
            "address": hook.url,
            "encryption": False,
        }
        assert "blacklistedData" not in info
        (handshake,) = hook.requests
        assert handshake.body == b"" and "validation-token" in handshake.headers

    async def test_trailing_slash_and_default_ttl(self, live: Live, hook: Receiver) -> None:
        response = await live.client.post(
            "/restapi/v1.0/subscription/",
            headers=await live.auth(),
            json={
                "eventFilters": [f"{PREFIX}/extension/~/presence"],
                "deliveryMode": {"transportType": "WebHook", "address": hook.url},
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["expiresIn"] == 604800

    @pytest.mark.parametrize("transport", ["WebSocket", "PubNub", "APNS"])
    async def test_other_transports_are_refused(self, live: Live, transport: str) -> None:
        response = await live.client.post(
            "/restapi/v1.0/subscription",
            headers=await live.auth(),
            json={
                "eventFilters": [f"{PREFIX}/presence"],
                "deliveryMode": {"transportType": transport},
            },
        )
        body = assert_error(response, 400, "CMN-101")
        assert body["parameterName"] == "deliveryMode.transportType"

    @pytest.mark.parametrize(
        ("filters", "listed"),
        [
            ([f"{PREFIX}/message-store"], f"{PREFIX}/message-store"),
            ([f"{PREFIX}/extension/~/presence", "bad"], "bad"),
            ([], ""),
        ],
    )
    async def test_invalid_filters(
        self, live: Live, hook: Receiver, filters: list[str], listed: str
    ) -> None:
        body = assert_error(await create(live, hook.url, filters), 400, "SUB-508")
        assert f"Invalid event filters: [{listed}]" in str(body["message"])
        assert hook.requests == []

    @pytest.mark.parametrize(
        ("address", "expires_in", "parameter"),
        [
            ("ftp://example.com/x", None, "deliveryMode.address"),
            (None, 0, "expiresIn"),
            (None, 315360001, "expiresIn"),
        ],
    )
    async def test_invalid_fields(
        self,
        live: Live,
        hook: Receiver,
        address: str | None,
        expires_in: int | None,
        parameter: str,
    ) -> None:
        extra = {} if expires_in is None else {"expiresIn": expires_in}
        response = await create(live, address or hook.url, [f"{PREFIX}/presence"], **extra)
        assert assert_error(response, 400, "CMN-101")["parameterName"] == parameter

    async def test_missing_address(self, live: Live) -> None:
        mode = {"transportType": "WebHook"}
        body = {"eventFilters": [f"{PREFIX}/presence"], "deliveryMode": mode}
        response = await live.client.post(SUBSCRIPTIONS, headers=await live.auth(), json=body)
        assert assert_error(response, 400, "CMN-101")["parameterName"] == "deliveryMode.address"

    @pytest.mark.parametrize(
        ("reply", "detail"),
        [
            (Reply(echo_token=False), "not echoed"),
            (Reply(delay=0.8), "no response within"),
            (Reply(status=404), "HTTP status 404"),
            (Reply(body=b"x" * 2000), "larger than"),
        ],
    )
    async def test_handshake_failure_creates_nothing(
        self, live: Live, hook: Receiver, reply: Reply, detail: str
    ) -> None:
        hook.reply = lambda request: reply
        body = assert_error(await create(live, hook.url, [f"{PREFIX}/presence"]), 400, "SUB-525")
        assert detail in str(body["message"])
        listing = await live.client.get("/restapi/v1.0/subscription", headers=await live.auth())
        assert listing.json()["records"] == []


class TestRefusedAddresses:
    """The WebHook address policy (400 CMN-101 ``deliveryMode.address``; nothing is sent)."""

    @pytest.mark.parametrize(
        "address",
        ["http://169.254.169.254/latest/meta-data/iam/security-credentials/",
         "http://[fe80::1]/hook", "http://0.0.0.0:{port}/hook", "http://[::]:{port}/hook",
         "http://[::ffff:169.254.169.254]/hook", "http://2852039166/hook"],
    )  # fmt: skip
    async def test_refused_with_ringcentrals_error_body(
        self, live: Live, hook: Receiver, address: str
    ) -> None:
        response = await create(live, address.format(port=hook.port), [f"{PREFIX}/presence"])
        message = "Parameter [deliveryMode.address] value is invalid: address is not allowed"
        assert response.status_code == 400
        assert response.json() == {
            "errorCode": "CMN-101",
            "message": message,
            "parameterName": "deliveryMode.address",
            "errors": [
                {
                    "errorCode": "CMN-101",
                    "message": message,
                    "parameterName": "deliveryMode.address",
                }
            ],
        }
        assert hook.requests == []
        listing = await live.client.get(SUBSCRIPTIONS, headers=await live.auth())
        assert listing.json()["records"] == []

    async def test_a_name_resolving_to_a_denied_address(
        self, template_db: Path, tmp_path: Path, hook: Receiver
    ) -> None:
        names = Names({"metadata.test": ["169.254.169.254"], "hooks.test": ["127.0.0.1"]})
        async with live_server(template_db, tmp_path, resolver=names) as live:
            refused = await create(live, "http://metadata.test/hook", [f"{PREFIX}/presence"])
            assert assert_error(refused, 400, "CMN-101")["parameterName"] == "deliveryMode.address"
            created = await create(live, hook.url_for("hooks.test"), [f"{PREFIX}/presence"])
            assert created.status_code == 200, created.text
        assert hook.requests[0].headers["host"] == f"hooks.test:{hook.port}"

    async def test_https_required(self, template_db: Path, tmp_path: Path, hook: Receiver) -> None:
        events = FAST.model_copy(update={"webhook_require_https": True})
        async with live_server(template_db, tmp_path, events=events) as live:
            body = assert_error(
                await create(live, hook.url, [f"{PREFIX}/presence"]), 400, "CMN-101"
            )
        assert body["message"] == (
            "Parameter [deliveryMode.address] value is invalid: address must use https"
        )
        assert hook.requests == []

    async def test_allow_list(self, template_db: Path, tmp_path: Path, hook: Receiver) -> None:
        events = FAST.model_copy(update={"webhook_allowed_networks": ["192.0.2.0/24"]})
        async with live_server(template_db, tmp_path, events=events) as live:
            refused = await create(live, hook.url, [f"{PREFIX}/presence"])
            assert_error(refused, 400, "CMN-101")
        events = FAST.model_copy(update={"webhook_allowed_networks": ["127.0.0.0/8"]})
        async with live_server(template_db, tmp_path, events=events, name="allowed") as live:
            assert (await create(live, hook.url, [f"{PREFIX}/presence"])).status_code == 200

    async def test_denied_after_creation_is_blacklisted_others_deliver(
        self, template_db: Path, tmp_path: Path, hook: Receiver
    ) -> None:
        names = Names({"hooks.test": ["127.0.0.1"]})
        async with Receiver() as other, live_server(template_db, tmp_path, resolver=names) as live:
            moving = (await create(live, hook.url_for("hooks.test"), [agent_sessions(live)])).json()
            steady = (await create(live, other.url, [agent_sessions(live)])).json()
            agent = live.extension("108")
            live.calls.full_call(customer="+15550001111", agent=agent)
            await hook.wait_for_deliveries(4)
            await other.wait_for_deliveries(4)
            names.table["hooks.test"] = ["169.254.169.254"]  # its DNS changed
            live.calls.full_call(customer="+15550002222", agent=agent, tag="b")
            info = await _until_blacklisted(live, f"{SUBSCRIPTIONS}/{moving['id']}")
            assert info["blacklistedData"]["reason"] == "WebHook address is not allowed"
            assert len(await other.wait_for_deliveries(8)) == 8
            read = await live.client.get(
                f"{SUBSCRIPTIONS}/{steady['id']}", headers=await live.auth()
            )
            assert read.json()["status"] == "Active"
        assert len(hook.deliveries) == 4


class TestAuthorisation:
    async def test_admin_may_subscribe_to_an_agent(self, live: Live, hook: Receiver) -> None:
        assert (await create(live, hook.url, [agent_sessions(live)])).status_code == 200

    @pytest.mark.parametrize(
        ("target", "code"),
        [
            ("other-extension", "SUB-405"),
            ("account", "SUB-405"),
            ("other-account", "SUB-406"),
            ("unknown-extension", "SUB-408"),
        ],
    )
    async def test_refused(self, live: Live, hook: Receiver, target: str, code: str) -> None:
        filters = {
            "other-extension": agent_sessions(live, "102"),
            "account": f"{PREFIX}/telephony/sessions",
            "other-account": "/restapi/v1.0/account/1/extension/~/presence",
            "unknown-extension": f"{PREFIX}/extension/1/presence",
        }
        response = await create(live, hook.url, [filters[target]], number="108")
        assert_error(response, 403, code)
        assert hook.requests == []

    async def test_a_monitoring_member_may_follow_its_agents(
        self, live: Live, hook: Receiver
    ) -> None:
        """The seed's user-level subscription: no admin needed for a Monitored agent."""
        assert_error(
            await create(live, hook.url, [agent_sessions(live, "102")], number="109"),
            403,
            "SUB-405",
        )
        group = create_monitoring_group(
            live.store, ids=IdGenerator(), name="Night shift", account_id=live.tenant.account.id
        )
        members = {e.number: e.id for e in live.store.extensions.list_for_account(group.account_id)}
        live.store.monitoring.bulk_assign(
            group.id,
            added=[
                (members["109"], frozenset({"Monitoring"})),
                (members["102"], frozenset({"Monitored"})),
            ],
        )
        response = await create(live, hook.url, [agent_sessions(live, "102")], number="109")
        assert response.status_code == 200, response.text
        refused = await create(live, hook.url, [agent_sessions(live, "108")], number="109")
        assert_error(refused, 403, "SUB-405")

    async def test_own_extension_is_fine_for_anyone(self, live: Live, hook: Receiver) -> None:
        response = await create(live, hook.url, [f"{PREFIX}/extension/~/presence"], number="108")
        assert response.status_code == 200, response.text

    async def test_app_permission_per_filter(self, live: Live, hook: Receiver) -> None:
        created = create_oauth_app(
            live.store,
            ids=IdGenerator(),
            name="presence only",
            scopes=("ReadPresence", "ReadAccounts"),
        )
        token = await live.client.post(
            "/restapi/oauth/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": live.tenant.user("101").jwt,
            },
            auth=(created.app.client_id, created.client_secret),
        )
        headers = {"Authorization": f"bearer {token.json()['access_token']}"}
        mode = {"transportType": "WebHook", "address": hook.url}
        ok = await live.client.post(
            "/restapi/v1.0/subscription",
            headers=headers,
            json={"eventFilters": [f"{PREFIX}/extension/~/presence"], "deliveryMode": mode},
        )
        assert ok.status_code == 200, ok.text
        refused = await live.client.post(
            "/restapi/v1.0/subscription",
            headers=headers,
            json={
                "eventFilters": [f"{PREFIX}/extension/~/telephony/sessions"],
                "deliveryMode": mode,
            },
        )
        assert assert_error(refused, 403, "CMN-401")["permissionName"] == "CallControl"

    async def test_thirty_per_user_per_app(self, live: Live, hook: Receiver) -> None:
        for _ in range(30):
            response = await create(live, hook.url, [f"{PREFIX}/extension/~/presence"])
            assert response.status_code == 200, response.text
        refused = await create(live, hook.url, [f"{PREFIX}/extension/~/presence"])
        assert_error(refused, 403, "SUB-505")
        other_user = await create(live, hook.url, [f"{PREFIX}/extension/~/presence"], number="108")
        assert other_user.status_code == 200


class TestLifecycle:
    async def test_list_read_update_renew_delete(self, live: Live, hook: Receiver) -> None:
        auth = await live.auth()
        first = (await create(live, hook.url, [f"{PREFIX}/extension/~/presence"])).json()
        live.clock.advance(1)
        second = (await create(live, hook.url, [agent_sessions(live)], expiresIn=60)).json()
        listing = (await live.client.get("/restapi/v1.0/subscription", headers=auth)).json()
        assert listing["uri"] == f"{live.url}/restapi/v1.0/subscription"
        assert [r["id"] for r in listing["records"]] == [first["id"], second["id"]]
        uri = f"/restapi/v1.0/subscription/{second['id']}"
        assert (await live.client.get(uri, headers=auth)).json() == second

        live.clock.advance(30)
        updated = await live.client.put(
            uri,
            headers=auth,
            json={"eventFilters": [agent_sessions(live, query="?statusCode=Answered")]},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["eventFilters"][0].endswith("/telephony/sessions?statusCode=Answered")
        assert updated.json()["expirationTime"] == "2026-01-01T00:01:31.000Z"

        live.clock.advance(30)
        renewed = await live.client.post(f"{uri}/renew", headers=auth)
        assert renewed.json()["expirationTime"] == "2026-01-01T00:02:01.000Z"
        empty_put = await live.client.put(uri, headers=auth)
        assert empty_put.status_code == 200 and empty_put.json()["expiresIn"] == 60
        longer = await live.client.put(uri, headers=auth, json={"expiresIn": 7200})
        assert longer.json()["expiresIn"] == 7200

        deleted = await live.client.delete(uri, headers=auth)
        assert deleted.status_code == 204
        assert_error(await live.client.get(uri, headers=auth), 404, "CMN-102")
        assert_error(await live.client.delete(uri, headers=auth), 404, "CMN-102")

    async def test_another_users_subscription_is_invisible(
        self, live: Live, hook: Receiver
    ) -> None:
        created = (await create(live, hook.url, [f"{PREFIX}/extension/~/presence"])).json()
        uri = f"/restapi/v1.0/subscription/{created['id']}"
        other = await live.auth("108")
        assert_error(await live.client.get(uri, headers=other), 404, "CMN-102")
        assert_error(await live.client.delete(uri, headers=other), 404, "CMN-102")
        listing = await live.client.get("/restapi/v1.0/subscription", headers=other)
        assert listing.json()["records"] == []

    async def test_expired_is_sub_507_and_gets_nothing(self, live: Live, hook: Receiver) -> None:
        auth = await live.auth()
        created = (await create(live, hook.url, [agent_sessions(live)], expiresIn=60)).json()
        uri = f"/restapi/v1.0/subscription/{created['id']}"
        live.clock.advance(61)
        assert_error(await live.client.get(uri, headers=auth), 404, "SUB-507")
        assert_error(await live.client.post(f"{uri}/renew", headers=auth), 404, "SUB-507")
        assert_error(await live.client.put(uri, headers=auth, json={}), 404, "SUB-507")
        listing = await live.client.get("/restapi/v1.0/subscription", headers=auth)
        assert listing.json()["records"] == []
        live.calls.full_call(customer="+15550001111", agent=live.extension("108"))
        await live.client.get("/restapi/v1.0/subscription", headers=auth)  # let dispatch run
        assert hook.deliveries == []
        assert live.notifications.stats().subscriptions == 0
        assert (await live.client.delete(uri, headers=auth)).status_code == 204

    async def test_survives_a_restart(self, template_db: Path, tmp_path: Path) -> None:
        async with Receiver() as receiver:
            async with live_server(template_db, tmp_path, name="restart") as first:
                created = await create(first, receiver.url, [agent_sessions(first)])
                assert created.status_code == 200
                subscription_id = created.json()["id"]
            async with live_server(template_db, tmp_path, name="restart") as second:
                read = await second.client.get(
                    f"/restapi/v1.0/subscription/{subscription_id}", headers=await second.auth()
                )
                assert read.status_code == 200, read.text
                second.calls.full_call(customer="+15550001111", agent=second.extension("108"))
                delivered = await receiver.wait_for_deliveries(4)
                assert {json.loads(d.body)["subscriptionId"] for d in delivered} == {
                    subscription_id
                }

    async def test_no_notification_service_is_503(self, server: LiveServer) -> None:
        response = server.client().get("/restapi/v1.0/subscription", headers=server.auth())
        assert_error(response, 503, "CMN-201")


class TestDelivery:
    async def test_a_whole_call_in_sequence_order(self, live: Live, hook: Receiver) -> None:
        created = await create(
            live,
            hook.url,
            [agent_sessions(live, query="?sipData=true")],
            mode={"verificationToken": "secret-token"},
        )
        subscription = created.json()
        agent = live.extension("108")
        session = live.calls.full_call(customer="+15550001111", agent=agent)
        received = await hook.wait_for_deliveries(4)
        notifications = [json.loads(r.body) for r in received]
        statuses = [n["body"]["parties"][0]["status"]["code"] for n in notifications]
        assert statuses == ["Setup", "Proceeding", "Answered", "Disconnected"]
        sequences = [n["body"]["sequence"] for n in notifications]
        assert sequences == sorted(sequences) and len(set(sequences)) == 4
        for request, notification in zip(received, notifications, strict=True):
            assert request.headers["validation-token"] == "secret-token"
            assert request.headers["content-type"] == "application/json; charset=UTF-8"
            assert notification["subscriptionId"] == subscription["id"]
            assert notification["ownerId"] == str(live.extension("101").id)
            assert notification["event"] == subscription["eventFilters"][0]
            body = notification["body"]
            assert body["telephonySessionId"] == session.id
            assert body["origin"] == {"type": "Call"}
            assert body["eventTime"] == "2026-01-01T00:00:00.000Z"
            assert body["extensionId"] == str(agent.id)
            assert [p["extensionId"] for p in body["parties"]] == [str(agent.id)]
            assert body["parties"][0]["sipData"]["callId"] == "call-a@test"
        assert notifications[-1]["body"]["parties"][0]["missedCall"] is False

    async def test_older_validation_token_name(self, live: Live, hook: Receiver) -> None:
        await create(live, hook.url, [agent_sessions(live)], mode={"validationToken": "legacy"})
        live.calls.start(customer="+15550001111", agent=live.extension("108"))
        (delivery, *_) = await hook.wait_for_deliveries(1)
        assert delivery.headers["validation-token"] == "legacy"

    async def test_status_filter_and_missed_call(self, live: Live, hook: Receiver) -> None:
        await create(
            live,
            hook.url,
            [
                agent_sessions(live, query="?missedCall=true"),
                agent_sessions(live, query="?statusCode=Answered"),
            ],
        )
        agent = live.extension("108")
        live.calls.hang_up(live.calls.start(customer="+15550001111", agent=agent), "Cancelled")
        live.calls.full_call(customer="+15550002222", agent=agent, tag="b")
        received = bodies(await _settle(hook, 2))
        assert [n["event"].rsplit("?", 1)[1] for n in received] == [
            "missedCall=true",
            "statusCode=Answered",
        ]
        missed = received[0]["body"]["parties"][0]
        assert (missed["missedCall"], missed["status"]["reason"]) == (True, "Cancelled")

    async def test_presence(self, live: Live, hook: Receiver) -> None:
        agent = live.extension("108")
        await create(
            live,
            hook.url,
            [f"{PREFIX}/extension/{agent.id}/presence?detailedTelephonyState=true&sipData=true"],
        )
        live.calls.answer(live.calls.start(customer="+15550001111", agent=agent))
        received = bodies(await _settle(hook, 2))
        assert [n["body"]["telephonyStatus"] for n in received] == ["Ringing", "CallConnected"]
        call = received[-1]["body"]["activeCalls"][0]
        assert call["sipData"]["remoteUri"] == "do-not-use-me-I-am-useless"
        assert received[-1]["body"]["sequence"] == 2

    async def test_retried_after_500(self, live: Live, hook: Receiver) -> None:
        await create(live, hook.url, [agent_sessions(live)])
        failures = iter([500])
        hook.reply = lambda request: Reply(status=next(failures, 200))
        live.calls.full_call(customer="+15550001111", agent=live.extension("108"))
        await hook.wait_for_deliveries(5)
        received = bodies(hook)
        assert received[0]["uuid"] == received[1]["uuid"]
        assert [n["body"]["sequence"] for n in received[1:]] == [2, 3, 4, 7]

    async def test_blacklisted_after_repeated_failures(self, live: Live, hook: Receiver) -> None:
        created = (await create(live, hook.url, [agent_sessions(live)])).json()
        hook.reply = lambda request: Reply(status=500)
        live.calls.full_call(customer="+15550001111", agent=live.extension("108"))
        await hook.wait_for_deliveries(FAST.webhook_blacklist_after)
        uri = f"/restapi/v1.0/subscription/{created['id']}"
        info = await _until_blacklisted(live, uri)
        assert info["blacklistedData"]["reason"] == "WebHook responded with HTTP status 500"
        assert info["blacklistedData"]["blacklistedAt"].startswith("2026-01-01T")
        live.calls.full_call(customer="+15550001111", agent=live.extension("108"), tag="b")
        renewed = await live.client.post(f"{uri}/renew", headers=await live.auth())
        assert renewed.json()["status"] == "Blacklisted"  # for good: delete and re-create
        assert len(hook.deliveries) == FAST.webhook_blacklist_after


async def _settle(hook: Receiver, count: int) -> Receiver:
    """Wait for ``count`` deliveries, then a moment for any unexpected extra one."""
    await hook.wait_for_deliveries(count)
    extra = count + 1
    try:
        await hook.wait_for_deliveries(extra, timeout=0.2)
    except TimeoutError:
        return hook
    raise AssertionError(f"more than {count} deliveries: {bodies(hook)}")


async def _until_blacklisted(live: Live, uri: str) -> dict[str, Any]:
    for _ in range(200):
        info: dict[str, Any] = (await live.client.get(uri, headers=await live.auth())).json()
        if info["status"] == "Blacklisted":
            return info
    raise AssertionError("not blacklisted")
