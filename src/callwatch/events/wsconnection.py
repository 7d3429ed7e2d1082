"""One WebSocket gateway connection: reader, writer, idle and absolute timeouts.

Theory of operation. :func:`serve_connection` runs a connection over any
:class:`FrameTransport` (the Starlette adapter lives in the API). Two tasks in one TaskGroup:

- the reader waits for a client frame at most ``idle_timeout`` seconds, parses it
  (:mod:`callwatch.events.wsframes`) and queues the answer: the Heartbeat echo, the reply the
  request handler builds for a ClientRequest (requests are handled one at a time), or an Error
  frame WSG-808 for a malformed frame — the connection keeps serving after any of them;
- the writer sends the :class:`Outbox` in order, then closes the socket.

Everything the server sends goes through the one FIFO :class:`Outbox`, so a reply queued
before a subscription starts delivering is always sent before its first notification. Replies
and control frames are never dropped; at most ``max_control`` wait, and a reader that would
exceed that waits for the writer (a client that floods without reading stalls only itself).
Notification frames are dropped and counted when ``max_notifications`` are waiting — the
session's recovery buffer still holds them.

Timeouts: no inbound frame for ``idle_timeout`` → Error frame WSG-902, close; connection older
than ``absolute_timeout`` → Error frame WSG-903, close (both as RingCentral announces them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from callwatch.events import wsframes
from callwatch.events.wsframes import ClientRequest, FrameError, Heartbeat

logger = logging.getLogger(__name__)

NORMAL_CLOSURE: Final = 1000
IDLE_TIMEOUT: Final = "WSG-902"
ABSOLUTE_TIMEOUT: Final = "WSG-903"

RequestHandler = Callable[[ClientRequest], Awaitable[str]]
"""Builds the reply frame of a ClientRequest; must not raise."""


class TransportClosed(Exception):
    """The peer is gone."""


class FrameTransport(Protocol):
    """A WebSocket as the connection sees it."""

    async def receive(self) -> str | bytes:
        """The next data frame. Raises :class:`TransportClosed` when the peer left."""
        ...

    async def send(self, text: str) -> None:
        """Send a text frame. Raises :class:`TransportClosed` when the peer left."""
        ...

    async def close(self, code: int) -> None:
        """Close the socket (no-op if already closed)."""
        ...


class Outbox:
    """The ordered, bounded queue of frames to send on one socket."""

    def __init__(self, name: str, *, max_notifications: int, max_control: int) -> None:
        self.name = name
        self._items: deque[tuple[bool, str]] = deque()
        self._notifications = 0
        self._control = 0
        self._max_notifications = max_notifications
        self._max_control = max_control
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self.dropped = 0
        """Notification frames dropped because the queue was full."""

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, frame: str) -> bool:
        """Queue a notification frame; drop and count it if the queue is full or closed."""
        if self._closed or self._notifications >= self._max_notifications:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "x %s: outbox full, %d notifications dropped", self.name, self.dropped
                )
            return False
        self._push(False, frame)
        return True

    def put_nowait(self, frame: str) -> None:
        """Queue a control frame regardless of the bound (the first frames of a connection)."""
        if not self._closed:
            self._push(True, frame)

    async def put(self, frame: str) -> None:
        """Queue a control frame, waiting while ``max_control`` are waiting already."""
        while not self._closed and self._control >= self._max_control:
            self._room.clear()
            await self._room.wait()
        self.put_nowait(frame)

    async def get(self) -> str | None:
        """The next frame to send; None once closed and drained."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        control, frame = self._items.popleft()
        if control:
            self._control -= 1
            self._room.set()
        else:
            self._notifications -= 1
        return frame

    def close(self) -> None:
        """Accept nothing more; what is queued is still sent."""
        self._closed = True
        self._ready.set()
        self._room.set()

    def _push(self, control: bool, frame: str) -> None:
        self._items.append((control, frame))
        if control:
            self._control += 1
        else:
            self._notifications += 1
        self._ready.set()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    idle_timeout: float
    absolute_timeout: float
    message_ids: Callable[[], str]
    """Makes the messageId of frames the server originates (timeout announcements)."""


class _IdleTimeout(Exception):
    pass


async def serve_connection(
    *,
    transport: FrameTransport,
    outbox: Outbox,
    handler: RequestHandler,
    limits: ConnectionLimits,
) -> None:
    """Serve one connection until the peer leaves, a timeout fires or the outbox is closed."""
    async with asyncio.TaskGroup() as group:
        group.create_task(_write(transport, outbox), name=f"{outbox.name}:writer")
        try:
            async with asyncio.timeout(limits.absolute_timeout):
                await _read(transport, outbox, handler, limits)
        except TimeoutError:
            _announce(
                outbox, limits, ABSOLUTE_TIMEOUT, "Absolute timeout of the connection expired"
            )
        except _IdleTimeout:
            _announce(outbox, limits, IDLE_TIMEOUT, "Idle timeout of the connection expired")
        except TransportClosed:
            pass
        finally:
            outbox.close()


async def _read(
    transport: FrameTransport, outbox: Outbox, handler: RequestHandler, limits: ConnectionLimits
) -> None:
    while not outbox.closed:
        try:
            async with asyncio.timeout(limits.idle_timeout):
                data = await transport.receive()
        except TimeoutError:
            raise _IdleTimeout() from None
        await outbox.put(await _answer(data, handler, limits))


async def _answer(data: str | bytes, handler: RequestHandler, limits: ConnectionLimits) -> str:
    if isinstance(data, bytes):
        return _malformed(FrameError("Binary frames are not supported"), limits)
    try:
        frame = wsframes.parse_client_frame(data)
    except FrameError as exc:
        return _malformed(exc, limits)
    if isinstance(frame, Heartbeat):
        return wsframes.heartbeat(frame.message_id)
    return await handler(frame)


def _malformed(exc: FrameError, limits: ConnectionLimits) -> str:
    message_id = exc.message_id or limits.message_ids()
    return wsframes.error(
        message_id=message_id, status=400, code=wsframes.MALFORMED, message=exc.message
    )


def _announce(outbox: Outbox, limits: ConnectionLimits, code: str, message: str) -> None:
    frame = wsframes.error(message_id=limits.message_ids(), status=408, code=code, message=message)
    outbox.put_nowait(frame)


async def _write(transport: FrameTransport, outbox: Outbox) -> None:
    try:
        while (frame := await outbox.get()) is not None:
            await transport.send(frame)
    except TransportClosed:
        outbox.close()
        return
    with contextlib.suppress(TransportClosed):
        await transport.close(NORMAL_CLOSURE)
