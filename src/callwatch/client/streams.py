"""Per-party audio: the decoded PCM of one monitored party as an async stream of frames.

Theory of operation
-------------------
A :class:`PartyAudio` owns one :class:`~callwatch.client.stream_decoder.StreamDecoder` and
listens to a :class:`~callwatch.client.playout.PlayoutClock`:

- receive path: its RTP session hands every packet to :meth:`PartyAudio.push`, which files it in
  the jitter buffer and returns — no await, no allocation beyond the packet, no logging;
- playout: on every 20 ms tick of the shared clock it takes exactly one frame from the decoder
  (received audio, PLC, or silence when nothing came) and puts an :class:`AudioFrame` into each
  subscriber's bounded queue. A full queue drops its oldest frame and counts it, so a slow
  consumer never blocks the receive path or the other consumers.

Frames carry a ``timestamp`` on the clock of the whole supervision: ``(tick − origin) · 20 ms``
where ``origin`` is the tick the supervision started at (shared by every party of a telephony
session, even across the two INVITEs of dual channel). Frames of different parties with the
same timestamp were played at the same instant; consecutive frames of one party differ by
exactly 20 ms — the timeline has no gaps while the stream lives.

``async for frame in party_audio`` reads the primary queue, which exists from the start so no
frame is missed; :meth:`PartyAudio.subscribe` adds independent queues (a recorder and a
transcriber on the same party). Iteration ends once the stream is closed (the call ended) and
the queue is drained.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from callwatch.client.playout import PlayoutClock
from callwatch.client.rtp_session import ReceivedRtp, RtpSession
from callwatch.client.stream_decoder import FRAME_SECONDS, DecoderStats, StreamDecoder, StreamFormat
from callwatch.media.codecs.base import PcmArray

__all__ = [
    "DEFAULT_MAX_QUEUED",
    "FRAME_SECONDS",
    "AudioFrame",
    "AudioSubscription",
    "PartyAudio",
    "PartyStats",
    "StreamFormat",
]

DEFAULT_MAX_QUEUED = 500
"""Frames a subscriber may fall behind (10 s) before its oldest frames are dropped."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """20 ms of one party's decoded audio."""

    party_id: str
    """The monitored party (RingCentral telephony party id)."""
    pcm: PcmArray
    """Mono int16 samples (``sample_rate · 0.02`` of them), read-only."""
    sample_rate: int
    timestamp: float
    """Seconds since the supervision started, on the clock shared by all its parties."""
    sequence: int
    """0, 1, 2 … per party stream."""
    concealed: bool = False
    """True when (part of) the frame is loss concealment or silence, not received audio."""

    @property
    def tick(self) -> int:
        """The timestamp in whole frames: equal ticks of two parties are the same instant."""
        return round(self.timestamp / FRAME_SECONDS)

    @property
    def duration(self) -> float:
        """Seconds of audio in the frame."""
        return int(self.pcm.shape[0]) / self.sample_rate


