"""One received RTP stream turned into exactly one 20 ms PCM frame per playout tick.

Theory of operation
-------------------
Packets go into a :class:`~callwatch.media.jitter.JitterBuffer` as they arrive
(:meth:`StreamDecoder.push`, the receive path: one comparison and one buffer insert). On every
playout tick the caller asks for one frame (:meth:`StreamDecoder.next_frame` with the tick's
time); the decoder then

1. pops what the jitter buffer has due by then — normally one item per tick, since both run
   20 ms grids on the same clock — and decodes each packet, or conceals a missing one with the
   codec's PLC (libopus PLC, repeat-and-fade for G.711/G.722); after
   :data:`SILENCE_AFTER` concealed frames in a row it plays plain silence instead;
2. converts to the output rate with a stateful :class:`~callwatch.media.resample.Resampler`
   (integer ratios: 8, 16 and 48 kHz) and appends to a small PCM backlog;
3. takes exactly one output frame from the backlog, filling any shortfall with silence (before
   the first packet, or when the two grids' phases meet), and trims a backlog that grew past
   :data:`MAX_BACKLOG_FRAMES` (after a stalled caller) so latency stays bounded.

So every call returns one frame whatever the network did: reordering and jitter are absorbed
by the jitter buffer, loss is concealed, clock drift is corrected by the buffer's occasional
inserted or dropped frame, and a new SSRC (RFC 3550 §8.2) restarts the decoder. Pure: no
sockets, no clock — time comes in as ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from callwatch.client.negotiation import StreamMedia
from callwatch.client.rtp_session import ReceivedRtp
from callwatch.media.codecs.base import CodecError, Decoder, PcmArray
from callwatch.media.codecs.registry import CodecInfo, codec_for
from callwatch.media.jitter import (
    JitterBuffer,
    JitterConfig,
    JitterStats,
    MissingFrame,
    PlayoutFrame,
    PushResult,
)
from callwatch.media.resample import Resampler

__all__ = [
    "FRAME_SECONDS",
    "OUTPUT_RATES",
    "DecoderStats",
    "StreamDecoder",
    "StreamFormat",
]

FRAME_SECONDS = 0.02
"""Duration of every output frame (one playout tick)."""
OUTPUT_RATES = (8000, 16000, 48000)
"""Output rates reachable from every codec's rate by an integer ratio."""
SILENCE_AFTER = 10
"""Consecutive concealed frames (200 ms) after which silence replaces the codec's PLC."""
MAX_BACKLOG_FRAMES = 3
"""Decoded frames allowed to wait; more (a stalled caller) are trimmed to keep latency low."""


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What the packets of one stream are: the negotiated voice codec and packet time."""

    payload_type: int
    encoding: str
    """SDP encoding name (``PCMU``, ``opus`` …)."""
    clock_rate: int
    """RTP clock rate from the rtpmap (48000 for ``OPUS/48000/2``, 16000 for RingCentral's 109)."""
    ptime: float = FRAME_SECONDS
    """Packet interval in seconds."""

    @classmethod
    def of(cls, media: StreamMedia) -> StreamFormat:
        """The format a negotiated stream receives."""
        return cls(media.payload_type, media.encoding, media.clock_rate, media.ptime)


@dataclass(frozen=True, slots=True)
class DecoderStats:
    """Counters of a :class:`StreamDecoder`."""

    packets: int
    """Packets of the voice payload type handed to the jitter buffer."""
    foreign: int
    """Packets of other payload types (telephone-event, comfort noise …), ignored."""
    decoded: int
    """Frames decoded from packets."""
    concealed: int
    """Frames the codec's PLC stood in for."""
    silent: int
    """Output frames (partly) filled with silence: before the first packet, long gaps."""
    decode_errors: int
    """Packets the codec refused (concealed instead)."""
    trimmed: int
    """Output samples dropped to keep the backlog bounded."""
    resets: int
    """Restarts: a new SSRC or confirmed timestamp jump after the first packet, a codec change."""
    jitter: JitterStats
    """The jitter buffer's counters (loss, late, duplicates, inserted, dropped …)."""


@dataclass(slots=True)
class _Counters:
    packets: int = 0
    foreign: int = 0
    decoded: int = 0
    concealed: int = 0
    silent: int = 0
    decode_errors: int = 0
    trimmed: int = 0
    resets: int = 0


class StreamDecoder:
    """Jitter buffer → decoder with PLC → resampler → one frame per tick (see module docstring).

    Args:
        fmt: the stream's codec and packet time.
        sample_rate: output rate, one of :data:`OUTPUT_RATES`; None keeps the codec's own rate.
        initial_delay: playout delay of the first packet, in seconds.
        max_delay: upper bound of the adaptive playout delay, in seconds.

    Raises:
        ValueError: ``sample_rate`` is not one of :data:`OUTPUT_RATES`.
    """

    def __init__(
        self,
        fmt: StreamFormat,
        *,
        sample_rate: int | None = 16000,
        initial_delay: float = 0.06,
        max_delay: float = 0.4,
    ) -> None:
        if sample_rate is not None and sample_rate not in OUTPUT_RATES:
            raise ValueError(f"output rate must be one of {OUTPUT_RATES}, not {sample_rate}")
        self._wanted_rate = sample_rate
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._counters = _Counters()
        self._backlog: list[tuple[PcmArray, bool]] = []
        self._queued = 0
        self._configure(fmt)

    # -- configuration ----------------------------------------------------------------------------

    def _configure(self, fmt: StreamFormat) -> None:
        self.format = fmt
        self._payload_type = fmt.payload_type
        self._codec: CodecInfo | None
        try:
            self._codec = codec_for(fmt.encoding, fmt.clock_rate)
        except CodecError:
            self._codec = None
        native = self._codec.sample_rate if self._codec else (self._wanted_rate or 8000)
        self._native_rate = native
        self.sample_rate = self._wanted_rate or native
        """Rate of the frames :meth:`next_frame` returns."""
        self.frame_samples = round(self.sample_rate * FRAME_SECONDS)
        """Samples in each returned frame."""
        self._conceal_samples = round(native * fmt.ptime)
        frames = max(MAX_BACKLOG_FRAMES, math.ceil(2 * fmt.ptime / FRAME_SECONDS))
        self._max_backlog = frames * self.frame_samples
        self._jitter = JitterBuffer(
            JitterConfig(
                clock_rate=fmt.clock_rate,
                frame_duration=fmt.ptime,
                initial_delay=self._initial_delay,
                min_delay=min(FRAME_SECONDS, self._initial_delay),
                max_delay=self._max_delay,
            )
        )
        self._backlog.clear()
        self._queued = 0
        self._restart_decoder()

    def _restart_decoder(self) -> None:
        self._decoder: Decoder | None = self._codec.new_decoder() if self._codec else None
        rate = self.sample_rate
        self._resampler = Resampler(self._native_rate, rate) if self._native_rate != rate else None
        self._gap = SILENCE_AFTER  # nothing decoded yet: misses are silence, not PLC
        self._resync = False

    def set_format(self, fmt: StreamFormat) -> None:
        """Switch to a new codec or packet time (a re-INVITE renegotiated the stream)."""
        if fmt != self.format:
            self._counters.resets += 1
            self._configure(fmt)

    @property
    def decodable(self) -> bool:
        """False when the negotiated codec has no decoder here (frames are then silence)."""
        return self._codec is not None

    @property
    def stats(self) -> DecoderStats:
        """A snapshot of the counters."""
        c, jitter = self._counters, self._jitter.stats
        return DecoderStats(
            packets=c.packets,
            foreign=c.foreign,
            decoded=c.decoded,
            concealed=c.concealed,
            silent=c.silent,
            decode_errors=c.decode_errors,
            trimmed=c.trimmed,
            resets=c.resets + jitter.resets,
            jitter=jitter,
        )

    # -- receive path -----------------------------------------------------------------------------

    def push(self, packet: ReceivedRtp) -> None:
        """File one received packet (other payload types are counted and ignored)."""
        header = packet.header
        if header.payload_type != self._payload_type:
            self._counters.foreign += 1
            return
        self._counters.packets += 1
        result = self._jitter.push(
            header.sequence_number,
            header.timestamp,
            packet.payload,
            packet.arrival,
            ssrc=header.ssrc,
        )
        if result is PushResult.RESYNCED:
            self._resync = True

    # -- playout ----------------------------------------------------------------------------------

    def next_frame(self, now: float) -> tuple[PcmArray, bool]:
        """The frame of the playout tick at ``now``: ``(pcm, concealed)``.

        ``pcm`` always holds :attr:`frame_samples` int16 samples at :attr:`sample_rate`;
        ``concealed`` is True when any of it is PLC or silence rather than received audio.
        """
        if self._resync:
            self._restart_decoder()
        for item in self._jitter.pop(now):
            self._play(item)
        return self._take()

    def _play(self, item: PlayoutFrame | MissingFrame) -> None:
        pcm = self._decode(item.payload) if isinstance(item, PlayoutFrame) else None
        if pcm is not None:
            self._gap = 0
            self._counters.decoded += 1
            self._append(pcm, concealed=False)
            return
        self._gap += 1
        self._append(self._conceal(), concealed=True)

    def _decode(self, payload: bytes) -> PcmArray | None:
        if self._decoder is None:
            return None
        try:
            pcm = self._decoder.decode(payload)
        except CodecError:
            self._counters.decode_errors += 1
            return None
        return pcm if pcm.ndim == 1 and pcm.shape[0] else None

    def _conceal(self) -> PcmArray:
        if self._decoder is not None and self._gap <= SILENCE_AFTER:
            try:
                pcm = self._decoder.conceal(self._conceal_samples)
                self._counters.concealed += 1
                return pcm
            except CodecError:
                self._counters.decode_errors += 1
        return np.zeros(self._conceal_samples, dtype=np.int16)

    def _append(self, pcm: PcmArray, *, concealed: bool) -> None:
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        if pcm.shape[0]:
            self._backlog.append((pcm, concealed))
            self._queued += pcm.shape[0]

    def _take(self) -> tuple[PcmArray, bool]:
        need = self.frame_samples
        if self._queued < need:
            self._counters.silent += 1
            self._backlog.append((np.zeros(need - self._queued, dtype=np.int16), True))
            self._queued = need
        pieces: list[PcmArray] = []
        concealed = False
        while need:
            chunk, flag = self._backlog[0]
            concealed = concealed or flag
            if chunk.shape[0] <= need:
                self._backlog.pop(0)
                pieces.append(chunk)
                need -= chunk.shape[0]
            else:
                pieces.append(chunk[:need])
                self._backlog[0] = (chunk[need:], flag)
                need = 0
        self._queued -= self.frame_samples
        if self._queued > self._max_backlog:
            self._trim(self._queued - self.frame_samples)
        frame = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return frame, concealed

    def _trim(self, samples: int) -> None:
        self._counters.trimmed += samples
        self._queued -= samples
        while samples:
            chunk, flag = self._backlog[0]
            if chunk.shape[0] <= samples:
                self._backlog.pop(0)
                samples -= chunk.shape[0]
            else:
                self._backlog[0] = (chunk[samples:], flag)
                samples = 0
