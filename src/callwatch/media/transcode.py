"""One source of a mix fork: RTP packets of one leg in, PCM frames on the mix's clock out.

Theory of operation
-------------------
A :class:`SourceDecoder` sits between a monitored leg and a
:class:`~callwatch.media.mixfork.MixFork`. It has two sides that run at different times:

* **Receive side (hot path).** :meth:`SourceDecoder.forward` is called by the leg's
  :class:`~callwatch.media.stream.Stream` for every valid plain RTP packet it receives. It only
  appends ``(packet, arrival time)`` to a bounded inbox (:data:`INBOX_LIMIT`); when the inbox
  is full the oldest packet is dropped and counted. No parsing, decoding or allocation beyond
  one tuple happens there, so a mix never slows the call's own media.
* **Tick side (every 20 ms).** :meth:`SourceDecoder.frame` drains the inbox — parses each
  header, ignores payload types the leg did not negotiate as audio (``telephone-event``, CN),
  files the payload in a small adaptive :class:`~callwatch.media.jitter.JitterBuffer` (reorder,
  duplicates, SSRC changes, timestamp jumps) — then pops the frames due at the mix's deadline,
  decodes them (or conceals a missing one with the codec's PLC), converts them to the output
  rate with a stateful :class:`~callwatch.media.resample.Resampler`, and returns exactly one
  20 ms frame at the output rate from a short sample FIFO.

The jitter buffer runs its own 20 ms grid anchored on the first packet; the FIFO absorbs the
phase difference with the mix's grid (a tick may get 0 or 2 frames from the buffer) and holds
at most :data:`FIFO_FRAMES` frames, trimming the oldest beyond that. A source that stops
sending is concealed for :data:`MAX_PLC_FRAMES` frames and then contributes silence without
calling its decoder. A new SSRC (or a confirmed timestamp jump) resets the decoder; a payload
type that maps to another codec (a re-INVITE changed it) rebuilds the pipeline.

Formats are SDP rtpmap triples ``(encoding, clock rate, channels)`` resolved through
:func:`~callwatch.media.codecs.registry.codec_for`; anything it does not know raises
:class:`UnsupportedFormat` (SIP 488). Sources are expected at 20 ms packetisation.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from callwatch.media.codecs.base import CodecError, Decoder, PcmArray
from callwatch.media.codecs.registry import CodecInfo, codec_for
from callwatch.media.jitter import JitterBuffer, JitterConfig, PlayoutFrame, PushResult
from callwatch.media.ports import MediaError
from callwatch.media.resample import Resampler

__all__ = [
    "FIFO_FRAMES",
    "INBOX_LIMIT",
    "MAX_PLC_FRAMES",
    "NOT_AUDIO",
    "OutputFormat",
    "OutputSpec",
    "RtpFormat",
    "SourceDecoder",
    "SourceFormat",
    "SourceStats",
    "UnsupportedFormat",
    "resolve_output",
    "resolve_source",
    "warm_up",
]

INBOX_LIMIT = 16
"""Packets a source may queue between two ticks (320 ms at 20 ms); the oldest go first."""
FIFO_FRAMES = 3
"""Decoded 20 ms frames a source may hold ahead of the mix before the oldest are trimmed."""
MAX_PLC_FRAMES = 5
"""Consecutive missing frames concealed by the codec's PLC (100 ms); silence after that."""

NOT_AUDIO = frozenset({"TELEPHONE-EVENT", "CN"})
"""rtpmap names a source may list that carry no audio to mix (RFC 4733 events, RFC 3389)."""

_FIXED = struct.Struct("!BBHII")
"""V/P/X/CC, M/PT, sequence, timestamp, SSRC (RFC 3550 §5.1)."""


