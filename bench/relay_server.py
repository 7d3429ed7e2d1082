"""The relay under test, in a process of its own: a MediaEngine driven over a pipe.

The benchmark driver sends small tuples; every reply is a tuple too. ``snapshot`` reads the
process's CPU time (all threads) and the relay's summed counters at one instant, so the driver
can compute CPU per packet over any window.
"""

from __future__ import annotations

import asyncio
import os
import resource
from multiprocessing.connection import Connection
from typing import Any

from callwatch.media.aio import MediaEngine

HOST = "127.0.0.1"


def pin(cpu: int | None) -> None:
    """Pin this process to ``cpu`` when the machine has it."""
    if cpu is not None and hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def serve(conn: Connection, port_min: int, port_max: int, cpu: int | None) -> None:
    """Process entry point: run the engine until the driver says ``stop``."""
    pin(cpu)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_main(conn, port_min, port_max))


async def _main(conn: Connection, port_min: int, port_max: int) -> None:
    engine = MediaEngine(host=HOST, port_min=port_min, port_max=port_max)
    await engine.start()
    legs: list[int] = []
    try:
        while True:
            op, *args = await asyncio.to_thread(conn.recv)
            if op == "stop":
                break
            conn.send(await _handle(engine, legs, op, args))
    finally:
        await engine.stop()


async def _handle(engine: MediaEngine, legs: list[int], op: str, args: list[Any]) -> Any:
    if op == "add_calls":
        count, remote = args
        ports = []
        for _ in range(count):
            a = await engine.create_stream(remote=tuple(remote), label="bench-a")
            b = await engine.create_stream(remote=tuple(remote), label="bench-b")
            await engine.pair(a.stream_id, b.stream_id)
            legs += [a.stream_id, b.stream_id]
            ports.append((a.port, b.port))
        return ports
    if op == "clear":
        for leg in legs:
            await engine.delete(leg)
        legs.clear()
        return None
    if op == "snapshot":
        return await engine.totals()  # with the media thread's CPU time and a timestamp
    raise ValueError(f"unknown op {op!r}")
