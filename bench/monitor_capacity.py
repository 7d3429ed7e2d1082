"""Monitor capacity: streams one monitor process decodes and records in real time, per codec.

Theory of operation
-------------------
Three processes share the machine: ``callwatch serve`` (:class:`~bench.server.ServerProcess`),
the load generator (this process, :func:`callwatch.sim.load.run_load`) and the monitor — the
supervisor side, ``callwatch monitor --no-transcribe``'s engine in its own process
(:mod:`bench.monitor_child`), so its CPU time is its own. The load tenant is provisioned
before the monitor starts: the supervisor (extension 101) is *Monitoring* in the "Load" group
where every load agent is *Monitored*, so the monitor lists the agents, subscribes to their
telephony sessions and registers its softphone like any ``callwatch monitor``.

Per codec — PCMU, G.722, Opus 48 kHz, Opus 16 kHz (RingCentral's PT 109) — one monitor process
whose softphone accepts only that codec (``MonitorConfig.codecs``), so each server fork carries
the call's own packets zero-copy whatever the softphone's answer preference, and the monitor
decodes exactly what the parties send. For N in
:data:`CALL_COUNTS` (stopping at the first failure) the generator runs N customer ⇄ agent
calls through the trunk, 20 ms RTP both ways in that codec, *unsupervised*
(``LoadConfig(supervise=False)``); the monitor sees each agent's party answered, supervises it
dual channel (one INVITE per party: 2N streams), decodes both streams on its playout clock and
records ``<session>.wav`` (16 kHz stereo). After :data:`DURATION` seconds of steady phase the
customers hang up and the monitor's ``finished`` line for each call carries every stream's
counters.

A step passes — the monitor kept up in real time — when all of these hold:

- every call was set up and the monitor recorded each of them (N WAVs, two streams each);
- no frame was concealed beyond network loss: per stream, PLC frames minus the
  :data:`~callwatch.client.stream_decoder.SILENCE_AFTER` the stream always conceals after the
  talkers stop, minus the packets that never came (jitter-buffer gaps not filled later), is
  at most :data:`CONCEALED_TOLERANCE` of the frames played, summed over the streams; no frame
  was dropped by a slow reader and none failed to decode. Late packets, frames inserted to
  grow the playout delay and gaps a stalled loop leaves are exactly what this catches;
- each WAV is stereo and lasts as long as the call did from the monitor's answer
  (``recording_started``) to the generator's hang-up (``hung_up_at``; both ``time.monotonic``,
  system-wide): at most :data:`WAV_SHORT` shorter (audio lost between stream and file) and at
  most :data:`WAV_LONG` longer (every call hangs up at once, so the last of the 2N BYEs
  reaches the monitor later than the first; a monitor whose loop lags sees them much later);
- the monitor used at most :data:`CPU_LIMIT` % of one core, from :data:`SETTLE` s after it had
  joined the last call to the end of the steady phase (samples of ``/proc/<pid>/stat`` taken
  by the generator's progress callback).

Per codec the table gets the largest passing step: streams per monitor process (2N), the
monitor's CPU per stream (% of a core) and streams per core = 2N ÷ CPU share, a linear
extrapolation (one process runs one event loop: more than a core's worth needs more monitor
processes). A codec whose every step passed has a higher limit than the figure.

The three processes share the machine's cores, and other engineers' jobs may run on it too:
the notes give the server's, the generator's and the whole host's CPU over the step, what the
other processes took, and how long the monitor's loop was ready to run but had no core (its
run-queue wait, ``/proc/<pid>/schedstat``), so a failure caused by a starved monitor rather
than a slow one shows. A monitor held up by others (preempted, or stalled by memory reclaim)
conceals frames although its own CPU is low, so a step that fails with the monitor under
:data:`CPU_LIMIT` is run once more (once per codec) and counts as failed only if it fails
again; the note says so. A monitor short of CPU fails at once. The search is coarse
(:data:`CALL_COUNTS`) to keep the benchmark under three minutes; every wait has a timeout, and
the monitor is stopped with SIGTERM (SIGKILL after :data:`STOP_TIMEOUT`) whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Row
from bench.server import ServerProcess
from callwatch.client.stream_decoder import SILENCE_AFTER
from callwatch.sim.load import LoadConfig, LoadProgress, LoadReport, LoadSetupError, run_load
from callwatch.sim.load_host import host_cpu_ticks, process_cpu_seconds, raise_fd_limit
from callwatch.sim.load_tenant import LoadTarget, local_target

CODECS = (("PCMU", "PCMU"), ("G722", "G.722"), ("OPUS", "Opus 48 kHz"), ("OPUS16", "Opus 16 kHz"))
"""(generator codec, label) pairs measured, in this order."""
CALL_COUNTS = (10, 25, 50)
"""Concurrent calls tried per codec (2 streams each), until the first failure."""
DURATION = 5.0
"""Seconds of the generator's steady phase (every call up)."""
RAMP = 20.0
"""Calls the generator starts per second."""
CPU_LIMIT = 80.0
"""Most CPU the monitor may use, in % of one core, to count as keeping up."""
CONCEALED_TOLERANCE = 0.001
"""Frames concealed beyond network loss allowed, as a share of the frames played (0.1 %: a
single stall from another process on a shared machine should not decide the figure)."""
WAV_SHORT = 0.1
"""Seconds a WAV may be shorter than the call from the monitor's answer to the hang-up."""
WAV_LONG = 0.5
"""Seconds a WAV may be longer than that call (the BYEs of N calls hung up at once)."""
TAIL_CONCEALED = SILENCE_AFTER
"""PLC frames every stream plays between the talkers' last packet and the BYE."""
SETTLE = 0.5
"""Seconds after the monitor joined the last call before its CPU is measured."""
MIN_WINDOW = 2.0
"""Shortest CPU measurement window that counts."""
START_TIMEOUT = 30.0
"""Seconds the monitor may take to log in, register and subscribe."""
FINISH_TIMEOUT = 15.0
"""Seconds after the hang-up for the monitor to close every recording."""
STEP_TIMEOUT = 90.0
"""Seconds one step may take in all."""
STOP_TIMEOUT = 10.0
"""Seconds the monitor gets to exit after SIGTERM before it is killed."""
PROGRESS_INTERVAL = 0.1
"""Seconds between two CPU samples."""
FDS_PER_CALL = 12
LIMITS = '{"Light": 100000, "Medium": 100000, "Heavy": 100000, "Auth": 100000}'

