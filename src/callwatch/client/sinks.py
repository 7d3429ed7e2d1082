"""Where per-party audio goes: WAV recorders, the seed's raw file, a speaker.

Every sink is a :class:`FrameSink` — ``write(frame)`` for each
:class:`~callwatch.client.streams.AudioFrame` of any party, ``close()`` at the end — and
:func:`pump` feeds one from any number of party streams at once::

    recorder = StereoWavRecorder("call.wav", left_party=customer, right_party=agent)
    await pump(recorder, call.parties[customer], call.parties[agent])   # closes it at the end

Sinks that combine parties line their frames up by tick
(:class:`~callwatch.client.alignment.TickAligner`): a frame missing on one side becomes
silence on that side, never a shift of the other, and ticks are written in order without gaps.
Files are written through :class:`~callwatch.media.wav.WavWriter` /
:class:`~callwatch.media.wav.RawWriter`, flushed every ``flush_interval`` seconds of audio
(0.5 s by default, i.e. at least once per second of the call), so a ``kill -9`` leaves a valid
file holding everything up to the last flush. Writes are small and synchronous; nothing here
blocks a stream (a sink's slowness only fills its own subscription queue).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterable
from pathlib import Path
from types import TracebackType
from typing import Protocol

from callwatch.client.alignment import DEFAULT_WINDOW, RateConverter, TickAligner, mix
from callwatch.client.speaker import SpeakerSink
from callwatch.client.streams import FRAME_SECONDS, AudioFrame
from callwatch.media.codecs.base import PcmArray
from callwatch.media.wav import RawWriter, WavWriter, interleave

__all__ = [
    "FLUSH_INTERVAL",
    "RAW_CHANNELS",
    "RAW_SAMPLE_RATE",
    "FrameSink",
    "PerPartyWavRecorder",
    "RawFileSink",
    "SpeakerSink",
    "StereoWavRecorder",
    "pump",
]

FLUSH_INTERVAL = 0.5
"""Seconds of audio between two flushes of a recording (crash safety)."""
RAW_SAMPLE_RATE = 8000
"""Rate of the seed's ``call.raw`` (signed 16-bit little-endian, ``play … -r 8000``)."""
RAW_CHANNELS = 1
"""Channels of ``call.raw``: every party mixed into one, as the seed's WebRTC track was."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FrameSink(Protocol):
    """Anything that takes audio frames (recorders, transcribers, speakers)."""

    def write(self, frame: AudioFrame) -> None:
        """Take one frame of any party; must not block."""
        ...

    def close(self) -> None:
        """No more frames: finish (flush files, stop players)."""
        ...


async def pump(sink: FrameSink, *sources: AsyncIterable[AudioFrame], close: bool = True) -> None:
    """Write every frame of ``sources`` (read concurrently) to ``sink`` until all have ended,
    then close the sink (unless ``close`` is false), also on error or cancellation."""

    async def drain(source: AsyncIterable[AudioFrame]) -> None:
        async for frame in source:
            sink.write(frame)

    try:
        async with asyncio.TaskGroup() as group:
            for source in sources:
                group.create_task(drain(source))
    finally:
        if close:
            sink.close()


class _Sink:
    """Context-manager plumbing shared by the sinks."""

    def write(self, frame: AudioFrame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StereoWavRecorder(_Sink):
    """Two parties in one stereo WAV: ``left_party`` left, ``right_party`` right.

    The convention is customer left, agent right. Frames of other parties are ignored; frames
    at another rate are resampled.

    Args:
        path: the WAV file to create (truncated).
        left_party: party id of the left channel (the customer).
        right_party: party id of the right channel (the agent).
        sample_rate: the file's rate.
        flush_interval: seconds of audio between flushes.
        window: ticks a tick waits for a lagging side before that side is written as silence.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        left_party: str,
        right_party: str,
        sample_rate: int = 16000,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.left_party = left_party
        self.right_party = right_party
        self._aligner = TickAligner((left_party, right_party), window=window)
        self._convert = RateConverter(sample_rate)
        self._writer = WavWriter(path, sample_rate, 2, flush_interval=flush_interval)
        self.path = self._writer.path
        self.ticks_written = 0
        """20 ms ticks written (the file's duration in frames)."""
        self.silence_filled = 0
        """Channel-frames written as silence because that side had no frame."""

    @property
    def late_frames(self) -> int:
        """Frames dropped because their tick was already written."""
        return self._aligner.late

    @property
    def first_timestamp(self) -> float | None:
        """Supervision time (seconds) of the file's first sample."""
        first = self._aligner.first_tick
        return None if first is None else first * FRAME_SECONDS

    @property
    def sample_rate(self) -> int:
        """The file's rate."""
        return self._convert.sample_rate

    def write(self, frame: AudioFrame) -> None:
        """File one frame; writes every tick it completes."""
        pcm = self._convert.convert(frame.party_id, frame.pcm, frame.sample_rate)
        for aligned in self._aligner.add(frame.party_id, frame.tick, pcm):
            self._write_tick(aligned.frames)

    def _write_tick(self, frames: dict[str, PcmArray]) -> None:
        left, right = frames.get(self.left_party), frames.get(self.right_party)
        self.silence_filled += (left is None) + (right is None)
        self._writer.write(interleave(self._side(left), self._side(right)))
        self.ticks_written += 1

    def _side(self, pcm: PcmArray | None) -> PcmArray:
        return self._convert.silence() if pcm is None else self._convert.fit(pcm)

    def close(self) -> None:
        """Write what is pending (missing sides as silence), flush and close the file."""
        for aligned in self._aligner.flush():
            self._write_tick(aligned.frames)
        self._writer.close()


