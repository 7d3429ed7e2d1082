"""``callwatch monitor`` as a real process: kill -9 mid-call leaves a playable WAV, and a
restarted monitor picks up the next call."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callwatch.app import CallwatchServer, Ports, provision_demo, server_url
from callwatch.client import UaCall, UserAgent
from callwatch.sip.events import Address
from tests.integration.conftest import RunningServer, eventually, make_settings, register_device

SILENCE = [bytes([0xFF]) * 160] * 500  # 10 s of PCMU


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    srv = CallwatchServer(make_settings(tmp_path / "server"))
    tenant = provision_demo(srv.store, srv.settings, srv.ids)
    ports = await srv.start()
    url = server_url(srv.settings, ports)
    try:
        yield RunningServer(srv, ports, tenant.to_json(url), url)
    finally:
        await srv.stop()
        srv.store.close()


async def _monitor(
    server: RunningServer, record_dir: Path, log: Path | None = None, *options: str
) -> asyncio.subprocess.Process:
    """``callwatch monitor`` as a child process (its log appended to ``log`` if given)."""
    env = {
        **os.environ,
        "RC_SERVER_URL": server.url,
        "RC_CLIENT_ID": server.tenant["client_id"],
        "RC_CLIENT_SECRET": server.tenant["client_secret"],
        "RC_JWT": server.extension("101")["jwt"],
    }
    with open(log or os.devnull, "ab") as stderr:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callwatch.cli",
            "monitor",
            "--record-dir",
            str(record_dir),
            "--no-transcribe",
            "--env-file",
            "/nonexistent",
            *options,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )


async def _call(server: RunningServer, agent: UserAgent) -> tuple[UserAgent, UaCall, UaCall]:
    customer = UserAgent(username="+14155550123")
    await customer.start()
    call = await customer.call(
        "sip:108@sip.callwatch.local", Address("UDP", "127.0.0.1", server.ports.sip)
    )
    answered = await agent.next_call()
    await answered.confirmed()
    return customer, call, answered


async def _talking_call(
    server: RunningServer, agent: UserAgent, talking: list[asyncio.Task[Any]]
) -> tuple[UserAgent, UaCall]:
    """A customer calls the agent and both send silence (their tasks join ``talking``)."""
    customer, call, answered = await _call(server, agent)
    talking += [asyncio.create_task(c.send_payloads(SILENCE)) for c in (call, answered)]
    return customer, call


async def _tear_down(
    monitor: asyncio.subprocess.Process, agent: UserAgent, talking: list[asyncio.Task[Any]]
) -> None:
    for task in talking:
        task.cancel()
    if monitor.returncode is None:
        monitor.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(monitor.wait(), 10)
        except TimeoutError:
            monitor.kill()
    await agent.close()


async def _growing_wav(directory: Path, exclude: set[Path], size: int) -> Path:
    async def found() -> bool:
        return any(p not in exclude and p.stat().st_size > size for p in directory.glob("*.wav"))

    assert await eventually(found, timeout=20), "no recording grew"
    return next(p for p in directory.glob("*.wav") if p not in exclude and p.stat().st_size > size)


async def test_kill_9_leaves_a_playable_wav_and_a_restart_picks_up_new_calls(
    server: RunningServer, tmp_path: Path
) -> None:
    record_dir = tmp_path / "recordings"
    agent = await _registered_agent(server)
    softphone_id = server.extension("101")["devices"][0]["id"]
    talking: list[asyncio.Task[Any]] = []
    monitor = await _monitor(server, record_dir)
    try:
        assert await eventually(lambda: _online(server, softphone_id), timeout=30)
        assert await eventually(lambda: _subscribed(server, 1), timeout=30)
        customer, call = await _talking_call(server, agent, talking)
        first = await _growing_wav(record_dir, set(), 2 * 64_000)  # > 2 s of 16 kHz stereo
        monitor.send_signal(signal.SIGKILL)
        await monitor.wait()
        with wave.open(str(first)) as recording:
            assert recording.getnchannels() == 2 and recording.getnframes() >= 16_000
            recording.readframes(recording.getnframes())
        await call.hangup()
        await customer.close()

        subscriptions = len(_subscriptions(server))
        monitor = await _monitor(server, record_dir)
        assert await eventually(lambda: _subscribed(server, subscriptions + 1), timeout=30)
        customer, call = await _talking_call(server, agent, talking)
        second = await _growing_wav(record_dir, {first}, 64_000)
        assert second != first
        await call.hangup()
        await customer.close()
    finally:
        await _tear_down(monitor, agent, talking)


async def _online(server: RunningServer, device_id: str) -> bool:
    return server.server.registrar.is_online(device_id)


def _subscriptions(server: RunningServer) -> list[Any]:
    owner = server.extension("101")["extension_id"]
    registry = server.server.notifications.registry
    return registry.for_owner(owner, server.tenant["client_id"])


async def _subscribed(server: RunningServer, count: int) -> bool:
    """The monitor's WebSocket subscription exists (the softphone registers before it)."""
    return len(_subscriptions(server)) >= count


