"""Live transcription: accuracy by line codec, cost per stream, and speech-end → text latency.

Every figure comes from the whole :class:`~callwatch.client.transcribe.Transcriber` (webrtcvad
endpointing, moonshine base on onnxruntime worker threads) fed the three shipped espeak
conversations (``callwatch.sim.speech``, 277 words, two voices) as two party streams of 20 ms
frames:

* **latency**, and WER on the source audio: the conversations played in real time, one after
  the other (~115 s). Latency is measured from the end of each turn as the script placed it
  (the frame holding its last sample reaching the transcriber) to the final segment's
  emission; it includes endpointing (0.1 s of silence starts a speculative decode), queueing
  and decoding. The "endpointer" variant counts from the last frame webrtcvad called voiced,
  which lingers ~0.1 s after the speech.
* **WER through a phone line**: PCMU (16k → 8k → G.711 μ-law → 8 kHz frames, resampled back by
  the transcriber) and Opus (16 kHz, 24 kb/s, 20 ms packets, decoded at 16 kHz), fed at 8× real
  time with two final workers.
* **cost**: CPU seconds of the final engine per second of party stream (silence included, as a
  supervised call delivers it) gives the real-time factor per stream; its inverse is how many
  party streams one core keeps up with at this talk ratio (~45 % speech per party).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.common import Row
from callwatch.client.streams import AudioFrame
from callwatch.client.transcribe import Segment, Transcriber, TranscriberConfig
from callwatch.client.wer import WordErrors, word_errors
from callwatch.media.codecs import g711
from callwatch.media.codecs.opus import OpusDecoder, OpusEncoder
from callwatch.media.resample import resample
from callwatch.sim.speech import SPEAKERS, Conversation, Speaker, conversations, load_conversation

Pcm = npt.NDArray[np.int16]
Line = Callable[[Pcm], tuple[Pcm, int]]
"""What a phone line does to one party's 16 kHz track: (received PCM, its rate)."""
FAST = 8.0
"""Feeding speed of the accuracy runs (× real time)."""


def source(pcm: Pcm) -> tuple[Pcm, int]:
    return pcm, 16000


def pcmu(pcm: Pcm) -> tuple[Pcm, int]:
    return g711.decode(g711.encode(resample(pcm, 16000, 8000), "ulaw"), "ulaw"), 8000


def opus(pcm: Pcm) -> tuple[Pcm, int]:
    encoder, decoder = OpusEncoder(16000), OpusDecoder(16000)
    frames = [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]
    return np.concatenate([decoder.decode(encoder.encode(f)) for f in frames]), 16000


@dataclass
class Run:
    """One conversation through one transcriber."""

    conversation: Conversation
    segments: list[Segment]
    errors: WordErrors
    cpu_seconds: float
    stream_seconds: float
    """Party-stream audio fed (both parties)."""


async def transcribe(conversation: Conversation, line: Line, *, speed: float, workers: int) -> Run:
    received = {s: line(conversation.pcm(s)) for s in SPEAKERS}
    rate = received["customer"][1]
    step = rate // 50
    ticks = min(len(pcm) for pcm, _ in received.values()) // step
    config = TranscriberConfig(final_workers=workers)
    async with Transcriber(config) as transcriber:
        reader = asyncio.create_task(_collect(transcriber))
        started = time.monotonic()
        for tick in range(ticks):
            for speaker, (pcm, _) in received.items():
                chunk = pcm[tick * step : (tick + 1) * step]
                transcriber.write(AudioFrame(speaker, chunk, rate, tick * 0.02, tick))
            await asyncio.sleep(max(0.0, started + (tick + 1) * 0.02 / speed - time.monotonic()))
        transcriber.close()
        segments = await reader
    return Run(
        conversation=conversation,
        segments=segments,
        errors=_errors(conversation, segments),
        cpu_seconds=transcriber.stats.final_cpu_seconds,
        stream_seconds=2 * ticks * 0.02,
    )


async def _collect(transcriber: Transcriber) -> list[Segment]:
    return [segment async for segment in transcriber.segments()]


def _errors(conversation: Conversation, segments: list[Segment]) -> WordErrors:
    total: WordErrors | None = None
    for speaker in SPEAKERS:
        text = " ".join(s.text for s in segments if s.party_id == speaker and s.final)
        errors = word_errors(conversation.full_text(speaker), text)
        total = errors if total is None else total + errors
    assert total is not None
    return total


def _true_latencies(run: Run) -> list[float]:
    """Latency from each turn's scripted end (see the module docstring)."""
    latencies = []
    for segment in run.segments:
        speaker: Speaker = "customer" if segment.party_id == "customer" else "agent"
        turns = [
            t
            for t in run.conversation.speaker_turns(speaker)
            if t.start - 0.2 < segment.end and segment.start < t.end + 0.2
        ]
        if turns:
            latencies.append(segment.latency + segment.end - turns[-1].end)
    return latencies


def _wer_row(label: str, runs: list[Run], note: str) -> Row:
    total = runs[0].errors
    for run in runs[1:]:
        total = total + run.errors
    per = ", ".join(f"{r.conversation.name} {100 * r.errors.wer:.1f}" for r in runs)
    return Row(f"transcribe WER, {label}", 100 * total.wer, "%", f"{note}; {per}")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def _measure() -> list[Row]:
    names = conversations()
    live = [await transcribe(load_conversation(n), source, speed=1, workers=1) for n in names]
    lines = {"PCMU": pcmu, "Opus 16k": opus}
    fast = {
        label: [await transcribe(load_conversation(n), line, speed=FAST, workers=2) for n in names]
        for label, line in lines.items()
    }
    latencies = [x for run in live for x in _true_latencies(run)]
    endpointed = [s.latency for run in live for s in run.segments]
    cpu = sum(r.cpu_seconds for r in live)
    stream = sum(r.stream_seconds for r in live)
    words = sum(r.errors.reference_words for r in live)
    return [
        _wer_row("16 kHz source", live, f"moonshine base, {words} words, real time"),
        _wer_row("PCMU 8 kHz μ-law", fast["PCMU"], "16k→8k→G.711→8k frames"),
        _wer_row("Opus 16 kHz 24 kb/s", fast["Opus 16k"], "OPUS/16000 encode→decode"),
        Row(
            "transcribe CPU per party stream",
            100 * cpu / stream,
            "% of a core",
            "final engine (real-time factor × 100)",
        ),
        Row("transcribe party streams per core", stream / cpu, "streams", "~45 % speech each"),
        Row(
            "speech end → final text p50",
            1000 * statistics.median(latencies),
            "ms",
            f"p90 {1000 * _pct(latencies, 90):.0f} ms, {len(latencies)} utterances, "
            "1 worker, real time",
        ),
        Row(
            "endpointer end → final text p50",
            1000 * statistics.median(endpointed),
            "ms",
            "from webrtcvad's last voiced frame",
        ),
    ]


def run() -> list[Row]:
    """Run the transcription benchmark (about three and a half minutes)."""
    return asyncio.run(_measure())


if __name__ == "__main__":
    for row in run():
        print(f"{row.figure:40} {row.value:10.1f} {row.unit:8} {row.note}")
