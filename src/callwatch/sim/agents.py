"""Talking user agents for the simulator: agents that register and answer, customers that call in
through the trunk, both speaking real audio into the call.

They are callwatch's own SIP user agents (:mod:`callwatch.client`) with a voice: a speaker's
timeline (16 kHz PCM, turns and pauses) is encoded for the codec the call negotiated and sent
as paced 20 ms RTP, silence included, so the far end hears one continuous stream.

Encoding happens before any packet goes out and off the event loop: a whole timeline is
hundreds of milliseconds of CPU for Opus (≈ 0.7 s for a 40 s conversation), and done on the loop
it would freeze every pacer, the relay's control and the monitor sharing that loop. In
:func:`converse` both timelines are encoded first and both pacers then start together, so the
two speakers keep the script's relative timing and neither side's first packets go out in a
burst.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from callwatch.client import UaCall, UserAgent
from callwatch.sim.voice import encode_speech
from callwatch.sip.events import Address
from callwatch.sip.offer_answer import G722, OPUS, PCMU, TELEPHONE_EVENT, CodecSpec

CODECS: dict[str, tuple[CodecSpec, ...]] = {
    "PCMU": (PCMU, TELEPHONE_EVENT),
    "G722": (G722, TELEPHONE_EVENT),
    "OPUS": (OPUS, TELEPHONE_EVENT),
}
"""Codec choices for simulated phones, by name."""


@dataclass(frozen=True, slots=True)
class SipServer:
    """Where the simulated phones send their SIP."""

    host: str
    port: int
    tls_port: int | None = None
    domain: str = "sip.callwatch.local"

    def address(self, transport: str = "UDP") -> Address:
        """The server's address for a transport."""
        port = self.tls_port if transport == "TLS" and self.tls_port else self.port
        return Address(transport, self.host, port)


async def encode_for(call: UaCall, pcm: npt.NDArray[np.int16]) -> list[bytes]:
    """``pcm`` (16 kHz) as 20 ms payloads of ``call``'s negotiated codec, encoded on a worker
    thread so the event loop keeps running."""
    stream = call.streams[0]
    channels = 2 if stream.encoding.upper() == "OPUS" and stream.clock_rate == 48000 else None
    return await asyncio.to_thread(encode_speech, pcm, stream.encoding, stream.clock_rate, channels)


async def speak(call: UaCall, pcm: npt.NDArray[np.int16]) -> int:
    """Say ``pcm`` (16 kHz) into ``call`` with its negotiated codec; return the packets sent."""
    payloads = await encode_for(call, pcm)
    await call.send_payloads(payloads, paced=True)
    return len(payloads)


class SimAgent:
    """An agent's phone: registers as one of the extension's devices and answers after a delay."""

    def __init__(
        self,
        server: SipServer,
        device: dict[str, Any],
        *,
        answer_after: float = 0.5,
        codec: str = "PCMU",
        transport: str = "UDP",
    ) -> None:
        self._server = server
        self._device = device
        self._transport = transport
        self.ua = UserAgent(
            username=device["sip_username"], auto_answer_after=answer_after, codecs=CODECS[codec]
        )

    async def start(self) -> None:
        """Start listening and register."""
        await self.ua.start()
        await self.ua.register(
            self._server.address(self._transport),
            username=self._device["sip_username"],
            auth_username=self._device["authorization_id"],
            password=self._device["sip_password"],
            domain=self._server.domain,
        )

    async def next_call(self) -> UaCall:
        """The next call the agent answers."""
        call = await self.ua.next_call()
        await call.confirmed()
        return call

    async def close(self) -> None:
        """Unregister and stop."""
        await self.ua.close()


class SimCustomer:
    """A customer calling in through the trunk (no registration, no digest)."""

    def __init__(
        self,
        server: SipServer,
        *,
        number: str = "+14155550123",
        codec: str = "PCMU",
        srtp: bool = False,
    ) -> None:
        self._server = server
        self._srtp = srtp
        self._codecs: Sequence[CodecSpec] = CODECS[codec]
        self.ua = UserAgent(username=number)

    async def call(self, extension_number: str) -> UaCall:
        """Call an extension; returns once answered."""
        await self.ua.start()
        return await self.ua.call(
            f"sip:{extension_number}@{self._server.domain}",
            self._server.address(),
            codecs=self._codecs,
            srtp=self._srtp,
        )

    async def close(self) -> None:
        """Hang up and stop."""
        await self.ua.close()


async def converse(
    customer: UaCall,
    agent: UaCall,
    customer_pcm: npt.NDArray[np.int16],
    agent_pcm: npt.NDArray[np.int16],
) -> tuple[int, int]:
    """Both sides speak their timelines at once; return the packets each sent.

    Both timelines are encoded before either is sent (see the module docstring), then both
    pacers start in the same loop iteration: the script's offsets between the speakers hold.
    """
    customer_payloads, agent_payloads = await asyncio.gather(
        encode_for(customer, customer_pcm), encode_for(agent, agent_pcm)
    )
    await asyncio.gather(
        customer.send_payloads(customer_payloads, paced=True),
        agent.send_payloads(agent_payloads, paced=True),
    )
    return len(customer_payloads), len(agent_payloads)
