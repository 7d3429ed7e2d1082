"""SIPp (Debian sip-tester) as a supervisor's device that accepts both streams.

One SIPp registers the device's Contact (digest), a second SIPp listens there as the device: it
checks the monitoring INVITE's headers (``check_it``: a missing header fails the scenario),
answers both ``m=audio`` lines, and echoes the RTP it receives (``-rtp_echo``). The relay's own
counters then show that each supervisor stream carried exactly its party's packets to SIPp and
got them all back.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.conftest import (
    SIPP_DIR,
    RunningServer,
    eventually,
    free_port,
    requires_sipp,
    run_sipp,
)
from tests.integration.test_supervision import AGENT_AUDIO, CUSTOMER_AUDIO, LiveCall, _post
from tests.integration.test_supervision import live as live

pytestmark = [pytest.mark.interop, requires_sipp]


def _free_media_ports() -> int:
    """An even port p with p and p + 2 free on loopback (SIPp's audio and 'video' echo)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1] & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 2))
            return port
        except OSError:
            continue


@pytest.fixture
async def sipp_device(
    server: RunningServer,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    uas_port, media_port = free_port(), _free_media_ports()
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(SIPP_DIR / "supervisor_uas.xml"),
        "-i",
        "127.0.0.1",
        "-p",
        str(uas_port),
        "-mp",
        str(media_port),
        "-rtp_echo",
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "40",
        "-timeout_error",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield proc, uas_port
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sipp_device_gets_each_party_on_its_own_stream(
    server: RunningServer, live: LiveCall, sipp_device: tuple[Any, int]
) -> None:
    proc, uas_port = sipp_device
    device = server.extension("101")["devices"][1]  # the OtherPhone: SIPp registers it
    code, out = await run_sipp(
        "register_contact.xml",
        f"127.0.0.1:{server.ports.sip}",
        "-s",
        device["sip_username"],
        "-au",
        device["authorization_id"],
        "-ap",
        device["sip_password"],
        "-set",
        "expires",
        "3600",
        "-set",
        "cport",
        str(uas_port),
    )
    assert code == 0, out
    body = {"mode": "Listen", "agentExtensionNumber": "108", "supervisorDeviceId": device["id"]}
    response = await _post(
        server, f"/restapi/v1.0/account/~/telephony/sessions/{live.session_id}/supervise", body
    )
    assert response.status_code == 201, response.text

    await asyncio.gather(
        live.customer.send_payloads(CUSTOMER_AUDIO, paced=True),
        live.agent.send_payloads(AGENT_AUDIO, paced=True),
    )
    call = server.server.b2bua.calls[live.session_id]
    [supervisor] = call.supervisors
    engine = server.server.media_engine

    async def echoed() -> bool:
        stats = [await engine.stats(s.stream_id) for s in supervisor.streams]
        return all(s.packets_in >= len(AGENT_AUDIO) for s in stats)

    assert await eventually(echoed), "SIPp did not echo every forked packet"
    agent_stream, customer_stream = [await engine.stats(s.stream_id) for s in supervisor.streams]
    assert agent_stream.packets_out == len(AGENT_AUDIO)
    assert customer_stream.packets_out == len(CUSTOMER_AUDIO)

    await live.customer.hangup()
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, output.decode(errors="replace")