class RtpFormat(NamedTuple):
    """One SDP ``a=rtpmap`` entry: ``encoding/clock_rate[/channels]``."""

    encoding: str
    """Encoding name, any case (``PCMU``, ``G722``, ``opus``)."""
    clock_rate: int
    """RTP clock rate (8000 for G.722, 16000 for RingCentral's ``OPUS/16000``)."""
    channels: int | None = None
    """Channel count from the rtpmap (``2`` for ``OPUS/48000/2``), ``None`` when omitted."""


class OutputFormat(NamedTuple):
    """The codec a mix fork sends: what the target leg's answer accepted, with its PT."""

    encoding: str
    """Encoding name."""
    clock_rate: int
    """RTP clock rate."""
    channels: int | None
    """rtpmap channels (``None`` when omitted)."""
    payload_type: int
    """RTP payload type to send with (from the target's SDP answer)."""


SourceFormat = Mapping[int, tuple[str, int, int | None]]
"""A source leg's audio payload types: PT → ``(encoding, clock rate, channels)``
(an :class:`RtpFormat` fits). Payload types missing here (``telephone-event``) are ignored."""
OutputSpec = tuple[str, int, int | None, int]
"""``(encoding, clock rate, channels, payload type)``; an :class:`OutputFormat` fits."""


class UnsupportedFormat(MediaError):
    """A mix was asked to decode or encode a codec (or payload type) it cannot handle."""

    status_hint = 488


def _resolve(fmt: tuple[str, int, int | None]) -> CodecInfo:
    try:
        return codec_for(*fmt)
    except CodecError as exc:
        raise UnsupportedFormat(str(exc)) from None


def _check_pt(pt: int) -> None:
    if not 0 <= pt <= 127:
        raise UnsupportedFormat(f"payload type {pt} is outside 0-127")


def resolve_source(formats: SourceFormat) -> dict[int, CodecInfo]:
    """Resolve a source's payload-type map; ``telephone-event`` and ``CN`` entries are dropped
    (their packets are ignored like any payload type not in the map).

    Raises:
        UnsupportedFormat: an unknown codec, a payload type outside 0–127, or no audio codec.
    """
    resolved = {}
    for pt, fmt in formats.items():
        _check_pt(pt)
        if fmt[0].upper() not in NOT_AUDIO:
            resolved[pt] = _resolve(fmt)
    if not resolved:
        raise UnsupportedFormat("a mix source needs at least one audio payload type")
    return resolved


def resolve_output(output: OutputSpec) -> tuple[OutputFormat, CodecInfo]:
    """Resolve a mix's output codec (raises :class:`UnsupportedFormat` like the above).

    The returned format is canonical (upper-case name, the registered channel count), so two
    spellings of one rtpmap compare equal.
    """
    encoding, clock_rate, channels, payload_type = output
    _check_pt(payload_type)
    info = _resolve((encoding, clock_rate, channels))
    return OutputFormat(info.encoding_name, info.clock_rate, info.channels, payload_type), info


def warm_up(output: OutputSpec, sources: Iterable[SourceFormat]) -> None:
    """Validate formats and load their codec libraries once per process.

    Opening the first PyAV codec of a kind imports and initialises its library (milliseconds);
    the engine calls this in a worker thread so that cost never lands on the media loop.
    """
    _warm(resolve_output(output)[1])
    for formats in sources:
        for info in resolve_source(formats).values():
            _warm(info)


@cache
def _warm(info: CodecInfo) -> None:
    info.new_encoder()
    info.new_decoder()


def _jitter_config(clock_rate: int) -> JitterConfig:
    # Short delays: the supervisor's own device jitter-buffers again; reorder is what matters.
    return JitterConfig(clock_rate=clock_rate, initial_delay=0.03, min_delay=0.01,
                        max_delay=0.2, window=50, capacity=16)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters of one source of a mix fork."""

    stream_id: int
    """The source leg."""
    received: int
    """Packets handed to the mix by the leg."""
    overflow: int
    """Packets dropped (oldest first) because the inbox was full."""
    ignored: int
    """Packets of payload types that are not negotiated audio (telephone-event, CN …)."""
    malformed: int
    """Packets whose header or padding could not be parsed."""
    decoded: int
    """Frames decoded."""
    concealed: int
    """Frames made up by the codec's PLC (loss, late packets, a stalled sender)."""
    silent: int
    """Frames of silence (nothing received yet, or a long gap)."""
    decode_errors: int
    """Payloads (or PLC calls) the codec rejected."""
    resyncs: int
    """Decoder resets: a new SSRC, a confirmed timestamp jump or a codec change."""
    trimmed: int
    """Decoded frames dropped because the source ran ahead of the mix."""


