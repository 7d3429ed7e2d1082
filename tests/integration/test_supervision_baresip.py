"""baresip (Debian) as a supervisor's desk phone: it registers with digest, auto-answers the
monitoring INVITE and accepts only the first of the two streams, so callwatch must send it a mix
of both parties there (and nothing to the refused stream)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.conftest import RunningServer, eventually, free_port
from tests.integration.test_supervision import AGENT_AUDIO, CUSTOMER_AUDIO, LiveCall, _post
from tests.integration.test_supervision import live as live

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed"),
]

MODULES = ("g711.so", "aufile.so")


def _tone(path: Path, seconds: float = 10.0) -> None:
    """An 8 kHz mono 16-bit 440 Hz tone for baresip to play into the call."""
    t = np.arange(int(8000 * seconds)) / 8000
    samples = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.tobytes())


def _config(directory: Path, port: int, device: dict[str, Any], registrar: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _tone(directory / "tone.wav")
    modules = "\n".join(f"module {m}" for m in MODULES if Path("/usr/lib/baresip/modules", m)
                        .exists())  # fmt: skip
    (directory / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\n"
        "net_interface 127.0.0.1\n"
        f"audio_source aufile,{directory / 'tone.wav'}\n"
        "ausrc_srate 8000\n"
        "auplay_srate 8000\n"
        "audio_player aufile,/dev/null\n"
        "module_path /usr/lib/baresip/modules\n"
        f"{modules}\n"
        "module_app account.so\n"
        "rtp_ports 30000-30100\n"
    )
    (directory / "accounts").write_text(
        f"<sip:{device['sip_username']}@127.0.0.1:{registrar}>;"
        f"auth_user={device['authorization_id']};auth_pass={device['sip_password']};"
        "answermode=auto;regint=300;audio_codecs=PCMU\n"
    )


@pytest.fixture
async def baresip(server: RunningServer, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    device = server.extension("101")["devices"][1]
    _config(tmp_path / "baresip", free_port(), device, server.ports.sip)
    log = (tmp_path / "baresip.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        "baresip",
        "-f",
        str(tmp_path / "baresip"),
        "-4",
        "-v",
        stdout=log,
        stderr=log,
    )
    try:
        assert await eventually(lambda: _online(server, device["id"]), timeout=15), (
            "baresip did not register"
        )
        yield device
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)  # baresip can hang in 'ua: stop all' (STACK.md)
        await proc.wait()
        log.close()


async def _online(server: RunningServer, device_id: str) -> bool:
    return server.server.registrar.is_online(device_id)


async def test_baresip_gets_both_parties_mixed_on_its_one_stream(
    server: RunningServer, live: LiveCall, baresip: dict[str, Any]
) -> None:
    body = {"mode": "Listen", "agentExtensionNumber": "108", "supervisorDeviceId": baresip["id"]}
    response = await _post(
        server, f"/restapi/v1.0/account/~/telephony/sessions/{live.session_id}/supervise", body
    )
    assert response.status_code == 201, response.text
    [supervisor] = server.server.b2bua.calls[live.session_id].supervisors
    assert [s for s, _ in supervisor.forks] == [
        supervisor.monitored[0].source,
        supervisor.monitored[1].source,
    ], "both parties must feed the one accepted stream"
    assert {t for _, t in supervisor.forks} == {supervisor.streams[0].stream_id}

    await asyncio.gather(
        live.customer.send_payloads(CUSTOMER_AUDIO, paced=True),
        live.agent.send_payloads(AGENT_AUDIO, paced=True),
    )
    engine = server.server.media_engine
    first, second = [await engine.stats(s.stream_id) for s in supervisor.streams]
    assert first.packets_out >= len(AGENT_AUDIO) * 0.9  # one mixed frame every 20 ms
    assert second.packets_out == 0  # baresip refused it with port 0
    assert first.packets_in > 0  # baresip's own audio came back: the stream is latched
    await live.customer.hangup()
