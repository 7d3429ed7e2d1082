"""Subscriptions over the WebSocket gateway and WebHooks (ringcentral-api.md §3, §4).

Against a real callwatch REST + WebSocket server in the test's loop (``tests/events/live.py``,
real telephony events from ``pbx.sessions`` via ``CallScript``), and once against the whole
platform with a real SIP call. Sockets are cut on purpose through a wrapping connector: a TCP
reset from the client side, or the server's own idle timeout closing it; reconnections can be
held so calls happen while the client is away. Protocol details the real server never sends
(odd frames, silence, refused re-subscription) use an in-memory gateway.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st

from callwatch.client import UserAgent, wsg
from callwatch.client.api_errors import BadRequest, Forbidden
from callwatch.client.rest import RestClient, RetryPolicy
from callwatch.client.subscriptions import (
    Backoff,
    Timing,
    WebhookReceiver,
    WebSocketSubscription,
    create_webhook,
)
from callwatch.client.wsg_connection import WsTransport
from callwatch.sip.events import Address
from tests.api import conftest as api_conftest
from tests.events.live import FAST, Live, live_server
from tests.integration import conftest as integration_conftest
from tests.integration.conftest import RunningServer

from .test_rest import CUSTOMER, SIP_DOMAIN, platform_client, register

template_db = api_conftest.template_db
platform = integration_conftest.server

TIMEOUT = 5.0


def agent_filter(extension_id: int | str, query: str = "") -> str:
    return f"/restapi/v1.0/account/~/extension/{extension_id}/telephony/sessions{query}"


async def login(live: Live, number: str = "101") -> RestClient:
    rest = RestClient(live.url, live.tenant.client_id, live.tenant.client_secret)
    await rest.login_jwt(live.tenant.user(number).jwt)
    return rest


async def take(source: AsyncIterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(anext(source), TIMEOUT) for _ in range(count)]


def codes(envelopes: list[dict[str, Any]]) -> list[str]:
    return [e["body"]["parties"][0]["status"]["code"] for e in envelopes]


class Cutter:
    """A connector that keeps its sockets, can cut the last one and hold the next connect."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.sockets: list[websockets.ClientConnection] = []
        self._gate = asyncio.Event()
        self._gate.set()
        self.waiting = asyncio.Event()

    async def __call__(self, url: str) -> WsTransport:
        self.urls.append(url)
        if not self._gate.is_set():
            self.waiting.set()
            await self._gate.wait()
        socket = await websockets.connect(url)
        self.sockets.append(socket)
        return socket

    def hold(self) -> None:
        self._gate.clear()
        self.waiting.clear()

    def release(self) -> None:
        self._gate.set()

    def reset(self) -> None:
        """The network drops: a TCP reset, no closing handshake."""
        self.sockets[-1].transport.abort()


@pytest.fixture
async def live(template_db: Path, tmp_path: Path) -> AsyncIterator[Live]:
    async with live_server(template_db, tmp_path) as server:
        yield server


async def until(check: Callable[[], bool]) -> None:
    """Wait for server-side state a test cannot be told about (bounded)."""
    async with asyncio.timeout(TIMEOUT):
        while not check():
            await asyncio.sleep(0.01)