async def _start_server(data_dir: Path, ports: Ports | None = None) -> RunningServer:
    """A server on ``data_dir``; with ``ports``, on exactly those (a restart)."""
    settings = make_settings(data_dir)
    if ports is not None:
        settings = settings.model_copy(
            update={
                "sip": settings.sip.model_copy(
                    update={"port": ports.sip, "tls_port": ports.sip_tls}
                ),
                "api": settings.api.model_copy(update={"port": ports.http}),
            }
        )
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, srv.settings, srv.ids)  # idempotent: same tenant
    started = await srv.start()
    url = server_url(srv.settings, started)
    return RunningServer(srv, started, tenant.to_json(url), url)


async def _stop_server(server: RunningServer) -> None:
    await server.server.stop()
    server.server.store.close()


async def _registered_agent(server: RunningServer) -> UserAgent:
    return await register_device(
        server, server.extension("108")["devices"][0], auto_answer_after=0.0
    )


async def test_the_monitor_survives_a_server_restart(tmp_path: Path) -> None:
    """The server stops (every call, registration and WebSocket session is gone) and starts
    again on the same ports and data: the monitor, never restarted, subscribes again, puts its
    softphone back online at once (not at its next refresh, 30 s away) and records the next
    call."""
    record_dir = tmp_path / "recordings"
    server = await _start_server(tmp_path / "server")
    softphone_id = server.extension("101")["devices"][0]["id"]
    agent = await _registered_agent(server)
    talking: list[asyncio.Task[Any]] = []
    log = tmp_path / "monitor.log"
    monitor = await _monitor(server, record_dir, log)
    try:
        assert await eventually(lambda: _online(server, softphone_id), timeout=30)
        assert await eventually(lambda: _subscribed(server, 1), timeout=30)
        customer, call = await _talking_call(server, agent, talking)
        first = await _growing_wav(record_dir, set(), 64_000)
        await call.hangup()
        await customer.close()
        await agent.close()

        await _stop_server(server)
        await asyncio.sleep(1.0)  # the monitor sees the socket die and starts retrying
        assert monitor.returncode is None
        server = await _start_server(tmp_path / "server", server.ports)
        assert not await _online(server, softphone_id)  # registrations do not survive
        subscriptions = len(_subscriptions(server))  # the stored ones, without their sockets
        resubscribed = await eventually(lambda: _subscribed(server, subscriptions + 1), timeout=30)
        assert resubscribed, log.read_text()
        assert await eventually(lambda: _online(server, softphone_id), timeout=10), log.read_text()

        agent = await _registered_agent(server)
        customer, call = await _talking_call(server, agent, talking)
        second = await _growing_wav(record_dir, {first}, 64_000)
        assert second != first
        await call.hangup()
        await customer.close()
    finally:
        await _tear_down(monitor, agent, talking)
        await _stop_server(server)


async def test_webhook_delivery_and_a_chosen_codec(server: RunningServer, tmp_path: Path) -> None:
    """``--webhook``: the monitor runs a receiver, subscribes with a WebHook (no WebSocket),
    and records the call; ``--codec PCMA`` makes it refuse everything else, so the server
    transcodes the PCMU call's forks to G.711 A-law for it."""
    record_dir = tmp_path / "recordings"
    softphone_id = server.extension("101")["devices"][0]["id"]
    agent = await _registered_agent(server)
    talking: list[asyncio.Task[Any]] = []
    log = tmp_path / "monitor.log"
    monitor = await _monitor(server, record_dir, log, "--webhook", "--codec", "PCMA")
    try:
        assert await eventually(lambda: _online(server, softphone_id), timeout=30)
        assert await eventually(lambda: _subscribed(server, 1), timeout=30), log.read_text()
        (subscription,) = _subscriptions(server)
        assert subscription.record.transport == "WebHook"
        customer, call = await _talking_call(server, agent, talking)
        wav = await _growing_wav(record_dir, set(), 64_000)
        with wave.open(str(wav)) as recording:
            assert recording.getnchannels() == 2
        await call.hangup()
        await customer.close()
    finally:
        await _tear_down(monitor, agent, talking)
    assert await eventually(lambda: _unsubscribed(server), timeout=10)  # deleted on the way out


async def _unsubscribed(server: RunningServer) -> bool:
    return not _subscriptions(server)
