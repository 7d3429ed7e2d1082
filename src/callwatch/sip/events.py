"""What the sans-I/O SIP stack tells its user: addresses, outgoing datagrams and frozen events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from callwatch.sip.message import Request, Response


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message came from or must go.

    On stream transports ``connection`` names the connection (chosen by the adapter) so that
    responses, and requests to a device registered over TCP/TLS, reuse it (RFC 5626, RFC 3261
    §18.2.2). ``connection`` is None for UDP, or when any connection to host:port will do.
    """

    transport: str
    """``UDP``, ``TCP``, ``TLS``, ``WS`` or ``WSS``."""
    host: str
    port: int
    connection: int | None = None

    @property
    def reliable(self) -> bool:
        """True on stream transports (no retransmissions, RFC 3261 §17.1.1.2)."""
        return self.transport != "UDP"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Bytes the adapter must send."""

    data: bytes
    destination: Address


class IdSource(Protocol):
    """The random identifiers the stack needs (callwatch.ids.IdGenerator satisfies it)."""

    def branch(self) -> str:
        """A Via branch with the ``z9hG4bK`` magic cookie."""
        ...

    def tag(self) -> str:
        """A From/To tag."""
        ...


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the transaction user.

    ``transaction`` is the server transaction key to answer with ``send_response``; it is None
    for an ACK to a 2xx, which has no transaction (RFC 3261 §17.1.1.3) and is never answered.
    """

    request: Request
    source: Address
    transaction: str | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response to a request sent with ``send_request`` (``transaction`` is its key)."""

    response: Response
    source: Address
    transaction: str


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched the INVITE server transaction ``transaction``; 200 was already sent.

    The transaction user should answer the INVITE with 487 (RFC 3261 §9.2).
    """

    request: Request
    source: Address
    transaction: str


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """A client transaction got no final response in time (Timer B or F), or a server INVITE
    transaction got no ACK (Timer H)."""

    transaction: str
    method: str


@dataclass(frozen=True, slots=True)
class TransportError:
    """The adapter could not deliver to ``destination`` (for example a closed connection)."""

    transaction: str | None
    destination: Address


@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """Bytes that did not parse; a 400 was queued when the request part was readable."""

    source: Address
    reason: str
    status_hint: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """A stream connection (flow) closed; the adapter reports it so bindings over it can go."""

    connection: int
    peer: Address


SipEvent = (
    RequestReceived
    | ResponseReceived
    | CancelReceived
    | TransactionTimedOut
    | TransportError
    | MalformedMessage
    | ConnectionClosed
)
