"""asyncio adapter for SIP over TCP and TLS: one protocol object per connection.

The connection frames bytes with :class:`~callwatch.sip.framing.StreamFramer`, answers keep-alive
pings, and hands each message to its owner with an :class:`Address` naming the connection. A
framing error closes the connection: the stream cannot be resynchronised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from callwatch.sip.errors import ParseError
from callwatch.sip.events import Address
from callwatch.sip.framing import KEEPALIVE, StreamFramer

_PONG = b"\r\n"


class StreamOwner(Protocol):
    """What a connection reports to (the endpoint)."""

    def datagram(self, data: bytes, source: Address) -> None:
        """One framed message arrived."""
        ...

    def connection_made(self, connection: SipStreamProtocol) -> None:
        """A connection is up and has its id."""
        ...

    def connection_lost(self, connection: SipStreamProtocol) -> None:
        """A connection closed."""
        ...

    def framing_error(self, source: Address, error: ParseError) -> None:
        """The peer sent bytes that cannot be framed; the connection is being closed."""
        ...


class SipStreamProtocol(asyncio.Protocol):
    """One TCP or TLS connection carrying SIP."""

    def __init__(
        self, owner: StreamOwner, transport_name: str, connection_id: int, max_size: int
    ) -> None:
        self._owner = owner
        self.transport_name = transport_name
        self.connection_id = connection_id
        self._framer = StreamFramer(max_size)
        self._transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Address(self.transport_name, host, port, self.connection_id)
        self._owner.connection_made(self)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        try:
            messages = self._framer.feed(data)
        except ParseError as exc:
            self._owner.framing_error(self.peer, exc)
            self.close()
            return
        for message in messages:
            if message is KEEPALIVE:
                self.write(_PONG)
            else:
                self._owner.datagram(message, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.connection_lost(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def write(self, data: bytes) -> bool:
        """Send bytes; False if the connection is already closing."""
        if self._transport is None or self._transport.is_closing():
            return False
        self._transport.write(data)
        return True

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()


ProtocolFactory = Callable[[], SipStreamProtocol]
