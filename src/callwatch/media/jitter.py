"""Receive-side audio jitter buffer: RTP packets in, one 20 ms frame per playout tick out.

Theory of operation
-------------------
Packets are filed in *slots* keyed by their extended (unwrapped) RTP timestamp on a grid of one
frame (``frame_duration · clock_rate`` timestamp units). Playout runs on the receiver's clock:
the caller calls :meth:`JitterBuffer.pop` with ``now`` (every 20 ms, or at
:meth:`JitterBuffer.next_deadline`) and gets one item per elapsed tick, in timestamp order:

* :class:`PlayoutFrame` — the packet for that slot arrived in time;
* :class:`MissingFrame` — no packet: ``LOST`` when later packets are already buffered (a real
  gap: run the decoder's PLC), ``EMPTY`` when nothing is buffered (loss or DTX), ``INSERTED``
  when the buffer deliberately stretches playout by one frame to grow its delay.

Sequence numbers are only used to spot duplicates and to confirm jumps; timestamps (32-bit,
wrapping) decide order and timing (RFC 3550 §5.1).

Delay adaptation. For every packet the *transit* ``arrival − ts/clock_rate`` is recorded in a
sliding window. The playout offset ``P = tick_time − play_ts/clock_rate`` fixes when each
timestamp plays, so ``E = P − min(transit)`` is the delay given to the fastest packet and
``max(transit) − min(transit)`` is the jitter. The target delay is that jitter plus headroom,
clamped to ``[min_delay, max_delay]``. When ``E`` falls half a frame below the target a frame is
inserted (immediately, so the delay grows as soon as packets come late). When it exceeds the
target by more than a frame, a slot whose packet is missing anyway is skipped; by more than two
frames, a real frame is dropped. Either happens at most once per ``shrink_interval`` (so the
delay shrinks slowly), except that a delay above ``max_delay`` is cut at once. Clock drift
between sender and receiver shows up as a slow trend of the transit, which the same rule turns
into an occasional drop (sender fast) or insertion (sender slow), so the buffer never grows
without bound.

Discontinuities. A new SSRC resets the buffer (RFC 3550 §8.2). A packet whose timestamp lies
beyond the buffer's capacity, or before the cursor by more than ``max_delay``, is held on
probation; if the next packet continues it (sequence + 1, RFC 3550 Appendix A.1) the buffer
re-anchors on the pair, otherwise it is discarded.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass


class GapReason(enum.Enum):
    """Why a tick produced no packet."""

    LOST = "lost"
    """The slot's packet is missing while later packets are buffered: conceal it."""
    EMPTY = "empty"
    """Nothing is buffered (loss, DTX or a stalled sender): conceal or play silence."""
    INSERTED = "inserted"
    """The buffer stretched playout by one frame to grow its delay: conceal one frame."""


class PushResult(enum.Enum):
    """What :meth:`JitterBuffer.push` did with a packet."""

    STORED = "stored"
    RESYNCED = "resynced"
    """Stored after a reset (new SSRC or confirmed jump): reset the decoder."""
    DUPLICATE = "duplicate"
    LATE = "late"
    """Its playout time has passed; dropped (but its timing still grows the delay)."""
    DISCARDED = "discarded"
    """Oversized payload, or a jump waiting for confirmation by the next packet."""


@dataclass(frozen=True, slots=True)
class PlayoutFrame:
    """A received packet whose playout tick has come."""

    timestamp: int
    """RTP timestamp of the packet."""
    sequence: int
    """RTP sequence number of the packet."""
    payload: bytes
    """Codec payload to decode."""


@dataclass(frozen=True, slots=True)
class MissingFrame:
    """A playout tick without a packet; the caller conceals one frame."""

    timestamp: int
    """RTP timestamp the frame would have had (32-bit)."""
    reason: GapReason
    """Why nothing is there."""


