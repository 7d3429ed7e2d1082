"""Live transcription of per-party audio: a sink that turns frames into timed text segments.

Theory of operation. :meth:`Transcriber.push` (on the event loop) only enqueues the frame for
the *front thread*, which converts it to 16 kHz (:mod:`callwatch.media.resample`), runs the
party's voice-activity endpointer (:mod:`~callwatch.client.asr_endpoint`) and submits each
utterance to the *final workers* (:mod:`~callwatch.client.asr_workers`, threads with their own
moonshine engine; onnxruntime releases the GIL). Optional partial hypotheses come from
pocketsphinx in a *child process* (:mod:`~callwatch.client.asr_partials`; it holds the GIL).
Results come back with ``loop.call_soon_threadsafe`` and are emitted, per party, in utterance
order: partials only while their utterance has no final yet, finals exactly once.

Latency: a :class:`Segment`'s ``latency`` is the clock time from the arrival of the utterance's
last voiced frame (its spoken end) to the segment's emission — endpointing, queueing and
decoding. To shorten it, the utterance is submitted speculatively when the speaker pauses
(``EndpointerConfig.pause``), before the hangover confirms the end.

Every queue is bounded (frames, jobs, segments); what is dropped is counted in
:attr:`Transcriber.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from callwatch.client.asr_endpoint import EndpointerConfig
from callwatch.client.asr_engines import (
    ASR_SAMPLE_RATE,
    AsrEngine,
    AsrError,
    AsrStream,
    PcmArray,
    PocketsphinxEngine,
    StreamingAsrEngine,
)
from callwatch.client.asr_front import FrontCounters, Frontend
from callwatch.client.asr_moonshine import MoonshineEngine
from callwatch.client.asr_partials import (
    Partial,
    PartialCounters,
    PartialRunner,
    StreamingEngineFactory,
)
from callwatch.client.asr_segments import Segment, TranscriptWriter, format_segment
from callwatch.client.asr_workers import EngineFactory, FinalJob, FinalPool
from callwatch.clock import Clock, SystemClock

logger = logging.getLogger(__name__)


class PcmFrame(Protocol):
    """What the transcriber reads from a frame (:class:`~callwatch.client.streams.AudioFrame`)."""

    @property
    def party_id(self) -> str: ...
    @property
    def pcm(self) -> PcmArray:
        """Mono int16 samples (20 ms at ``sample_rate`` in practice; any length works)."""
        ...

    @property
    def sample_rate(self) -> int: ...
    @property
    def timestamp(self) -> float:
        """Seconds of the first sample on the call's shared audio clock."""
        ...


@dataclass(frozen=True, slots=True)
class TranscriberConfig:
    """How a :class:`Transcriber` works."""

    endpointer: EndpointerConfig = field(default_factory=EndpointerConfig)
    final_workers: int = 1
    """Threads (each with its own model, ~300 MB for moonshine base) for final text."""
    partials: bool = False
    """Emit pocketsphinx partial hypotheses (a child process; ≈ 0.25 core per speaking party)."""
    partial_interval: float = 0.3
    """Seconds of audio between two partial-hypothesis checks."""
    max_queued_frames: int = 3000
    """Frames waiting for the front thread (60 s of one party) before new ones are dropped."""
    max_queued_utterances: int = 32
    max_queued_segments: int = 1000
    """Segments not yet read from :meth:`Transcriber.segments` before new ones are dropped."""


@dataclass(slots=True)
class TranscriberStats:
    """Counters; ``front`` and ``partials`` are written by the worker side."""

    frames_dropped: int = 0
    segments: int = 0
    segments_dropped: int = 0
    empty_finals: int = 0
    """Utterances the final engine returned no text for."""
    errors: int = 0
    final_audio_seconds: float = 0.0
    """Audio handed to the final engine (utterances with their margins)."""
    final_cpu_seconds: float = 0.0
    """CPU time the final engine spent on it (speculations that were thrown away excluded)."""
    front: FrontCounters = field(default_factory=FrontCounters)
    partials: PartialCounters = field(default_factory=PartialCounters)


@dataclass(frozen=True, slots=True)
class _Frame:
    party_id: str
    pcm: PcmArray
    rate: int
    timestamp: float
    now: float


@dataclass(frozen=True, slots=True)
class _EndParty:
    party_id: str


_Item = _Frame | _EndParty | None


