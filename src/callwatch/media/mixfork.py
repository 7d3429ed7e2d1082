"""Transcoding and mixing forks: N monitored legs → one RTP stream out of a target leg.

Theory of operation
-------------------
A zero-copy :class:`~callwatch.media.stream.Fork` re-stamps a party's packets as they are; it
only works when the supervisor's device accepted the party's codec on a stream of its own. A
:class:`MixFork` covers the other cases: a device that answered another codec (G.711 ⇄ G.722 ⇄
Opus 16/48 kHz: a one-source *transcoder*), or fewer streams than offered (a *mix* of both
parties on its first stream). It has one :class:`MixInput` per source leg — a
:class:`~callwatch.media.transcode.SourceDecoder` registered in that leg's feeds, whose hot
path only queues the packet — and one output: an encoder for the target's negotiated codec.

Every 20 ms on the media loop's clock the adapter calls :meth:`MixFork.tick` (deadlines on a
fixed grid ``origin + n · 20 ms``, so timer lateness never accumulates into drift). Each due
tick takes one frame per source (decoded, concealed or silent — a missing source never stalls
the mix), sums them with saturation (as :func:`~callwatch.media.mixer.mix`), encodes, sends
one RTP packet out of the target through the target's :class:`~callwatch.media.restamp.
Restamper` — the same one a zero-copy fork into that target uses, so switching a target
between a fork and a mix keeps its SSRC, sequence and timestamps continuous — and the target's
:meth:`~callwatch.media.stream.Stream.send_rtp`, which latches, SRTP-protects and counts send
errors like any other output. A tick that comes more than :data:`MAX_CATCH_UP` frames late
skips the excess (the timestamp still advances by it) instead of bursting. A mix with no
source has no deadline: the adapter lets its timer lapse until a source is added again.

Failures stay inside: a payload the codec rejects is concealed and counted, an encode error
drops that frame and is counted, a dead device's socket errors are counted by the target
stream. Nothing here raises into the source leg's packet path.

Modes (the seam for whisper, barge and takeover)
------------------------------------------------
Only :attr:`ForkMode.LISTEN` exists: the supervisor hears the parties, nobody hears the
supervisor. The other modes are compositions of the same parts, not new mechanisms:

* The supervisor's stream already *receives*: once the device latches, its RTP runs through
  :meth:`Stream._rtp_accept <callwatch.media.stream.Stream>` and on to every feed, so the
  supervisor stream can be a **source** of a mix like any party leg.
* **Whisper** (agent hears the supervisor): a second :class:`MixFork` whose target is the
  *agent's* leg and whose sources are the customer's leg and the supervisor's stream. Two
  additions make that legal: ``Relay.add_mix`` accepts a bridged target for modes other than
  ``LISTEN``, and the customer's bridge forward into the agent is suspended while the agent's
  output belongs to the mix (a per-stream "diverted" flag checked where
  ``Stream._rtp_accept`` sends to its peer; the customer's packets then reach the agent only
  through the mix input). RTCP keeps flowing over the bridge.
* **Barge** (both hear the supervisor): whisper applied to both legs — two mixes, each party
  hearing the other party plus the supervisor (``mixer.mix_minus`` is the N-party form).
* **Takeover**: the customer's leg output becomes a mix of the supervisor only (the agent's
  forward into the customer is diverted and not mixed), and the agent's output a mix of
  customer and supervisor.

``ForkMode`` travels on the :class:`MixFork` (:attr:`MixFork.mode`) so that stats and the pbx
can tell a listening mix from an injecting one; the verbs exposed to the pbx do not take it yet.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from callwatch.media.codecs.base import CodecError, Encoder, PcmArray
from callwatch.media.codecs.registry import CodecInfo
from callwatch.media.restamp import Restamper
from callwatch.media.stream import Stream
from callwatch.media.transcode import OutputFormat, SourceDecoder, SourceStats

__all__ = ["FRAME", "MAX_CATCH_UP", "ForkMode", "MixFork", "MixInput", "MixStats"]

FRAME = 0.02
"""Output packetisation: one packet per 20 ms (ptime 20)."""
EARLY = 0.002
"""A tick up to this early still runs (uvloop timers have millisecond resolution)."""
MAX_CATCH_UP = 5
"""Late ticks run back to back at most this many at once (100 ms); the rest are skipped."""

_HEADER = struct.Struct("!BBHII")


def _mix(frames: list[PcmArray]) -> PcmArray:
    """Saturating sum of equally long int16 frames: :func:`callwatch.media.mixer.mix` without
    its argument checks, which cost more than the sum (every frame here is one output frame)."""
    total = frames[0].astype(np.int32)
    for frame in frames[1:]:
        total += frame
    np.maximum(total, -32768, out=total)
    np.minimum(total, 32767, out=total)
    return total.astype(np.int16)


class ForkMode(enum.Enum):
    """Who hears whom in a supervised call (only listening is implemented; see above)."""

    LISTEN = "listen"
    """The supervisor hears the monitored parties; nobody hears the supervisor."""


class MixInput(SourceDecoder):
    """A source leg's entry in a mix: the feed registered in the leg's ``_feeds``."""

    __slots__ = ("source", "target")

    def __init__(
        self, source: Stream, target: Stream, formats: Mapping[int, CodecInfo], out_rate: int
    ) -> None:
        super().__init__(source.stream_id, formats, out_rate)
        self.source = source
        """The leg whose packets feed the mix."""
        self.target = target
        """The stream the mix sends out of (what ``Relay.remove_fork`` matches on)."""


@dataclass(frozen=True, slots=True)
class MixStats:
    """Counters of a mix fork (the target's own packet counters are in its ``StreamStats``)."""

    target: int
    """The stream the mix sends out of."""
    output: OutputFormat
    """The codec and payload type sent."""
    mode: ForkMode
    ticks: int
    """20 ms frames produced (each one packet unless encoding failed)."""
    packets_sent: int
    """Packets handed to the target (its ``packets_out`` and ``send_errors`` tell the rest)."""
    encode_errors: int
    skipped_ticks: int
    """Frames skipped because the media loop was more than 100 ms late."""
    tick_errors: int
    """Unexpected exceptions caught by the adapter around a tick."""
    sources: tuple[SourceStats, ...]
    """Per source leg: packets, concealed frames, decode errors …"""


class MixFork:
    """N source legs decoded, mixed and re-encoded into one RTP stream out of ``target``.

    Args:
        target: the stream the output is sent out of (the supervisor's stream).
        output: the codec and payload type the target's device accepted.
        codec: ``output`` resolved.
        encoder: a fresh encoder for ``codec``.
        restamper: the target's output identity (shared with a zero-copy fork into it).
        ssrc: the internal SSRC of this mix's packets before re-stamping.
        mode: see :class:`ForkMode`.
    """

    def __init__(
        self, target: Stream, output: OutputFormat, codec: CodecInfo, encoder: Encoder,
        restamper: Restamper, *, ssrc: int, mode: ForkMode = ForkMode.LISTEN,
    ) -> None:  # fmt: skip
        self.target = target
        self.output = output
        self.mode = mode
        self.inputs: dict[int, MixInput] = {}
        """The sources by stream id."""
        self._encoder = encoder
        self._rewrite = restamper.rewrite
        self._rate = codec.sample_rate
        self._step = codec.timestamp_step
        self._silence = np.zeros(codec.frame_samples, dtype=np.int16)
        self._pt = output.payload_type
        self._ssrc = ssrc & 0xFFFFFFFF
        self._seq = 0
        self._ts = 0
        self._origin: float | None = None
        self._n = 0
        self._sent_any = False
        self.closed = False
        self.ticks = self.packets_sent = self.encode_errors = 0
        self.skipped_ticks = self.tick_errors = 0

    # -- wiring (the relay calls these) --------------------------------------------------------

    def add_input(self, source: Stream, formats: Mapping[int, CodecInfo], now: float) -> MixInput:
        """Add a source leg; the first one (re)starts the 20 ms grid one frame after ``now``."""
        entry = MixInput(source, self.target, formats, self._rate)
        self.inputs[source.stream_id] = entry
        if self._origin is None:
            self._origin, self._n = now, 1
            if self._sent_any:  # a new internal SSRC: the restamper rebases on real time
                self._ssrc = (self._ssrc + 1) & 0xFFFFFFFF
        return entry

    def remove_input(self, stream_id: int) -> MixInput | None:
        """Forget a source; without sources the mix has no deadline."""
        entry = self.inputs.pop(stream_id, None)
        if not self.inputs:
            self._origin = None
        return entry

    def close(self) -> None:
        """Stop for good (the target or the mix was removed)."""
        self.inputs.clear()
        self._origin = None
        self.closed = True

    # -- clock ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the next frame is due, or ``None`` while the mix has no source."""
        if self._origin is None:
            return None
        return self._origin + self._n * FRAME

    def tick(self, now: float) -> int:
        """Produce every frame due at ``now`` (at most :data:`MAX_CATCH_UP`); returns how many."""
        origin = self._origin
        if origin is None:
            return 0
        due = math.floor((now + EARLY - origin) / FRAME) - self._n + 1
        if due <= 0:
            return 0
        if due > MAX_CATCH_UP:
            self._skip(due - MAX_CATCH_UP)
            due = MAX_CATCH_UP
        for _ in range(due):
            self._emit(origin + self._n * FRAME)
            self._n += 1
        return due

    def _skip(self, count: int) -> None:
        self._n += count
        self._ts = (self._ts + count * self._step) & 0xFFFFFFFF
        self.skipped_ticks += count
        assert self._origin is not None
        last = self._origin + (self._n - 1) * FRAME
        for entry in self.inputs.values():
            entry.skip(last)

    def _emit(self, deadline: float) -> None:
        """Mix one frame of every source, encode it and send it out of the target."""
        frames = []
        for entry in self.inputs.values():
            pcm = entry.frame(deadline)
            if pcm is not None:
                frames.append(pcm)
        if not frames:
            pcm = self._silence
        elif len(frames) == 1:
            pcm = frames[0]
        else:
            pcm = _mix(frames)
        self.ticks += 1
        ts = self._ts
        self._ts = (ts + self._step) & 0xFFFFFFFF
        try:
            payload = self._encoder.encode(pcm)
        except CodecError:
            self.encode_errors += 1
            return
        packet = bytearray(_HEADER.pack(0x80, self._pt, self._seq, ts, self._ssrc))
        packet += payload
        self._seq = (self._seq + 1) & 0xFFFF
        self._rewrite(packet, deadline)
        self._sent_any = True
        self.packets_sent += 1
        self.target.send_rtp(packet)

    # -- stats ---------------------------------------------------------------------------------

    def stats(self) -> MixStats:
        """A snapshot of the mix's counters and each source's."""
        return MixStats(
            target=self.target.stream_id, output=self.output, mode=self.mode, ticks=self.ticks,
            packets_sent=self.packets_sent, encode_errors=self.encode_errors,
            skipped_ticks=self.skipped_ticks, tick_errors=self.tick_errors,
            sources=tuple(entry.stats() for entry in self.inputs.values()),
        )  # fmt: skip
