"""What a load run measures on its RTP, sans-I/O: stamped payloads, loss, jitter, fork latency.

Theory of operation
-------------------
Every payload a simulated party sends ends in an 8-byte stamp (:data:`STAMP`): a magic byte,
the direction, the call index and a packet counter, written over the tail of one encoded 20 ms
frame of the negotiated codec (:class:`StampedPayloads`, a lazy sequence: nothing is stored per
packet). The relay forwards payloads untouched — a zero-copy fork re-stamps only the RTP
header — so the same stamp reaches the other party ("direct") and the supervisor's device
("fork") and names the packet in both places.

A :class:`StreamMeter` measures one direction of one call at both receivers:

- loss: distinct counters received against packets sent; for the fork, against the packets
  sent since the first counter the fork delivered (the supervisor joins mid-call);
- interarrival jitter, RFC 3550 §6.4.1 and A.8: ``J += (|D| − J) / 16`` where ``D`` is the
  change of transit time between consecutive arrivals, the send time of packet *i* being
  ``i · ptime`` (the sender's pacing schedule; the relay re-stamps RTP timestamps of forks);
- fork latency: fork arrival minus direct arrival of the same counter. Recent arrivals of each
  receiver sit in a ring of :data:`RING` slots indexed by counter, so matching is O(1) and
  memory stays bounded however long the run.

A :class:`MeterBoard` holds one meter per (call, direction), checks that each packet came to
the receiver it was meant for (a packet of another call is counted as *misrouted*), and
:func:`summarize` turns the board into a :class:`MediaSummary`. Arrival times are arguments
(the caller's monotonic clock): nothing here reads time, sockets or randomness.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import overload

__all__ = [
    "MAX_SAMPLES",
    "RING",
    "STAMP",
    "STAMP_MAGIC",
    "MediaSummary",
    "MeterBoard",
    "Percentiles",
    "Receiver",
    "SampleBuffer",
    "Speaker",
    "Stamp",
    "StampedPayloads",
    "StreamMeter",
    "loss_percent",
    "read_stamp",
    "stamp_payload",
    "summarize",
]

STAMP = struct.Struct(">BBHI")
"""The stamp at the end of every payload: magic, direction, call index, packet counter."""
STAMP_MAGIC = 0xC7
"""First byte of a stamp; payloads without it are counted as unstamped."""
RING = 1024
"""Recent arrivals remembered per receiver (20 s at 20 ms): the reorder and matching window."""
MAX_SAMPLES = 500_000
"""Latency samples kept; past it the buffer keeps every other one (see :class:`SampleBuffer`)."""
MAX_CALLS = 0xFFFF
"""Calls one board can measure (the stamp's call index is 16 bits)."""


class Speaker(IntEnum):
    """Who sent a stream."""

    CUSTOMER = 0
    AGENT = 1


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a payload's stamp says."""

    call: int
    """Index of the call in the run."""
    speaker: Speaker
    counter: int
    """Packet number in the stream, from 0."""


def stamp_payload(frame: bytes, stamp: Stamp) -> bytes:
    """``frame`` with its last :data:`STAMP` bytes replaced by ``stamp`` (zero-padded first
    when the frame is shorter than a stamp plus one byte)."""
    keep = max(1, len(frame) - STAMP.size)
    head = frame[:keep].ljust(keep, b"\x00")
    return head + STAMP.pack(STAMP_MAGIC, stamp.speaker, stamp.call, stamp.counter)


def read_stamp(payload: bytes) -> Stamp | None:
    """The stamp at the end of ``payload``, or None when it carries none."""
    if len(payload) <= STAMP.size:
        return None
    magic, speaker, call, counter = STAMP.unpack_from(payload, len(payload) - STAMP.size)
    if magic != STAMP_MAGIC or speaker > Speaker.AGENT:
        return None
    return Stamp(call, Speaker(speaker), counter)


class StampedPayloads(Sequence[bytes]):
    """``count`` payloads of one stream, each ``frame`` stamped with its counter, made on
    demand (what :meth:`~callwatch.client.UaCall.send_payloads` paces out)."""

    def __init__(self, frame: bytes, *, call: int, speaker: Speaker, count: int) -> None:
        self._frame = frame
        self._call = call
        self._speaker = speaker
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("payload index out of range")
        return stamp_payload(self._frame, Stamp(self._call, self._speaker, index))


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Nearest-rank percentiles of a set of samples (in the unit they were given)."""

    count: int
    p50: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, samples: Iterable[float], scale: float = 1.0) -> Percentiles:
        """Percentiles of ``samples`` multiplied by ``scale`` (1000 turns seconds into ms)."""
        ordered = sorted(value * scale for value in samples)
        if not ordered:
            return cls(0, None, None, None)
        return cls(len(ordered), _rank(ordered, 0.5), _rank(ordered, 0.99), ordered[-1])


def _rank(ordered: Sequence[float], quantile: float) -> float:
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


class SampleBuffer:
    """At most ``limit`` samples: once full, every other sample is dropped and from then on
    only every second (fourth, …) new one is kept, so the buffer stays an even spread over
    the whole run. :attr:`count` counts every sample offered."""

    def __init__(self, limit: int = MAX_SAMPLES) -> None:
        self._limit = max(2, limit)
        self._samples = array("d")
        self._stride = 1
        self._skipped = 0
        self.count = 0

    def add(self, value: float) -> None:
        """Offer one sample."""
        self.count += 1
        self._skipped += 1
        if self._skipped < self._stride:
            return
        self._skipped = 0
        self._samples.append(value)
        if len(self._samples) >= self._limit:
            self._samples = self._samples[::2]
            self._stride *= 2

    @property
    def samples(self) -> list[float]:
        """The samples kept."""
        return self._samples.tolist()


class Receiver:
    """One receiver of one stream: distinct packets, duplicates, RFC 3550 jitter, and the
    arrival times of the last :data:`RING` counters.

    Args:
        ptime: the sender's packet interval, seconds.
        joins_late: the receiver was added mid-stream (a fork): packets before the first one
            it received are not expected of it.
    """

    __slots__ = (
        "_at",
        "_joins_late",
        "_ptime",
        "_seen",
        "_transit",
        "duplicates",
        "first",
        "highest",
        "jitter",
        "received",
    )

    def __init__(self, ptime: float, *, joins_late: bool = False) -> None:
        self._ptime = ptime
        self._joins_late = joins_late
        self._seen = array("q", [-1]) * RING  # arrays: no objects per slot for the GC to walk
        self._at = array("d", [0.0]) * RING
        self._transit: float | None = None
        self.received = 0
        """Distinct packets."""
        self.duplicates = 0
        self.first: int | None = None
        """Lowest counter received."""
        self.highest = -1
        """Highest counter received."""
        self.jitter = 0.0
        """RFC 3550 interarrival jitter, seconds."""

    def receive(self, counter: int, arrival: float) -> bool:
        """Count packet ``counter`` arriving at ``arrival``; False for a duplicate."""
        slot = counter % RING
        if self._seen[slot] == counter:
            self.duplicates += 1
            return False
        self._seen[slot] = counter
        self._at[slot] = arrival
        self.received += 1
        if self.first is None or counter < self.first:
            self.first = counter
        self.highest = max(self.highest, counter)
        transit = arrival - counter * self._ptime
        if self._transit is not None:
            self.jitter += (abs(transit - self._transit) - self.jitter) / 16
        self._transit = transit
        return True

    def arrival_of(self, counter: int) -> float | None:
        """When ``counter`` arrived, if it did and is still remembered."""
        slot = counter % RING
        return self._at[slot] if self._seen[slot] == counter else None

    def expected(self, sent: int | None = None) -> int:
        """Packets this receiver should have had: up to ``sent``, or (while the stream runs)
        up to the highest counter received; from the first one received if it joined late."""
        end = self.highest + 1 if sent is None else sent
        start = (self.first or 0) if self._joins_late else 0
        return max(0, end - start)


class StreamMeter:
    """One direction of one call, at the other party and at the supervisor's device."""

    def __init__(self, *, ptime: float, latencies: SampleBuffer) -> None:
        self.direct = Receiver(ptime)
        self.fork = Receiver(ptime, joins_late=True)
        self.sent = 0
        """Packets the speaker sent (set by the caller from its RTP counters)."""
        self._latencies = latencies

    def on_direct(self, counter: int, arrival: float) -> None:
        """The other party received packet ``counter``."""
        if self.direct.receive(counter, arrival):
            forked = self.fork.arrival_of(counter)
            if forked is not None:
                self._latencies.add(forked - arrival)

    def on_fork(self, counter: int, arrival: float) -> None:
        """The supervisor's device received packet ``counter``."""
        if self.fork.receive(counter, arrival):
            direct = self.direct.arrival_of(counter)
            if direct is not None:
                self._latencies.add(arrival - direct)


class MeterBoard:
    """Every stream meter of a run, and the packets that reached the wrong receiver."""

    def __init__(self, calls: int, *, ptime: float = 0.02, max_samples: int = MAX_SAMPLES) -> None:
        if not 0 <= calls <= MAX_CALLS:
            raise ValueError(f"a load run measures at most {MAX_CALLS} calls, not {calls}")
        self.latencies = SampleBuffer(max_samples)
        """Fork latency samples (seconds) of every stream."""
        self._meters = [
            StreamMeter(ptime=ptime, latencies=self.latencies) for _ in range(calls * 2)
        ]
        self.unstamped = 0
        """Packets without a stamp (the relay altered a payload, or a stranger sent it)."""
        self.misrouted = 0
        """Stamped packets that reached a receiver of another call or direction."""

    def meter(self, call: int, speaker: Speaker) -> StreamMeter:
        """The meter of ``speaker``'s stream in call ``call``."""
        return self._meters[call * 2 + speaker]

    @property
    def meters(self) -> list[StreamMeter]:
        """Every meter, call by call, customer first."""
        return list(self._meters)

    def direct_packet(self, call: int, speaker: Speaker, payload: bytes, arrival: float) -> None:
        """A payload of ``speaker`` in ``call`` reached the other party."""
        stamp = read_stamp(payload)
        if stamp is None:
            self.unstamped += 1
        elif stamp.call != call or stamp.speaker is not speaker:
            self.misrouted += 1
        else:
            self._meters[call * 2 + speaker].on_direct(stamp.counter, arrival)

    def fork_packet(self, call: int, payload: bytes, arrival: float) -> None:
        """A payload reached the supervisor's device on a stream of call ``call``."""
        stamp = read_stamp(payload)
        if stamp is None:
            self.unstamped += 1
        elif stamp.call != call:
            self.misrouted += 1
        else:
            self._meters[call * 2 + stamp.speaker].on_fork(stamp.counter, arrival)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSummary:
    """The RTP figures of a run (percentiles in milliseconds)."""

    streams: int
    """Streams measured (two per call that was set up)."""
    packets_sent: int
    direct_received: int
    direct_loss_percent: float | None
    """Packets sent but never received by the other party, % (None: nothing was sent)."""
    fork_received: int
    fork_loss_percent: float | None
    """Packets sent after the fork started but never received by the supervisor, %."""
    direct_jitter_ms: Percentiles
    """RFC 3550 jitter at the other party, one value per stream."""
    fork_jitter_ms: Percentiles
    """RFC 3550 jitter at the supervisor's device, one value per forked stream."""
    fork_latency_ms: Percentiles
    """Fork arrival − direct arrival of the same packet."""
    unstamped: int
    misrouted: int


def summarize(board: MeterBoard, meters: Sequence[StreamMeter]) -> MediaSummary:
    """The figures of ``meters`` (those of the calls that were set up) on ``board``."""
    sent = sum(m.sent for m in meters)
    direct = sum(m.direct.received for m in meters)
    forked = [m for m in meters if m.fork.received]
    fork_expected = sum(m.fork.expected(m.sent) for m in forked)
    fork_received = sum(m.fork.received for m in forked)
    heard = [m.direct.jitter for m in meters if m.direct.received]
    return MediaSummary(
        streams=len(meters),
        packets_sent=sent,
        direct_received=direct,
        direct_loss_percent=loss_percent(direct, sum(m.direct.expected(m.sent) for m in meters)),
        fork_received=fork_received,
        fork_loss_percent=loss_percent(fork_received, fork_expected),
        direct_jitter_ms=Percentiles.of(heard, 1e3),
        fork_jitter_ms=Percentiles.of((m.fork.jitter for m in forked), 1e3),
        fork_latency_ms=Percentiles.of(board.latencies.samples, 1e3),
        unstamped=board.unstamped,
        misrouted=board.misrouted,
    )


def loss_percent(received: int, expected: int) -> float | None:
    """``expected − received`` as a percentage of ``expected`` (None when nothing was)."""
    if expected <= 0:
        return None
    return max(0.0, (expected - received) / expected * 100)
