"""Transcription accuracy through the real call path, per codec, next to the source audio.

:mod:`bench.transcribe` simulates the phone line in-process (encode, decode, feed the
transcriber). This benchmark sends the same three shipped espeak conversations
(``callwatch.sim.speech``: 279 words, agent en-us, customer en-us+f3) through real supervised
calls, as ``callwatch demo --calls 3`` does (:class:`~callwatch.demo.Demo`):

* the embedded platform (SQLite, in-process bus, relay thread) on loopback, in this process;
* per conversation, a simulated customer calls an agent through the trunk; both speak their
  timeline as paced 20 ms RTP in the call's codec, relayed between them;
* the supervisor's app (:class:`~callwatch.client.monitor.Monitor`, extension 101) supervises
  each call dual channel, so the relay forks each party to its own stream of the monitor's
  softphone, which decodes it (jitter buffer, PLC, 16 kHz) and feeds the monitor's transcriber
  (one final worker, its default). The three calls run at once; the monitor's stop drains the
  transcriber, so every line is counted.

Variants:

* **PCMU** (PCMU/8000): the monitor's softphone takes the codec the relay offers first, the
  party's own (``MonitorConfig.offer_order``, the default), so each fork is zero-copy — the
  monitor decodes the very μ-law packets the agent hears;
* **PCMU, fork transcoded to Opus 48k**: the softphone insisting on its own preference (Opus
  48k first; what the monitor did before it followed the offer): the relay decodes the μ-law,
  runs its own jitter buffer, re-encodes Opus (32 kb/s) and the monitor decodes that — a second
  generation of coding and a second jitter buffer;
* **Opus**: the call offers OPUS/48000/2 (PT 111, RFC 7587), the simulator encodes the 16 kHz
  script at 48 kHz, 32 kb/s, and the fork is zero-copy.

What each fork carried is read from the relay (zero-copy fork, or a transcoding mix and its
output codec) and printed in the notes. The reference WER on the source is the same
transcriber (:func:`bench.transcribe.transcribe`: 16 kHz source, 8× real time, two workers —
speed does not change the text, only when it comes). WER is per speaker and overall, over all
three conversations; texts are normalised as :func:`callwatch.client.wer.word_errors` does
(numbers read as words).

Caveats: WER over ~40–57 words per speaker and conversation moves by ~2 points per word, and
the narrowband customer voice is fragile: the billing conversation's customer is at 40–57 %
through μ-law even in the offline simulation, where the other two are at 14–35 %; shifting the
μ-law audio by a few samples (the VAD's 20 ms framing changes) moves the customer's
three-conversation WER between 25 and 33 %, and repeated runs of the PCMU call path gave
27–35 %. Read one run's figure to ±5 points. Timing notes (line latency) are measured on a shared
2-core machine where everything — platform, relay, simulated phones, monitor, transcriber —
runs in one process next to other people's work: they are contended figures. The transcriber
runs one final worker; if it falls behind, lines come late (the latency note shows it) but none
is lost unless an utterance queue overflows (counted and printed as "dropped").
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Row
from bench.transcribe import FAST, source, transcribe
from callwatch.client.softphone import DEFAULT_CODECS
from callwatch.client.transcribe import Segment
from callwatch.client.wer import WordErrors, word_errors
from callwatch.demo import CallResult, Demo, DemoResult
from callwatch.sim.speech import SPEAKERS, Conversation, conversations, load_conversation
from callwatch.sip.offer_answer import CodecSpec


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of sending the conversations through the call path."""

    label: str
    codec: str
    """The calls' codec (a :data:`callwatch.sim.agents.CODECS` name)."""
    monitor_codecs: Sequence[CodecSpec] | None = None
    """The monitor softphone's answer preference; None: the call's codec first (zero-copy)."""
    target: float | None = None
    """The issue's WER target for this path, percent."""


VARIANTS = (
    Variant("PCMU/8000 call", "PCMU", target=35.0),
    Variant("PCMU call, fork → Opus 48k", "PCMU", monitor_codecs=DEFAULT_CODECS),
    Variant("OPUS/48000 call", "OPUS", target=25.0),
)
SOURCE_TARGET = 20.0
"""The issue's WER target on the source audio, percent."""


@dataclass
class Outcome:
    """What one variant measured."""

    variant: Variant
    result: DemoResult
    seconds: float
    errors: dict[str, WordErrors] = field(default_factory=dict)
    """Per speaker, summed over the calls."""

    @property
    def total(self) -> WordErrors:
        """Both speakers together."""
        return self.errors["customer"] + self.errors["agent"]


def _call_errors(call: CallResult) -> dict[str, WordErrors]:
    return {s: word_errors(call.said.get(s, ""), " ".join(call.heard[s])) for s in SPEAKERS}


def _sum(per_call: list[dict[str, WordErrors]]) -> dict[str, WordErrors]:
    total = dict(per_call[0])
    for errors in per_call[1:]:
        total = {s: total[s] + errors[s] for s in SPEAKERS}
    return total


