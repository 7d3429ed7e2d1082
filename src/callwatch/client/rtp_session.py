"""One RTP stream end on a real UDP socket, for test user agents and the call simulator.

Theory of operation
-------------------
:class:`RtpSession` binds one UDP socket (``host``, port 0 unless given) and is told its peer
from SDP with :meth:`RtpSession.set_remote`. It sends RTP with its own SSRC, sequence numbers and
timestamps (random starts, RFC 3550 §5.1) and keeps what comes back:

- datagrams from the expected peer that are valid RTP (after SRTP authentication when keyed)
  go to :attr:`RtpSession.received`, in arrival order (or to a packet handler);
- datagrams from any other source are counted and kept raw in :attr:`RtpSession.unexpected`
  — a relay's latching must never let them through, and tests check that;
- datagrams that arrive before the peer is known (a 200 OK racing its first RTP packet) are held
  and sorted into one list or the other by :meth:`RtpSession.set_remote`; once a re-INVITE
  moves the peer, packets from its old address count as unexpected;
- RTCP, "hello" datagrams and garbage from the peer are counted only.

Pacing uses loop deadlines (``loop.call_at``): packet *i* of a burst is due at
``start + i·ptime``, so a late wake-up never accumulates drift. Unpaced bursts yield to the loop
after every packet so a receiver on the same loop drains its socket as they go.

SRTP (RFC 3711, SDES keys per RFC 4568 §6.1): our key protects what we send, the peer's key
unprotects what it sends; the one suite is ``AES_CM_128_HMAC_SHA1_80``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from callwatch.media.rtp import RtpError, RtpHeader, RtpPacket, is_rtcp
from callwatch.media.srtp import SrtpContext, SrtpDirection

__all__ = ["ReceivedRtp", "RtpCounters", "RtpSession", "UnexpectedDatagram"]

Peer = tuple[str, int]
_T = TypeVar("_T")

RECEIVE_BUFFER = 1 << 20
"""SO_RCVBUF asked for (bytes): unpaced bursts must not overflow the default ~208 KiB."""
MAX_KEPT = 100_000
"""Most packets kept in each of ``received`` and ``unexpected``; more are only counted."""
MAX_EARLY = 1_000
"""Most datagrams held while the peer is unknown."""


@dataclass(frozen=True, slots=True)
class ReceivedRtp:
    """One valid RTP packet from the expected peer."""

    header: RtpHeader
    """Payload type, sequence number, timestamp, SSRC, marker."""
    payload: bytes
    """The payload, decrypted when SRTP is on, padding removed."""
    arrival: float
    """Loop time (``loop.time()``) the datagram was read."""


@dataclass(frozen=True, slots=True)
class UnexpectedDatagram:
    """A datagram from a source other than the expected peer, kept as received."""

    data: bytes
    source: Peer
    arrival: float


@dataclass(slots=True)
class RtpCounters:
    """What the session sent and what it did with every datagram it read."""

    sent: int = 0
    """RTP packets sent."""
    sent_bytes: int = 0
    """Bytes sent, SRTP trailer included."""
    datagrams: int = 0
    """Datagrams read, whatever they were."""
    received: int = 0
    """Valid RTP packets from the expected peer."""
    unexpected: int = 0
    """Datagrams from another source than the expected peer."""
    rtcp: int = 0
    """RTCP (or SRTCP) packets from the peer; not interpreted."""
    non_rtp: int = 0
    """Other datagrams from the peer (keep-alives, hellos, garbage)."""
    srtp_failures: int = 0
    """Packets from the peer that failed SRTP authentication or replay checks."""
    dropped: int = 0
    """Packets counted but not kept because a list was full."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self._session = session

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._session.datagram_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (port unreachable while the peer is not bound yet) are expected here."""


class RtpSession:
    """A UDP socket sending and receiving one RTP stream (see the module docstring).

    Build with ``await RtpSession.open(host)``. ``ssrc`` is random unless given.
    """

    def __init__(self, *, ssrc: int | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self.local: Peer = ("", 0)
        """Our bound (host, port)."""
        self.remote: Peer | None = None
        """Where we send, and the only source whose RTP is accepted."""
        self.ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._tx: SrtpContext | None = None
        self._rx: SrtpContext | None = None
        self.received: list[ReceivedRtp] = []
        """Valid RTP from the expected peer, in arrival order."""
        self.unexpected: list[UnexpectedDatagram] = []
        """Datagrams from other sources, in arrival order."""
        self._early: list[UnexpectedDatagram] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._on_packet: Callable[[ReceivedRtp], None] | None = None
        self.counters = RtpCounters()

    @classmethod
    async def open(
        cls, host: str = "127.0.0.1", port: int = 0, *, ssrc: int | None = None
    ) -> RtpSession:
        """Bind a new session's socket on ``host``:``port`` (0 lets the OS choose)."""
        session = cls(ssrc=ssrc)
        await session._bind(host, port)
        return session

    async def _bind(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport
        name = transport.get_extra_info("sockname")
        self.local = (str(name[0]), int(name[1]))

    @property
    def port(self) -> int:
        """Our bound port."""
        return self.local[1]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._transport is None

    @property
    def payloads(self) -> list[bytes]:
        """Payloads of :attr:`received`, in arrival order."""
        return [packet.payload for packet in self.received]

    # -- configuration --------------------------------------------------------------------------

    def set_remote(self, host: str, port: int) -> None:
        """Send to ``host``:``port`` and accept RTP only from there; sort held datagrams."""
        self.remote = (host, port)
        early, self._early = self._early, []
        for datagram in early:
            self._classify(datagram.data, datagram.source, datagram.arrival)

    def set_srtp(self, *, send_key: bytes | None, receive_key: bytes | None) -> None:
        """Protect what we send with ``send_key`` and unprotect what the peer sends with
        ``receive_key`` (30-byte master key||salt each); None turns that direction to RTP.

        Raises:
            SrtpError: a key is not 30 bytes.
        """
        self._tx = None if send_key is None else SrtpContext(send_key, SrtpDirection.OUTBOUND)
        self._rx = None if receive_key is None else SrtpContext(receive_key, SrtpDirection.INBOUND)

    def set_packet_handler(self, handler: Callable[[ReceivedRtp], None] | None) -> None:
        """Hand each valid RTP packet from the peer to ``handler`` (quick, never blocking) as
        it is read instead of keeping it in :attr:`received`; kept ones are handed over first."""
        self._on_packet = handler
        if handler is not None:
            kept, self.received = self.received, []
            for packet in kept:
                handler(packet)

    # -- sending --------------------------------------------------------------------------------

    def send_packet(
        self, payload: bytes, *, payload_type: int, clock_step: int, marker: bool = False
    ) -> None:
        """Send one RTP packet with the next sequence number, then advance the timestamp by
        ``clock_step``.

        Raises:
            RuntimeError: no remote address yet, or the session is closed.
        """
        transport, remote = self._require_open()
        header = RtpHeader(payload_type, self._seq, self._timestamp, self.ssrc, marker)
        data = RtpPacket(header, payload).serialize()
        if self._tx is not None:
            protected = self._tx.protect(data)
            if protected is None:
                raise RuntimeError(f"SRTP protect failed: {self._tx.last_error}")
            data = protected
        transport.sendto(data, remote)
        self._seq = (self._seq + 1) & 0xFFFF
        self._timestamp = (self._timestamp + clock_step) & 0xFFFFFFFF
        self.counters.sent += 1
        self.counters.sent_bytes += len(data)

    async def send_payloads(
        self,
        payloads: Sequence[bytes],
        *,
        payload_type: int,
        clock_step: int,
        ptime: float = 0.02,
        paced: bool = True,
    ) -> None:
        """Send ``payloads`` as one talkspurt (marker on the first packet).

        Args:
            payloads: one RTP payload per packet, in order.
            payload_type: the negotiated payload type.
            clock_step: timestamp increment per packet (160 for 20 ms of PCMU).
            ptime: packet interval in seconds when ``paced``.
            paced: True sends packet *i* at ``start + i·ptime`` on the loop clock; False sends
                one packet per loop iteration.
        """
        if not paced:
            for index, payload in enumerate(payloads):
                self.send_packet(
                    payload, payload_type=payload_type, clock_step=clock_step, marker=index == 0
                )
                await asyncio.sleep(0)  # one packet per loop turn: lets receivers drain
            return
        pacer = _Pacer(
            self, payloads, payload_type=payload_type, clock_step=clock_step, ptime=ptime
        )
        await pacer.run()

    def hello(self, data: bytes = b"\x00hello") -> None:
        """Send a non-RTP datagram to the peer (some softphones open NAT pinholes so)."""
        transport, remote = self._require_open()
        transport.sendto(data, remote)

    def send_raw(self, data: bytes, to: Peer | None = None) -> None:
        """Send ``data`` as is to ``to`` (default: the peer)."""
        transport, remote = self._require_open()
        transport.sendto(data, to or remote)

    def _require_open(self) -> tuple[asyncio.DatagramTransport, Peer]:
        if self._transport is None:
            raise RuntimeError("RTP session is closed")
        if self.remote is None:
            raise RuntimeError("RTP session has no remote address yet")
        return self._transport, self.remote

    # -- receiving ------------------------------------------------------------------------------

    async def wait_received(self, count: int) -> None:
        """Return once :attr:`received` holds at least ``count`` packets (wrap in a timeout)."""
        await self.wait_until(lambda: len(self.received) >= count)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds; it is checked after every datagram read."""
        if condition():
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((condition, future))
        try:
            await future
        finally:
            self._waiters = [(c, f) for c, f in self._waiters if f is not future]

    def datagram_received(self, data: bytes, source: Peer) -> None:
        """Sort one datagram (called by the socket protocol)."""
        arrival = self._loop.time()
        self.counters.datagrams += 1
        if self.remote is None:
            if len(self._early) < MAX_EARLY:
                self._early.append(UnexpectedDatagram(data, source, arrival))
            else:
                self.counters.dropped += 1
        else:
            self._classify(data, source, arrival)
        if self._waiters:
            self._wake()

    def _classify(self, data: bytes, source: Peer, arrival: float) -> None:
        if source != self.remote:
            self.counters.unexpected += 1
            self._keep(self.unexpected, UnexpectedDatagram(data, source, arrival))
            return
        if is_rtcp(data):
            self.counters.rtcp += 1
            return
        packet = self._parse(data)
        if packet is None:
            return
        self.counters.received += 1
        received = ReceivedRtp(packet.header, packet.payload, arrival)
        if self._on_packet is not None:
            self._on_packet(received)
        else:
            self._keep(self.received, received)

    def _parse(self, data: bytes) -> RtpPacket | None:
        if len(data) < 12 or data[0] >> 6 != 2:
            self.counters.non_rtp += 1
            return None
        if self._rx is not None:
            plain = self._rx.unprotect(data)
            if plain is None:
                self.counters.srtp_failures += 1
                return None
            data = plain
        try:
            return RtpPacket.parse(data)
        except RtpError:
            self.counters.non_rtp += 1
            return None

    def _keep(self, into: list[_T], item: _T) -> None:
        if len(into) >= MAX_KEPT:
            self.counters.dropped += 1
            return
        into.append(item)

    def _wake(self) -> None:
        for condition, future in self._waiters:
            if not future.done() and condition():
                future.set_result(None)

    def close(self) -> None:
        """Close the socket; what was received stays readable."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class _Pacer:
    """Sends a burst on ``loop.call_at`` deadlines computed from the burst's start."""

    def __init__(
        self,
        session: RtpSession,
        payloads: Sequence[bytes],
        *,
        payload_type: int,
        clock_step: int,
        ptime: float,
    ) -> None:
        self._session = session
        self._payloads = payloads
        self._pt = payload_type
        self._step = clock_step
        self._ptime = ptime
        self._index = 0
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._handle: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        """Send every payload, packet *i* at ``start + i·ptime``; cancelling stops the burst."""
        if not self._payloads:
            return
        self._start = self._loop.time()
        self._tick()
        try:
            await self._done
        finally:
            if self._handle is not None:
                self._handle.cancel()

    def _tick(self) -> None:
        self._handle = None
        try:
            self._session.send_packet(
                self._payloads[self._index],
                payload_type=self._pt,
                clock_step=self._step,
                marker=self._index == 0,
            )
        except RuntimeError as exc:  # closed under us: end the burst with the error
            if not self._done.done():
                self._done.set_exception(exc)
            return
        self._index += 1
        if self._index >= len(self._payloads):
            if not self._done.done():
                self._done.set_result(None)
            return
        due = self._start + self._index * self._ptime
        self._handle = self._loop.call_at(due, self._tick)