@dataclass(frozen=True, slots=True)
class JitterConfig:
    """Parameters of a :class:`JitterBuffer` (all times in seconds)."""

    clock_rate: int
    """RTP clock rate of the stream (8000 for PCMU and G.722, 48000 for Opus …)."""
    frame_duration: float = 0.02
    """Packetisation interval (ptime); one pop tick per frame."""
    initial_delay: float = 0.05
    """Delay given to the first packet of a stream (and after a reset)."""
    min_delay: float = 0.02
    """Lower bound of the adaptive target delay."""
    max_delay: float = 0.4
    """Upper bound of the adaptive target delay; also the lateness that counts as a jump."""
    headroom: float = 0.005
    """Safety margin added to the measured jitter."""
    window: int = 250
    """Packets in the sliding window of transit times (5 s at 50 pps)."""
    shrink_interval: float = 2.0
    """Minimum time between two frames dropped to shrink the delay."""
    capacity: int = 64
    """Frames the buffer holds; timestamps further ahead count as a jump."""

    def __post_init__(self) -> None:
        if self.clock_rate <= 0 or self.frame_duration <= 0:
            raise ValueError("clock_rate and frame_duration must be positive")
        if not 0 <= self.min_delay <= self.initial_delay <= self.max_delay:
            raise ValueError("need 0 ≤ min_delay ≤ initial_delay ≤ max_delay")
        if self.capacity * self.frame_duration <= self.max_delay + self.frame_duration:
            raise ValueError("capacity must hold more than max_delay of frames")
        if self.window < 2 or self.shrink_interval < 0:
            raise ValueError("window must be ≥ 2 and shrink_interval ≥ 0")


@dataclass(frozen=True, slots=True)
class JitterStats:
    """Counters of a :class:`JitterBuffer` (see :attr:`JitterBuffer.stats`)."""

    received: int
    duplicates: int
    late: int
    discarded: int
    lost: int
    """Ticks concealed because their packet was missing (later ones were buffered)."""
    empty: int
    """Ticks with nothing buffered (underrun, DTX, skipped after a stall)."""
    inserted: int
    """Frames inserted to grow the delay (drift or jitter)."""
    dropped: int
    """Frames dropped to shrink the delay (drift or calmer network)."""
    resets: int
    jitter: float
    """RFC 3550 §6.4.1 interarrival jitter estimate, in seconds."""
    buffered: int
    """Frames currently held."""
    delay: float | None
    """Current playout delay of the fastest recent packet, in seconds."""


_TS_MOD = 1 << 32
_TS_HALF = 1 << 31
_MAX_PAYLOAD = 16384
"""Largest payload stored (well above any 20 ms audio frame)."""
_PLAYED_MEMORY = 64
"""Recently played sequence numbers remembered to tell duplicates from late packets."""
_MIN_SHRINK_SAMPLES = 50
"""Packets observed before the delay may shrink (one second at 50 pps)."""


class _Action(enum.Enum):
    NONE = 0
    INSERT = 1
    DROP = 2


@dataclass(slots=True)
class _Pending:
    """A packet that jumped away from the stream, waiting for its successor to confirm."""

    seq: int
    ts: int
    payload: bytes
    arrival: float


@dataclass(slots=True)
class _Counters:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    discarded: int = 0
    lost: int = 0
    empty: int = 0
    inserted: int = 0
    dropped: int = 0
    resets: int = 0
    jitter: float = 0.0


