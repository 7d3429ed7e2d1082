"""Receive statistics of one RTP stream (RFC 3550 A.1, A.3, A.8) and the stream's snapshot.

Theory of operation
-------------------
:meth:`ReceiveStats.update` runs once per accepted packet on the relay's hot path, so its
common case — the next sequence number from the same SSRC — is a handful of integer operations
and one float jitter update; everything else (first packet, SSRC change, gaps, wrap, large
jumps, reordering) goes to :meth:`ReceiveStats._resync`, which is RFC 3550 A.1 ``update_seq``
without the probation step (the relay has already latched on a valid packet).

Loss is ``expected - received`` (A.3), summed over every SSRC the stream has carried, so a
phone that changes SSRC mid-call (transfer, re-INVITE) does not show as a huge gap. Jitter
(A.8) is kept in timestamp units of the stream's clock rate and reported in ms too. Jitter is
computed over every packet, so RFC 4733 telephone-event packets (whose timestamp stays at the
event start) raise it during DTMF; a stream is assumed to use one RTP clock rate.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_DROPOUT", "MAX_MISORDER", "ReceiveStats", "RelayTotals", "StreamStats"]

MAX_DROPOUT = 3000
"""A forward jump smaller than this is a gap of lost packets (RFC 3550 A.1)."""
MAX_MISORDER = 100
"""A backward step smaller than this is a late/duplicate packet (RFC 3550 A.1)."""
_HALF_TS = 1 << 31
_TS_MOD = 1 << 32


class ReceiveStats:
    """Sequence, loss and jitter tracking for the packets one stream receives."""

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_done_expected",
        "_done_received",
        "_max_seq",
        "_received",
        "_ssrc",
        "_transit",
        "clock_rate",
        "jitter",
        "sources",
    )

    def __init__(self, clock_rate: int = 8000) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate {clock_rate} must be positive")
        self.clock_rate = clock_rate
        """RTP clock rate in Hz used to convert arrival times to timestamp units."""
        self.jitter = 0.0
        """Interarrival jitter estimate in timestamp units (RFC 3550 A.8)."""
        self.sources = 0
        """How many SSRCs this stream has carried."""
        self._ssrc: int | None = None
        self._base_seq = self._max_seq = self._cycles = self._received = 0
        self._bad_seq = -1
        self._transit = 0.0
        self._done_expected = self._done_received = 0

    def update(self, seq: int, ts: int, ssrc: int, now: float) -> None:
        """Account one packet's sequence number and timestamp arriving at ``now`` seconds."""
        # Hot path: the next packet of the current source is by far the common case, so it
        # is tested first with plain int ops; _resync handles everything else.
        if ssrc == self._ssrc and seq == ((self._max_seq + 1) & 0xFFFF):
            if seq == 0:
                self._cycles += 0x10000
            self._max_seq = seq
        elif not self._resync(seq, ts, ssrc, now):
            return
        self._received += 1
        transit = now * self.clock_rate - ts
        d = transit - self._transit
        self._transit = transit
        if d > _HALF_TS or d < -_HALF_TS:  # the RTP timestamp wrapped between the two packets
            d = (d + _HALF_TS) % _TS_MOD - _HALF_TS
        self.jitter += (abs(d) - self.jitter) / 16.0

    def _resync(self, seq: int, ts: int, ssrc: int, now: float) -> bool:
        """RFC 3550 A.1 for a packet off the fast path; returns whether to count it."""
        if ssrc != self._ssrc:
            self._start_source(seq, ts, ssrc, now)
            return True
        udelta = (seq - self._max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += 0x10000
            self._max_seq = seq
        elif udelta <= 0x10000 - MAX_MISORDER:
            if seq != self._bad_seq:
                # A very large jump: believe it only if the next packet follows it.
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
            self._start_source(seq, ts, ssrc, now)  # the sender restarted its sequence
        return True  # otherwise a duplicate or late packet: counted, no sequence change

    def _start_source(self, seq: int, ts: int, ssrc: int, now: float) -> None:
        if self._ssrc is not None:
            self._done_expected += self._expected_current()
            self._done_received += self._received
        if ssrc != self._ssrc:
            self.sources += 1
        self._ssrc = ssrc
        self._base_seq = self._max_seq = seq
        self._cycles = self._received = 0
        self._bad_seq = -1
        self._transit = now * self.clock_rate - ts  # the first jitter sample is then 0

    def _expected_current(self) -> int:
        if self._ssrc is None:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def received(self) -> int:
        """Packets counted (late and duplicate packets included, as in RFC 3550 A.3)."""
        return self._done_received + self._received

    @property
    def expected(self) -> int:
        """Packets expected from the sequence numbers seen (RFC 3550 A.3)."""
        return self._done_expected + self._expected_current()

    @property
    def lost(self) -> int:
        """Cumulative packets lost; negative when duplicates outnumber losses (RFC 3550 A.3)."""
        return self.expected - self.received

    @property
    def jitter_ms(self) -> float:
        """:attr:`jitter` in milliseconds."""
        return self.jitter * 1000.0 / self.clock_rate

    @property
    def highest_sequence(self) -> int:
        """Extended highest sequence number of the current source (cycles << 16 | seq)."""
        return self._cycles + self._max_seq


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A point-in-time copy of one relay stream's counters (what the pbx and API read)."""

    stream_id: int
    label: str
    local_port: int
    """The relay's RTP port for this leg."""
    latched: tuple[str, int] | None
    """The remote RTP address learned from the leg's first valid packet, if any yet."""
    rtcp_latched: tuple[str, int] | None
    packets_in: int
    """Valid (and, on SRTP legs, authenticated) RTP packets accepted from the leg."""
    bytes_in: int
    """Wire bytes of those packets."""
    packets_out: int
    """RTP packets sent to the leg (bridged and forked)."""
    bytes_out: int
    rtcp_packets_in: int
    rtcp_packets_out: int
    garbage: int
    """Datagrams that were not RTP/RTCP (e.g. a softphone's ``hello``), dropped."""
    strangers: int
    """Datagrams from an address other than the latched one, dropped (RTP Bleed defence)."""
    srtp_failures: int
    """Packets dropped because SRTP authentication, replay check or protection failed."""
    unroutable: int
    """Packets that had nowhere to go: no partner, or the partner's address is unknown."""
    send_errors: int
    """``sendto`` failures (full buffer, unreachable); the packet is dropped, never retried."""
    expected: int
    """Packets expected from sequence numbers (RFC 3550 A.3)."""
    lost: int
    """Packets lost (RFC 3550 A.3); may be negative with duplicates."""
    jitter: float
    """Interarrival jitter in timestamp units (RFC 3550 A.8)."""
    jitter_ms: float
    clock_rate: int
    sources: int
    """SSRCs seen on the stream."""
    last_packet_at: float | None
    """Monotonic time of the last accepted RTP or RTCP packet (``None``: none yet)."""
    far_end_lost: int | None = None
    """Cumulative loss the leg itself reports in RTCP about what we send it."""
    far_end_jitter: int | None = None
    """Jitter (timestamp units) the leg reports in RTCP about what we send it."""


@dataclass(frozen=True, slots=True)
class RelayTotals:
    """Counters summed over every stream of a relay (for metrics and benchmarks)."""

    streams: int
    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    dropped: int
    """Garbage, stranger and SRTP-failed datagrams."""
    unroutable: int
    send_errors: int
    lost: int
    """Sum of RFC 3550 A.3 loss over the streams."""
    taken_at: float = 0.0
    """Monotonic time the totals were summed (set by the I/O layer)."""
    media_cpu: float = 0.0
    """CPU seconds the media thread has used so far (set by the I/O layer): the relay's cost."""

    @classmethod
    def of(cls, snapshots: list[StreamStats]) -> RelayTotals:
        """Sum stream snapshots."""
        return cls(
            streams=len(snapshots),
            packets_in=sum(s.packets_in for s in snapshots),
            bytes_in=sum(s.bytes_in for s in snapshots),
            packets_out=sum(s.packets_out for s in snapshots),
            bytes_out=sum(s.bytes_out for s in snapshots),
            dropped=sum(s.garbage + s.strangers + s.srtp_failures for s in snapshots),
            unroutable=sum(s.unroutable for s in snapshots),
            send_errors=sum(s.send_errors for s in snapshots),
            lost=sum(s.lost for s in snapshots),
        )