class AudioSubscription:
    """One consumer's bounded queue of frames; an async iterator (see the module docstring).

    Args:
        max_queued: frames kept before the oldest is dropped.
    """

    def __init__(self, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self._frames: deque[AudioFrame] = deque()
        self._max = max_queued
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """Frames dropped because this consumer fell behind."""

    @property
    def closed(self) -> bool:
        """True once no more frames will come (what is queued can still be read)."""
        return self._closed

    @property
    def pending(self) -> int:
        """Frames queued and not read yet."""
        return len(self._frames)

    def put(self, frame: AudioFrame) -> None:
        """Queue a frame, dropping the oldest when full (never blocks)."""
        if self._closed:
            return
        if len(self._frames) >= self._max:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def close(self) -> None:
        """End the stream: readers get what is queued, then StopAsyncIteration."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AudioSubscription:
        return self

    async def __anext__(self) -> AudioFrame:
        while not self._frames:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()


@dataclass(frozen=True, slots=True)
class PartyStats:
    """What one party's stream did so far."""

    party_id: str
    frames: int
    """Frames played (one per tick)."""
    concealed_frames: int
    """Frames that were (partly) concealment or silence."""
    dropped: int
    """Frames dropped by slow consumers, over all subscriptions."""
    decoder: DecoderStats
    """Packets, loss, jitter and decoder counters."""


class PartyAudio:
    """The decoded audio of one monitored party (see the module docstring).

    Starts ticking on ``clock`` at once; feed it packets with :meth:`push` (or
    :meth:`attach` an RTP session) and read frames with ``async for``.

    Args:
        party_id: the monitored party this stream carries.
        fmt: the negotiated codec of the stream.
        clock: the playout clock shared by every stream of the softphone.
        origin_tick: tick at which the supervision started (timestamp 0); default: now.
        sample_rate: rate of the frames (8000, 16000, 48000), None for the codec's own.
        max_queued: frames each subscriber may fall behind.
    """

    def __init__(
        self,
        party_id: str,
        fmt: StreamFormat,
        *,
        clock: PlayoutClock,
        origin_tick: int | None = None,
        sample_rate: int | None = 16000,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.party_id = party_id
        self._decoder = StreamDecoder(fmt, sample_rate=sample_rate)
        self._max_queued = max_queued
        self._primary = AudioSubscription(max_queued)
        self._subscriptions = [self._primary]
        self._clock = clock
        self._closed = False
        self._sequence = 0
        self._concealed = 0
        self._dropped_gone = 0
        first = clock.add(self)
        self.origin_tick = first if origin_tick is None else origin_tick
        """Tick of timestamp 0."""

    def __repr__(self) -> str:
        return f"<PartyAudio {self.party_id} {self.format.encoding}/{self.format.clock_rate}>"

    # -- properties -------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Rate of the frames."""
        return self._decoder.sample_rate

    @property
    def format(self) -> StreamFormat:
        """The codec the stream currently receives."""
        return self._decoder.format

    @property
    def closed(self) -> bool:
        """True once the stream ended."""
        return self._closed

    @property
    def stats(self) -> PartyStats:
        """A snapshot of the counters."""
        dropped = self._dropped_gone + sum(s.dropped for s in self._subscriptions)
        return PartyStats(
            party_id=self.party_id,
            frames=self._sequence,
            concealed_frames=self._concealed,
            dropped=dropped,
            decoder=self._decoder.stats,
        )

    # -- input ------------------------------------------------------------------------------------

    def attach(self, rtp: RtpSession) -> None:
        """Take every packet ``rtp`` receives from now on (and any it kept so far)."""
        rtp.set_packet_handler(self.push)

    def push(self, packet: ReceivedRtp) -> None:
        """One received RTP packet (the receive path: returns at once)."""
        if not self._closed:
            self._decoder.push(packet)

    def set_format(self, fmt: StreamFormat) -> None:
        """The stream was renegotiated (re-INVITE) to ``fmt``."""
        self._decoder.set_format(fmt)

    # -- playout ----------------------------------------------------------------------------------

    def tick(self, index: int, at: float) -> None:
        """Play tick ``index`` (called by the clock): one frame to every subscriber."""
        if self._closed:
            return
        pcm, concealed = self._decoder.next_frame(at)
        pcm.setflags(write=False)  # one array is shared by every subscriber
        frame = AudioFrame(
            party_id=self.party_id,
            pcm=pcm,
            sample_rate=self._decoder.sample_rate,
            timestamp=(index - self.origin_tick) * FRAME_SECONDS,
            sequence=self._sequence,
            concealed=concealed,
        )
        self._sequence += 1
        self._concealed += concealed
        for subscription in self._subscriptions:
            subscription.put(frame)

    # -- output -----------------------------------------------------------------------------------

    def subscribe(self, max_queued: int | None = None) -> AudioSubscription:
        """A new independent queue of the frames played from now on."""
        subscription = AudioSubscription(max_queued or self._max_queued)
        if self._closed:
            subscription.close()
        else:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: AudioSubscription) -> None:
        """Stop feeding ``subscription`` (it ends once drained)."""
        subscription.close()
        if subscription in self._subscriptions and subscription is not self._primary:
            self._subscriptions.remove(subscription)
            self._dropped_gone += subscription.dropped

    def __aiter__(self) -> AudioSubscription:
        return self._primary

    def close(self) -> None:
        """End the stream: stop ticking; readers drain their queues, then iteration stops."""
        if self._closed:
            return
        self._closed = True
        self._clock.remove(self)
        for subscription in self._subscriptions:
            subscription.close()
