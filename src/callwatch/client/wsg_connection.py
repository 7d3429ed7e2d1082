"""One open socket to the WebSocket gateway: handshake, reader, heartbeats, requests.

Theory of operation (ringcentral-api.md §4). A :class:`GatewayConnection` adapts one
:class:`WsTransport` to the sans-I/O :class:`~callwatch.client.wsg.GatewayState`:

- :meth:`GatewayConnection.handshake` reads up to the ConnectionDetails frame (an Error frame
  raises :class:`GatewayRefused`);
- :meth:`GatewayConnection.serve` runs the reader and the heartbeat until the socket is dead:
  notifications go to the one ``deliver`` sink (duplicates are skipped), replies resolve the
  request waiting on their ``messageId``, a server-initiated Heartbeat is echoed once, odd frames
  and Error frames are logged (and counted by the state) — never fatal. Every
  ``heartbeat_interval`` seconds a Heartbeat is sent (the gateway's idle timeout counts client
  frames); if no frame at all arrives within ``heartbeat_timeout`` the socket is declared dead;
- :meth:`GatewayConnection.request` sends a ClientRequest and waits for its reply; a non-2xx
  reply raises the typed :class:`~callwatch.client.api_errors.ApiError` of its status;
- when serving ends, and on :meth:`GatewayConnection.close`, waiting requests fail with
  :class:`ConnectionLost`.

Reconnection, recovery and the subscription itself are the caller's business
(:mod:`callwatch.client.subscriptions`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias

import websockets

from callwatch.client import wsg
from callwatch.client.api_errors import ClientError, ResponseError, api_error
from callwatch.client.wire import JsonObject, JsonValue

__all__ = [
    "ConnectionLost",
    "Connector",
    "GatewayConnection",
    "GatewayRefused",
    "Timing",
    "WsTransport",
    "websockets_connector",
]

logger = logging.getLogger(__name__)

MAX_BEATS: Final = 64
"""Heartbeat ids remembered: ours (so the server's echo is not echoed) and those we echoed."""


class WsTransport(Protocol):
    """A connected WebSocket (``websockets.ClientConnection`` is one)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


Connector: TypeAlias = Callable[[str], Awaitable[WsTransport]]
"""Opens a socket to a URL (tests wrap it to cut connections)."""


async def websockets_connector(url: str) -> WsTransport:
    """Open ``url`` with ``websockets`` (its pings every 20 s; frames up to 4 MiB)."""
    return await websockets.connect(url, max_size=wsg.MAX_FRAME_CHARS, open_timeout=30)


class ConnectionLost(ClientError):
    """The socket closed (or never opened) while a request waited."""


class GatewayRefused(ConnectionLost):
    """The gateway answered with an Error frame instead of ConnectionDetails."""

    def __init__(self, error: wsg.GatewayError) -> None:
        super().__init__(f"gateway refused the connection: {error.error_code} {error.message}")
        self.error_code = error.error_code
        self.status = error.status


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Intervals and timeouts of a connection, in seconds."""

    heartbeat_interval: float = 60.0
    """A Heartbeat is sent this often (RCEX: 60 s)."""
    heartbeat_timeout: float = 15.0
    """No frame this long after a Heartbeat: the socket is dead."""
    request_timeout: float = 30.0
    """Longest wait for ConnectionDetails or for the reply of a request."""
    close_timeout: float = 5.0
    """Longest wait for the reply to the DELETE sent when closing."""


class GatewayConnection:
    """One socket (see the module docstring)."""

    def __init__(
        self,
        transport: WsTransport,
        state: wsg.GatewayState,
        *,
        deliver: Callable[[JsonObject], None],
        timing: Timing,
        message_ids: Callable[[], str],
    ) -> None:
        self._transport = transport
        self._state = state
        self._deliver = deliver
        self._timing = timing
        self._ids = message_ids
        self._pending: dict[str, asyncio.Future[wsg.RequestReply]] = {}
        self._inbound = asyncio.Event()
        self._beats: deque[str] = deque(maxlen=MAX_BEATS)
        self._closed = False

    async def handshake(self) -> wsg.ConnectionDetails:
        """Wait for ConnectionDetails.

        Raises:
            GatewayRefused: an Error frame came instead (after ``WSG-400`` the state forgets
                its wsc token, so the next connection starts a fresh session).
            TimeoutError: nothing within ``request_timeout``.
        """
        async with asyncio.timeout(self._timing.request_timeout):
            while True:
                event = self._state.receive(await self._transport.recv())
                if isinstance(event, wsg.ConnectionDetails):
                    return event
                if isinstance(event, wsg.GatewayError):
                    if event.error_code == "WSG-400":
                        self._state.forget_session()
                    raise GatewayRefused(event)
                logger.info("x before ConnectionDetails: %s", event)

    async def serve(self) -> None:
        """Read and send heartbeats until the socket is dead."""
        reader = asyncio.create_task(self._read())
        beater = asyncio.create_task(self._heartbeat())
        try:
            done, _ = await asyncio.wait({reader, beater}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a bug in either must surface, not pass for a lost socket
        finally:
            for task in (reader, beater):
                task.cancel()
            await asyncio.gather(reader, beater, return_exceptions=True)
            self._fail_pending()

    async def request(
        self, method: str, path: str, body: JsonValue = None, *, timeout: float | None = None
    ) -> JsonValue:
        """A REST request over the socket; the reply's body (None when it has none).

        ``timeout`` defaults to ``request_timeout``.

        Raises:
            ApiError: a non-2xx reply (typed by status).
            ConnectionLost: the socket closed first.
            TimeoutError: no reply within ``request_timeout``.
        """
        if self._closed:
            raise ConnectionLost("the socket is closed")
        message_id = self._ids()
        future: asyncio.Future[wsg.RequestReply] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        try:
            if not await self._send(wsg.client_request(message_id, method, path, body)):
                raise ConnectionLost("the socket closed")
            reply = await asyncio.wait_for(future, timeout or self._timing.request_timeout)
        finally:
            self._pending.pop(message_id, None)
        if not 200 <= reply.status < 300:
            raise api_error(reply.status, reply.body)
        return reply.body

    async def request_object(self, method: str, path: str, body: JsonValue = None) -> JsonObject:
        """:meth:`request` whose reply must be a JSON object."""
        answer = await self.request(method, path, body)
        if not isinstance(answer, dict):
            raise ResponseError(f"{method} {path} over the gateway answered no object")
        return answer

    async def close(self) -> None:
        """Fail waiting requests and close the socket."""
        self._fail_pending()
        try:
            await self._transport.close()
        except (websockets.WebSocketException, OSError) as exc:
            logger.debug("x close: %s", exc)

    def _fail_pending(self) -> None:
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost("the socket closed"))

    async def _read(self) -> None:
        while True:
            try:
                data = await self._transport.recv()
            except (websockets.ConnectionClosed, OSError, EOFError) as exc:
                logger.info("x socket closed: %s", exc)
                return
            self._inbound.set()
            await self._dispatch(self._state.receive(data))

    async def _dispatch(self, event: wsg.WsgEvent) -> None:
        if isinstance(event, wsg.NotificationFrame):
            if not event.duplicate:
                self._deliver(event.envelope)
        elif isinstance(event, wsg.RequestReply):
            future = self._pending.get(event.message_id)
            if future is not None and not future.done():
                future.set_result(event)
        elif isinstance(event, wsg.HeartbeatFrame):
            await self._echo(event.message_id)
        elif isinstance(event, wsg.GatewayError):
            logger.warning("! gateway error %s: %s", event.error_code, event.message)
        elif isinstance(event, wsg.OddFrame):
            logger.info("x odd frame ignored: %s", event.reason)

    async def _echo(self, message_id: str | None) -> None:
        """Answer a server-initiated Heartbeat, once."""
        if message_id is None or message_id in self._beats:
            return
        self._beats.append(message_id)
        await self._send(wsg.heartbeat(message_id))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._timing.heartbeat_interval)
            self._inbound.clear()
            beat = self._ids()
            self._beats.append(beat)
            if not await self._send(wsg.heartbeat(beat)):
                return
            try:
                await asyncio.wait_for(self._inbound.wait(), self._timing.heartbeat_timeout)
            except TimeoutError:
                logger.warning("! silence after a heartbeat: the socket is dead")
                return

    async def _send(self, frame: str) -> bool:
        try:
            await self._transport.send(frame)
        except (websockets.ConnectionClosed, OSError):
            return False
        return True
