"""Voice-activity endpointer: cuts one party's 16 kHz stream into utterances (sans-I/O).

Theory of operation. Audio arrives in pieces of any length with the timestamp of their first
sample (seconds on the shared audio clock) and ``now`` (the caller's monotonic clock, only
echoed back so latency can be measured). It is re-cut into 20 ms frames and each frame is
classified by webrtcvad (``Vad(mode).is_speech``, ~2 µs per frame). Two states:

* **idle**: the last :attr:`EndpointerConfig.preroll` seconds of frames are kept. When at least
  ``start_ratio`` of the frames in the last ``start_window`` seconds are voiced, an utterance
  starts at the first voiced frame of that window; the kept frames become its first audio
  (so soft onsets are not clipped) → :class:`SpeechStarted` + :class:`SpeechAudio`.
* **speech**: every frame is appended (→ :class:`SpeechAudio`). When no frame of the last
  ``hangover`` seconds was voiced, the utterance ends at the end of its last voiced frame; its
  audio (pre-roll, speech and ``tail`` seconds after the last voiced frame) goes out in
  :class:`SpeechEnded`, or :class:`SpeechDiscarded` when it held less than ``min_speech``
  seconds of voiced frames. An utterance reaching ``max_utterance`` is cut there
  (``forced=True``); if the speaker goes on, the next one starts as soon as the start rule
  holds again.

While speaking, once ``pause`` seconds pass without a voiced frame, :class:`SpeechPaused`
offers the utterance as it would end right now (same audio, same end) so the caller can start
transcribing before the hangover confirms the end; a voiced frame before that confirmation
sends :class:`SpeechResumed` instead, and that speculative work is wasted.

The hangover trades latency against fragmentation: final text cannot exist before it has
passed, unless a speculative transcription started at the pause is used. Cutting shorter does
not pay: moonshine costs ≈ 0.1 s plus ≈ 15 ms per output token, so pieces save little time,
and cut mid-sentence it loses its context (measured WER 41–55 % on forced 1.5–2 s pieces
against 8–9 % on whole sentences). espeak's comma pauses are 60–140 ms, below the default.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import webrtcvad  # type: ignore[import-untyped]

PcmArray = npt.NDArray[np.int16]
SAMPLE_RATE = 16000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 320
"""webrtcvad accepts 10, 20 or 30 ms frames; 20 ms matches RTP packetisation."""
MAX_PIECE_SAMPLES = 1 << 20
"""Largest piece :meth:`Endpointer.process` accepts at once (~65 s)."""


@dataclass(frozen=True, slots=True)
class EndpointerConfig:
    """Tuning of :class:`Endpointer` (seconds unless stated)."""

    vad_mode: int = 2
    """webrtcvad aggressiveness, 0 (keeps most audio) to 3 (drops most non-speech)."""
    start_window: float = 0.1
    start_ratio: float = 0.6
    """Fraction of ``start_window`` that must be voiced to start an utterance."""
    hangover: float = 0.25
    """Unvoiced time that ends an utterance (see the module docstring)."""
    preroll: float = 0.2
    """Audio kept before the detected start."""
    tail: float = 0.1
    """Audio kept after the last voiced frame."""
    min_speech: float = 0.2
    """Utterances with less voiced audio than this are discarded (clicks, breaths; webrtcvad
    keeps flagging ~0.1 s after a burst ends, so a 60 ms click counts ~0.14 s)."""
    max_utterance: float = 15.0
    """Utterances are cut at this length."""
    pause: float | None = 0.1
    """Unvoiced time after which :class:`SpeechPaused` offers the utterance so far for a
    speculative transcription (``None``: never). At least ``tail``; below ``hangover``."""

    def frames(self, seconds: float) -> int:
        """``seconds`` as a whole number of 20 ms frames (at least 1)."""
        return max(1, round(seconds / FRAME_SECONDS))


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """An utterance began."""

    utterance: int
    """Per-endpointer sequence number, from 0, shared with discarded utterances."""
    start: float
    """Audio-clock time of its first voiced frame."""


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """More audio of the current utterance (the pre-roll first, then frame by frame)."""

    utterance: int
    pcm: PcmArray
    end: float
    """Audio-clock time just after the last sample of ``pcm``."""
    now: float
    """The ``now`` given with the piece this audio completed."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """An utterance is complete."""

    utterance: int
    pcm: PcmArray
    """Pre-roll + speech + tail, 16 kHz."""
    start: float
    end: float
    """Audio-clock time at the end of its last voiced frame."""
    voice_end_now: float
    """The ``now`` given with the piece that held the last voiced frame."""
    forced: bool = False
    """Cut at ``max_utterance`` (or by :meth:`Endpointer.flush`) rather than by silence."""


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """The speaker paused: the utterance *may* end here, with exactly this audio.

    If no :class:`SpeechResumed` follows, the :class:`SpeechEnded` that does carries the same
    ``pcm`` and ``end``, so a transcription started now can be used for it.
    """

    utterance: int
    pcm: PcmArray
    start: float
    end: float
    voice_end_now: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech went on after a :class:`SpeechPaused`; that pause's audio is stale."""

    utterance: int


@dataclass(frozen=True, slots=True)
class SpeechDiscarded:
    """A started utterance turned out too short to transcribe."""

    utterance: int


EndpointEvent = (
    SpeechStarted | SpeechAudio | SpeechPaused | SpeechResumed | SpeechEnded | SpeechDiscarded
)


@dataclass(slots=True)
class _Frame:
    pcm: PcmArray
    start: float
    voiced: bool
    now: float


