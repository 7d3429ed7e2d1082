"""Load: N concurrent supervised calls against a ``callwatch serve`` process.

Each call is a customer ⇄ agent call through the trunk with paced 20 ms PCMU both ways,
supervised at session level by one device (two zero-copy forks per call), for ``DURATION``
seconds once all are up (:func:`callwatch.sim.load.run_load`). Figures per load: loss at the
other party and at the supervisor, fork latency (arrival at the supervisor − arrival at the
other party, same packet), the server's CPU in % of one core over the steady phase, and
"supervised calls per server core" = calls ÷ that share — a linear extrapolation.

The generator runs on the same machine: on a 2-core box it takes one core's worth of the
server's room (its own CPU is reported too), and its scheduling noise is part of the latency.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

from bench.common import Row
from bench.server import ServerProcess
from callwatch.sim.load import LoadConfig, LoadReport, run_load
from callwatch.sim.load_host import raise_fd_limit

CALL_COUNTS = (20, 50)
DURATION = 8.0
LIMITS = '{"Light": 100000, "Medium": 100000, "Heavy": 100000, "Auth": 100000}'


def _run(main: Coroutine[Any, Any, LoadReport]) -> LoadReport:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    report: LoadReport = uvloop.run(main)
    return report


def _rows(report: LoadReport) -> list[Row]:
    n, media = report.calls, report.media
    cores = os.cpu_count() or 1
    host = "n/a" if report.host_cpu_percent is None else f"{report.host_cpu_percent:.0f} %"
    note = (
        f"{report.calls_supervised}/{n} supervised, {report.duration:g} s, {report.codec}; "
        f"generator {report.generator_cpu_percent:.0f} % of a core on the same {cores} cores; "
        f"host {host} busy"
    )
    rows = [
        Row(f"load {n}: loss at the other party", media.direct_loss_percent or 0.0, "%", note),
        Row(f"load {n}: loss at the supervisor", media.fork_loss_percent or 0.0, "%", note),
        Row(f"load {n}: fork latency p50", media.fork_latency_ms.p50 or 0.0, "ms", note),
        Row(f"load {n}: fork latency p99", media.fork_latency_ms.p99 or 0.0, "ms", note),
        Row(f"load {n}: jitter p99 at the supervisor", media.fork_jitter_ms.p99 or 0.0, "ms", note),
    ]
    server = report.server_cpu_percent
    if server is not None:
        rows.append(Row(f"load {n}: server CPU", server, "% of a core", note))
        if server > 0:
            per_core = report.calls_supervised / (server / 100)
            rows.append(Row(f"load {n}: supervised calls per server core", per_core, "calls", note))
    return rows


def run() -> list[Row]:
    """Loss, fork latency and server CPU at each of :data:`CALL_COUNTS` supervised calls."""
    raise_fd_limit(max(CALL_COUNTS) * 12 + 256)
    rows: list[Row] = []
    with ServerProcess(env={"CALLWATCH_API__RATE_LIMITS": LIMITS}) as server:
        pid = server.proc.pid if server.proc is not None else None
        for calls in CALL_COUNTS:
            config = LoadConfig(
                calls=calls, duration=DURATION, data_dir=server.data_dir, server_pid=pid
            )
            rows.extend(_rows(_run(run_load(config))))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.figure:<48} {row.value:>10.3f} {row.unit:<12} {row.note}")