class TestWebSocketSubscription:
    async def test_receives_the_notifications_of_a_call(self, live: Live) -> None:
        agent = live.extension("108")
        async with (
            await login(live) as rest,
            WebSocketSubscription(rest, [agent_filter(agent.id)]) as sub,
        ):
            assert sub.connected and sub.subscription_id
            assert sub.connection_details["recoveryTimeout"] == 180
            live.calls.full_call(customer=CUSTOMER, agent=agent)
            envelopes = await take(sub, 4)
        assert codes(envelopes) == ["Setup", "Proceeding", "Answered", "Disconnected"]
        assert {e["subscriptionId"] for e in envelopes} == {sub.subscription_id}
        assert sub.subscription is not None
        assert {e["event"] for e in envelopes} == set(sub.subscription["eventFilters"])
        assert (sub.stats.connections, sub.stats.frames.notifications) == (1, 4)

    async def test_client_side_reset_recovers_what_was_missed(self, live: Live) -> None:
        agent, cutter = live.extension("108"), Cutter()
        hooks: list[bool] = []
        async with (
            await login(live) as rest,
            WebSocketSubscription(
                rest, [agent_filter(agent.id)], connector=cutter, on_reconnected=hooks.append
            ) as sub,
        ):
            assert hooks == []  # not for the first connection
            first_id = sub.subscription_id
            session = live.calls.start(customer=CUSTOMER, agent=agent)
            before = await take(sub, 2)
            cutter.hold()
            cutter.reset()
            await asyncio.wait_for(cutter.waiting.wait(), TIMEOUT)
            live.calls.hang_up(live.calls.answer(session))  # published while the client is away
            second = live.calls.start(customer=CUSTOMER, agent=agent, tag="b")
            cutter.release()
            missed = await take(sub, 4)
            live.calls.hang_up(second)
            after = await take(sub, 1)
        assert codes(before) == ["Setup", "Proceeding"]
        assert codes(missed) == ["Answered", "Disconnected", "Setup", "Proceeding"]
        assert codes(after) == ["Disconnected"]
        everything = before + missed + after
        assert len({e["uuid"] for e in everything}) == 7
        assert {e["subscriptionId"] for e in everything} == {first_id}
        assert (sub.stats.recoveries, sub.stats.resubscriptions) == (1, 0)
        assert hooks == [True]
        assert "&wsc=" in cutter.urls[1] and "&wsc=" not in cutter.urls[0]

    async def test_server_side_close_recovers(self, template_db: Path, tmp_path: Path) -> None:
        events = FAST.model_copy(update={"ws_idle_timeout": 0.3})  # the gateway closes idlers
        cutter = Cutter()
        async with live_server(template_db, tmp_path, events=events) as live:
            agent = live.extension("108")
            async with (
                await login(live) as rest,
                WebSocketSubscription(
                    rest,
                    [agent_filter(agent.id)],
                    connector=cutter,
                    timing=Timing(heartbeat_interval=60),
                ) as sub,
            ):
                cutter.hold()
                await asyncio.wait_for(cutter.waiting.wait(), TIMEOUT)
                session = live.calls.start(customer=CUSTOMER, agent=agent)
                cutter.release()
                missed = await take(sub, 2)
                live.calls.hang_up(live.calls.answer(session))
                later = await take(sub, 2)
        assert codes(missed + later) == ["Setup", "Proceeding", "Answered", "Disconnected"]
        assert sub.stats.frames.errors >= 1  # the WSG-902 announcement
        assert sub.stats.recoveries >= 1 and sub.stats.resubscriptions == 0

    async def test_after_the_recovery_window_it_subscribes_again(
        self, template_db: Path, tmp_path: Path
    ) -> None:
        events = FAST.model_copy(update={"ws_recovery_timeout": 0.2})
        cutter = Cutter()
        hooks: list[bool] = []

        def hook(recovered: bool) -> None:
            hooks.append(recovered)
            raise RuntimeError("a failing hook is logged, never fatal")

        async with live_server(template_db, tmp_path, events=events) as live:
            agent = live.extension("108")
            async with (
                await login(live) as rest,
                WebSocketSubscription(
                    rest, [agent_filter(agent.id)], connector=cutter, on_reconnected=hook
                ) as sub,
            ):
                first_id = sub.subscription_id
                cutter.hold()
                cutter.reset()
                await asyncio.wait_for(cutter.waiting.wait(), TIMEOUT)
                await until(lambda: live.notifications.stats().subscriptions == 0)
                live.calls.start(customer=CUSTOMER, agent=agent)  # nobody is subscribed: lost
                cutter.release()
                await until(lambda: sub.stats.resubscriptions == 1 and sub.connected)
                fresh = live.calls.start(customer=CUSTOMER, agent=agent, tag="b")
                envelopes = await take(sub, 2)
        assert sub.subscription_id != first_id
        assert codes(envelopes) == ["Setup", "Proceeding"]
        assert {e["body"]["telephonySessionId"] for e in envelopes} == {fresh.id}
        assert {e["subscriptionId"] for e in envelopes} == {sub.subscription_id}
        assert sub.stats.recoveries == 0
        assert hooks == [False]  # the server lost the session: the caller hears of it

    async def test_update_filters(self, live: Live) -> None:
        agent = live.extension("108")
        async with (
            await login(live) as rest,
            WebSocketSubscription(rest, [agent_filter(agent.id)]) as sub,
        ):
            await sub.update_filters([agent_filter(agent.id, "?statusCode=Disconnected")])
            assert sub.subscription is not None
            [expanded] = sub.subscription["eventFilters"]
            assert expanded.endswith(
                f"/extension/{agent.id}/telephony/sessions?statusCode=Disconnected"
            )
            live.calls.full_call(customer=CUSTOMER, agent=agent)
            live.calls.full_call(customer=CUSTOMER, agent=agent, tag="b")
            assert codes(await take(sub, 2)) == ["Disconnected", "Disconnected"]

    async def test_refused_filters_leave_the_old_ones(self, live: Live) -> None:
        agent = live.extension("108")
        async with (
            await login(live) as rest,
            WebSocketSubscription(rest, [agent_filter(agent.id)]) as sub,
        ):
            with pytest.raises(BadRequest) as error:
                await sub.update_filters(["/restapi/v1.0/nope"])
            assert error.value.error_code == "SUB-508"
            assert sub.event_filters == (agent_filter(agent.id),)
            live.calls.full_call(customer=CUSTOMER, agent=agent)
            assert codes(await take(sub, 4))[-1] == "Disconnected"

    async def test_filters_changed_while_away_apply_on_recovery(self, live: Live) -> None:
        agent, cutter = live.extension("108"), Cutter()
        async with (
            await login(live) as rest,
            WebSocketSubscription(rest, [agent_filter(agent.id)], connector=cutter) as sub,
        ):
            cutter.hold()
            cutter.reset()
            await asyncio.wait_for(cutter.waiting.wait(), TIMEOUT)
            await sub.update_filters([agent_filter(agent.id, "?statusCode=Answered")])
            cutter.release()
            await until(lambda: sub.stats.recoveries == 1 and sub.connected)
            live.calls.full_call(customer=CUSTOMER, agent=agent)
            assert codes(await take(sub, 1)) == ["Answered"]

    async def test_close_deletes_the_subscription_and_ends_iteration(self, live: Live) -> None:
        async with await login(live) as rest:
            sub = await WebSocketSubscription(
                rest, [agent_filter(live.extension("108").id)]
            ).start()
            assert live.notifications.stats().subscriptions == 1
            await sub.close()
            assert live.notifications.stats().subscriptions == 0
            with pytest.raises(StopAsyncIteration):
                await anext(sub)
            await sub.close()

    async def test_refusals_are_raised_by_start(self, live: Live) -> None:
        async with await login(live, "109") as rest:
            with pytest.raises(Forbidden) as forbidden:
                await WebSocketSubscription(rest, [agent_filter(live.extension("108").id)]).start()
            with pytest.raises(BadRequest) as invalid:
                await WebSocketSubscription(rest, ["/restapi/v1.0/nope"]).start()
        assert forbidden.value.error_code == "SUB-405"  # another extension's sessions
        assert invalid.value.error_code == "SUB-508"


