"""Calls the load generator leaves unsupervised are supervised by a monitor process instead,
which records each to a stereo WAV lasting as long as the call (the set-up
``bench.monitor_capacity`` measures)."""

from __future__ import annotations

import wave
from pathlib import Path

from bench.monitor_capacity import MonitorProcess
from bench.server import ServerProcess

from callwatch.sim.load import LoadConfig, run_load
from callwatch.sim.load_tenant import local_target

LOAD_LIMITS = '{"Light": 100000, "Medium": 100000, "Heavy": 100000, "Auth": 100000}'
CALLS = 3
DURATION_TOLERANCE = 0.5
"""Seconds a WAV may differ from the call (generous: the machine may be shared)."""


async def test_a_monitor_process_records_the_unsupervised_load_calls(tmp_path: Path) -> None:
    with ServerProcess(env={"CALLWATCH_API__RATE_LIMITS": LOAD_LIMITS}) as server:
        pid = server.proc.pid if server.proc is not None else None
        target = local_target(server.data_dir, agents=CALLS, server_pid=pid)
        monitor = MonitorProcess(target, "PCMU", tmp_path / "recordings", tmp_path / "monitor.log")
        try:
            await monitor.start()
            config = LoadConfig(
                calls=CALLS, duration=2.0, data_dir=server.data_dir, supervise=False
            )
            report = await run_load(config)
            recorded = await monitor.wait(lambda: len(monitor.finished(0)) >= CALLS, 15)
        finally:
            await monitor.stop()

    assert report.ok, report.failures
    assert (report.calls_set_up, report.calls_supervised, report.stray_invites) == (CALLS, 0, 0)
    assert report.media.fork_latency_ms.count == 0  # the generator's own device took no fork
    assert report.hung_up_at is not None
    assert recorded, monitor.events
    finished = monitor.finished(0)
    assert len({event["session"] for event in finished}) == CALLS
    for event in finished:
        streams = event["streams"]
        assert len(streams) == 2 and all(s["packets"] > 0 for s in streams.values())
        assert all(s["decode_errors"] == s["dropped"] == 0 for s in streams.values())
        with wave.open(event["wav"]) as recording:
            assert (recording.getnchannels(), recording.getframerate()) == (2, 16000)
            seconds = recording.getnframes() / recording.getframerate()
        call_seconds = report.hung_up_at - event["recording_started"]
        assert call_seconds > 2.0
        assert abs(seconds - call_seconds) <= DURATION_TOLERANCE, (seconds, call_seconds)
