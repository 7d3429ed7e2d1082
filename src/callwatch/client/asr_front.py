"""The transcriber's front stage: per-party rate conversion and endpointing, then dispatch.

Runs on one thread (the transcriber's front thread) and is plain synchronous code: each call
converts a frame to 16 kHz, runs the party's :class:`~callwatch.client.asr_endpoint.Endpointer`
and turns its events into work — a :class:`~callwatch.client.asr_workers.FinalJob` for every
utterance (speculative at a pause, promoted when the pause proves to be the end) and, when
partials are on, the audio stream for the partial-hypothesis process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callwatch.client.asr_endpoint import (
    Endpointer,
    EndpointerConfig,
    EndpointEvent,
    SpeechAudio,
    SpeechDiscarded,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from callwatch.client.asr_engines import ASR_SAMPLE_RATE, PcmArray
from callwatch.client.asr_partials import PartialRunner
from callwatch.client.asr_workers import FinalJob, FinalPool
from callwatch.media.resample import Resampler

Converter = Callable[[PcmArray], PcmArray]
BRIDGE_RATE = 48000
"""Rates without an integer ratio to 16 kHz (24 kHz, 12 kHz) go through 48 kHz."""


def converter_to_16k(rate: int) -> Converter:
    """A stateful converter from ``rate`` to 16 kHz (identity at 16 kHz).

    Raises:
        ValueError: neither ``rate`` ↔ 16 kHz nor ``rate`` → 48 kHz is an integer ratio.
    """
    if rate == ASR_SAMPLE_RATE:
        return lambda pcm: pcm
    if rate % ASR_SAMPLE_RATE == 0 or ASR_SAMPLE_RATE % rate == 0:
        return Resampler(rate, ASR_SAMPLE_RATE).process
    if rate > 0 and BRIDGE_RATE % rate == 0:
        up, down = Resampler(rate, BRIDGE_RATE), Resampler(BRIDGE_RATE, ASR_SAMPLE_RATE)
        return lambda pcm: down.process(up.process(pcm))
    raise ValueError(f"cannot convert {rate} Hz to {ASR_SAMPLE_RATE} Hz")


@dataclass(slots=True)
class FrontCounters:
    """What the front stage saw (written by the front thread only)."""

    frames: int = 0
    utterances: int = 0
    """Utterances that went to the final engine."""
    discarded: int = 0
    """Utterances too short to transcribe."""
    speculative_hits: int = 0
    """Utterances whose speculative transcription became the final one."""
    speculative_wasted: int = 0
    """Speculative transcriptions cancelled because speech resumed."""
    jobs_dropped: int = 0
    """Utterances not transcribed because the final engines were too far behind."""


class _Party:
    def __init__(self, rate: int, config: EndpointerConfig) -> None:
        self.rate = rate
        self.convert = converter_to_16k(rate)
        self.endpointer = Endpointer(config)
        self.speculative: FinalJob | None = None


class Frontend:
    """Per-party state of the front thread.

    Args:
        config: endpointer tuning (one endpointer per party).
        pool: where utterances go to be transcribed.
        partials: the partial-hypothesis runner, or None when partials are off.
        on_skip: told about utterance numbers that will never produce a final job result
            (discarded or dropped), so in-order delivery does not wait for them.
    """

    def __init__(
        self,
        *,
        config: EndpointerConfig,
        pool: FinalPool,
        partials: PartialRunner | None,
        on_skip: Callable[[str, int], None],
    ) -> None:
        self._config = config
        self._pool = pool
        self._partials = partials
        self._on_skip = on_skip
        self._parties: dict[str, _Party] = {}
        self.counters = FrontCounters()

    def feed(self, party_id: str, pcm: PcmArray, rate: int, timestamp: float, now: float) -> None:
        """One frame of ``party_id`` (any supported rate; ``timestamp`` of its first sample)."""
        party = self._parties.get(party_id)
        if party is None or party.rate != rate:
            party = self._parties[party_id] = _Party(rate, self._config)
        self.counters.frames += 1
        audio = party.convert(pcm)
        for event in party.endpointer.process(audio, timestamp, now):
            self._dispatch(party_id, party, event)

    def end_party(self, party_id: str) -> None:
        """The party's stream ended: close its open utterance and forget it."""
        party = self._parties.pop(party_id, None)
        if party is not None:
            for event in party.endpointer.flush():
                self._dispatch(party_id, party, event)

    def flush_all(self) -> None:
        """End every party's stream."""
        for party_id in list(self._parties):
            self.end_party(party_id)

    def _dispatch(self, party_id: str, party: _Party, event: EndpointEvent) -> None:
        if isinstance(event, SpeechStarted):
            if self._partials is not None:
                self._partials.begin(party_id, event.utterance, event.start)
        elif isinstance(event, SpeechAudio):
            if self._partials is not None:
                self._partials.audio(party_id, event.utterance, event.pcm, event.end, event.now)
        elif isinstance(event, SpeechPaused):
            self._speculate(party_id, party, event)
        elif isinstance(event, SpeechResumed):
            self._drop_speculation(party, wasted=True)
        elif isinstance(event, SpeechEnded):
            self._ended(party_id, party, event)
        else:
            self._discarded(party_id, party, event)

    def _speculate(self, party_id: str, party: _Party, event: SpeechPaused) -> None:
        self._drop_speculation(party, wasted=True)
        job = _job(
            party_id, event.utterance, event.pcm, event.start, event.end, event.voice_end_now
        )
        if self._pool.submit(job):
            party.speculative = job

    def _drop_speculation(self, party: _Party, *, wasted: bool) -> None:
        if party.speculative is not None:
            self._pool.cancel(party.speculative)
            party.speculative = None
            self.counters.speculative_wasted += wasted

    def _ended(self, party_id: str, party: _Party, event: SpeechEnded) -> None:
        if self._partials is not None:
            self._partials.finish(party_id, event.utterance)
        self.counters.utterances += 1
        guess = party.speculative
        party.speculative = None
        same_end = guess is not None and guess.end == event.end and not event.forced
        if guess is not None and same_end and self._pool.promote(guess):
            self.counters.speculative_hits += 1
            return
        if guess is not None:
            self._pool.cancel(guess)
            self.counters.speculative_wasted += 1
        job = _job(
            party_id, event.utterance, event.pcm, event.start, event.end, event.voice_end_now
        )
        job.wanted = True
        if not self._pool.submit(job):
            self.counters.jobs_dropped += 1
            self._on_skip(party_id, event.utterance)

    def _discarded(self, party_id: str, party: _Party, event: SpeechDiscarded) -> None:
        if self._partials is not None:
            self._partials.finish(party_id, event.utterance)
        self._drop_speculation(party, wasted=True)
        self.counters.discarded += 1
        self._on_skip(party_id, event.utterance)


def _job(
    party_id: str, utterance: int, pcm: PcmArray, start: float, end: float, voice_end_now: float
) -> FinalJob:
    return FinalJob(
        party_id=party_id,
        utterance=utterance,
        pcm=pcm,
        start=start,
        end=end,
        voice_end_now=voice_end_now,
        wanted=False,
    )


__all__ = ["BRIDGE_RATE", "FrontCounters", "Frontend", "converter_to_16k"]