async def _through_calls(variant: Variant, keep: Path | None) -> Outcome:
    data_dir = None if keep is None else keep / variant.label.replace("/", "").replace(" ", "-")
    started = time.monotonic()
    demo = Demo(
        calls=len(conversations()),
        codec=variant.codec,
        data_dir=data_dir,
        report=lambda _line: None,
        monitor_codecs=variant.monitor_codecs,
    )
    result = await demo.run()
    outcome = Outcome(variant, result, time.monotonic() - started)
    outcome.errors = _sum([_call_errors(call) for call in result.calls if call.conversation])
    counters = demo.monitor_stats.get("transcriber")
    if counters is not None:  # what the transcriber could not keep up with
        lost = counters.frames_dropped + counters.front.jobs_dropped + counters.segments_dropped
        if lost:
            result.problems.append(f"transcriber dropped {lost} frames/utterances/segments")
    return outcome


def _source_errors(conversation: Conversation, segments: list[Segment]) -> dict[str, WordErrors]:
    heard = {s: " ".join(x.text for x in segments if x.party_id == s and x.final) for s in SPEAKERS}
    return {s: word_errors(conversation.full_text(s), heard[s]) for s in SPEAKERS}


async def _on_source() -> dict[str, WordErrors]:
    runs = []
    for name in conversations():
        conversation = load_conversation(name)
        run = await transcribe(conversation, source, speed=FAST, workers=2)
        runs.append(_source_errors(conversation, run.segments))
    return _sum(runs)


def _pct(errors: WordErrors) -> str:
    return f"{100 * errors.wer:.1f}"


def _fork_note(calls: list[CallResult]) -> str:
    kinds = sorted({kind for call in calls for kind in call.forks.values()})
    return "fork " + (" / ".join(kinds) or "unknown")


def _stream_note(calls: list[CallResult]) -> str:
    """Audio the path made up or threw away, summed over the calls: the monitor's jitter
    buffer (PLC frames, frames inserted/dropped to adapt its delay, late packets) and, for a
    transcoding fork, the relay's own jitter buffer (PLC frames, skipped ticks)."""
    parts = []
    for speaker in SPEAKERS:
        streams = [c.streams[speaker] for c in calls if speaker in c.streams]
        plc = sum(s.decoder.concealed for s in streams)
        inserted = sum(s.decoder.jitter.inserted for s in streams)
        dropped = sum(s.decoder.jitter.dropped for s in streams)
        late = sum(s.decoder.jitter.late for s in streams)
        part = f"{speaker} PLC {plc}, +{inserted}/-{dropped} frames, {late} late"
        mixes = [c.mixes[speaker] for c in calls if speaker in c.mixes]
        if mixes:
            relay_plc = sum(src.concealed for m in mixes for src in m.sources)
            skipped = sum(m.skipped_ticks for m in mixes)
            part += f" + relay PLC {relay_plc}, {skipped} skipped"
        parts.append(part)
    return "monitor jitter buffer: " + "; ".join(parts)


def _latency_note(calls: list[CallResult]) -> str:
    latencies = [x for call in calls for x in call.latencies]
    if not latencies:
        return "no lines"
    return (
        f"line latency p50 {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
        "(contended)"
    )


def _rows(outcome: Outcome, on_source: dict[str, WordErrors]) -> list[Row]:
    variant, calls = outcome.variant, outcome.result.calls
    label = f"transcribe via call, {variant.label}"
    target = f"target ≤ {variant.target:.0f} %; " if variant.target is not None else ""
    problems = "; ".join(outcome.result.problems)
    overall = Row(
        f"{label}, WER",
        100 * outcome.total.wer,
        "%",
        f"{target}source {_pct(on_source['customer'] + on_source['agent'])}; "
        f"{_fork_note(calls)}; {len(calls)} calls at once, {outcome.seconds:.0f} s; "
        f"{_latency_note(calls)}; {_stream_note(calls)}"
        + (f"; PROBLEMS: {problems}" if problems else ""),
    )
    per_speaker = [
        Row(
            f"{label}, WER {speaker}",
            100 * outcome.errors[speaker].wer,
            "%",
            f"source {_pct(on_source[speaker])}; "
            + ", ".join(
                f"{call.conversation} {100 * _call_errors(call)[speaker].wer:.0f}" for call in calls
            ),
        )
        for speaker in SPEAKERS
    ]
    return [overall, *per_speaker]


def _source_rows(on_source: dict[str, WordErrors]) -> list[Row]:
    total = on_source["customer"] + on_source["agent"]
    return [
        Row(
            "transcribe via call, 16 kHz source, WER",
            100 * total.wer,
            "%",
            f"target ≤ {SOURCE_TARGET:.0f} %; the monitor's transcriber (default engine) fed "
            f"the source audio, {total.reference_words} words, 3 conversations",
        ),
        *(
            Row(f"transcribe via call, 16 kHz source, WER {s}", 100 * on_source[s].wer, "%")
            for s in SPEAKERS
        ),
    ]


async def _measure(keep: Path | None) -> list[Row]:
    on_source = await _on_source()
    rows = _source_rows(on_source)
    for variant in VARIANTS:
        rows += _rows(await _through_calls(variant, keep), on_source)
    return rows


def run(keep: Path | None = None) -> list[Row]:
    """Run the benchmark (about two and a half minutes). ``keep``: a directory for the
    recordings and transcripts (one subdirectory per variant), else they are thrown away."""
    return asyncio.run(_measure(keep))


if __name__ == "__main__":
    for row in run(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(f"{row.figure:52} {row.value:6.1f} {row.unit:3} {row.note}")