class SourceDecoder:
    """One source leg of a mix: inbox, jitter buffer, decoder, resampler and sample FIFO.

    Args:
        stream_id: the source leg (for stats).
        formats: the leg's audio payload types, resolved.
        out_rate: the mix's PCM rate (the output codec's sample rate).
        limit: inbox size in packets.
    """

    __slots__ = (
        "_codec", "_decoder", "_fifo", "_fifo_len", "_formats", "_inbox", "_jb", "_limit",
        "_misses", "_out_rate", "_out_samples", "_playing", "_resampler", "concealed",
        "decode_errors", "decoded", "ignored", "malformed", "overflow", "received", "resyncs",
        "silent", "stream_id", "trimmed",
    )  # fmt: skip

    def __init__(
        self, stream_id: int, formats: Mapping[int, CodecInfo], out_rate: int, *,
        limit: int = INBOX_LIMIT,
    ) -> None:  # fmt: skip
        self.stream_id = stream_id
        self._inbox: deque[tuple[bytes, float]] = deque(maxlen=limit)
        self._limit = limit
        self._formats = dict(formats)
        self._out_rate = out_rate
        self._out_samples = out_rate // 50
        self._codec: CodecInfo | None = None
        self._jb: JitterBuffer | None = None
        self._decoder: Decoder | None = None
        self._resampler: Resampler | None = None
        self._fifo: deque[PcmArray] = deque()
        self._fifo_len = 0
        self._playing = False
        self._misses = 0
        self.received = self.overflow = self.ignored = self.malformed = 0
        self.decoded = self.concealed = self.silent = self.decode_errors = 0
        self.resyncs = self.trimmed = 0

    def set_formats(self, formats: Mapping[int, CodecInfo]) -> None:
        """Replace the payload-type map (the leg renegotiated); the pipeline follows lazily."""
        self._formats = dict(formats)

    # -- receive side: the hot path ------------------------------------------------------------

    def forward(self, data: bytes, now: float) -> None:
        """Queue one plain RTP packet the source leg received at ``now``."""
        self.received += 1
        inbox = self._inbox
        if len(inbox) == self._limit:
            self.overflow += 1  # the deque's maxlen drops the oldest
        inbox.append((data, now))

    # -- tick side ----------------------------------------------------------------------------

    def frame(self, deadline: float) -> PcmArray | None:
        """The next 20 ms of this source at the output rate, or ``None`` before it ever played.

        Args:
            deadline: the mix tick's time on the receive clock; frames the jitter buffer
                schedules at or before it are played.
        """
        if self._inbox:
            self._drain()
        jb = self._jb
        if jb is None:
            return None
        for item in jb.pop(deadline):
            if type(item) is PlayoutFrame:
                self._decode(item.payload)
            else:
                self._conceal()
        need = self._out_samples
        if self._fifo_len < need:
            if not self._playing:
                return None
            while self._fifo_len < need:  # the buffer's grid fell just after this tick
                self._conceal()
        return self._take(need)

    def skip(self, deadline: float) -> None:
        """Discard everything due up to ``deadline`` without decoding (the mix fell behind)."""
        if self._inbox:
            self._drain()
        if self._jb is not None:
            self._jb.pop(deadline)
        self._fifo.clear()
        self._fifo_len = 0

    def stats(self) -> SourceStats:
        """A snapshot of the counters."""
        return SourceStats(
            stream_id=self.stream_id, received=self.received, overflow=self.overflow,
            ignored=self.ignored, malformed=self.malformed, decoded=self.decoded,
            concealed=self.concealed, silent=self.silent, decode_errors=self.decode_errors,
            resyncs=self.resyncs, trimmed=self.trimmed,
        )  # fmt: skip

    def _drain(self) -> None:
        inbox = self._inbox
        while inbox:
            data, arrival = inbox.popleft()
            self._file(data, arrival)

    def _file(self, data: bytes, arrival: float) -> None:
        """Parse one packet and file its payload in the jitter buffer."""
        first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
        info = self._formats.get(second & 0x7F)
        if info is None:
            self.ignored += 1
            return
        start = 12 + 4 * (first & 0x0F)
        end = len(data)
        if first & 0x10 and end >= start + 4:  # header extension: 4-byte head + words
            start += 4 + 4 * ((data[start + 2] << 8) | data[start + 3])
        if first & 0x20:
            end -= data[-1]
        if end <= start:
            self.malformed += 1
            return
        if info is not self._codec and not self._switch(info):
            return
        assert self._jb is not None
        result = self._jb.push(seq, ts, data[start:end], arrival, ssrc=ssrc)
        if result is PushResult.RESYNCED and self._playing:
            self._reset_decoder(info)

    def _switch(self, info: CodecInfo) -> bool:
        """Rebuild the pipeline for another codec; False (counted) if it cannot be opened."""
        try:
            decoder = info.new_decoder()
        except CodecError:
            self.decode_errors += 1
            return False
        if self._codec is not None:
            self.resyncs += 1
        self._codec, self._decoder = info, decoder
        self._jb = JitterBuffer(_jitter_config(info.clock_rate))
        rate = info.sample_rate
        self._resampler = None if rate == self._out_rate else Resampler(rate, self._out_rate)
        return True

    def _reset_decoder(self, info: CodecInfo) -> None:
        self.resyncs += 1
        try:
            self._decoder = info.new_decoder()
        except CodecError:
            self.decode_errors += 1

    def _decode(self, payload: bytes) -> None:
        assert self._decoder is not None
        try:
            pcm = self._decoder.decode(payload)
        except CodecError:
            self.decode_errors += 1
            self._conceal()
            return
        self.decoded += 1
        self._misses = 0
        self._playing = True
        self._push(pcm)

    def _conceal(self) -> None:
        """One frame standing in for a missing one: the codec's PLC, then silence."""
        self._misses += 1
        if self._playing and self._misses <= MAX_PLC_FRAMES:
            assert self._decoder is not None and self._codec is not None
            try:
                pcm = self._decoder.conceal(self._codec.frame_samples)
            except CodecError:
                self.decode_errors += 1
            else:
                self.concealed += 1
                self._push(pcm)
                return
        self.silent += 1
        self._append(np.zeros(self._out_samples, dtype=np.int16))

    def _push(self, pcm: PcmArray) -> None:
        resampler = self._resampler
        self._append(pcm if resampler is None else resampler.process(pcm))

    def _append(self, pcm: PcmArray) -> None:
        self._fifo.append(pcm)
        self._fifo_len += pcm.shape[0]
        excess = self._fifo_len - FIFO_FRAMES * self._out_samples
        if excess > 0:
            whole = np.concatenate(self._fifo)[excess:]
            self._fifo.clear()
            self._fifo.append(whole)
            self._fifo_len = whole.shape[0]
            self.trimmed += -(-excess // self._out_samples)

    def _take(self, count: int) -> PcmArray:
        fifo = self._fifo
        head = fifo[0]
        if head.shape[0] == count:
            fifo.popleft()
        else:
            joined = np.concatenate(fifo) if len(fifo) > 1 else head
            head, rest = joined[:count], joined[count:]
            fifo.clear()
            if rest.shape[0]:
                fifo.append(rest)
        self._fifo_len -= count
        return head
