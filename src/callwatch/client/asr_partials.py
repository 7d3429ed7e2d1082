"""Partial hypotheses from a streaming engine, computed in a child process.

Why a process: pocketsphinx's ``process_raw`` keeps the GIL for its whole call (measured: a
spinning Python thread got 2 % of its normal iterations while it ran, and one 20 ms call can
take 50 ms), so on a thread it would stall the event loop. The child is started with the
``spawn`` method (forking a process that runs an event loop and threads is unsafe), builds one
engine per party lazily from a picklable factory (a top-level class such as
:class:`~callwatch.client.asr_engines.PocketsphinxEngine`), and talks over two
``multiprocessing`` queues:

* requests (parent → child, bounded): :class:`Begin`, :class:`Audio`, :class:`Finish`, and a
  final ``None``. When the queue is full, audio is dropped (partials are best-effort) and
  counted; control messages wait.
* results (child → parent): :class:`Ready`, :class:`Partial`, :class:`Failed`, ``None`` at exit.

The child asks the stream for a hypothesis every ``interval`` seconds of audio and sends it when
the text changed. A parent thread reads results and hands each :class:`Partial` to a callback.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess

import numpy as np

from callwatch.client.asr_engines import AsrStream, PcmArray, StreamingAsrEngine

logger = logging.getLogger(__name__)

StreamingEngineFactory = Callable[[], StreamingAsrEngine]
START_TIMEOUT = 30.0
"""Seconds the child may take to start and build its first engine."""
STOP_TIMEOUT = 5.0
SEND_TIMEOUT = 0.2
"""Longest a control message waits for room in the request queue."""


@dataclass(frozen=True, slots=True)
class Begin:
    """An utterance of ``party_id`` started at ``start`` (audio clock)."""

    party_id: str
    utterance: int
    start: float


@dataclass(frozen=True, slots=True)
class Audio:
    """More 16 kHz audio of an utterance; ``end`` on the audio clock, ``now`` on the parent's."""

    party_id: str
    utterance: int
    pcm: bytes
    end: float
    now: float


@dataclass(frozen=True, slots=True)
class Finish:
    """The utterance is over (its final text comes from the accurate engine)."""

    party_id: str
    utterance: int


@dataclass(frozen=True, slots=True)
class Ready:
    """The child built its first engine."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The child could not build an engine or decode; it exits after sending this."""

    reason: str


@dataclass(frozen=True, slots=True)
class Partial:
    """A changed partial hypothesis."""

    party_id: str
    utterance: int
    text: str
    start: float
    end: float
    """Audio-clock end of the audio the hypothesis covers."""
    now: float
    """Parent's ``now`` of that audio's arrival (for latency)."""


Request = Begin | Audio | Finish | None
Result = Ready | Failed | Partial | None


@dataclass(slots=True)
class _Open:
    utterance: int
    start: float
    stream: AsrStream
    text: str = ""
    last_check: float = field(default=float("-inf"))


class _ChildState:
    """The child's per-party engines and open utterances."""

    def __init__(self, factory: StreamingEngineFactory, interval: float) -> None:
        self.factory = factory
        self.interval = interval
        self.spare: StreamingAsrEngine | None = factory()
        self.engines: dict[str, StreamingAsrEngine] = {}
        self.open: dict[str, _Open] = {}

    def _engine(self, party_id: str) -> StreamingAsrEngine:
        engine = self.engines.get(party_id)
        if engine is None:
            engine, self.spare = self.spare or self.factory(), None
            self.engines[party_id] = engine
        return engine

    def handle(self, message: Begin | Audio | Finish) -> Partial | None:
        if isinstance(message, Begin):
            self._close(message.party_id)
            stream = self._engine(message.party_id).open_stream()
            self.open[message.party_id] = _Open(message.utterance, message.start, stream)
        elif isinstance(message, Finish):
            self._close(message.party_id)
        else:
            return self._audio(message)
        return None

    def _audio(self, message: Audio) -> Partial | None:
        current = self.open.get(message.party_id)
        if current is None or current.utterance != message.utterance:
            return None
        current.stream.accept(np.frombuffer(message.pcm, dtype="<i2").astype(np.int16))
        if message.end - current.last_check < self.interval:
            return None
        current.last_check = message.end
        text = current.stream.partial()
        if not text or text == current.text:
            return None
        current.text = text
        return Partial(
            party_id=message.party_id,
            utterance=message.utterance,
            text=text,
            start=current.start,
            end=message.end,
            now=message.now,
        )

    def _close(self, party_id: str) -> None:
        current = self.open.pop(party_id, None)
        if current is not None:
            current.stream.finish()

    def close(self) -> None:
        for party_id in list(self.open):
            self._close(party_id)
        for engine in [*self.engines.values(), *([self.spare] if self.spare else [])]:
            engine.close()


