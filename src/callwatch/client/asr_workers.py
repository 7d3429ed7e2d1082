"""Final transcriptions on worker threads, with speculative jobs that may be promoted.

Each worker thread builds its own engine from the factory (engines are not thread-safe) and
takes :class:`FinalJob` s from one bounded queue. Moonshine's C call releases the GIL, so
``workers`` threads use up to that many cores while the event loop keeps running.

A job is *final* (its text is wanted) or *speculative* (submitted when the speaker paused;
wanted only if the pause turns out to be the end). Under one lock a job goes

    QUEUED → RUNNING → DONE          (a worker ran it)
    QUEUED | RUNNING → CANCELLED     (speech resumed: skipped, or its text thrown away)

and ``wanted`` is set at submission (final) or later by :meth:`FinalPool.promote`. Whoever
makes a job both DONE and wanted — the worker finishing a wanted job, or ``promote`` on a job
already DONE — hands it to ``on_done`` exactly once.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from callwatch.client.asr_engines import AsrEngine, PcmArray

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], AsrEngine]


class JobState(enum.Enum):
    """Where a :class:`FinalJob` is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(slots=True, eq=False)
class FinalJob:
    """One utterance to transcribe; the mutable fields belong to the pool's lock."""

    party_id: str
    utterance: int
    pcm: PcmArray
    start: float
    end: float
    voice_end_now: float
    """Caller's monotonic time when the utterance's last voiced frame arrived."""
    wanted: bool
    """False while speculative."""
    state: JobState = JobState.QUEUED
    text: str = ""
    engine: str = ""
    """Name of the engine that produced ``text``."""
    error: str | None = None
    compute_seconds: float = field(default=0.0)
    """Wall time the engine spent on this job."""
    cpu_seconds: float = field(default=0.0)
    """CPU time of the worker thread during the job (the engine's own cost)."""


class FinalPool:
    """``workers`` threads, each with its own engine, draining one bounded job queue.

    Args:
        factory: builds one engine; called once on each worker thread.
        workers: number of threads (and engines).
        max_queued: jobs waiting at most; :meth:`submit` refuses more.
        on_done: receives each wanted job once it is DONE (called on a worker thread or on
            the thread calling :meth:`promote`).
        clock: monotonic seconds, for :attr:`FinalJob.compute_seconds`.
    """

    def __init__(
        self,
        factory: EngineFactory,
        *,
        workers: int,
        max_queued: int,
        on_done: Callable[[FinalJob], None],
        clock: Callable[[], float],
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker is needed")
        self._factory = factory
        self._jobs: queue.Queue[FinalJob | None] = queue.Queue()
        self._max_queued = max_queued
        self._on_done = on_done
        self._clock = clock
        self._lock = threading.Lock()
        self.ready: list[Future[None]] = [Future() for _ in range(workers)]
        """One per worker: completes when its engine is built (or failed to build)."""
        self._threads = [
            threading.Thread(target=self._run, args=(ready,), name=f"callwatch-asr-final-{i}")
            for i, ready in enumerate(self.ready)
        ]

    def start(self) -> list[Future[None]]:
        """Start the threads; returns :attr:`ready`."""
        for thread in self._threads:
            thread.start()
        return self.ready

    def submit(self, job: FinalJob) -> bool:
        """Queue ``job``; False (and nothing queued) when :data:`max_queued` jobs wait."""
        if self._jobs.qsize() >= self._max_queued:
            return False
        self._jobs.put(job)
        return True

    def cancel(self, job: FinalJob) -> None:
        """The speculation failed: skip the job, or drop its text when it finishes."""
        with self._lock:
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                job.state = JobState.CANCELLED

    def promote(self, job: FinalJob) -> bool:
        """The speculation held: want the job's text. False if it was already cancelled."""
        with self._lock:
            if job.state is JobState.CANCELLED:
                return False
            job.wanted = True
            deliver_now = job.state is JobState.DONE
        if deliver_now:
            self._on_done(job)
        return True

    def stop(self) -> None:
        """Let the workers finish the queued jobs, then end them (blocking)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            if thread.ident is not None:
                thread.join()

    def _run(self, ready: Future[None]) -> None:
        try:
            engine = self._factory()
        except Exception as exc:  # reported to whoever awaits readiness
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            while (job := self._jobs.get()) is not None:
                self._work(engine, job)
        finally:
            engine.close()

    def _work(self, engine: AsrEngine, job: FinalJob) -> None:
        with self._lock:
            if job.state is JobState.CANCELLED:
                return
            job.state = JobState.RUNNING
        started, cpu_started = self._clock(), time.thread_time()
        try:
            text, error = engine.transcribe(job.pcm), None
        except Exception as exc:  # one bad utterance must not end the worker
            logger.exception("! %s failed on %s/%d", engine.name, job.party_id, job.utterance)
            text, error = "", f"{type(exc).__name__}: {exc}"
        with self._lock:
            if job.state is JobState.CANCELLED:
                return
            job.text, job.error, job.state = text, error, JobState.DONE
            job.engine = engine.name
            job.compute_seconds = self._clock() - started
            job.cpu_seconds = time.thread_time() - cpu_started
            deliver = job.wanted
        if deliver:
            self._on_done(job)


__all__ = ["EngineFactory", "FinalJob", "FinalPool", "JobState"]