class Transcriber:
    """Per-party live transcription: a frame sink whose output is a stream of segments.

    ::

        async with Transcriber(speakers={customer: "customer", agent: "agent"}) as transcriber:
            feeding = asyncio.create_task(pump(transcriber, call.parties[customer], ...))
            async for segment in transcriber.segments():    # ends after pump closes it
                console.print(format_segment(segment))

    Args:
        config: behaviour; the defaults suit a 2-core machine.
        final_engine: builds the accurate engine (called on each final worker thread).
        partial_engine: builds a streaming engine in the child process; must be importable
            by reference (a top-level class or function; see ``asr_partials``).
        clock: source of ``now`` for latency.
        speakers: display labels per party id (``{"p-1": "customer"}``).
    """

    def __init__(
        self,
        config: TranscriberConfig | None = None,
        *,
        final_engine: EngineFactory = MoonshineEngine,
        partial_engine: StreamingEngineFactory = PocketsphinxEngine,
        clock: Clock | None = None,
        speakers: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or TranscriberConfig()
        self.stats = TranscriberStats()
        self._clock = clock or SystemClock()
        self._speakers = dict(speakers or {})
        self._frames: queue.Queue[_Item] = queue.Queue()
        self._out: asyncio.Queue[Segment | None] = asyncio.Queue()
        self._next_final: dict[str, int] = {}
        self._held: dict[str, dict[int, Segment | None]] = {}
        self._last_partial: dict[tuple[str, int], str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool = FinalPool(
            final_engine,
            workers=self.config.final_workers,
            max_queued=self.config.max_queued_utterances,
            on_done=self._job_done,
            clock=self._clock.monotonic,
        )
        self._partials = self._make_partials(partial_engine)
        self._front = Frontend(
            config=self.config.endpointer,
            pool=self._pool,
            partials=self._partials,
            on_skip=self._job_skipped,
        )
        self.stats.front = self._front.counters
        self._thread = threading.Thread(target=self._front_loop, name="callwatch-asr-front")
        self._closed = False
        self._shutdown: asyncio.Task[None] | None = None

    def _make_partials(self, engine: StreamingEngineFactory) -> PartialRunner | None:
        if not self.config.partials:
            return None
        runner = PartialRunner(
            engine,
            interval=self.config.partial_interval,
            on_partial=self._partial_ready,
        )
        self.stats.partials = runner.counters
        return runner

    async def start(self) -> None:
        """Build the engines (off the loop) and start the threads; returns when all are ready.

        Raises:
            Exception: whatever an engine factory raised (e.g. :class:`~.asr_engines.AsrError`).
        """
        if self._loop is not None or self._closed:
            raise RuntimeError("a transcriber starts once")
        self._loop = asyncio.get_running_loop()
        waits: list[Awaitable[None]] = [asyncio.wrap_future(f) for f in self._pool.start()]
        if self._partials is not None:
            waits.append(asyncio.to_thread(self._partials.start))
        try:
            await asyncio.gather(*waits)
        except BaseException:
            self._closed = True
            await asyncio.to_thread(self._stop_workers)
            self._out.put_nowait(None)
            raise
        self._thread.start()

    async def __aenter__(self) -> Transcriber:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def push(self, frame: PcmFrame) -> None:
        """Hand one frame to the front thread (never blocks; drops when far behind).

        Raises:
            RuntimeError: before :meth:`start` or after :meth:`close`.
        """
        if self._loop is None or self._closed:
            raise RuntimeError("transcriber is not running")
        if self._frames.qsize() >= self.config.max_queued_frames:
            self.stats.frames_dropped += 1
            return
        now = self._clock.monotonic()
        item = _Frame(frame.party_id, frame.pcm, frame.sample_rate, frame.timestamp, now)
        self._frames.put(item)

    def write(self, frame: PcmFrame) -> None:
        """:class:`~callwatch.client.sinks.FrameSink` name of :meth:`push`."""
        self.push(frame)

    def end_party(self, party_id: str) -> None:
        """The party's stream ended: its open utterance is transcribed now."""
        if self._loop is not None and not self._closed:
            self._frames.put(_EndParty(party_id))

    async def consume(self, frames: AsyncIterable[PcmFrame]) -> None:
        """Push every frame of ``frames``, then end the parties it carried."""
        seen: set[str] = set()
        async for frame in frames:
            seen.add(frame.party_id)
            self.push(frame)
        for party_id in seen:
            self.end_party(party_id)

    def close(self) -> None:
        """No more frames (:class:`~callwatch.client.sinks.FrameSink`): open utterances are
        transcribed, then the workers stop and :meth:`segments` ends. Returns at once; await
        :meth:`aclose` to wait for all of that. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._loop is None:
            self._out.put_nowait(None)
            return
        self._frames.put(None)
        self._shutdown = self._loop.create_task(self._shut_down(), name="transcriber-close")

    async def aclose(self) -> None:
        """:meth:`close`, and wait until every segment is out and every worker has stopped."""
        self.close()
        if self._shutdown is not None:
            await self._shutdown

    async def _shut_down(self) -> None:
        await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._stop_workers)
        for party_id in list(self._held):
            self._release(party_id, force=True)
        self._out.put_nowait(None)

    async def segments(self) -> AsyncIterator[Segment]:
        """Segments as they are ready, until the transcriber is closed (one reader at a time)."""
        while (segment := await self._out.get()) is not None:
            yield segment
        self._out.put_nowait(None)

    def _stop_workers(self) -> None:
        self._pool.stop()
        if self._partials is not None:
            self._partials.stop()

    # -- front thread -----------------------------------------------------------------------

    def _front_loop(self) -> None:
        failing: set[str] = set()
        while (item := self._frames.get()) is not None:
            try:
                if isinstance(item, _EndParty):
                    self._front.end_party(item.party_id)
                else:
                    self._front.feed(item.party_id, item.pcm, item.rate, item.timestamp, item.now)
            except Exception:  # a bad frame (unsupported rate, not 1-D) must not stop the rest
                if item.party_id not in failing:  # log once per party, count every time
                    failing.add(item.party_id)
                    logger.exception("! transcriber cannot process frames of %s", item.party_id)
                self._call(self._count_error)
        self._front.flush_all()

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                self._loop.call_soon_threadsafe(callback, *args)

    # -- results, delivered on the loop ------------------------------------------------------

    def _job_done(self, job: FinalJob) -> None:
        self._call(self._final_ready, job, self._clock.monotonic())

    def _job_skipped(self, party_id: str, utterance: int) -> None:
        self._call(self._hold, party_id, utterance, None)

    def _partial_ready(self, partial: Partial) -> None:
        self._call(self._emit_partial, partial, self._clock.monotonic())

    def _count_error(self) -> None:
        self.stats.errors += 1

    def _final_ready(self, job: FinalJob, done: float) -> None:
        self.stats.final_audio_seconds += job.pcm.shape[0] / ASR_SAMPLE_RATE
        self.stats.final_cpu_seconds += job.cpu_seconds
        if job.error is not None:
            self.stats.errors += 1
        if not job.text:
            self.stats.empty_finals += 1
            self._hold(job.party_id, job.utterance, None)
            return
        segment = Segment(
            party_id=job.party_id,
            speaker=self._speakers.get(job.party_id, job.party_id),
            text=job.text,
            start=job.start,
            end=job.end,
            final=True,
            latency=max(0.0, done - job.voice_end_now),
            utterance=job.utterance,
            engine=job.engine,
        )
        self._hold(job.party_id, job.utterance, segment)

    def _hold(self, party_id: str, utterance: int, segment: Segment | None) -> None:
        self._held.setdefault(party_id, {})[utterance] = segment
        self._release(party_id, force=False)

    def _release(self, party_id: str, *, force: bool) -> None:
        """Emit held finals in utterance order (all of them, in order, when ``force``)."""
        held = self._held.get(party_id, {})
        expected = self._next_final.get(party_id, 0)
        while held and (expected in held or force):
            expected = expected if expected in held else min(held)
            segment = held.pop(expected)
            expected += 1
            self._last_partial.pop((party_id, expected - 1), None)
            if segment is not None:
                self._emit(segment)
        self._next_final[party_id] = expected

    def _emit_partial(self, partial: Partial, received: float) -> None:
        key = (partial.party_id, partial.utterance)
        if partial.utterance < self._next_final.get(partial.party_id, 0):
            return
        if self._last_partial.get(key) == partial.text:
            return
        self._last_partial[key] = partial.text
        self._emit(
            Segment(
                party_id=partial.party_id,
                speaker=self._speakers.get(partial.party_id, partial.party_id),
                text=partial.text,
                start=partial.start,
                end=partial.end,
                final=False,
                latency=max(0.0, received - partial.now),
                utterance=partial.utterance,
                engine=partial.engine,
            )
        )

    def _emit(self, segment: Segment) -> None:
        if self._out.qsize() >= self.config.max_queued_segments:
            self.stats.segments_dropped += 1
            return
        self.stats.segments += 1
        self._out.put_nowait(segment)


__all__ = [
    "AsrEngine",
    "AsrError",
    "AsrStream",
    "EndpointerConfig",
    "MoonshineEngine",
    "PcmFrame",
    "PocketsphinxEngine",
    "Segment",
    "StreamingAsrEngine",
    "Transcriber",
    "TranscriberConfig",
    "TranscriberStats",
    "TranscriptWriter",
    "format_segment",
]
