"""Partial hypotheses from a streaming engine, computed in a child process.

Why a process: pocketsphinx's ``process_raw`` keeps the GIL for its whole call (measured: a
spinning Python thread got 2 % of its normal iterations while it ran, and one 20 ms call can
take 50 ms), so on a thread it would stall the event loop. Why not ``multiprocessing``: its
``spawn`` and ``forkserver`` methods re-import the parent's ``__main__`` (a script without an
``if __name__ == "__main__"`` guard would run again in the child), and ``fork`` is unsafe in a
process with an event loop and threads. So the child is a plain ``python -m
callwatch.client.asr_partials FACTORY INTERVAL IN_FD OUT_FD`` started with ``subprocess``; it
imports the factory (``module:qualname`` of a top-level callable such as
:class:`~callwatch.client.asr_engines.PocketsphinxEngine`), builds one engine per party lazily,
and exchanges pickled messages over two inherited pipes
(:class:`multiprocessing.connection.Connection` framing):

* requests (parent → child): :class:`Begin`, :class:`Audio`, :class:`Finish`, and a final
  ``None``. They pass through a bounded queue and a sender thread, so the caller never blocks
  on the pipe: when the queue is full, audio is dropped (partials are best-effort) and counted,
  and control messages wait at most :data:`SEND_TIMEOUT`.
* results (child → parent): :class:`Ready`, :class:`Partial`, :class:`Failed`, ``None`` at exit.

The child asks the stream for a hypothesis every ``interval`` seconds of audio and sends it when
the text changed. A parent thread reads results and hands each :class:`Partial` to a callback.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import cast

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
    engine: str
    """Name of the streaming engine."""


Request = Begin | Audio | Finish | None
Result = Ready | Failed | Partial | None


@dataclass(slots=True)
class _Open:
    utterance: int
    start: float
    stream: AsrStream
    engine: str
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
            engine = self._engine(message.party_id)
            self.open[message.party_id] = _Open(
                message.utterance, message.start, engine.open_stream(), engine.name
            )
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
            engine=current.engine,
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
    factory: StreamingEngineFactory, interval: float, inbox: Connection, outbox: Connection
) -> None:
    """Child main loop: build the first engine, then answer requests until ``None``.

    Ends quietly when the parent goes away (its end of a pipe closes).
    """
    with contextlib.suppress(EOFError, OSError):
        try:
            state = _ChildState(factory, interval)
            outbox.send(Ready())
            while (message := inbox.recv()) is not None:
                partial = state.handle(message)
                if partial is not None:
                    outbox.send(partial)
            state.close()
        except (EOFError, OSError):
            raise
        except Exception as exc:  # the parent must learn why; it carries on without partials
            outbox.send(Failed(f"{type(exc).__name__}: {exc}"))
        outbox.send(None)


def factory_reference(factory: StreamingEngineFactory) -> str:
    """``module:qualname`` of a top-level factory, importable by the child.

    Raises:
        ValueError: the factory is a lambda, a local or lives in ``__main__``.
    """
    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or not name:
        raise ValueError(f"partial engine factory {factory!r} must be importable (top level)")
    return f"{module}:{name}"


def resolve_factory(reference: str) -> StreamingEngineFactory:
    """Import what :func:`factory_reference` named."""
    module, _, name = reference.partition(":")
    target: object = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference} is not callable")
    return cast(StreamingEngineFactory, target)


@dataclass(slots=True)
class PartialCounters:
    """What the runner dropped."""

    audio_dropped: int = 0
    """Audio messages not sent because the child was behind."""
    control_dropped: int = 0
    """Begin/Finish messages not sent because the child was behind."""


class PartialRunner:
    """Parent side: owns the child process, a sender thread and a result-reader thread.

    Args:
        factory: builds one streaming engine (called in the child, once per party); must be
            importable by reference (see :func:`factory_reference`).
        interval: seconds of audio between two hypothesis checks.
        on_partial: called on the reader thread for every :class:`Partial`.
        max_queued: bound of the request queue (messages).

    Raises:
        ValueError: ``factory`` cannot be imported by the child.
    """

    def __init__(
        self,
        factory: StreamingEngineFactory,
        *,
        interval: float,
        on_partial: Callable[[Partial], None],
        max_queued: int = 500,
    ) -> None:
        self._reference = factory_reference(factory)
        self._interval = interval
        self._on_partial = on_partial
        self._queue: queue.Queue[Request] = queue.Queue(max_queued)
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._results: Connection | None = None
        self._threads: list[threading.Thread] = []
        self.counters = PartialCounters()
        self._failed: str | None = None

    def start(self) -> None:
        """Start the child and wait (blocking) until its first engine is built.

        Raises:
            RuntimeError: the child failed or was not ready within :data:`START_TIMEOUT`.
        """
        child_in, parent_out = os.pipe()
        parent_in, child_out = os.pipe()
        command = [sys.executable, "-m", __name__, self._reference, repr(self._interval)]
        # the child imports the factory from the parent's import path
        path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
        self._process = subprocess.Popen(
            [*command, str(child_in), str(child_out)],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
        )
        os.close(child_in)
        os.close(child_out)
        self._requests = requests = Connection(parent_out, readable=False)
        self._results = results = Connection(parent_in, writable=False)
        first = results.recv() if results.poll(START_TIMEOUT) else None
        if not isinstance(first, Ready):
            reason = first.reason if isinstance(first, Failed) else "no answer"
            self._kill()
            raise RuntimeError(f"partial-hypothesis process did not start: {reason}")
        self._threads = [
            threading.Thread(target=self._send_loop, args=(requests,), name="asr-partials-tx"),
            threading.Thread(target=self._read_loop, args=(results,), name="asr-partials-rx"),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def failed(self) -> str | None:
        """Why the child stopped producing partials, if it did."""
        return self._failed

    def begin(self, party_id: str, utterance: int, start: float) -> None:
        """Tell the child an utterance started."""
        self._control(Begin(party_id=party_id, utterance=utterance, start=start))

    def audio(self, party_id: str, utterance: int, pcm: PcmArray, end: float, now: float) -> None:
        """Forward audio; dropped (and counted) if the child is behind."""
        message = Audio(party_id, utterance, pcm.astype("<i2").tobytes(), end, now)
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.counters.audio_dropped += 1

    def finish(self, party_id: str, utterance: int) -> None:
        """Tell the child an utterance ended."""
        self._control(Finish(party_id=party_id, utterance=utterance))

    def _control(self, message: Begin | Finish) -> None:
        # A lost Begin only loses that utterance's partials; a lost Finish is implied by the
        # next Begin. Neither may stall the caller for long.
        try:
            self._queue.put(message, timeout=SEND_TIMEOUT)
        except queue.Full:
            self.counters.control_dropped += 1

    def stop(self) -> None:
        """Stop the child and both threads (blocking, bounded by a few :data:`STOP_TIMEOUT`)."""
        if self._process is None:
            return
        try:
            self._queue.put(None, timeout=STOP_TIMEOUT)
        except queue.Full:
            logger.warning("! partial-hypothesis sender is stuck; killing the child")
            self._kill()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT)
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
        for connection in (self._requests, self._results):
            if connection is not None:
                connection.close()

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)

    def _send_loop(self, requests: Connection) -> None:
        while True:
            message = self._queue.get()
            try:
                requests.send(message)
            except OSError:  # the child died; the reader reports it
                return
            if message is None:
                return

    def _read_loop(self, results: Connection) -> None:
        while True:
            try:
                result = results.recv()
            except (EOFError, OSError):
                return
            if result is None:
                return
            if isinstance(result, Failed):
                self._failed = result.reason
                logger.error("! partial hypotheses stopped: %s", result.reason)
            elif isinstance(result, Partial):
                self._on_partial(result)


def main(argv: list[str]) -> int:
    """Child entry point: ``FACTORY INTERVAL IN_FD OUT_FD``."""
    reference, interval, inbox, outbox = argv
    serve(
        resolve_factory(reference),
        float(interval),
        Connection(int(inbox), writable=False),
        Connection(int(outbox), readable=False),
    )
    return 0


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
    "factory_reference",
    "main",
    "resolve_factory",
    "serve",
]

if __name__ == "__main__":
    # Run the imported module, not this ``__main__`` copy: pickled messages name their classes
    # ``callwatch.client.asr_partials.*`` on both sides.
    from callwatch.client import asr_partials

    sys.exit(asr_partials.main(sys.argv[1:]))
