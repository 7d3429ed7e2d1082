"""The supervisor process of :mod:`bench.monitor_capacity`: ``callwatch monitor``'s engine, alone.

``python -m bench.monitor_child --record-dir DIR --codec PCMU`` does what ``callwatch monitor
--no-transcribe`` does — log in with ``RC_SERVER_URL``/``RC_CLIENT_ID``/``RC_CLIENT_SECRET``/
``RC_JWT`` from the environment, then run :class:`~callwatch.client.monitor.Monitor` on the
default asyncio loop until SIGTERM or SIGINT — with two differences a benchmark needs:

- the softphone accepts only ``--codec`` (:data:`~callwatch.sim.load_model.LOAD_CODECS`), so
  the server's forks carry the calls' own codec zero-copy and the monitor decodes that codec;
- instead of the live view it writes one JSON object per line on stdout for the events the
  benchmark reads, each with ``at`` = ``time.monotonic()`` (system-wide on Linux, so the parent
  can compare it with its own clock): ``started``, ``supervising`` (session, agent),
  ``first_audio``, ``finished`` (session, WAV path, when the recording started, and every
  stream's counters: :func:`stream_json`) and ``problem``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from callwatch.client.monitor import (
    Finished,
    FirstAudio,
    Monitor,
    MonitorConfig,
    MonitorEvent,
    Problem,
    Started,
    Supervising,
)
from callwatch.client.rest import RestClient
from callwatch.client.streams import PartyStats
from callwatch.sim.load_host import raise_fd_limit
from callwatch.sim.load_model import LOAD_CODECS

REPORT_DRAIN = 1.0
"""Seconds the last events get to be written once the monitor stopped."""
FD_LIMIT = 4096
"""Open files the monitor may need: two RTP sockets (RTP, RTCP) per stream and margin."""


def stream_json(stats: PartyStats) -> dict[str, int]:
    """One party stream's counters as the parent reads them."""
    decoder, jitter = stats.decoder, stats.decoder.jitter
    return {
        "frames": stats.frames,
        "concealed_frames": stats.concealed_frames,
        "dropped": stats.dropped,
        "packets": decoder.packets,
        "decoded": decoder.decoded,
        "concealed": decoder.concealed,
        "silent": decoder.silent,
        "decode_errors": decoder.decode_errors,
        "trimmed": decoder.trimmed,
        "resets": decoder.resets,
        "late": jitter.late,
        "lost": jitter.lost,
        "empty": jitter.empty,
        "inserted": jitter.inserted,
        "jitter_dropped": jitter.dropped,
        "discarded": jitter.discarded,
        "duplicates": jitter.duplicates,
    }


def event_json(event: MonitorEvent) -> dict[str, Any] | None:
    """The line written for ``event`` (None: not one the benchmark reads)."""
    at = time.monotonic()
    if isinstance(event, Started):
        return {"event": "started", "at": at, "agents": len(event.agents)}
    if isinstance(event, Supervising):
        return {"event": "supervising", "at": at, "session": event.session_id, "agent": event.agent}
    if isinstance(event, FirstAudio):
        return {"event": "first_audio", "at": at, "session": event.session_id}
    if isinstance(event, Finished):
        streams = {party: stream_json(stats) for party, stats in event.streams.items()}
        return {
            "event": "finished",
            "at": at,
            "session": event.session_id,
            "wav": str(event.wav),
            "recording_started": event.recording_started,
            "streams": streams,
        }
    if isinstance(event, Problem):
        return {"event": "problem", "at": at, "message": event.message}
    return None


async def _report(app: Monitor) -> None:
    async for event in app.events():
        line = event_json(event)
        if line is not None:
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()


async def _main(record_dir: Path, codec: str) -> None:
    env = os.environ
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    config = MonitorConfig(record_dir=record_dir, transcribe=False, codecs=LOAD_CODECS[codec])
    async with RestClient(
        env["RC_SERVER_URL"], env["RC_CLIENT_ID"], env["RC_CLIENT_SECRET"]
    ) as rest:
        await rest.login_jwt(env["RC_JWT"])
        app = Monitor(rest, config)
        reporter = asyncio.create_task(_report(app))
        try:
            await app.run(stop)
        finally:  # let the reporter write what the monitor emitted last
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(reporter, REPORT_DRAIN)


def main() -> None:
    """Parse the options and run the monitor until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record-dir", type=Path, required=True)
    parser.add_argument("--codec", choices=sorted(LOAD_CODECS), default="PCMU")
    args = parser.parse_args()
    raise_fd_limit(FD_LIMIT)
    asyncio.run(_main(args.record_dir, args.codec))  # the default loop, as `callwatch monitor`


if __name__ == "__main__":
    main()