class TestWebhooks:
    async def test_handshake_deliveries_renew_and_delete(self, live: Live) -> None:
        agent = live.extension("108")
        async with await login(live) as rest, WebhookReceiver(verification_token="tok") as hook:
            subscription = await create_webhook(
                rest, [agent_filter(agent.id)], hook.url, verification_token="tok"
            )
            assert hook.stats.handshakes == 1
            assert subscription.info["deliveryMode"]["address"] == hook.url
            live.calls.full_call(customer=CUSTOMER, agent=agent)
            envelopes = await take(hook, 4)
            assert codes(envelopes) == ["Setup", "Proceeding", "Answered", "Disconnected"]
            assert {e["subscriptionId"] for e in envelopes} == {subscription.id}
            assert (await subscription.renew())["status"] == "Active"
            await subscription.update([agent_filter(agent.id, "?statusCode=Answered")])
            assert (await subscription.read())["eventFilters"][0].endswith("=Answered")
            await subscription.delete()
            assert live.notifications.stats().subscriptions == 0

    async def test_forged_and_malformed_deliveries_are_refused(self) -> None:
        async with WebhookReceiver(verification_token="tok") as hook, httpx.AsyncClient() as http:
            forged = await http.post(
                hook.url, json={"uuid": "1"}, headers={"Validation-Token": "x"}
            )
            garbage = await http.post(hook.url, content=b"[1]", headers={"Validation-Token": "tok"})
            handshake = await http.post(hook.url, headers={"Validation-Token": "random"})
            good = await http.post(
                hook.url, json={"uuid": "2"}, headers={"Validation-Token": "tok"}
            )
            [envelope] = await take(hook, 1)
        assert (forged.status_code, garbage.status_code) == (403, 400)
        assert handshake.status_code == 200
        assert handshake.headers["Validation-Token"] == "random"
        assert len(handshake.content) == 0
        assert good.status_code == 200 and envelope == {"uuid": "2"}
        assert hook.stats.rejected == 2
        with pytest.raises(StopAsyncIteration):
            await anext(hook)


