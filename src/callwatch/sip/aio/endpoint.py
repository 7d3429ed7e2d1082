"""The asyncio shell around :class:`~callwatch.sip.stack.SipStack`: aioquic's transmit loop.

Bytes from any listener go into ``stack.receive``; events are drained to one handler (the pbx);
whatever the stack wants sent is written to the right socket or connection; one timer is armed
for the stack's earliest deadline. The handler may call the send verbs re-entrantly: sends are
flushed after every batch of events. There are no protocol decisions here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from callwatch.sip.aio.stream import SipStreamProtocol
from callwatch.sip.errors import ParseError
from callwatch.sip.events import Address, ConnectionClosed, MalformedMessage, SipEvent
from callwatch.sip.message import Request, Response
from callwatch.sip.stack import SipStack

logger = logging.getLogger(__name__)

Handler = Callable[[SipEvent], None]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._endpoint.datagram(data, Address("UDP", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.debug("! UDP error: %s", exc)


class SipEndpoint:
    """Listeners, connections and the stack, wired together on one event loop."""

    def __init__(
        self,
        stack: SipStack,
        handler: Handler,
        *,
        max_message_size: int = 65535,
        tls_client: ssl.SSLContext | None = None,
    ) -> None:
        self.stack = stack
        self._handler = handler
        self._max_size = max_message_size
        self._tls_client = tls_client
        self._loop = asyncio.get_running_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: dict[int, SipStreamProtocol] = {}
        self._by_peer: dict[tuple[str, str, int], int] = {}
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._processing = False

    # -- listeners ---------------------------------------------------------------------------

    async def listen_udp(self, host: str, port: int) -> int:
        """Bind the UDP listener; return its port."""
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port)
        )
        self._udp = transport
        bound = int(transport.get_extra_info("sockname")[1])
        self.stack.set_local_address("UDP", host, bound)
        return bound

    def close_udp(self) -> None:
        """Close the UDP listener (to bind another port)."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def listen_stream(
        self, transport_name: str, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> int:
        """Bind a TCP (or, with ``tls``, TLS) listener; return its port."""
        server = await self._loop.create_server(
            lambda: self._new_protocol(transport_name), host, port, ssl=tls
        )
        self._servers.append(server)
        bound = int(server.sockets[0].getsockname()[1])
        self.stack.set_local_address(transport_name, host, bound)
        return bound

    async def close(self) -> None:
        """Close every listener and connection and cancel pending work."""
        if self._timer is not None:
            self._timer.cancel()
        for server in self._servers:
            server.close()
        for conn in list(self._connections.values()):
            conn.close()
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    # -- verbs for the transaction user ---------------------------------------------------------

    def send_request(self, request: Request, destination: Address) -> str:
        """Start a client transaction; return its key."""
        key = self.stack.send_request(request, destination, self._loop.time())
        self._flush()
        return key

    def send_response(self, transaction: str, response: Response) -> None:
        """Answer a server transaction."""
        self.stack.send_response(transaction, response, self._loop.time())
        self._flush()

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send without a transaction (ACK to 2xx, answers to malformed requests)."""
        self.stack.send_stateless(message, destination)
        self._flush()

    def cancel(self, transaction: str) -> str | None:
        """CANCEL a pending INVITE client transaction."""
        key = self.stack.cancel(transaction, self._loop.time())
        self._flush()
        return key

    def connection_for(self, address: Address) -> bool:
        """True if ``address`` names a stream connection that is still open."""
        return address.connection is not None and address.connection in self._connections

    # -- input from transports ------------------------------------------------------------------

    def datagram(self, data: bytes, source: Address) -> None:
        """One datagram or framed message arrived."""
        self.stack.receive(data, source, self._loop.time())
        self._process()

    def connection_made(self, connection: SipStreamProtocol) -> None:
        assert connection.peer is not None
        self._connections[connection.connection_id] = connection
        peer = connection.peer
        self._by_peer[(peer.transport, peer.host, peer.port)] = connection.connection_id

    def connection_lost(self, connection: SipStreamProtocol) -> None:
        self._connections.pop(connection.connection_id, None)
        if connection.peer is None:
            return
        peer = connection.peer
        self._by_peer.pop((peer.transport, peer.host, peer.port), None)
        self._handler(ConnectionClosed(connection.connection_id, peer))
        self.stack.connection_failed(peer, self._loop.time())
        self._process()

    def framing_error(self, source: Address, error: ParseError) -> None:
        self._handler(MalformedMessage(source, str(error), error.status_hint))

    def _new_protocol(self, transport_name: str) -> SipStreamProtocol:
        return SipStreamProtocol(self, transport_name, next(self._ids), self._max_size)

    # -- the transmit loop ------------------------------------------------------------------------

    def _process(self) -> None:
        if self._processing:
            return
        self._processing = True
        try:
            while (event := self.stack.next_event()) is not None:
                self._handler(event)
                self._transmit()
        finally:
            self._processing = False
        self._flush()

    def _flush(self) -> None:
        if not self._processing:
            self._transmit()
            self._arm_timer()

    def _transmit(self) -> None:
        for out in self.stack.messages_to_send(self._loop.time()):
            dest = out.destination
            if dest.transport == "UDP":
                if self._udp is not None:
                    self._udp.sendto(out.data, (dest.host, dest.port))
                continue
            conn_id = dest.connection
            if conn_id is None or conn_id not in self._connections:
                conn_id = self._by_peer.get((dest.transport, dest.host, dest.port))
            if conn_id is not None and self._connections[conn_id].write(out.data):
                continue
            if dest.connection is not None:
                self.stack.connection_failed(dest, self._loop.time())
                self._loop.call_soon(self._process)  # deliver its TransportError events
            else:
                self._spawn(self._connect_and_send(dest, out.data))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(self, dest: Address, data: bytes) -> None:
        tls = self._tls_client if dest.transport == "TLS" else None
        if dest.transport == "TLS" and tls is None:
            tls = ssl.create_default_context()
        try:
            _, protocol = await self._loop.create_connection(
                lambda: self._new_protocol(dest.transport), dest.host, dest.port, ssl=tls
            )
        except OSError as exc:
            logger.info("! connect to %s:%s failed: %s", dest.host, dest.port, exc)
            self.stack.connection_failed(dest, self._loop.time())
            self._process()
            return
        protocol.write(data)

    def _arm_timer(self) -> None:
        when = self.stack.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.stack.handle_timer(self._loop.time())
        self._process()
