"""Supervision end to end: a customer ⇄ agent call through callwatch, a supervisor's device gets
the monitoring INVITE and hears each party's audio on its own stream.

Every refusal path is checked too: the right status and error body, and no INVITE at the device.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from callwatch.client import UaCall, UserAgent
from callwatch.media.codecs import g711
from callwatch.media.codecs.registry import codec_for
from callwatch.sip.events import Address
from callwatch.sip.offer_answer import G722, TELEPHONE_EVENT
from callwatch.sip.sdp import party_id_from_info
from tests.integration.conftest import RunningServer, register_device

CUSTOMER = "+14155550123"
CUSTOMER_AUDIO = [bytes([n]) * 160 for n in range(1, 101)]
AGENT_AUDIO = [bytes([255 - n]) * 160 for n in range(1, 101)]


@dataclass
class LiveCall:
    """A customer ⇄ agent call and the supervisor's registered device."""

    customer: UaCall
    agent: UaCall
    session_id: str
    supervisor: UserAgent
    supervisor_device: dict[str, Any]
    agents: list[UserAgent]

    def party(self, server: RunningServer, role: str) -> str:
        call = server.server.b2bua.calls[self.session_id]
        return call.caller_party if role == "customer" else call.callee_party


@pytest.fixture
async def live(server: RunningServer) -> AsyncIterator[LiveCall]:
    agent_ua = await register_device(
        server, server.extension("108")["devices"][0], auto_answer_after=0.0
    )
    sup_device = server.extension("101")["devices"][0]
    supervisor = await register_device(server, sup_device, auto_answer_after=0.0)
    customer_ua = UserAgent(username=CUSTOMER)
    await customer_ua.start()
    try:
        customer = await customer_ua.call(
            "sip:108@sip.callwatch.local", Address("UDP", "127.0.0.1", server.ports.sip)
        )
        agent = await agent_ua.next_call()
        await agent.confirmed()
        [session_id] = list(server.server.b2bua.calls)
        yield LiveCall(customer, agent, session_id, supervisor, sup_device, [agent_ua, customer_ua])
    finally:
        for ua in (customer_ua, agent_ua, supervisor):
            await ua.close()


async def _post(
    server: RunningServer, path: str, body: dict[str, Any], number: str = "101"
) -> httpx.Response:
    token = await server.token(number)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.post(path, json=body, headers={"Authorization": f"bearer {token}"})


def _supervise_path(live: LiveCall, party: str | None = None) -> str:
    base = f"/restapi/v1.0/account/~/telephony/sessions/{live.session_id}"
    return f"{base}/parties/{party}/supervise" if party else f"{base}/supervise"


async def _send_both(live: LiveCall) -> None:
    await asyncio.gather(
        live.customer.send_payloads(CUSTOMER_AUDIO, paced=False),
        live.agent.send_payloads(AGENT_AUDIO, paced=False),
    )


async def test_seed_request_streams_each_party_bit_exact(
    server: RunningServer, live: LiveCall
) -> None:
    body = {"mode": "Listen", "extensionNumber": "108", "deviceId": live.supervisor_device["id"]}
    response = await _post(server, _supervise_path(live), body)
    assert response.status_code == 201, response.text
    party = response.json()
    assert party["status"] == {"code": "Answered", "reason": "Supervising", "rcc": False}
    assert party["direction"] == "Outbound"
    assert party["from"]["deviceId"] == live.supervisor_device["id"]
    assert party["to"]["extensionId"] == str(server.extension("108")["extension_id"])

    sup_call = await live.supervisor.next_call()
    headers = sup_call.request_headers
    session_id = live.session_id
    assert headers.get("p-rc-api-ids") == f"party-id={party['id']};session-id={session_id}"
    agent_party = live.party(server, "agent")
    customer_party = live.party(server, "customer")
    assert headers.get("p-rc-api-monitoring-ids") == (
        f"party-id={agent_party};session-id={session_id}"
    )
    assert headers.get("alert-info") == "Auto Answer"
    assert (headers.get("call-info") or "").endswith(";purpose=info;Answer-After=0")
    raw_names = [name for name, _ in headers]
    assert raw_names.count("Via") == 1 and "p-rc-api-ids" in raw_names
    assert raw_names[-1] == "Content-Length"

    assert [s.label for s in sup_call.streams] == [agent_party, customer_party]
    assert sup_call.remote_sdp is not None
    infos = [party_id_from_info(m.info or "") for m in sup_call.remote_sdp.media]
    assert infos == [agent_party, customer_party]
    offered = sup_call.remote_sdp.media[0].rtpmaps
    assert offered[111].encoding == "OPUS" and offered[109].clock_rate == 16000

    await _send_both(live)
    by_party = {
        s.label: sess for s, sess in zip(sup_call.streams, sup_call.media.sessions, strict=True)
    }
    await asyncio.wait_for(
        asyncio.gather(
            by_party[agent_party].wait_received(100), by_party[customer_party].wait_received(100)
        ),
        10,
    )
    assert by_party[agent_party].payloads == AGENT_AUDIO
    assert by_party[customer_party].payloads == CUSTOMER_AUDIO
    seqs = [r.header.sequence_number for r in by_party[agent_party].received]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))

    await live.customer.hangup()
    assert await asyncio.wait_for(sup_call.ended(), 5)  # the end of the call BYEs supervisors