async def test_notifications_of_a_real_sip_call(platform: RunningServer) -> None:
    agent_id = platform.extension("108")["extension_id"]
    agent_ua = await register(platform, platform.extension("108")["devices"][0])
    customer_ua = UserAgent(username=CUSTOMER)
    await customer_ua.start()
    try:
        async with (
            await platform_client(platform, "101") as rest,
            WebSocketSubscription(rest, [agent_filter(agent_id)]) as sub,
        ):
            call = await customer_ua.call(
                f"sip:108@{SIP_DOMAIN}", Address("UDP", "127.0.0.1", platform.ports.sip)
            )
            await (await agent_ua.next_call()).confirmed()
            received = await take(sub, 3)
            await call.hangup()
            received += await take(sub, 1)
    finally:
        await customer_ua.close()
        await agent_ua.close()
    assert codes(received) == ["Setup", "Proceeding", "Answered", "Disconnected"]
    assert len({e["body"]["telephonySessionId"] for e in received}) == 1


# -- protocol corners, against an in-memory gateway ---------------------------------------------


class FakeSocket:
    """One in-memory connection; ``None`` in the queue closes it."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.incoming: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[list[Any]] = []
        self.closed = False

    async def send(self, message: str) -> None:
        if self.closed:
            raise OSError("closed")
        frame = json.loads(message)
        self.sent.append(frame)
        self.gateway.answer(self, frame)

    async def recv(self) -> str | bytes:
        item = await self.incoming.get()
        if item is None:
            self.closed = True
            raise OSError("connection reset")
        return item

    async def close(self) -> None:
        self.closed = True

    def push(self, *frames: Any) -> None:
        for frame in frames:
            raw = frame if frame is None or isinstance(frame, str | bytes) else json.dumps(frame)
            self.incoming.put_nowait(raw)


class FakeGateway:
    """Answers like the WSG: ConnectionDetails, subscription replies, heartbeat echoes."""

    def __init__(self) -> None:
        self.sockets: list[FakeSocket] = []
        self.urls: list[str] = []
        self.connected = asyncio.Condition()
        self.echo_heartbeats = True
        self.recovery = "Successful"
        self.create_status = 200
        self.refuse_connects = 0

    async def __call__(self, url: str) -> WsTransport:
        self.urls.append(url)
        if self.refuse_connects:
            self.refuse_connects -= 1
            raise OSError("connection refused")
        socket = FakeSocket(self)
        details: dict[str, Any] = {"recoveryTimeout": 180}
        if "&wsc=" in url:
            details["recoveryState"] = self.recovery
        sequence = len(self.sockets) + 1
        socket.push(
            [
                {
                    "type": "ConnectionDetails",
                    "messageId": "cd",
                    "status": 200,
                    "wsc": {"token": f"tok.{sequence}", "sequence": sequence},
                },
                details,
            ]
        )
        self.sockets.append(socket)
        async with self.connected:
            self.connected.notify_all()
        return socket

    async def wait_for_connections(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT), self.connected:
            await self.connected.wait_for(lambda: len(self.sockets) >= count)

    def answer(self, socket: FakeSocket, frame: list[Any]) -> None:
        meta = frame[0]
        if meta["type"] == "Heartbeat" and self.echo_heartbeats:
            socket.push([{"type": "Heartbeat", "messageId": meta["messageId"], "status": 200}])
        elif meta["type"] == "ClientRequest" and meta["method"] == "DELETE":
            socket.push([{"type": "ClientRequest", "messageId": meta["messageId"], "status": 204}])
        elif meta["type"] == "ClientRequest" and meta["method"] == "POST":
            status, body = (
                self.create_status,
                {"id": f"sub-{len(self.sockets)}", "eventFilters": []},
            )
            if status != 200:
                body = {"errorCode": "SUB-406", "message": "not allowed"}
            socket.push(
                [
                    {
                        "type": "ClientRequest",
                        "messageId": meta["messageId"],
                        "status": status,
                        "headers": {},
                    },
                    body,
                ]
            )


def notification(uuid: str, subscription: str = "sub-1") -> list[Any]:
    return [
        {"type": "ServerNotification", "messageId": uuid, "status": 200},
        {"uuid": uuid, "subscriptionId": subscription, "body": {}},
    ]


@pytest.fixture
async def offline_rest() -> AsyncIterator[RestClient]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/restapi/oauth/token":
            return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
        assert request.url.path == "/restapi/oauth/wstoken"
        return httpx.Response(
            200, json={"uri": "ws://gw.test/ws", "ws_access_token": "w", "expires_in": 60}
        )

    async with RestClient(
        "http://rc.test", "id", "s", transport=httpx.MockTransport(handler)
    ) as rest:
        await rest.login_jwt("jwt")
        yield rest


class TestProtocolCorners:
    async def test_odd_frames_are_counted_not_fatal(self, offline_rest: RestClient) -> None:
        gateway = FakeGateway()
        async with WebSocketSubscription(offline_rest, ["/f"], connector=gateway) as sub:
            odd = [
                "not-json",
                "{}",
                "[]",
                '[{"type":"Nope","messageId":"x"}]',
                b"\x01\x02",
                '[{"type":"ServerNotification"}]',
                "[1, 2]",
                '[{"type":"ClientRequest"}]',
            ]
            gateway.sockets[0].push(
                *odd,
                notification("n-1"),
                notification("n-1"),
                notification("n-old", subscription="sub-0"),
                notification("n-2"),
            )
            received = await take(sub, 2)
        assert [e["uuid"] for e in received] == ["n-1", "n-2"]
        assert sub.stats.frames.odd == len(odd)
        assert (sub.stats.frames.duplicates, sub.stats.stale, sub.stats.connections) == (1, 1, 1)

    async def test_server_heartbeats_are_answered_once(self, offline_rest: RestClient) -> None:
        gateway = FakeGateway()
        async with WebSocketSubscription(offline_rest, ["/f"], connector=gateway) as sub:
            socket = gateway.sockets[0]
            socket.push(
                [{"type": "Heartbeat", "messageId": "srv-1"}],
                [{"type": "Heartbeat", "messageId": "srv-1"}],
                notification("n-1"),
            )
            await take(sub, 1)
        beats = [f[0]["messageId"] for f in socket.sent if f[0]["type"] == "Heartbeat"]
        assert beats == ["srv-1"]

    async def test_silence_after_a_heartbeat_reconnects_with_wsc(
        self, offline_rest: RestClient
    ) -> None:
        gateway = FakeGateway()
        gateway.echo_heartbeats = False
        timing = Timing(heartbeat_interval=0.05, heartbeat_timeout=0.05)
        async with WebSocketSubscription(
            offline_rest, ["/f"], connector=gateway, timing=timing
        ) as sub:
            await gateway.wait_for_connections(2)
            gateway.echo_heartbeats = True
            gateway.sockets[1].push(notification("n-1"))
            await take(sub, 1)
        assert gateway.urls[1].endswith("&wsc=tok.1")
        assert gateway.sockets[0].closed
        assert sub.stats.recoveries == 1

    async def test_failed_attempts_back_off_exponentially(self, offline_rest: RestClient) -> None:
        gateway, slept = FakeGateway(), []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        backoff = Backoff(initial=1, maximum=4, jitter=0)
        async with WebSocketSubscription(
            offline_rest, ["/f"], connector=gateway, backoff=backoff, sleep=sleep
        ):
            gateway.refuse_connects = 4
            gateway.sockets[0].push(None)  # the socket drops
            await gateway.wait_for_connections(2)
        assert slept == [1, 2, 4, 4]

    async def test_a_429_on_wstoken_delays_the_reconnection(self) -> None:
        wstokens: list[int] = []

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/restapi/oauth/token":
                return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
            wstokens.append(1)
            if len(wstokens) == 2:
                body = {"errorCode": "CMN-301", "message": "Request rate exceeded"}
                return httpx.Response(429, json=body, headers={"Retry-After": "7"})
            return httpx.Response(200, json={"uri": "ws://gw", "ws_access_token": "w"})

        gateway, slept = FakeGateway(), []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        transport = httpx.MockTransport(handler)
        once = RetryPolicy(max_attempts=1)
        async with RestClient("http://rc.test", "id", "s", transport=transport, retry=once) as rest:
            await rest.login_jwt("jwt")
            backoff = Backoff(initial=1, jitter=0)
            async with WebSocketSubscription(
                rest, ["/f"], connector=gateway, backoff=backoff, sleep=sleep
            ):
                gateway.sockets[0].push(None)
                await gateway.wait_for_connections(2)
        assert slept == [7]

    async def test_refused_resubscription_ends_the_iteration(
        self, offline_rest: RestClient
    ) -> None:
        gateway = FakeGateway()
        async with WebSocketSubscription(offline_rest, ["/f"], connector=gateway) as sub:
            gateway.recovery, gateway.create_status = "Failed", 403
            gateway.sockets[0].push(notification("n-1"), None)
            assert [e["uuid"] for e in await take(sub, 1)] == ["n-1"]
            with pytest.raises(Forbidden):
                await asyncio.wait_for(anext(sub), TIMEOUT)
        assert sub.stats.resubscriptions == 1

    def test_backoff_jitter_stays_in_bounds(self) -> None:
        backoff = Backoff(initial=1, maximum=8, jitter=0.5)
        assert [backoff.delay(n, 0.5) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
        assert backoff.delay(1, 0.0) == 0.5 and backoff.delay(1, 0.999) < 1.5


class TestFrames:
    @given(st.one_of(st.text(), st.binary()))
    def test_parsing_never_raises(self, data: str | bytes) -> None:
        event, _ = wsg.parse_server_frame(data)
        assert event is not None

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        )
    )
    def test_parsing_any_json_never_raises(self, value: object) -> None:
        wsg.GatewayState().receive(json.dumps(value))

    def test_wsc_keeps_the_highest_sequence_and_resets_on_connection_details(self) -> None:
        state = wsg.GatewayState()
        details = [{"type": "ConnectionDetails", "wsc": {"token": "k.1", "sequence": 1}}, {}]
        state.receive(json.dumps(details))
        for sequence in (3, 2):
            frame = notification(f"n-{sequence}")
            frame[0]["wsc"] = {"token": f"k.{sequence}", "sequence": sequence}
            state.receive(json.dumps(frame))
        assert state.wsc == wsg.Wsc("k.3", 3)
        heartbeat = [{"type": "Heartbeat", "wsc": {"token": "k.4", "sequence": 4}}]
        state.receive(json.dumps(heartbeat))  # wsc may ride on any frame
        assert state.wsc == wsg.Wsc("k.4", 4)
        fresh = [
            {"type": "ConnectionDetails", "wsc": {"token": "new.1", "sequence": 1}},
            {"recoveryState": "Failed", "recoveryErrorCode": "WSG-1001"},
        ]
        event = state.receive(json.dumps(fresh))
        assert isinstance(event, wsg.ConnectionDetails) and not event.recovered
        assert event.recovery_error == "WSG-1001"
        assert state.wsc == wsg.Wsc("new.1", 1)

    def test_error_and_reply_frames(self) -> None:
        error, _ = wsg.parse_server_frame(
            '[{"type":"Error","messageId":"e","status":400},{"errorCode":"WSG-808","message":"m"}]'
        )
        assert error == wsg.GatewayError(
            message_id="e", status=400, error_code="WSG-808", message="m"
        )
        reply, _ = wsg.parse_server_frame('[{"type":"ClientRequest","messageId":"m","status":204}]')
        assert reply == wsg.RequestReply(message_id="m", status=204, headers={}, body=None)

    def test_client_frames(self) -> None:
        assert json.loads(wsg.client_request("m", "DELETE", "/p")) == [
            {"type": "ClientRequest", "messageId": "m", "method": "DELETE", "path": "/p"}
        ]
        assert len(json.loads(wsg.client_request("m", "POST", "/p", {"a": 1}))) == 2
        assert json.loads(wsg.heartbeat("h")) == [{"type": "Heartbeat", "messageId": "h"}]
