"""The load generator: N concurrent supervised calls with 20 ms RTP against a callwatch server.

Theory of operation
-------------------
:func:`run_load` runs in phases, reporting a :class:`LoadProgress` to its callback as it goes:

1. *provisioning* — the target: a local server's data directory gets N load agents and the
   "Load" monitoring group (:func:`~callwatch.sim.load_tenant.local_target`), or a remote
   server comes with a tenant file;
2. *registering* — the supervisor logs in over REST (one token for the whole run) and its
   ``OtherPhone`` device registers (:class:`~callwatch.sim.load_call.SupervisorDesk`); each
   agent's user agent registers its own device, 20 at a time;
3. *ramping* — calls start ``ramp`` per second: each is connected, starts talking and is
   supervised at session level (:class:`~callwatch.sim.load_call.LoadCall`);
4. *steady* — every call is up (or failed); the run lasts ``duration`` seconds, over which the
   server's and the generator's CPU use is measured;
5. *draining* / *hanging up* — talkers stop, in-flight packets get ``drain`` seconds, the
   customers hang up, every device unregisters.

Every RTP packet carries a stamp (:mod:`callwatch.sim.load_meter`), so loss, RFC 3550 jitter
and fork latency (arrival at the supervisor's device minus arrival at the other party, both
read from ``time.monotonic`` as this process's packet handlers run) come from what the
receivers saw. Fork latency is thus the delay the fork adds over the direct path, plus the
generator's own scheduling noise when it is saturated: keep its CPU well under one core.

With ``supervise=False`` (:attr:`LoadConfig.supervise`) phase 2 registers no supervisor
device and logs nobody in, and phase 3 only connects: the calls run unsupervised, for a
supervisor in another process (``callwatch monitor`` logged in as the load tenant's supervisor,
whose "Load" group makes every load agent *Monitored*) to supervise and record. The report's
``hung_up_at`` then says when those recordings should end.

The server must allow the REST load: ``CALLWATCH_API__RATE_LIMITS`` (:data:`RATE_LIMITS_ENV`)
with high limits, e.g. ``{"Light":100000,"Medium":100000,"Heavy":100000,"Auth":100000}``;
each call costs a presence read and a supervise (both Light), the run one token (Auth). A 429
is never retried: it fails the call, is counted in :attr:`LoadReport.rate_limited`, and the
report's notes say how to start the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable

from callwatch.client import RegistrationFailed
from callwatch.client.api_errors import ClientError, RateLimited
from callwatch.client.api_session import RetryPolicy
from callwatch.client.rest import RestClient
from callwatch.sim.load_call import CallPlan, FrameSource, LoadCall, LoadCallError, SupervisorDesk
from callwatch.sim.load_host import CpuUse, find_server_pid, sample_cpu
from callwatch.sim.load_meter import MeterBoard, Percentiles, Speaker, loss_percent, summarize
from callwatch.sim.load_model import (
    PTIME,
    RATE_LIMITS_ENV,
    CallFailure,
    LoadConfig,
    LoadProgress,
    LoadReport,
    LoadSetupError,
    ProgressCallback,
    RemoteServer,
)
from callwatch.sim.load_tenant import LoadTarget, TenantError, local_target, remote_target

__all__ = [
    "RATE_LIMITS_ENV",
    "CallFailure",
    "LoadConfig",
    "LoadProgress",
    "LoadReport",
    "LoadSetupError",
    "ProgressCallback",
    "RemoteServer",
    "run_load",
]

REGISTER_CONCURRENCY = 20
"""Registrations (and unregistrations) in flight at once."""
TEARDOWN_TIMEOUT = 3.0
"""Seconds a hang-up or an unregistration may take."""


async def run_load(config: LoadConfig, progress: ProgressCallback | None = None) -> LoadReport:
    """Run ``config`` (see the module docstring) and report what was measured.

    Args:
        config: calls, duration, codec, ramp and the target server.
        progress: called with a :class:`LoadProgress` every ``config.progress_interval``
            seconds and once at the end; it must return quickly.

    Raises:
        LoadSetupError: the target or the supervisor could not be used; no call was made.
    """
    return await _LoadRun(config, progress).run()


def _target(config: LoadConfig) -> LoadTarget:
    try:
        if config.remote is not None:
            remote = config.remote
            return remote_target(
                remote.server_url, remote.sip_host, remote.sip_port, remote.tenant_file
            )
        assert config.data_dir is not None
        pid = config.server_pid or find_server_pid(config.data_dir)
        return local_target(config.data_dir, agents=config.calls, host=config.host, server_pid=pid)
    except TenantError as exc:
        raise LoadSetupError(str(exc)) from exc


class _LoadRun:
    """One execution of :func:`run_load`."""

    def __init__(self, config: LoadConfig, progress: ProgressCallback | None) -> None:
        self._config = config
        self._progress = progress
        self._board = MeterBoard(config.calls, ptime=PTIME)
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._steady_at: float | None = None
        self._phase = "provisioning"
        self._calls: list[LoadCall] = []
        self._failures: dict[int, CallFailure] = {}
        self._rate_limited = 0
        self._teardown_problems = 0
        self._hung_up_at: float | None = None

    async def run(self) -> LoadReport:
        ticker = asyncio.create_task(self._tick(), name="load-progress")
        try:
            target = await asyncio.to_thread(_target, self._config)
            if len(target.tenant.agents) < self._config.calls:
                raise LoadSetupError(
                    f"{self._config.calls} calls need as many agents; "
                    f"the tenant has {len(target.tenant.agents)}"
                )
            cpu, strays = await self._run_on(target)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        self._phase = "done"
        self._emit()
        return self._report(target, cpu, strays)

    async def _run_on(self, target: LoadTarget) -> tuple[CpuUse, int]:
        config = self._config
        plan = CallPlan(
            sip=target.sip, codec=config.codec.upper(), host=config.host, board=self._board,
            frames=FrameSource(), max_packets=config.max_packets,
        )  # fmt: skip
        self._calls = [
            LoadCall(i, agent, plan) for i, agent in enumerate(target.tenant.agents[: config.calls])
        ]
        async with contextlib.AsyncExitStack() as stack:
            self._phase = "registering"
            supervision = await self._supervision(target, plan, stack) if config.supervise else None
            stack.push_async_callback(self._close_calls)
            await self._bounded(self._register, self._calls)
            await self._ramp(supervision)
            cpu = await self._steady(target.server_pid)
            await self._stop()
        return cpu, supervision[1].strays if supervision is not None else 0

    async def _supervision(
        self, target: LoadTarget, plan: CallPlan, stack: contextlib.AsyncExitStack
    ) -> tuple[RestClient, SupervisorDesk]:
        rest = await self._login(target, stack)
        desk = SupervisorDesk(target.tenant.supervisor_device, plan)
        stack.push_async_callback(self._close_desk, desk)
        try:
            await desk.start()
        except (RegistrationFailed, OSError) as exc:
            raise LoadSetupError(f"the supervisor's device cannot register: {exc}") from exc
        return rest, desk

    async def _login(self, target: LoadTarget, stack: contextlib.AsyncExitStack) -> RestClient:
        tenant = target.tenant
        rest = RestClient(
            target.server_url,
            tenant.client_id,
            tenant.client_secret,
            retry=RetryPolicy(max_attempts=1),
        )
        stack.push_async_callback(rest.close)
        try:
            await rest.login_jwt(tenant.supervisor_jwt)
        except RateLimited as exc:
            hint = f"start the server with {RATE_LIMITS_ENV}"
            raise LoadSetupError(f"login rate limited ({exc}); {hint}") from exc
        except ClientError as exc:
            raise LoadSetupError(f"the supervisor cannot log in: {exc}") from exc
        return rest

    # -- phases -----------------------------------------------------------------------------------

    async def _register(self, call: LoadCall) -> None:
        try:
            await call.register()
        except LoadCallError as exc:
            self._fail(call, exc)

    async def _ramp(self, supervision: tuple[RestClient, SupervisorDesk] | None) -> None:
        self._phase = "ramping"
        start = self._loop.time()
        async with asyncio.TaskGroup() as group:
            for n, call in enumerate(c for c in self._calls if c.registered):
                delay = start + n / self._config.ramp - self._loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                group.create_task(self._set_up(call, supervision), name=f"set-up-{call.index}")

    async def _set_up(
        self, call: LoadCall, supervision: tuple[RestClient, SupervisorDesk] | None
    ) -> None:
        timeout = self._config.setup_timeout
        try:
            async with asyncio.timeout(timeout):
                await call.connect()
                if supervision is not None:
                    await call.supervise(*supervision)
        except LoadCallError as exc:
            self._fail(call, exc)
        except TimeoutError:
            self._fail(call, LoadCallError(call.stage, f"no outcome within {timeout:g} s"))

    async def _steady(self, server_pid: int | None) -> CpuUse:
        self._phase = "steady"
        self._steady_at = self._loop.time()
        # A full collection walks every object of the process (hundreds of thousands once
        # rich, httpx, numpy … are loaded) and stalls the loop for 50-150 ms: jitter and fork
        # latency that would be the generator's, not the server's. Freezing what exists now
        # leaves the collector only the objects the steady phase itself creates.
        gc.freeze()
        try:
            start = sample_cpu(server_pid)
            await asyncio.sleep(self._config.duration)
            return CpuUse.between(start, sample_cpu(server_pid))
        finally:
            gc.unfreeze()

    async def _stop(self) -> None:
        self._phase = "draining"
        live = [call for call in self._calls if call.connected]
        for call in live:
            call.stop_talking()
        await asyncio.gather(*(self._finish(call) for call in live))
        await asyncio.sleep(self._config.drain)
        self._phase = "hanging up"
        self._hung_up_at = time.monotonic()
        done = await asyncio.gather(*(call.hang_up(TEARDOWN_TIMEOUT) for call in self._calls))
        self._teardown_problems += done.count(False)

    async def _finish(self, call: LoadCall) -> None:
        try:
            await call.finish_talking()
        except LoadCallError as exc:
            self._fail(call, exc)

    async def _close_calls(self) -> None:
        async def close(call: LoadCall) -> None:
            if not await call.close(TEARDOWN_TIMEOUT):
                self._teardown_problems += 1

        await self._bounded(close, self._calls)

    async def _close_desk(self, desk: SupervisorDesk) -> None:
        if not await desk.close(TEARDOWN_TIMEOUT):
            self._teardown_problems += 1

    @staticmethod
    async def _bounded(work: Callable[[LoadCall], Awaitable[None]], calls: list[LoadCall]) -> None:
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

        async def one(call: LoadCall) -> None:
            async with gate:
                await work(call)

        await asyncio.gather(*(one(call) for call in calls))

    def _fail(self, call: LoadCall, exc: LoadCallError) -> None:
        if exc.rate_limited:
            self._rate_limited += 1
        if call.index not in self._failures:  # the first failure is the cause
            self._failures[call.index] = CallFailure(
                call=call.index, agent=call.agent.extension_number, stage=exc.stage,
                reason=exc.reason,
            )  # fmt: skip

    # -- progress and report ----------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            self._emit()
            await asyncio.sleep(self._config.progress_interval)

    def _emit(self) -> None:
        if self._progress is not None:
            self._progress(self._snapshot())

    def _snapshot(self) -> LoadProgress:
        now = self._loop.time()
        meters = self._board.meters
        direct = sum(m.direct.received for m in meters)
        forked = [m for m in meters if m.fork.received]
        fork = sum(m.fork.received for m in forked)
        return LoadProgress(
            phase=self._phase,
            elapsed=now - self._started,
            steady_elapsed=0.0 if self._steady_at is None else now - self._steady_at,
            duration=self._config.duration,
            calls=self._config.calls,
            calls_up=sum(c.connected for c in self._calls),
            calls_supervised=sum(c.supervised for c in self._calls),
            calls_failed=len(self._failures),
            packets_sent=sum(c.packets_sent for c in self._calls),
            packets_received=direct + fork,
            loss_percent=loss_percent(direct, sum(m.direct.expected() for m in meters)),
            fork_loss_percent=loss_percent(fork, sum(m.fork.expected() for m in forked)),
        )

    def _report(self, target: LoadTarget, cpu: CpuUse, strays: int) -> LoadReport:
        config = self._config
        connected = [c for c in self._calls if c.connected]
        meters = [self._board.meter(c.index, s) for c in connected for s in Speaker]
        notes: list[str] = []
        if self._rate_limited:
            notes.append(f"the server answered 429: start it with {RATE_LIMITS_ENV}")
        if target.server_pid is None and config.data_dir is not None:
            notes.append("the local server's process was not found: no server CPU")
        return LoadReport(
            calls=config.calls,
            calls_set_up=len(connected),
            calls_supervised=sum(c.supervised for c in self._calls),
            failures=tuple(self._failures[i] for i in sorted(self._failures)),
            duration=config.duration,
            codec=config.codec.upper(),
            media=summarize(self._board, meters),
            setup_ms=Percentiles.of((c.setup_seconds for c in connected if c.setup_seconds), 1e3),
            supervise_ms=Percentiles.of(
                (c.supervise_seconds for c in self._calls if c.supervise_seconds), 1e3
            ),
            server_cpu_percent=cpu.server_percent,
            generator_cpu_percent=cpu.generator_percent,
            host_cpu_percent=cpu.host_percent,
            rate_limited=self._rate_limited,
            teardown_problems=self._teardown_problems,
            stray_invites=strays,
            server_url=target.server_url,
            notes=tuple(notes),
            supervise=config.supervise,
            hung_up_at=self._hung_up_at,
        )