class JitterBuffer:
    """Adaptive audio jitter buffer for one RTP stream; deterministic given its inputs.

    Args:
        config: clock rate, frame duration, delay bounds and limits.
    """

    def __init__(self, config: JitterConfig) -> None:
        self.config = config
        self._frame_ts = round(config.clock_rate * config.frame_duration)
        self._slots: dict[int, tuple[int, int, bytes]] = {}
        self._transits: deque[float] = deque(maxlen=config.window)
        self._played: deque[int] = deque(maxlen=_PLAYED_MEMORY)
        self._counters = _Counters()
        self._ssrc: int | None = None
        self._pending: _Pending | None = None
        self._started = False
        self._play_ts = 0
        self._tick_origin = 0.0
        self._ticks = 0
        self._last_shrink = -math.inf
        self._last_transit: float | None = None

    # ---------------------------------------------------------------- queries

    @property
    def stats(self) -> JitterStats:
        """A snapshot of the counters."""
        c = self._counters
        return JitterStats(
            received=c.received,
            duplicates=c.duplicates,
            late=c.late,
            discarded=c.discarded,
            lost=c.lost,
            empty=c.empty,
            inserted=c.inserted,
            dropped=c.dropped,
            resets=c.resets,
            jitter=c.jitter,
            buffered=len(self._slots),
            delay=self.delay,
        )

    @property
    def delay(self) -> float | None:
        """Playout delay given to the fastest recent packet, in seconds (None before start)."""
        if not self._started or not self._transits:
            return None
        return self._offset() - min(self._transits)

    def next_deadline(self) -> float | None:
        """Receiver time of the next playout tick, or None before the first packet."""
        return self._tick_time() if self._started else None

    # ---------------------------------------------------------------- input

    def push(
        self, seq: int, timestamp: int, payload: bytes, arrival_time: float, *, ssrc: int = 0
    ) -> PushResult:
        """File one received RTP packet.

        Args:
            seq: RTP sequence number (16-bit).
            timestamp: RTP timestamp (32-bit).
            payload: the RTP payload (kept as is).
            arrival_time: receiver clock when the packet arrived, in seconds.
            ssrc: RTP SSRC; a change resets the buffer.

        Returns:
            What happened to the packet; ``RESYNCED`` tells the caller to reset its decoder.
        """
        self._counters.received += 1
        seq &= 0xFFFF
        timestamp &= 0xFFFFFFFF
        if len(payload) > _MAX_PAYLOAD:
            self._counters.discarded += 1
            return PushResult.DISCARDED
        if ssrc != self._ssrc:
            self._counters.resets += self._ssrc is not None
            self._ssrc = ssrc
            self._reanchor(timestamp, arrival_time)
            self._store(seq, timestamp, self._play_ts_for(timestamp), payload, arrival_time)
            return PushResult.RESYNCED
        return self._push_same_source(seq, timestamp, payload, arrival_time)

    def _push_same_source(self, seq: int, ts: int, payload: bytes, arrival: float) -> PushResult:
        ext = self._extend(ts)
        index = round((ext - self._play_ts) / self._frame_ts)
        deadline = self._tick_time() + index * self.config.frame_duration
        jumped = index >= self.config.capacity or arrival - deadline > self.config.max_delay
        if jumped:
            return self._probation(seq, ts, payload, arrival)
        self._pending = None
        if index < 0:
            self._observe(arrival, ext)
            if seq in self._played:
                self._counters.duplicates += 1
                return PushResult.DUPLICATE
            self._counters.late += 1
            return PushResult.LATE
        key = self._play_ts + index * self._frame_ts
        if key in self._slots:
            self._counters.duplicates += 1
            return PushResult.DUPLICATE
        self._store(seq, ts, key, payload, arrival)
        return PushResult.STORED

    def _probation(self, seq: int, ts: int, payload: bytes, arrival: float) -> PushResult:
        pending = self._pending
        if pending is None or seq != (pending.seq + 1) & 0xFFFF:
            self._pending = _Pending(seq, ts, payload, arrival)
            return PushResult.DISCARDED
        self._pending = None
        self._counters.resets += 1
        self._reanchor(pending.ts, pending.arrival)
        first = self._play_ts_for(pending.ts)
        self._store(pending.seq, pending.ts, first, pending.payload, pending.arrival)
        second = self._extend(ts)
        index = round((second - self._play_ts) / self._frame_ts)
        if 0 <= index < self.config.capacity:
            key = self._play_ts + index * self._frame_ts
            self._slots.setdefault(key, (seq, ts, payload))
            self._observe(arrival, second)
        return PushResult.RESYNCED

    def _store(self, seq: int, ts: int, key: int, payload: bytes, arrival: float) -> None:
        self._slots[key] = (seq, ts, payload)
        self._observe(arrival, self._extend(ts))

    def _observe(self, arrival: float, ext: int) -> None:
        transit = arrival - ext / self.config.clock_rate
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self._counters.jitter += (d - self._counters.jitter) / 16.0  # RFC 3550 §6.4.1
        self._last_transit = transit
        self._transits.append(transit)

    # ---------------------------------------------------------------- output

    def pop(self, now: float) -> list[PlayoutFrame | MissingFrame]:
        """Return one item per playout tick due at or before ``now``, oldest first.

        When more than ``capacity`` ticks are overdue (the caller stalled), playout jumps
        forward and only the most recent ``capacity`` ticks are returned.
        """
        if not self._started:
            return []
        frame = self.config.frame_duration
        overdue = math.floor((now - self._tick_time()) / frame) + 1
        if overdue > self.config.capacity:
            self._skip(overdue - self.config.capacity)
        out: list[PlayoutFrame | MissingFrame] = []
        while self._tick_time() <= now:
            out.append(self._tick())
            self._ticks += 1
        return out

    def _tick(self) -> PlayoutFrame | MissingFrame:
        action = self._adapt()
        if action is _Action.INSERT:
            self._counters.inserted += 1
            return MissingFrame(self._play_ts % _TS_MOD, GapReason.INSERTED)
        if action is _Action.DROP:
            self._counters.dropped += 1
            self._slots.pop(self._play_ts, None)
            self._play_ts += self._frame_ts
        slot = self._slots.pop(self._play_ts, None)
        key = self._play_ts
        self._play_ts += self._frame_ts
        if slot is not None:
            seq, ts, payload = slot
            self._played.append(seq)
            return PlayoutFrame(timestamp=ts, sequence=seq, payload=payload)
        if self._slots:
            self._counters.lost += 1
            return MissingFrame(key % _TS_MOD, GapReason.LOST)
        self._counters.empty += 1
        return MissingFrame(key % _TS_MOD, GapReason.EMPTY)

    def _adapt(self) -> _Action:
        if not self._transits:
            return _Action.NONE
        cfg = self.config
        fastest = min(self._transits)
        jitter = max(self._transits) - fastest
        target = min(max(jitter + cfg.headroom, cfg.min_delay), cfg.max_delay)
        delay = self._offset() - fastest
        if delay < target - cfg.frame_duration / 2:
            return _Action.INSERT
        if delay > cfg.max_delay + cfg.frame_duration / 2:
            return _Action.DROP
        now = self._tick_time()
        may_shrink = (
            len(self._transits) >= min(cfg.window, _MIN_SHRINK_SAMPLES)
            and now - self._last_shrink >= cfg.shrink_interval
        )
        excess = delay - target
        # one frame too many: shrink only by skipping a slot that has no packet anyway;
        # two or more: drop a real frame (drift from a fast sender, or a past jitter spike)
        free = self._play_ts not in self._slots
        if may_shrink and excess > cfg.frame_duration * (1 if free else 2):
            self._last_shrink = now
            return _Action.DROP
        return _Action.NONE

    def _skip(self, ticks: int) -> None:
        self._ticks += ticks
        self._play_ts += ticks * self._frame_ts
        stale = [key for key in self._slots if key < self._play_ts]
        for key in stale:
            del self._slots[key]
        self._counters.discarded += len(stale)
        self._counters.empty += ticks - len(stale)

    # ---------------------------------------------------------------- clock

    def reset(self) -> None:
        """Forget every packet and the stream identity (the next packet starts afresh)."""
        self._slots.clear()
        self._transits.clear()
        self._played.clear()
        self._ssrc = None
        self._pending = None
        self._started = False
        self._last_transit = None

    def _reanchor(self, ts: int, arrival: float) -> None:
        """Drop everything and schedule ``ts`` to play ``initial_delay`` after ``arrival``."""
        self._slots.clear()
        self._transits.clear()
        self._played.clear()
        self._pending = None
        self._last_transit = None
        self._last_shrink = -math.inf
        due = arrival + self.config.initial_delay
        if not self._started:
            self._started = True
            self._tick_origin = due
            self._ticks = 0
            self._play_ts = ts
            return
        ahead = max(0, math.ceil((due - self._tick_time()) / self.config.frame_duration - 1e-9))
        self._play_ts = ts - ahead * self._frame_ts

    def _play_ts_for(self, ts: int) -> int:
        ext = self._extend(ts)
        return self._play_ts + round((ext - self._play_ts) / self._frame_ts) * self._frame_ts

    def _extend(self, ts: int) -> int:
        """Unwrap a 32-bit timestamp to the extended value nearest the playout cursor."""
        return self._play_ts + ((ts - self._play_ts + _TS_HALF) % _TS_MOD) - _TS_HALF

    def _tick_time(self) -> float:
        return self._tick_origin + self._ticks * self.config.frame_duration

    def _offset(self) -> float:
        return self._tick_time() - self._play_ts / self.config.clock_rate


__all__ = [
    "GapReason",
    "JitterBuffer",
    "JitterConfig",
    "JitterStats",
    "MissingFrame",
    "PlayoutFrame",
    "PushResult",
]