Event = dict[str, Any]


class MonitorStartError(RuntimeError):
    """The monitor process did not come up."""


class MonitorProcess:
    """:mod:`bench.monitor_child` as a child process, logged in as the load supervisor; its
    stdout lines are collected in :attr:`events` as they come."""

    def __init__(self, target: LoadTarget, codec: str, record_dir: Path, log: Path) -> None:
        self._target = target
        self._codec = codec
        self.record_dir = record_dir
        self._log = log
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.events: list[Event] = []

    def cpu_seconds(self) -> float | None:
        """User + system CPU the monitor has used so far."""
        return process_cpu_seconds(self._proc.pid) if self._proc is not None else None

    def waited_seconds(self) -> float | None:
        """Seconds the monitor's loop thread has waited for a core so far."""
        return run_queue_seconds(self._proc.pid) if self._proc is not None else None

    async def start(self) -> None:
        """Start the monitor and wait until it is registered and subscribed.

        Raises:
            MonitorStartError: it exited or did not start within :data:`START_TIMEOUT`.
        """
        tenant = self._target.tenant
        env = {
            **os.environ,
            "RC_SERVER_URL": self._target.server_url,
            "RC_CLIENT_ID": tenant.client_id,
            "RC_CLIENT_SECRET": tenant.client_secret,
            "RC_JWT": tenant.supervisor_jwt,
        }
        cmd = [sys.executable, "-m", "bench.monitor_child", "--record-dir", str(self.record_dir)]
        with self._log.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *cmd, "--codec", self._codec, env=env, cwd=Path(__file__).parent.parent,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self._reader = asyncio.create_task(self._read(), name="monitor-events")
        if not await self.wait(lambda: self._seen("started"), START_TIMEOUT):
            raise MonitorStartError(f"the monitor did not start: {self._problem()}")

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while line := await self._proc.stdout.readline():
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))
                self._changed.set()
        finally:
            self._changed.set()
            await self._proc.wait()

    def _seen(self, kind: str, since: int = 0) -> bool:
        return any(e.get("event") == kind for e in self.events[since:])

    def _problem(self) -> str:
        problems = [str(e.get("message")) for e in self.events if e.get("event") == "problem"]
        if problems:
            return problems[-1]
        try:
            tail = self._log.read_text(errors="replace").strip().splitlines()[-1:]
        except OSError:
            tail = []
        return tail[0] if tail else "no output"

    @property
    def alive(self) -> bool:
        """The child has not exited."""
        return self._proc is not None and self._proc.returncode is None

    async def wait(self, check: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``check()`` holds, testing it as output comes (False: timed out, or the
        child exited without it holding)."""
        deadline = time.monotonic() + timeout
        while not check():
            if self._reader is None or self._reader.done():
                return check()
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            if self._reader.done():
                return check()
        return True

    def finished(self, since: int) -> list[Event]:
        """``finished`` lines after the first ``since`` events."""
        return [e for e in self.events[since:] if e.get("event") == "finished"]

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`; wait for the exit."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


@dataclass
class Step:
    """What one load of N calls showed."""

    calls: int
    reasons: list[str] = field(default_factory=list)
    """Why it failed (empty: the monitor kept up)."""
    monitor_cpu: float | None = None
    """% of one core."""
    monitor_waited: float | None = None
    """% of the time the monitor's loop was ready to run but had no core (others had them)."""
    host_cpu: float | None = None
    """% of all cores, over the same window."""
    server_cpu: float | None = None
    generator_cpu: float | None = None
    frames: int = 0
    excess_concealed: int = 0
    wav_offsets: tuple[float, float] = (0.0, 0.0)
    """Smallest and largest WAV duration − call duration, in seconds."""
    network_loss: float | None = None
    """Loss on the direct path (generator to the other party), %."""
    retried: bool = False
    """The first attempt failed with the monitor under :data:`CPU_LIMIT` (:func:`_retryable`)."""

    @property
    def others_cpu(self) -> float | None:
        """CPU of every other process on the host in % of one core (other people's jobs)."""
        if None in (self.host_cpu, self.monitor_cpu, self.server_cpu, self.generator_cpu):
            return None
        ours = (self.monitor_cpu or 0) + (self.server_cpu or 0) + (self.generator_cpu or 0)
        return max(0.0, (self.host_cpu or 0) * (os.cpu_count() or 1) - ours)

    @property
    def ok(self) -> bool:
        """The monitor kept up in real time."""
        return not self.reasons

    @property
    def streams(self) -> int:
        """Party streams the monitor decoded (two per call)."""
        return 2 * self.calls


@dataclass
class _Sample:
    at: float
    phase: str
    monitor: float | None
    """The monitor's CPU seconds so far."""
    waited: float | None
    """Seconds its main thread has spent runnable but waiting for a core."""
    host: tuple[int, int] | None


def run_queue_seconds(pid: int) -> float | None:
    """Seconds the main thread of ``pid`` has waited on a run queue (``/proc/<pid>/schedstat``:
    ready to run while other tasks had the cores — the contention it suffered)."""
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _excess(stream: dict[str, int]) -> int:
    """Frames of one stream concealed beyond network loss (see the module docstring)."""
    network = max(0, stream["lost"] - stream["late"])  # gaps never filled: the packet is gone
    return max(0, max(0, stream["concealed"] - TAIL_CONCEALED) - network)


def _wav_seconds(path: Path) -> tuple[int, float]:
    with wave.open(str(path)) as wav:
        return wav.getnchannels(), wav.getnframes() / wav.getframerate()


def _measure_cpu(step: Step, samples: list[_Sample], start: float) -> bool:
    """Set the step's monitor, run-queue and host figures from ``start`` to the end of the
    steady phase; False when that window is shorter than :data:`MIN_WINDOW`."""
    window = [s for s in samples if s.phase == "steady" and s.at >= start]
    if len(window) < 2 or window[-1].at - window[0].at < MIN_WINDOW:
        return False
    first, last = window[0], window[-1]
    if first.monitor is None or last.monitor is None:
        return False
    wall = last.at - first.at
    step.monitor_cpu = (last.monitor - first.monitor) / wall * 100
    if first.waited is not None and last.waited is not None:
        step.monitor_waited = (last.waited - first.waited) / wall * 100
    if first.host is not None and last.host is not None and last.host[1] > first.host[1]:
        step.host_cpu = (last.host[0] - first.host[0]) / (last.host[1] - first.host[1]) * 100
    return True


def evaluate(calls: int, report: LoadReport, finished: list[Event], samples: list[_Sample]) -> Step:
    """Judge one step (see the module docstring for the criteria)."""
    step = Step(
        calls, server_cpu=report.server_cpu_percent, generator_cpu=report.generator_cpu_percent,
        network_loss=report.media.direct_loss_percent,
    )  # fmt: skip
    if not report.ok:
        first = report.failures[0] if report.failures else None
        why = f" (first: {first.stage}: {first.reason})" if first else ""
        step.reasons.append(f"generator set up {report.calls_set_up}/{calls} calls{why}")
    if len(finished) < calls:
        step.reasons.append(f"monitor recorded {len(finished)}/{calls} calls")
    offsets: list[float] = []
    dropped = undecodable = 0
    for event in finished:
        streams: dict[str, dict[str, int]] = event.get("streams") or {}
        if len(streams) != 2:
            step.reasons.append(f"a call with {len(streams)} streams, not 2")
        for stream in streams.values():
            step.frames += stream["frames"]
            step.excess_concealed += _excess(stream)
            dropped += stream["dropped"]
            undecodable += stream["decode_errors"]
        try:
            channels, seconds = _wav_seconds(Path(event["wav"]))
        except (OSError, EOFError, wave.Error) as exc:
            step.reasons.append(f"unreadable WAV: {exc}")
            continue
        if channels != 2:
            step.reasons.append(f"a WAV with {channels} channels")
        offsets.append(seconds - ((report.hung_up_at or 0.0) - float(event["recording_started"])))
    if dropped or undecodable:
        step.reasons.append(f"{dropped} frames dropped by slow readers, {undecodable} undecodable")
    if offsets:
        step.wav_offsets = (min(offsets), max(offsets))
        bad = sum(not -WAV_SHORT <= offset <= WAV_LONG for offset in offsets)
        if bad:
            step.reasons.append(
                f"{bad} WAVs off the call's duration ({min(offsets):+.2f}…{max(offsets):+.2f} s)"
            )
    if step.excess_concealed > CONCEALED_TOLERANCE * max(step.frames, 1):
        step.reasons.append(
            f"{step.excess_concealed} of {step.frames} frames concealed beyond network loss"
        )
    joined = max((float(e["recording_started"]) for e in finished), default=0.0)
    if not _measure_cpu(step, samples, joined + SETTLE):
        step.reasons.append("no steady window with every call recorded to measure CPU in")
    elif step.monitor_cpu is not None and step.monitor_cpu > CPU_LIMIT:
        step.reasons.append(f"monitor CPU {step.monitor_cpu:.0f} % > {CPU_LIMIT:.0f} %")
    # one reason per kind is enough for a note
    step.reasons = list(dict.fromkeys(step.reasons))
    return step


@dataclass(frozen=True)
class _Bench:
    """The server every step loads, and the tenant provisioned on it."""

    data_dir: Path
    server_pid: int | None
    target: LoadTarget


async def _step(bench: _Bench, monitor: MonitorProcess, codec: str, calls: int) -> Step:
    mark = len(monitor.events)
    samples: list[_Sample] = []

    def sample(progress: LoadProgress) -> None:
        cpu, waited = monitor.cpu_seconds(), monitor.waited_seconds()
        samples.append(_Sample(time.monotonic(), progress.phase, cpu, waited, host_cpu_ticks()))

    config = LoadConfig(
        calls=calls, duration=DURATION, codec=codec, data_dir=bench.data_dir,
        server_pid=bench.server_pid, supervise=False, progress_interval=PROGRESS_INTERVAL,
        ramp=RAMP,
    )  # fmt: skip
    report = await run_load(config, sample)
    await monitor.wait(lambda: len(monitor.finished(mark)) >= report.calls_set_up, FINISH_TIMEOUT)
    step = evaluate(calls, report, monitor.finished(mark), samples)
    if not monitor.alive:
        step.reasons.append("the monitor process exited")
    return step


def _retryable(step: Step) -> bool:
    """A failure with the monitor under :data:`CPU_LIMIT`: it had the CPU it needed, so
    something else (another process, a stall of the host) may have held it up."""
    return not step.ok and step.monitor_cpu is not None and step.monitor_cpu <= CPU_LIMIT


async def _attempt(bench: _Bench, monitor: MonitorProcess, codec: str, calls: int) -> Step:
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            return await _step(bench, monitor, codec, calls)
    except TimeoutError:
        return Step(calls, [f"step took more than {STEP_TIMEOUT:g} s"])
    except LoadSetupError as exc:
        return Step(calls, [f"load not started: {exc}"])
    finally:
        for wav in monitor.record_dir.glob("*.wav"):  # ~64 kB per call-second
            wav.unlink(missing_ok=True)


async def _search(bench: _Bench, codec: str, root: Path) -> list[Step]:
    """Steps of :data:`CALL_COUNTS` for ``codec`` until the first failure."""
    record_dir = root / codec
    monitor = MonitorProcess(bench.target, codec, record_dir, root / f"monitor-{codec}.log")
    steps: list[Step] = []
    try:
        await monitor.start()
        for calls in CALL_COUNTS:
            step = await _attempt(bench, monitor, codec, calls)
            if _retryable(step) and monitor.alive and not any(s.retried for s in steps):
                step = await _attempt(bench, monitor, codec, calls)
                step.retried = True
            steps.append(step)
            if not step.ok:
                break
    except MonitorStartError as exc:
        steps.append(Step(CALL_COUNTS[0], [str(exc)]))
    finally:
        await monitor.stop()
    return steps


def _run(main: Coroutine[Any, Any, list[Step]]) -> list[Step]:
    """The generator's loop: uvloop where installed, as ``callwatch sim load`` runs it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    steps: list[Step] = uvloop.run(main)
    return steps


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} %"


def _contention(step: Step) -> str:
    retried = ", retried once" if step.retried else ""
    return (
        f"host {_pct(step.host_cpu)} of {os.cpu_count() or 1} cores busy, other jobs "
        f"{_pct(step.others_cpu)} of a core, monitor waiting for a core "
        f"{_pct(step.monitor_waited)} of the time{retried}"
    )


def _note(best: Step, steps: list[Step]) -> str:
    failed = next((s for s in steps if not s.ok), None)
    verdict = (
        f"{failed.calls} calls failed (monitor {_pct(failed.monitor_cpu)} of a core, "
        f"{_contention(failed)}): {'; '.join(failed.reasons)}"
        if failed is not None
        else f"every step passed: the limit is above {best.streams} streams"
    )
    cpu = (
        f"monitor {_pct(best.monitor_cpu)} of a core, server {_pct(best.server_cpu)}, "
        f"generator {_pct(best.generator_cpu)}; {_contention(best)}"
    )
    media = (
        f"network loss {best.network_loss or 0.0:.2f} %, {best.excess_concealed}/{best.frames} "
        f"frames concealed beyond it, WAVs {best.wav_offsets[0]:+.2f}…{best.wav_offsets[1]:+.2f} s "
        "off the call"
    )
    outcome = "real time" if best.ok else "NOT real time"
    tried = ", ".join(str(s.calls) for s in steps)
    return (
        f"{best.calls} calls {outcome}: {cpu}; {media}; calls tried {tried}; {verdict}; "
        "contended machine: figures vary with other jobs"
    )


def _rows(label: str, steps: list[Step]) -> list[Row]:
    """The figures of the largest passing step (else of the first, with 0 streams)."""
    passed = [s for s in steps if s.ok]
    best = passed[-1] if passed else (steps[0] if steps else None)
    if best is None:
        return []
    note = _note(best, steps)
    streams = best.streams if best.ok else 0
    prefix = f"monitor {label}:"
    rows = [Row(f"{prefix} real-time streams per monitor process", streams, "streams", note)]
    if best.monitor_cpu is not None and best.monitor_cpu > 0:
        short = (
            f"{best.streams} streams ({best.calls} calls{'' if best.ok else ', NOT real time'}): "
            f"monitor {_pct(best.monitor_cpu)} of a core; {_contention(best)}; see the "
            "streams row; contended machine"
        )
        per_stream = best.monitor_cpu / best.streams
        rows.append(Row(f"{prefix} CPU per stream", per_stream, "% of a core", short))
        per_core = 100 / per_stream
        rows.append(Row(f"{prefix} streams per core (extrapolated)", per_core, "streams", short))
    return rows


def run() -> list[Row]:
    """Per codec, the largest of :data:`CALL_COUNTS` one monitor process records in real time."""
    raise_fd_limit(max(CALL_COUNTS) * FDS_PER_CALL + 256)
    rows: list[Row] = []
    with (
        ServerProcess(env={"CALLWATCH_API__RATE_LIMITS": LIMITS}) as server,
        tempfile.TemporaryDirectory(prefix="callwatch-monitor-") as tmp,
    ):
        pid = server.proc.pid if server.proc is not None else None
        # every agent exists (and is Monitored) before a monitor lists what it may monitor
        target = local_target(server.data_dir, agents=max(CALL_COUNTS), server_pid=pid)
        bench = _Bench(server.data_dir, pid, target)
        for codec, label in CODECS:
            steps = _run(_search(bench, codec, Path(tmp)))
            rows.extend(_rows(label, steps))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.figure:<56} {row.value:>10.3f} {row.unit:<12} {row.note}")
