"""Test helpers for the SIP core: two stacks back to back over an in-memory network.

:class:`StackPair` pipes ``messages_to_send`` of one stack into ``receive`` of the other with an
explicit ``now`` (h11's ConnectionPair, aioquic's ``transfer``), optionally losing datagrams by
a pattern, and records every transmission in ``wire`` for assertions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from callwatch.sip.events import Address, SipEvent
from callwatch.sip.headers import Headers
from callwatch.sip.message import Request, Response, parse_message
from callwatch.sip.stack import SipStack
from callwatch.sip.uri import SipUri

A_HOST, B_HOST = "192.0.2.1", "192.0.2.2"
SIP_PORT = 5060


class CountingIds:
    """A deterministic IdSource: ``z9hG4bK<prefix>-b1``, ``<prefix>-t1`` …"""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._n = 0

    def branch(self) -> str:
        self._n += 1
        return f"z9hG4bK{self._prefix}-b{self._n}"

    def tag(self) -> str:
        self._n += 1
        return f"{self._prefix}-t{self._n}"


@dataclass(frozen=True)
class Wire:
    """One transmission on the fake network."""

    time: float
    sender: str
    data: bytes
    destination: Address
    lost: bool

    @property
    def message(self) -> Request | Response:
        return parse_message(self.data, stream=self.destination.reliable)

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode()


class StackPair:
    """Stacks ``a`` (UAC side at A_HOST) and ``b`` (UAS side at B_HOST) on one transport.

    ``loss`` is consumed one boolean per transmission (True = lost) until exhausted.
    ``a_seen_as`` is A's source address as B sees it (NAT tests); on stream transports both
    sides use connection 1.
    """

    def __init__(
        self,
        transport: str = "UDP",
        *,
        loss: Iterable[bool] = (),
        a_seen_as: Address | None = None,
    ) -> None:
        self.transport = transport
        self.a = SipStack(CountingIds("a"))
        self.b = SipStack(CountingIds("b"))
        self.a.set_local_address(transport, A_HOST, SIP_PORT)
        self.b.set_local_address(transport, B_HOST, SIP_PORT)
        connection = None if transport == "UDP" else 1
        self.a_address = a_seen_as or Address(transport, A_HOST, SIP_PORT, connection)
        self.b_address = Address(transport, B_HOST, SIP_PORT, connection)
        self.now = 0.0
        self.wire: list[Wire] = []
        self.events: dict[str, list[SipEvent]] = {"a": [], "b": []}
        self._loss: Iterator[bool] = iter(loss)

    def stack(self, name: str) -> SipStack:
        return self.a if name == "a" else self.b

    def transfer(self) -> None:
        """Deliver queued messages both ways until both stacks are quiet."""
        moved = True
        while moved:
            moved = False
            for name, peer, source in (
                ("a", self.b, self.a_address),
                ("b", self.a, self.b_address),
            ):
                for out in self.stack(name).messages_to_send(self.now):
                    moved = True
                    lost = next(self._loss, False)
                    self.wire.append(Wire(self.now, name, out.data, out.destination, lost))
                    if not lost:
                        peer.receive(out.data, source, self.now)
        self._drain()

    def inject(self, to: str, data: bytes) -> None:
        """Deliver ``data`` to stack ``to`` as if the other side had sent it, then transfer."""
        source = self.a_address if to == "b" else self.b_address
        self.stack(to).receive(data, source, self.now)
        self.transfer()

    def next_timer(self) -> float | None:
        timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        return min(timers, default=None)

    def advance(self, until: float) -> None:
        """Run both stacks' timers up to ``until``, transferring after each."""
        while (deadline := self.next_timer()) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.transfer()
        self.now = max(self.now, until)

    def take(self, name: str) -> list[SipEvent]:
        """Pop every event stack ``name`` produced so far."""
        events, self.events[name] = self.events[name], []
        return events

    def sent(self, sender: str, prefix: str) -> list[Wire]:
        """Transmissions by ``sender`` whose first line starts with ``prefix``."""
        return [w for w in self.wire if w.sender == sender and w.first_line.startswith(prefix)]

    def _drain(self) -> None:
        for name in ("a", "b"):
            stack = self.stack(name)
            while (event := stack.next_event()) is not None:
                self.events[name].append(event)


def make_request(
    method: str,
    *,
    call_id: str = "call-1@192.0.2.1",
    cseq: int = 1,
    from_tag: str | None = "a-tag",
    to_tag: str | None = None,
    uri: str = "sip:bob@192.0.2.2",
    contact: str | None = "<sip:alice@192.0.2.1:5060>",
    body: bytes = b"",
    extra: Iterable[tuple[str, str]] = (),
) -> Request:
    """An out-of-dialog request from alice to bob, without Via (the stack adds it)."""
    headers = Headers()
    headers.add("From", "Alice <sip:alice@example.com>" + (f";tag={from_tag}" if from_tag else ""))
    headers.add("To", "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        headers.add("Contact", contact)
    for name, value in extra:
        headers.add(name, value)
    return Request(headers=headers, body=body, method=method, uri=SipUri.parse(uri))


def raw_request(method: str = "OPTIONS", *, branch: str = "z9hG4bKraw1", extra: str = "") -> bytes:
    """The bytes of a request from A, with a Via, for injecting."""
    return (
        f"{method} sip:bob@{B_HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {A_HOST}:{SIP_PORT};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=raw\r\n"
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: raw-call\r\n"
        f"CSeq: 7 {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
