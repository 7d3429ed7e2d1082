"""The monitor's stop: what its transcriber already heard still becomes lines, and the event
stream ends once the monitor has stopped (a consumer reading to the end misses nothing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from callwatch.client.monitor import (
    Finished,
    Line,
    Monitor,
    MonitorConfig,
    MonitorEvent,
    Started,
    Supervising,
)
from callwatch.client.rest import RestClient
from callwatch.sim.agents import SimAgent, SimCustomer, SipServer, converse
from callwatch.sim.speech import load_conversation
from tests.integration.conftest import TIMEOUT, RunningServer


async def _read(monitor: Monitor, seen: list[MonitorEvent], started: asyncio.Event) -> None:
    async for event in monitor.events():
        seen.append(event)
        if isinstance(event, Started):
            started.set()


async def _wait_for(seen: list[MonitorEvent], kind: type, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not any(isinstance(e, kind) for e in seen):
            await asyncio.sleep(0.05)


async def test_a_call_hung_up_mid_sentence_still_gets_its_line(
    server: RunningServer, tmp_path: Path
) -> None:
    """The customer is cut off while speaking: the utterance is still open when the call ends,
    so its text can only come after the recording is closed — and the monitor is stopped at
    that very moment. Its line must still be emitted, before ``events()`` ends."""
    conversation = load_conversation("delivery")  # the customer speaks first, 0.5 s → 4.2 s
    first = conversation.speaker_turns("customer")[0]
    cut = int((first.start + 0.8 * first.duration) * conversation.sample_rate)
    customer_pcm = conversation.pcm("customer")[:cut]
    silence = np.zeros(cut, dtype=np.int16)

    tenant = server.tenant
    sip = SipServer("127.0.0.1", server.ports.sip)
    async with RestClient(server.url, tenant["client_id"], tenant["client_secret"]) as rest:
        await rest.login_jwt(server.extension("101")["jwt"])
        monitor = Monitor(rest, MonitorConfig(record_dir=tmp_path, drain_timeout=30.0))
        stop, started = asyncio.Event(), asyncio.Event()
        seen: list[MonitorEvent] = []
        running = asyncio.create_task(monitor.run(stop))
        reader = asyncio.create_task(_read(monitor, seen, started))
        await asyncio.wait_for(started.wait(), 30)

        agent = SimAgent(sip, server.extension("108")["devices"][0], answer_after=0.1)
        customer = SimCustomer(sip)
        await agent.start()
        try:
            call = await customer.call("108")
            answered = await asyncio.wait_for(agent.next_call(), TIMEOUT)
            await _wait_for(seen, Supervising)  # both forks exist
            await asyncio.sleep(0.3)
            await converse(call, answered, customer_pcm, silence)
            await call.hangup()
        finally:
            await customer.close()
            await agent.close()
        await _wait_for(seen, Finished)
        stop.set()  # at once: the cut-off utterance is still being transcribed
        await asyncio.wait_for(running, 60)
        await asyncio.wait_for(reader, 5)  # events() ended by itself

    lines = [e for e in seen if isinstance(e, Line) and e.segment.final]
    assert [line.role for line in lines] == ["customer"], seen
    assert "order" in lines[0].segment.text.lower(), lines[0].segment.text
    assert seen.index(lines[0]) > next(i for i, e in enumerate(seen) if isinstance(e, Finished))