async def test_dual_channel_with_two_party_level_requests(
    server: RunningServer, live: LiveCall
) -> None:
    agent_id = str(server.extension("108")["extension_id"])
    calls: list[UaCall] = []
    for role in ("customer", "agent"):
        body = {
            "mode": "Listen",
            "agentExtensionId": agent_id,
            "supervisorDeviceId": live.supervisor_device["id"],
        }
        response = await _post(server, _supervise_path(live, live.party(server, role)), body)
        assert response.status_code == 201, response.text
        calls.append(await live.supervisor.next_call())
    customer_call, agent_call = calls
    assert customer_call.call_id != agent_call.call_id
    for call, role in ((customer_call, "customer"), (agent_call, "agent")):
        header = call.request_headers.get("p-rc-api-monitoring-ids") or ""
        assert header.split(";")[0].split("=")[1] == live.party(server, role)
        assert len(call.streams) == 1
    await _send_both(live)
    await asyncio.wait_for(
        asyncio.gather(customer_call.rtp.wait_received(100), agent_call.rtp.wait_received(100)), 10
    )
    assert customer_call.rtp.payloads == CUSTOMER_AUDIO
    assert agent_call.rtp.payloads == AGENT_AUDIO

    # DELETE of one supervisor party ends that stream only
    token = await server.token("101")
    session = server.server.b2bua.calls[live.session_id].session
    sup_party = next(p for p in session.parties if p.monitored == (live.party(server, "agent"),))
    async with httpx.AsyncClient(base_url=server.url) as client:
        deleted = await client.delete(
            f"/restapi/v1.0/account/~/telephony/sessions/{live.session_id}/parties/{sup_party.id}",
            headers={"Authorization": f"bearer {token}"},
        )
    assert deleted.status_code == 204
    assert await asyncio.wait_for(agent_call.ended(), 5)
    assert customer_call.state.name == "ESTABLISHED"
    assert live.customer.state.name == "ESTABLISHED"


