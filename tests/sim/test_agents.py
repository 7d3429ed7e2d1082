"""The simulator's talking user agents on real loopback sockets: two of them in a direct call,
speaking timelines with :func:`~callwatch.sim.agents.converse`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from callwatch.client import UaCall, UserAgent
from callwatch.sim.agents import CODECS, converse

WAIT = 10.0  # seconds before a missing event fails a test; never a synchronisation delay
HEAD = 6
"""Packets whose arrival spacing is checked at the start of each direction."""


@pytest.fixture
async def opus_call() -> AsyncIterator[tuple[UaCall, UaCall]]:
    caller = UserAgent(username="customer", codecs=CODECS["OPUS"])
    callee = UserAgent(username="agent", codecs=CODECS["OPUS"], auto_answer_after=0.0)
    await caller.start()
    await callee.start()
    try:
        call = await caller.call(callee.uri("UDP"), callee.address("UDP"))
        answered = await asyncio.wait_for(callee.next_call(), WAIT)
        await asyncio.wait_for(answered.confirmed(), WAIT)
        yield call, answered
    finally:
        await caller.close()
        await callee.close()


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    """Band-limited noise at speech level: costs the Opus encoder what speech costs it."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 4000, int(seconds * 16000))
    smooth = np.convolve(noise, np.ones(4) / 4, mode="same")
    return np.clip(smooth, -32768, 32767).astype(np.int16)


async def test_both_speakers_start_paced_not_in_a_burst(opus_call: tuple[UaCall, UaCall]) -> None:
    """Encoding a timeline for Opus takes hundreds of milliseconds; done on the event loop by one
    speaker after the other had started sending, it froze the first speaker's pacer and its
    first packets then left back to back. Both must arrive on the 20 ms grid from the start."""
    customer, agent = opus_call
    talking = asyncio.create_task(
        converse(customer, agent, _speechlike(12.0, 1), _speechlike(12.0, 2))
    )
    try:
        await asyncio.wait_for(agent.rtp.wait_received(HEAD + 1), WAIT)
        await asyncio.wait_for(customer.rtp.wait_received(HEAD + 1), WAIT)
    finally:
        talking.cancel()
        await asyncio.gather(talking, return_exceptions=True)
    for heard in (agent.rtp.received, customer.rtp.received):  # the customer's, the agent's
        span = heard[HEAD].arrival - heard[0].arrival
        assert span > 0.6 * HEAD * 0.02, [round(p.arrival - heard[0].arrival, 3) for p in heard]