def serve(
    factory: StreamingEngineFactory,
    interval: float,
    requests: multiprocessing.Queue[Request],
    results: multiprocessing.Queue[Result],
) -> None:
    """Child-process main loop (module-level so ``spawn`` can import it)."""
    try:
        state = _ChildState(factory, interval)
        results.put(Ready())
        while (message := requests.get()) is not None:
            partial = state.handle(message)
            if partial is not None:
                results.put(partial)
        state.close()
    except Exception as exc:  # the parent must learn why; it logs and carries on without partials
        results.put(Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        results.put(None)


@dataclass(slots=True)
class PartialCounters:
    """What the runner dropped."""

    audio_dropped: int = 0
    """Audio messages not sent because the child was behind."""
    control_dropped: int = 0
    """Begin/Finish messages not sent because the child was behind."""


class PartialRunner:
    """Parent side: owns the child process and the result-reader thread.

    Args:
        factory: builds one streaming engine (called in the child, once per party).
        interval: seconds of audio between two hypothesis checks.
        on_partial: called on the reader thread for every :class:`Partial`.
        max_queued: bound of the request queue (messages).
    """

    def __init__(
        self,
        factory: StreamingEngineFactory,
        *,
        interval: float,
        on_partial: Callable[[Partial], None],
        max_queued: int = 500,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._requests: multiprocessing.Queue[Request] = context.Queue(max_queued)
        self._results: multiprocessing.Queue[Result] = context.Queue()
        self._process: SpawnProcess = context.Process(
            target=serve,
            args=(factory, interval, self._requests, self._results),
            name="callwatch-asr-partials",
            daemon=True,
        )
        self._on_partial = on_partial
        self._reader = threading.Thread(target=self._read, name="callwatch-asr-partials-reader")
        self.counters = PartialCounters()
        self._failed: str | None = None

    def start(self) -> None:
        """Start the child and wait (blocking) until its engine is built.

        Raises:
            RuntimeError: the child failed or did not get ready in :data:`START_TIMEOUT`.
        """
        self._process.start()
        try:
            first = self._results.get(timeout=START_TIMEOUT)
        except queue.Empty:
            first = Failed("timed out")
        if not isinstance(first, Ready):
            self._process.join(STOP_TIMEOUT)
            reason = first.reason if isinstance(first, Failed) else "exited"
            raise RuntimeError(f"partial-hypothesis process did not start: {reason}")
        self._reader.start()

    def begin(self, party_id: str, utterance: int, start: float) -> None:
        """Tell the child an utterance started."""
        self._send(Begin(party_id=party_id, utterance=utterance, start=start))

    def audio(self, party_id: str, utterance: int, pcm: PcmArray, end: float, now: float) -> None:
        """Forward audio; dropped (and counted) if the child is behind."""
        message = Audio(party_id, utterance, pcm.astype("<i2").tobytes(), end, now)
        try:
            self._requests.put_nowait(message)
        except queue.Full:
            self.counters.audio_dropped += 1

    def finish(self, party_id: str, utterance: int) -> None:
        """Tell the child an utterance ended."""
        self._send(Finish(party_id=party_id, utterance=utterance))

    def _send(self, message: Request) -> None:
        # A lost Begin only loses that utterance's partials; a lost Finish is implied by the
        # next Begin. Neither may stall the caller for long.
        if self._failed is not None:
            return
        try:
            self._requests.put(message, timeout=SEND_TIMEOUT)
        except queue.Full:
            self.counters.control_dropped += 1

    def stop(self) -> None:
        """Stop the child (blocking, bounded by :data:`STOP_TIMEOUT` twice)."""
        if not self._process.is_alive() and self._process.exitcode is not None:
            self._reader.join(STOP_TIMEOUT)
            return
        try:
            self._requests.put(None, timeout=STOP_TIMEOUT)
        except queue.Full:
            logger.warning("! partial-hypothesis process is stuck; terminating it")
            self._process.terminate()
        self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_TIMEOUT)
        if self._reader.is_alive():
            self._reader.join(STOP_TIMEOUT)
        self._requests.close()
        self._results.close()

    def _read(self) -> None:
        while True:
            try:
                result = self._results.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    return
                continue
            if result is None:
                return
            if isinstance(result, Failed):
                self._failed = result.reason
                logger.error("! partial hypotheses stopped: %s", result.reason)
            elif isinstance(result, Partial):
                self._on_partial(result)


__all__ = [
    "Audio",
    "Begin",
    "Failed",
    "Finish",
    "Partial",
    "PartialCounters",
    "PartialRunner",
    "Ready",
    "StreamingEngineFactory",
    "serve",
]