@pytest.mark.parametrize(
    ("number", "body", "status", "code"),
    [
        ("109", {"mode": "Listen", "agentExtensionNumber": "108"}, 403, "SUP-101"),
        ("101", {"mode": "Whisper", "agentExtensionNumber": "108"}, 400, "CMN-101"),
        ("101", {"mode": "Listen"}, 400, "CMN-101"),
        ("101", {"mode": "Listen", "agentExtensionNumber": "555"}, 404, "CMN-102"),
        ("101", {"mode": "Listen", "agentExtensionNumber": "108", "deviceId": "1"}, 404, "CMN-102"),
    ],
)
async def test_refusals_send_no_invite(
    server: RunningServer,
    live: LiveCall,
    number: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    device = server.extension(number)["devices"][0]["id"]
    body = {"supervisorDeviceId": device, **body} if "deviceId" not in body else body
    response = await _post(server, _supervise_path(live), body, number=number)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["errorCode"] == code and error["errors"][0]["errorCode"] == code
    assert error["message"]
    assert not live.supervisor.calls


async def test_offline_device_foreign_device_unknown_session_and_second_supervisor(
    server: RunningServer, live: LiveCall
) -> None:
    offline = server.extension("101")["devices"][1]["id"]  # never registered
    response = await _post(
        server,
        _supervise_path(live),
        {"mode": "Listen", "agentExtensionNumber": "108", "supervisorDeviceId": offline},
    )
    assert (response.status_code, response.json()["errorCode"]) == (409, "SUP-103")

    foreign = server.extension("108")["devices"][0]["id"]
    response = await _post(
        server,
        _supervise_path(live),
        {"mode": "Listen", "agentExtensionNumber": "108", "supervisorDeviceId": foreign},
    )
    assert (response.status_code, response.json()["errorCode"]) == (403, "SUP-102")

    response = await _post(
        server,
        "/restapi/v1.0/account/~/telephony/sessions/s-nope/supervise",
        {
            "mode": "Listen",
            "agentExtensionNumber": "108",
            "supervisorDeviceId": live.supervisor_device["id"],
        },
    )
    assert (response.status_code, response.json()["errors"][0]["parameterName"]) == (
        404,
        "telephonySessionId",
    )
    assert not live.supervisor.calls

    body = {
        "mode": "Listen",
        "agentExtensionNumber": "108",
        "supervisorDeviceId": live.supervisor_device["id"],
    }
    assert (await _post(server, _supervise_path(live), body)).status_code == 201
    repeat = await _post(server, _supervise_path(live), body)
    assert (repeat.status_code, repeat.json()["errorCode"]) == (409, "SUP-104")
    assert len(live.supervisor.calls) == 1


async def test_supervisor_party_in_presence_and_session(
    server: RunningServer, live: LiveCall
) -> None:
    body = {
        "mode": "Listen",
        "agentExtensionNumber": "108",
        "supervisorDeviceId": live.supervisor_device["id"],
        "autoAnswer": True,
    }
    party = (await _post(server, _supervise_path(live), body)).json()
    token = await server.token("101")
    async with httpx.AsyncClient(base_url=server.url) as client:
        auth = {"Authorization": f"bearer {token}"}
        presence = (
            await client.get(
                "/restapi/v1.0/account/~/extension/~/presence?detailedTelephonyState=true",
                headers=auth,
            )
        ).json()
        session = (
            await client.get(
                f"/restapi/v1.0/account/~/telephony/sessions/{live.session_id}", headers=auth
            )
        ).json()
    [active] = [c for c in presence["activeCalls"] if c["partyId"] == party["id"]]
    assert active["direction"] == "Outbound"
    assert active["telephonyStatus"] == "CallConnected"
    assert active["from"] == "101" and active["to"] == "108"
    assert any(
        p["id"] == party["id"] and p["status"]["reason"] == "Supervising"
        for p in session["parties"]
    )


def _tone_frames(frequency: float, frames: int = 100) -> list[bytes]:
    t = np.arange(frames * 160) / 8000
    pcm = (6000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    return [g711.encode(pcm[i * 160 : (i + 1) * 160], "ulaw") for i in range(frames)]


def _dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum))])


async def test_device_without_the_party_codec_gets_transcoded_streams(
    server: RunningServer, live: LiveCall
) -> None:
    """The supervisor's device speaks G.722 only: each party's PCMU is transcoded for it, and
    each decoded stream carries that party's tone (customer 440 Hz, agent 1000 Hz)."""
    g722_only = await register_device(
        server,
        server.extension("101")["devices"][1],
        auto_answer_after=0.0,
        codecs=(G722, TELEPHONE_EVENT),
    )
    try:
        device_id = server.extension("101")["devices"][1]["id"]
        body = {"mode": "Listen", "agentExtensionNumber": "108", "supervisorDeviceId": device_id}
        assert (await _post(server, _supervise_path(live), body)).status_code == 201
        sup_call = await g722_only.next_call()
        assert [s.encoding.upper() for s in sup_call.streams] == ["G722", "G722"]
        await asyncio.gather(
            live.customer.send_payloads(_tone_frames(440), paced=True),
            live.agent.send_payloads(_tone_frames(1000), paced=True),
        )
        agent_party, customer_party = live.party(server, "agent"), live.party(server, "customer")
        sessions = {
            s.label: sess for s, sess in zip(sup_call.streams, sup_call.media.sessions, strict=True)
        }
        await asyncio.wait_for(
            asyncio.gather(
                sessions[agent_party].wait_received(60), sessions[customer_party].wait_received(60)
            ),
            10,
        )
        for party, expected in ((agent_party, 1000.0), (customer_party, 440.0)):
            decoder = codec_for("G722", 8000).new_decoder()
            pcm = np.concatenate([decoder.decode(p) for p in sessions[party].payloads[10:60]])
            assert abs(_dominant_frequency(pcm, 16000) - expected) < 20, party
    finally:
        await g722_only.close()