class PerPartyWavRecorder(_Sink):
    """One mono WAV per party in ``directory`` (``<party id>.wav``), all on one timeline.

    Every file starts at the first tick this recorder saw from any party (later parties get
    leading silence) and gaps (frames dropped by a slow reader) are filled with silence, so the
    files line up sample for sample.

    Args:
        directory: where the files go (created if missing).
        sample_rate: the files' rate.
        flush_interval: seconds of audio between flushes.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        sample_rate: int = 16000,
        *,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._convert = RateConverter(sample_rate)
        self._flush_interval = flush_interval
        self._writers: dict[str, WavWriter] = {}
        self._next: dict[str, int] = {}
        self._origin: int | None = None
        self.late_frames = 0
        """Frames dropped because they came after a later frame of the same party."""

    @property
    def paths(self) -> dict[str, Path]:
        """Party id → its file."""
        return {party: writer.path for party, writer in self._writers.items()}

    def path_for(self, party_id: str) -> Path:
        """Where ``party_id``'s audio goes (unsafe characters replaced by ``_``)."""
        return self.directory / f"{_UNSAFE.sub('_', party_id)}.wav"

    def write(self, frame: AudioFrame) -> None:
        """Append one frame to its party's file, after silence for any gap."""
        party, tick = frame.party_id, frame.tick
        if self._origin is None:
            self._origin = tick
        writer = self._writers.get(party)
        if writer is None:
            writer = self._writers[party] = WavWriter(
                self.path_for(party), self._convert.sample_rate, flush_interval=self._flush_interval
            )
            self._next[party] = self._origin
        if tick < self._next[party]:
            self.late_frames += 1
            return
        for _ in range(tick - self._next[party]):
            writer.write(self._convert.silence())
        pcm = self._convert.convert(party, frame.pcm, frame.sample_rate)
        writer.write(self._convert.fit(pcm))
        self._next[party] = tick + 1

    def close(self) -> None:
        """Flush and close every file."""
        for writer in self._writers.values():
            writer.close()


class RawFileSink(_Sink):
    """The seed sample's ``call.raw``: every party mixed into headerless PCM.

    Format: signed 16-bit little-endian, mono (:data:`RAW_CHANNELS`), 8000 Hz
    (:data:`RAW_SAMPLE_RATE`) by default — play it with
    ``play -t raw -e signed -b 16 -r 8000 -c 1 call.raw``.

    Args:
        path: the file to create (truncated).
        sample_rate: the file's rate.
        flush_interval: seconds of audio between flushes.
        window: ticks a tick waits for a lagging party.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int = RAW_SAMPLE_RATE,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self._aligner = TickAligner(window=window)
        self._convert = RateConverter(sample_rate)
        self._writer = RawWriter(path, sample_rate, RAW_CHANNELS, flush_interval=flush_interval)
        self.path = self._writer.path
        self.ticks_written = 0

    @property
    def sample_rate(self) -> int:
        """The file's rate."""
        return self._convert.sample_rate

    def write(self, frame: AudioFrame) -> None:
        """File one frame; writes the mix of every tick it completes."""
        pcm = self._convert.convert(frame.party_id, frame.pcm, frame.sample_rate)
        for aligned in self._aligner.add(frame.party_id, frame.tick, pcm):
            self._write_tick(aligned.frames)

    def _write_tick(self, frames: dict[str, PcmArray]) -> None:
        fitted = [self._convert.fit(pcm) for pcm in frames.values()]
        self._writer.write(mix(fitted, self._convert.frame_samples))
        self.ticks_written += 1

    def close(self) -> None:
        """Write what is pending, flush and close the file."""
        for aligned in self._aligner.flush():
            self._write_tick(aligned.frames)
        self._writer.close()