class Endpointer:
    """Cuts one 16 kHz stream into utterances; pure apart from webrtcvad's computation.

    Args:
        config: thresholds and margins.
    """

    def __init__(self, config: EndpointerConfig | None = None) -> None:
        self.config = config or EndpointerConfig()
        self._vad = webrtcvad.Vad(self.config.vad_mode)
        self._start_frames = self.config.frames(self.config.start_window)
        self._start_needed = math.ceil(self.config.start_ratio * self._start_frames)
        self._hangover = self.config.frames(self.config.hangover)
        self._tail = min(self.config.frames(self.config.tail), self._hangover)
        self._max_frames = self.config.frames(self.config.max_utterance)
        self._min_voiced = self.config.frames(self.config.min_speech)
        pause = self.config.pause
        self._pause = None if pause is None else max(self.config.frames(pause), self._tail)
        self._paused = False
        self._recent: deque[_Frame] = deque(
            maxlen=max(self.config.frames(self.config.preroll), self._start_frames)
        )
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = 0.0
        self._next_utterance = 0
        self._frames: list[_Frame] = []
        self._start = 0.0
        self._voiced = 0
        self._last_voiced = -1

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is open."""
        return bool(self._frames)

    def process(self, pcm: PcmArray, timestamp: float, now: float) -> list[EndpointEvent]:
        """Feed the next piece of 16 kHz audio; return what happened, in order.

        Args:
            pcm: 1-D int16 samples.
            timestamp: audio-clock time of ``pcm[0]`` (seconds).
            now: caller's monotonic time, echoed in the events.

        Raises:
            ValueError: ``pcm`` is not 1-D or is longer than :data:`MAX_PIECE_SAMPLES`.
        """
        if pcm.ndim != 1 or pcm.shape[0] > MAX_PIECE_SAMPLES:
            raise ValueError(f"expected 1-D PCM of ≤ {MAX_PIECE_SAMPLES} samples")
        if not self._pending.shape[0]:
            self._pending_start = timestamp
        self._pending = np.concatenate((self._pending, pcm.astype(np.int16, copy=False)))
        events: list[EndpointEvent] = []
        while self._pending.shape[0] >= FRAME_SAMPLES:
            chunk = self._pending[:FRAME_SAMPLES]
            self._pending = self._pending[FRAME_SAMPLES:]
            voiced = bool(self._vad.is_speech(chunk.tobytes(), SAMPLE_RATE))
            frame = _Frame(pcm=chunk, start=self._pending_start, voiced=voiced, now=now)
            self._pending_start += FRAME_SECONDS
            events += self._step(frame)
        return events

    def flush(self) -> list[EndpointEvent]:
        """End of stream: close the open utterance, if any, as if silence followed."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._recent.clear()
        return self._finish(forced=True) if self._frames else []

    def _step(self, frame: _Frame) -> list[EndpointEvent]:
        if not self._frames:
            return self._idle(frame)
        self._append(frame)
        events: list[EndpointEvent] = [self._audio(frame.pcm, frame)]
        silent_for = len(self._frames) - 1 - self._last_voiced
        if frame.voiced and self._paused:
            self._paused = False
            events.append(SpeechResumed(utterance=self._next_utterance))
        if silent_for >= self._hangover:
            events += self._finish(forced=False)
        elif len(self._frames) >= self._max_frames:
            events += self._finish(forced=True)
        elif silent_for == self._pause and self._voiced >= self._min_voiced:
            self._paused = True
            events.append(self._paused_event())
        return events

    def _paused_event(self) -> SpeechPaused:
        last = self._frames[self._last_voiced]
        return SpeechPaused(
            utterance=self._next_utterance,
            pcm=np.concatenate([f.pcm for f in self._frames[: self._last_voiced + 1 + self._tail]]),
            start=self._start,
            end=last.start + FRAME_SECONDS,
            voice_end_now=last.now,
        )

    def _idle(self, frame: _Frame) -> list[EndpointEvent]:
        self._recent.append(frame)
        window = list(self._recent)[-self._start_frames :]
        if sum(f.voiced for f in window) < self._start_needed:
            return []
        first_voiced = next(f for f in window if f.voiced)
        utterance = self._next_utterance
        self._start = first_voiced.start
        for kept in self._recent:
            self._append(kept)
        self._recent.clear()
        preroll = np.concatenate([f.pcm for f in self._frames])
        return [SpeechStarted(utterance=utterance, start=self._start), self._audio(preroll, frame)]

    def _append(self, frame: _Frame) -> None:
        self._frames.append(frame)
        if frame.voiced:
            self._voiced += 1
            self._last_voiced = len(self._frames) - 1

    def _audio(self, pcm: PcmArray, frame: _Frame) -> SpeechAudio:
        end = frame.start + FRAME_SECONDS
        return SpeechAudio(utterance=self._next_utterance, pcm=pcm, end=end, now=frame.now)

    def _finish(self, *, forced: bool) -> list[EndpointEvent]:
        utterance = self._next_utterance
        self._next_utterance += 1
        frames, last, voiced = self._frames, self._last_voiced, self._voiced
        self._frames, self._voiced, self._last_voiced, self._paused = [], 0, -1, False
        if voiced < self._min_voiced or last < 0:
            return [SpeechDiscarded(utterance=utterance)]
        keep = len(frames) if forced else min(len(frames), last + 1 + self._tail)
        return [
            SpeechEnded(
                utterance=utterance,
                pcm=np.concatenate([f.pcm for f in frames[:keep]]),
                start=self._start,
                end=frames[last].start + FRAME_SECONDS,
                voice_end_now=frames[last].now,
                forced=forced,
            )
        ]


__all__ = [
    "FRAME_SAMPLES",
    "EndpointEvent",
    "Endpointer",
    "EndpointerConfig",
    "SpeechAudio",
    "SpeechDiscarded",
    "SpeechEnded",
    "SpeechPaused",
    "SpeechResumed",
    "SpeechStarted",
]
