"""One leg's media endpoint on the relay: latching, the per-packet path, and fork output.

See :mod:`callwatch.media.relay` for the theory of operation (latching rules, hot path, forks);
this module holds the per-packet code, :class:`Stream`, and :class:`Fork`, the re-stamping
sender a supervisor's stream uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from callwatch.media.restamp import Restamper
from callwatch.media.rtcp import RtcpPacket, RtcpReceiverReport, RtcpSenderReport, parse_rtcp
from callwatch.media.rtp import SEQ_TS_SSRC, RtpError, RtpHeader, RtpPacket, is_rtcp, is_rtp
from callwatch.media.srtp import SrtpContext
from callwatch.media.stats import ReceiveStats, StreamStats

if TYPE_CHECKING:
    from callwatch.media.mixfork import MixFork

__all__ = ["Address", "Feed", "Fork", "SendTo", "Stream"]

Address = tuple[str, int]
"""A UDP address as the socket layer gives it: ``(host, port)``."""
SendTo = Callable[[bytes | bytearray, Address], object]
"""A socket's ``sendto``: sends one datagram from the stream's local port."""

_unpack_seq_ts_ssrc = SEQ_TS_SSRC.unpack_from


class Feed(Protocol):
    """What a stream hands each packet it receives to, after the call's own media: a zero-copy
    :class:`Fork` or a mix fork's input (:class:`~callwatch.media.mixfork.MixInput`)."""

    @property
    def target(self) -> Stream:
        """The stream the fed packets end up leaving from."""
        ...

    def forward(self, data: bytes, now: float) -> None:
        """Take one plain RTP packet received at ``now``; must never raise."""
        ...


class Fork:
    """The output side of a supervisor fork: re-stamps what it is fed and sends it out of
    its target stream as one continuous RTP stream (own SSRC, sequence +1 per packet, timestamp
    continuous across source changes — :class:`~callwatch.media.restamp.Restamper`).

    A fork belongs to its target, so moving it from one party's stream to another keeps the
    supervisor's stream continuous. It is fed either zero-copy by one :attr:`source`, or by a
    :attr:`mix` (a transcoding or mixing fork) that shares its :attr:`restamper`.
    """

    __slots__ = ("_rewrite", "clock_rate", "mix", "restamper", "source", "target")

    def __init__(self, target: Stream, rng: random.Random) -> None:
        self.target = target
        """The stream the re-stamped packets are sent out of."""
        self.source: Stream | None = None
        """The stream currently feeding this fork zero-copy."""
        self.mix: MixFork | None = None
        """The mix fork currently sending out of the target."""
        self.clock_rate = target.clock_rate
        """RTP clock of the output (the restamper's)."""
        self.restamper = _restamper(rng, self.clock_rate)
        """Owns the output SSRC, sequence and timestamp."""
        self._rewrite = self.restamper.rewrite

    @property
    def fed(self) -> bool:
        """Whether anything sends out of the target: a source, or a mix that has sources."""
        return self.source is not None or (self.mix is not None and bool(self.mix.inputs))

    def reclock(self, clock_rate: int, rng: random.Random) -> None:
        """Take a new output identity when the output's RTP clock changes (another codec)."""
        if clock_rate != self.clock_rate:
            self.clock_rate = clock_rate
            self.restamper = _restamper(rng, clock_rate)
            self._rewrite = self.restamper.rewrite

    def forward(self, data: bytes, now: float) -> None:
        """Send a re-stamped copy of the plain RTP packet ``data`` to the target's remote."""
        # One bytearray copy, rewritten in place (one unpack + one pack_into), is the cheapest
        # way to change 10 header bytes in Python; the original bytes still go to the call.
        buf = bytearray(data)
        self._rewrite(buf, now)
        self.target.send_rtp(buf)


def _restamper(rng: random.Random, clock_rate: int) -> Restamper:
    return Restamper(
        rng.getrandbits(32),
        first_sequence=rng.getrandbits(16),
        first_timestamp=rng.getrandbits(32),
        clock_rate=clock_rate,
    )


