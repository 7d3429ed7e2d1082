"""callwatch.events.websocket and wsconnection without sockets: tokens, numbering, recovery,
the outbox, and a connection over an in-memory transport."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from callwatch.clock import FakeClock
from callwatch.events.settings import EventsSettings
from callwatch.events.subscriptions import Owner
from callwatch.events.websocket import FAILED, SUCCESSFUL, WsAuthError, WsGateway, WsSession
from callwatch.events.wsconnection import (
    ConnectionLimits,
    Outbox,
    TransportClosed,
    serve_connection,
)
from callwatch.events.wsframes import ClientRequest, client_reply
from callwatch.ids import IdGenerator

from .calls import notification

OWNER = Owner(
    account_id=1, extension_id=2, client_id="app", scopes=(), session_id="oauth-1", is_admin=False
)


class Gateway:
    """A gateway with a fake clock that records ended sessions."""

    def __init__(self, **settings: object) -> None:
        self.clock = FakeClock()
        self.ended: list[WsSession] = []
        self.settings = EventsSettings(**settings)  # type: ignore[arg-type]
        self.gateway = WsGateway(
            clock=self.clock, ids=IdGenerator(3), settings=self.settings,
            on_session_end=self.ended.append,
        )  # fmt: skip


class FakeSocket:
    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed = False

    def offer(self, frame: str) -> bool:
        self.frames.append(frame)
        return True

    def close(self) -> None:
        self.closed = True


def _subscribed(gateway: WsGateway) -> WsSession:
    session = gateway.connect(OWNER, None).session
    session.subscription_id = "sub"
    return session


class TestTokens:
    def test_single_use(self) -> None:
        g = Gateway()
        token, ttl = g.gateway.issue(OWNER)
        assert ttl == 60 and len(token) == 48
        assert g.gateway.redeem(token) == OWNER
        with pytest.raises(WsAuthError) as caught:
            g.gateway.redeem(token)
        assert caught.value.code == "OAU-129"

    def test_expired_and_missing(self) -> None:
        g = Gateway(ws_token_ttl=5)
        token, _ = g.gateway.issue(OWNER)
        g.clock.advance(5)
        with pytest.raises(WsAuthError, match="expired"):
            g.gateway.redeem(token)
        with pytest.raises(WsAuthError) as caught:
            g.gateway.redeem(None)
        assert caught.value.code == "OAU-123"

    def test_pending_tokens_are_bounded(self) -> None:
        g = Gateway(ws_max_pending_tokens=2, ws_token_ttl=5)
        g.gateway.issue(OWNER)
        g.gateway.issue(OWNER)
        with pytest.raises(Exception, match="pending") as caught:
            g.gateway.issue(OWNER)
        assert getattr(caught.value, "code", None) == "CMN-201"
        g.clock.advance(6)  # expired ones are pruned to make room
        g.gateway.issue(OWNER)


class TestNumbering:
    def test_fresh_session_starts_at_one(self) -> None:
        connected = Gateway().gateway.connect(OWNER, None)
        assert connected.details_sequence == 1
        assert connected.recovery_state is None
        assert connected.session.token(1).endswith(".1")

    def test_notifications_are_numbered_buffered_and_sent(self) -> None:
        session = Gateway().gateway.connect(OWNER, None).session
        socket = FakeSocket()
        session.attach(socket)
        session.deliver(notification({}, uuid="a"))
        session.deliver(notification({}, uuid="b"))
        metas = [json.loads(frame)[0] for frame in socket.frames]
        assert [m["wsc"]["sequence"] for m in metas] == [2, 3]
        assert metas[1]["wsc"]["token"] == session.token(3)
        assert session.replay_after(2) == socket.frames[1:]
        assert session.replay_after(3) == []

    def test_a_second_socket_takes_over(self) -> None:
        session = Gateway().gateway.connect(OWNER, None).session
        first, second = FakeSocket(), FakeSocket()
        session.attach(first)
        session.attach(second)
        assert first.closed
        assert not session.detach(first)
        assert session.detach(second)


class TestRecovery:
    async def test_successful_replays_what_was_missed(self) -> None:
        g = Gateway()
        session = _subscribed(g.gateway)
        socket = FakeSocket()
        session.attach(socket)
        session.deliver(notification({}, uuid="seen"))
        g.gateway.disconnect(session, socket)
        session.deliver(notification({}, uuid="missed-1"))
        session.deliver(notification({}, uuid="missed-2"))
        recovered = g.gateway.connect(OWNER, session.token(2))
        assert recovered.session is session
        assert recovered.recovery_state == SUCCESSFUL
        assert recovered.details_sequence == 2
        uuids = [json.loads(frame)[1]["uuid"] for frame in recovered.replay]
        assert uuids == ["missed-1", "missed-2"]
        assert session.expiry is None
        assert g.ended == []

    @pytest.mark.parametrize("wsc", ["nonsense", "x" * 32, "a" * 31 + ".1", "a" * 32 + ".x"])
    def test_malformed_token(self, wsc: str) -> None:
        with pytest.raises(WsAuthError) as caught:
            Gateway().gateway.connect(OWNER, wsc)
        assert (caught.value.code, caught.value.status) == ("WSG-400", 400)
        assert caught.value.message == "Malformed WebSocket session context token"

    def test_sequence_from_the_future_is_malformed(self) -> None:
        g = Gateway()
        session = _subscribed(g.gateway)
        with pytest.raises(WsAuthError, match="Malformed"):
            g.gateway.connect(OWNER, session.token(99))

    def test_unknown_session_fails_with_a_fresh_one(self) -> None:
        connected = Gateway().gateway.connect(OWNER, "A" * 32 + ".1")
        assert (connected.recovery_state, connected.recovery_error) == (FAILED, "WSG-1001")
        assert connected.details_sequence == 1

    def test_other_oauth_session_fails_and_leaves_it_alone(self) -> None:
        g = Gateway()
        session = _subscribed(g.gateway)
        stranger = replace(OWNER, session_id="oauth-2")
        connected = g.gateway.connect(stranger, session.token(1))
        assert connected.recovery_error == "WSG-1003"
        assert connected.session is not session
        assert g.ended == []

    def test_session_without_subscription_fails(self) -> None:
        g = Gateway()
        session = g.gateway.connect(OWNER, None).session
        connected = g.gateway.connect(OWNER, session.token(1))
        assert connected.recovery_error == "WSG-1005"
        assert g.ended == [session]

    def test_gap_larger_than_the_buffer_fails(self) -> None:
        g = Gateway(ws_recovery_buffer_size=3)
        session = _subscribed(g.gateway)
        for n in range(5):
            session.deliver(notification({}, uuid=str(n)))
        connected = g.gateway.connect(OWNER, session.token(1))
        assert connected.recovery_error == "WSG-1002"
        assert g.ended == [session]
        assert g.gateway.connect(OWNER, session.token(1)).recovery_error == "WSG-1001"

    async def test_window_passes(self) -> None:
        g = Gateway(ws_recovery_timeout=0.05)
        session = _subscribed(g.gateway)
        socket = FakeSocket()
        session.attach(socket)
        g.gateway.disconnect(session, socket)
        assert g.ended == []
        await asyncio.sleep(0.1)
        assert g.ended == [session]
        assert g.gateway.connect(OWNER, session.token(1)).recovery_error == "WSG-1001"

    def test_no_subscription_ends_at_disconnect(self) -> None:
        g = Gateway()
        session = g.gateway.connect(OWNER, None).session
        socket = FakeSocket()
        session.attach(socket)
        g.gateway.disconnect(session, socket)
        assert g.ended == [session]

    def test_sessions_are_bounded(self) -> None:
        g = Gateway(ws_max_sessions=1)
        g.gateway.connect(OWNER, None)
        with pytest.raises(Exception, match="sessions"):
            g.gateway.connect(OWNER, None)


class TestOutbox:
    async def test_order_and_bounds(self) -> None:
        outbox = Outbox("t", max_notifications=2, max_control=1)
        outbox.put_nowait("details")
        assert outbox.offer("n1") and outbox.offer("n2")
        assert not outbox.offer("n3")
        assert outbox.dropped == 1
        waiting = asyncio.create_task(outbox.put("reply"))  # control is full: waits
        await asyncio.sleep(0)
        assert not waiting.done()
        assert await outbox.get() == "details"
        await waiting
        outbox.close()
        assert [await outbox.get() for _ in range(4)] == ["n1", "n2", "reply", None]


class MemoryTransport:
    """A FrameTransport over queues."""

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: asyncio.Queue[str] = asyncio.Queue()
        self.closed_with: int | None = None

    async def receive(self) -> str | bytes:
        data = await self.inbound.get()
        if data is None:
            raise TransportClosed()
        return data

    async def send(self, text: str) -> None:
        await self.sent.put(text)

    async def close(self, code: int) -> None:
        self.closed_with = code

    async def next(self) -> list[object]:
        frame = json.loads(await asyncio.wait_for(self.sent.get(), 2))
        assert isinstance(frame, list)
        return frame


async def _echo(request: ClientRequest) -> str:
    return client_reply(
        message_id=request.message_id, status=200, headers={}, body={"path": request.path}
    )


def _limits(idle: float = 5.0, absolute: float = 5.0) -> ConnectionLimits:
    return ConnectionLimits(idle_timeout=idle, absolute_timeout=absolute, message_ids=lambda: "id")


class TestConnection:
    async def test_serves_requests_heartbeats_and_survives_garbage(self) -> None:
        transport = MemoryTransport()
        outbox = Outbox("t", max_notifications=10, max_control=2)
        serving = asyncio.create_task(
            serve_connection(transport=transport, outbox=outbox, handler=_echo, limits=_limits())
        )
        await transport.inbound.put("garbage")
        assert (await transport.next())[1] == {"errorCode": "WSG-808",
                                               "message": "Message is not valid JSON"}  # fmt: skip
        await transport.inbound.put(b"\x00binary")
        assert (await transport.next())[0]["type"] == "Error"  # type: ignore[index]
        await transport.inbound.put('[{"type":"Heartbeat","messageId":"hb"}]')
        assert (await transport.next())[0]["messageId"] == "hb"  # type: ignore[index]
        request = {"type": "ClientRequest", "messageId": "r", "method": "GET", "path": "/p"}
        await transport.inbound.put(json.dumps([request]))
        assert (await transport.next())[1] == {"path": "/p"}
        await transport.inbound.put(None)  # the peer leaves
        await asyncio.wait_for(serving, 2)

    @pytest.mark.parametrize(
        ("limits", "code"),
        [(_limits(idle=0.05), "WSG-902"), (_limits(absolute=0.05), "WSG-903")],
    )
    async def test_timeouts_are_announced_then_closed(
        self, limits: ConnectionLimits, code: str
    ) -> None:
        transport = MemoryTransport()
        outbox = Outbox("t", max_notifications=10, max_control=2)
        await asyncio.wait_for(
            serve_connection(transport=transport, outbox=outbox, handler=_echo, limits=limits), 2
        )
        frame = await transport.next()
        assert frame[0]["type"] == "Error"  # type: ignore[index]
        assert frame[1]["errorCode"] == code  # type: ignore[index]
        assert transport.closed_with == 1000

    async def test_closing_the_outbox_ends_the_connection(self) -> None:
        transport = MemoryTransport()
        outbox = Outbox("t", max_notifications=10, max_control=2)
        serving = asyncio.create_task(
            serve_connection(transport=transport, outbox=outbox, handler=_echo, limits=_limits())
        )
        outbox.offer("[{}]")
        outbox.close()  # another socket recovered the session
        assert await transport.next() == [{}]
        await transport.inbound.put(None)  # the peer answers our close
        await asyncio.wait_for(serving, 2)
        assert transport.closed_with == 1000