class Stream:
    """One leg's media endpoint on the relay (rules in :mod:`callwatch.media.relay`)."""

    __slots__ = (
        "_feeds",
        "_fork",
        "_hint",
        "_latched",
        "_mux",
        "_peer",
        "_rtcp_dest",
        "_rtcp_hint",
        "_rtcp_latched",
        "_rtcp_send",
        "_rtp_dest",
        "_rtp_send",
        "_rx",
        "_srtp_in",
        "_srtp_out",
        "bytes_in",
        "bytes_out",
        "clock_rate",
        "created_at",
        "far_end_jitter",
        "far_end_lost",
        "garbage",
        "label",
        "last_rx",
        "packets_in",
        "packets_out",
        "port",
        "rtcp_packets_in",
        "rtcp_packets_out",
        "send_errors",
        "srtp_failures",
        "strangers",
        "stream_id",
        "unroutable",
    )

    def __init__(
        self,
        stream_id: int,
        *,
        port: int,
        rtp_send: SendTo,
        rtcp_send: SendTo | None,
        srtp_in: SrtpContext | None,
        srtp_out: SrtpContext | None,
        clock_rate: int,
        now: float,
        label: str,
    ) -> None:
        self.stream_id = stream_id
        self.port = port
        self.label = label
        self.clock_rate = clock_rate
        self.created_at = now
        self._rtp_send = rtp_send
        self._mux = rtcp_send is None
        self._rtcp_send = rtp_send if rtcp_send is None else rtcp_send
        self._srtp_in = srtp_in
        self._srtp_out = srtp_out
        self._rx = ReceiveStats(clock_rate)
        self._peer: Stream | None = None
        self._feeds: tuple[Feed, ...] = ()  # forks and mixes fed with what this receives
        self._fork: Fork | None = None  # the fork sending out of this stream, if a target
        self._hint: Address | None = None
        self._rtcp_hint: Address | None = None
        self._latched: Address | None = None
        self._rtcp_latched: Address | None = None
        self._rtp_dest: Address | None = None
        self._rtcp_dest: Address | None = None
        self.last_rx: float | None = None
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        self.rtcp_packets_in = self.rtcp_packets_out = 0
        self.garbage = self.strangers = self.srtp_failures = 0
        self.unroutable = self.send_errors = 0
        self.far_end_lost: int | None = None
        self.far_end_jitter: int | None = None

    # -- control (slow path) ------------------------------------------------------------------

    @property
    def rtcp_mux(self) -> bool:
        """Whether RTCP shares the RTP port (RFC 5761)."""
        return self._mux

    @property
    def latched(self) -> Address | None:
        """The RTP source address this stream accepts, once learned."""
        return self._latched

    @property
    def peer(self) -> Stream | None:
        """The stream this one is bridged to."""
        return self._peer

    def set_remote(self, remote: Address | None, remote_rtcp: Address | None = None) -> None:
        """Set the SDP address hint (and RTCP's, default port + 1); a change resets latching."""
        if remote is not None and remote_rtcp is None and not self._mux:
            remote_rtcp = (remote[0], remote[1] + 1)
        if remote != self._hint or remote_rtcp != self._rtcp_hint:
            self._latched = self._rtcp_latched = None
        self._hint = remote
        self._rtcp_hint = remote if self._mux else remote_rtcp
        self._rtp_dest = self._latched or self._hint
        self._rtcp_dest = self._rtcp_latched or self._rtcp_hint

    def set_srtp(self, srtp_in: SrtpContext | None, srtp_out: SrtpContext | None) -> None:
        """Replace the SRTP contexts (a re-INVITE with new keys, or SRTP switched on/off)."""
        self._srtp_in = srtp_in
        self._srtp_out = srtp_out

    def snapshot(self) -> StreamStats:
        """A copy of the counters."""
        rx = self._rx
        return StreamStats(
            stream_id=self.stream_id, label=self.label, local_port=self.port,
            latched=self._latched, rtcp_latched=self._rtcp_latched,
            packets_in=self.packets_in, bytes_in=self.bytes_in,
            packets_out=self.packets_out, bytes_out=self.bytes_out,
            rtcp_packets_in=self.rtcp_packets_in, rtcp_packets_out=self.rtcp_packets_out,
            garbage=self.garbage, strangers=self.strangers, srtp_failures=self.srtp_failures,
            unroutable=self.unroutable, send_errors=self.send_errors,
            expected=rx.expected, lost=rx.lost, jitter=rx.jitter, jitter_ms=rx.jitter_ms,
            clock_rate=self.clock_rate, sources=rx.sources, last_packet_at=self.last_rx,
            far_end_lost=self.far_end_lost, far_end_jitter=self.far_end_jitter,
        )  # fmt: skip

    # -- RTP: the hot path --------------------------------------------------------------------

    def receive_rtp(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram that arrived on the RTP port from ``addr`` at ``now``."""
        if addr != self._latched:  # unlatched, or a stranger: both leave the hot path
            self._rtp_unlatched(data, addr, now)
            return
        # Version 2, a full fixed header, and not an RTCP type (RFC 5761 §4 demux octet).
        if len(data) < 12 or data[0] & 0xC0 != 0x80 or 192 <= data[1] <= 223:
            self._rtp_odd(data, now)
            return
        srtp = self._srtp_in
        if srtp is None:
            self._rtp_accept(data, len(data), now)
            return
        plain = srtp.unprotect(data)
        if plain is None:
            self.srtp_failures += 1
            return
        self._rtp_accept(plain, len(data), now)

    def _rtp_accept(self, data: bytes, wire_size: int, now: float) -> None:
        """Count a valid plain RTP packet from the latched source and send it on."""
        self.packets_in += 1
        self.bytes_in += wire_size
        self.last_rx = now
        seq, ts, ssrc = _unpack_seq_ts_ssrc(data, 2)
        self._rx.update(seq, ts, ssrc, now)
        peer = self._peer
        if peer is not None:
            peer.send_rtp(data)  # the call's own media first …
        elif self._fork is None:  # a supervisor's device sending is expected, not unroutable
            self.unroutable += 1
        for fork in self._feeds:  # … then supervisors, which can never delay it
            fork.forward(data, now)

    def send_rtp(self, data: bytes | bytearray) -> None:
        """Send plain RTP ``data`` to this stream's remote, protecting it on an SRTP leg."""
        dest = self._rtp_dest
        if dest is None:
            self.unroutable += 1
            return
        srtp = self._srtp_out
        if srtp is not None:
            protected = srtp.protect(bytes(data))  # a no-op for bytes; libsrtp wants bytes
            if protected is None:
                self.srtp_failures += 1
                return
            data = protected
        try:
            self._rtp_send(data, dest)
        except OSError:  # full buffer or unreachable: drop, never retry on the packet path
            self.send_errors += 1
            return
        self.packets_out += 1
        self.bytes_out += len(data)

    # -- RTP: slow path -----------------------------------------------------------------------

    def _rtp_unlatched(self, data: bytes, addr: Address, now: float) -> None:
        if self._latched is not None:
            self.strangers += 1
            return
        if self._mux and is_rtcp(data):
            decoded = self._rtcp_decode(data)
            if decoded is not None:
                self._latch(addr)
                self._rtcp_forward(*decoded, now)
            return
        if not is_rtp(data):
            self.garbage += 1
            return
        plain = self._check_rtp(data)
        if plain is not None:
            self._latch(addr)
            self._rtp_accept(plain, len(data), now)

    def _check_rtp(self, data: bytes) -> bytes | None:
        """Full validation before latching; the plain packet, or ``None`` (counted)."""
        srtp = self._srtp_in
        try:
            if srtp is None:
                RtpPacket.parse(data)
                return data
            RtpHeader.parse(data)  # SRTP padding is encrypted: only the header is checkable
        except RtpError:
            self.garbage += 1
            return None
        plain = srtp.unprotect(data)
        if plain is None:
            self.srtp_failures += 1
        return plain

    def _latch(self, addr: Address) -> None:
        self._latched = self._rtp_dest = addr
        if self._mux:
            self._rtcp_latched = self._rtcp_dest = addr

    def _rtp_odd(self, data: bytes, now: float) -> None:
        """A datagram from the latched source that is not plain RTP: mux RTCP or garbage."""
        if self._mux and is_rtcp(data):
            self._rtcp_accept(data, now)
        else:
            self.garbage += 1

    # -- RTCP (a few packets per second per stream: clarity over speed) -----------------------

    def receive_rtcp(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram that arrived on the separate RTCP port."""
        if addr == self._rtcp_latched:
            self._rtcp_accept(data, now)
            return
        if self._rtcp_latched is not None:
            self.strangers += 1
            return
        if self._latched is not None and addr[0] != self._latched[0]:
            self.strangers += 1  # RTCP must come from the host we latched RTP on
            return
        decoded = self._rtcp_decode(data)
        if decoded is not None:
            self._rtcp_latched = self._rtcp_dest = addr
            self._rtcp_forward(*decoded, now)

    def _rtcp_accept(self, data: bytes, now: float) -> None:
        decoded = self._rtcp_decode(data)
        if decoded is not None:
            self._rtcp_forward(*decoded, now)

    def _rtcp_decode(self, data: bytes) -> tuple[bytes, list[RtcpPacket]] | None:
        """Check, unprotect and parse RTCP; ``None`` (counted) if any step fails."""
        if not is_rtcp(data):
            self.garbage += 1
            return None
        if self._srtp_in is not None:
            plain = self._srtp_in.unprotect_rtcp(data)
            if plain is None:
                self.srtp_failures += 1
                return None
            data = plain
        try:
            return data, parse_rtcp(data)
        except RtpError:
            self.garbage += 1
            return None

    def _rtcp_forward(self, data: bytes, packets: list[RtcpPacket], now: float) -> None:
        self.rtcp_packets_in += 1
        self.last_rx = now  # RTCP keeps a held call (no RTP) from timing out
        for packet in packets:
            if isinstance(packet, RtcpSenderReport | RtcpReceiverReport) and packet.reports:
                self.far_end_lost = packet.reports[0].packets_lost
                self.far_end_jitter = packet.reports[0].jitter
                break
        if self._peer is not None:
            self._peer.send_rtcp(data)
        elif self._fork is None:
            self.unroutable += 1

    def send_rtcp(self, data: bytes) -> None:
        """Send plain RTCP ``data`` to this stream's RTCP remote (SRTCP on an SRTP leg)."""
        dest = self._rtcp_dest
        if dest is None:
            self.unroutable += 1
            return
        if self._srtp_out is not None:
            protected = self._srtp_out.protect_rtcp(data)
            if protected is None:
                self.srtp_failures += 1
                return
            data = protected
        try:
            self._rtcp_send(data, dest)
        except OSError:
            self.send_errors += 1
            return
        self.rtcp_packets_out += 1
