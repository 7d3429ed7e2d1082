"""Calls through callwatch's B2BUA and RTP relay, end to end over loopback with real user agents.

A customer calls in through the trunk (loopback is the demo trunk's source address); agent 108
answers on one of its contacts; audio flows both ways through the relay and must arrive
bit-exact and in order. The call is visible in GET session and presence while up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from callwatch.app import CallwatchServer, provision_demo, server_url
from callwatch.client import CallFailed, UaCall, UserAgent
from callwatch.ids import IdGenerator
from callwatch.sip.events import Address
from callwatch.store.provisioning import create_device
from tests.integration.conftest import RunningServer, eventually, make_settings

CUSTOMER = "+14155550123"
PAYLOADS = [bytes([n % 256]) * 160 for n in range(100)]


@dataclass
class Phone:
    """A registered agent device."""

    ua: UserAgent
    device: dict[str, Any]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path, min_expires=1, ring_timeout=3.0)
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, settings, srv.ids)
    agent = srv.store.extensions.get(tenant.user("108").extension.id)
    assert agent is not None
    create_device(
        srv.store, ids=IdGenerator(), extension=agent, type="SoftPhone", name="Alice's softphone"
    )
    ports = await srv.start()
    url = server_url(settings, ports)
    try:
        yield RunningServer(srv, ports, tenant.to_json(url), url)
    finally:
        await srv.stop()
        srv.store.close()


def _devices(server: RunningServer, number: str) -> list[dict[str, Any]]:
    devices = server.server.store.devices.list_for_extension(
        server.extension(number)["extension_id"]
    )
    return [
        {
            "id": d.id,
            "sip_username": d.sip_username,
            "sip_password": d.sip_password,
            "authorization_id": d.authorization_id,
        }
        for d in devices
    ]


async def _phone(
    server: RunningServer, device: dict[str, Any], *, transport: str = "UDP", **policy: Any
) -> Phone:
    ua = UserAgent(username=device["sip_username"], **policy)
    await ua.start()
    port = server.ports.sip_tls if transport == "TLS" else server.ports.sip
    await ua.register(
        Address(transport, "127.0.0.1", port),
        username=device["sip_username"],
        auth_username=device["authorization_id"],
        password=device["sip_password"],
        domain="sip.callwatch.local",
    )
    return Phone(ua, device)


def _sip(server: RunningServer) -> Address:
    return Address("UDP", "127.0.0.1", server.ports.sip)


async def _customer() -> UserAgent:
    ua = UserAgent(username=CUSTOMER)
    await ua.start()
    return ua


async def _api(server: RunningServer, method: str, path: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.request(method, path, headers={"Authorization": f"bearer {token}"})


def _session_id(server: RunningServer) -> str:
    [session_id] = list(server.server.b2bua.calls)
    return session_id


async def _exchange_audio(a: UaCall, b: UaCall) -> None:
    await asyncio.gather(
        a.send_payloads(PAYLOADS, paced=False), b.send_payloads(PAYLOADS, paced=False)
    )
    await asyncio.wait_for(
        asyncio.gather(b.rtp.wait_received(len(PAYLOADS)), a.rtp.wait_received(len(PAYLOADS))), 10
    )
    assert b.rtp.payloads == PAYLOADS, "customer → agent audio differs"
    assert a.rtp.payloads == PAYLOADS, "agent → customer audio differs"


async def test_trunk_call_rings_every_contact_and_carries_audio_bit_exact(
    server: RunningServer,
) -> None:
    first, second = _devices(server, "108")
    answering = await _phone(server, first, auto_answer_after=0.2)
    ringing = await _phone(server, second, transport="TCP", never_answer=True)
    customer = await _customer()
    token = await server.token("108")
    try:
        call = await customer.call("sip:108@sip.callwatch.local", _sip(server))
        agent_call = await answering.ua.next_call()
        other = await ringing.ua.next_call()
        assert await asyncio.wait_for(other.ended(), 5)  # the losing fork was CANCELled

        await _exchange_audio(call, agent_call)

        session_id = _session_id(server)
        session = (
            await _api(
                server, "GET", f"/restapi/v1.0/account/~/telephony/sessions/{session_id}", token
            )
        ).json()
        statuses = {p["direction"]: p["status"]["code"] for p in session["parties"]}
        assert statuses == {"Outbound": "Answered", "Inbound": "Answered"}
        agent_party = next(p for p in session["parties"] if p["direction"] == "Inbound")
        assert agent_party["to"]["deviceId"] == first["id"]
        presence = (
            await _api(
                server,
                "GET",
                "/restapi/v1.0/account/~/extension/~/presence"
                "?detailedTelephonyState=true&sipData=true",
                token,
            )
        ).json()
        assert presence["telephonyStatus"] == "CallConnected"
        assert presence["activeCalls"][0]["telephonySessionId"] == session_id

        await call.hangup()
        assert await asyncio.wait_for(agent_call.ended(), 5)
        gone = await _api(
            server, "GET", f"/restapi/v1.0/account/~/telephony/sessions/{session_id}", token
        )
        assert gone.status_code == 404
        assert gone.json()["errors"][0]["errorCode"] == "CMN-102"
        assert await eventually(lambda: _no_call(server, token))
    finally:
        for ua in (customer, answering.ua, ringing.ua):
            await ua.close()


async def _no_call(server: RunningServer, token: str) -> bool:
    presence = (
        await _api(server, "GET", "/restapi/v1.0/account/~/extension/~/presence", token)
    ).json()
    return bool(presence["telephonyStatus"] == "NoCall")


async def test_agent_hangs_up(server: RunningServer) -> None:
    agent = await _phone(server, _devices(server, "108")[0], auto_answer_after=0.0)
    customer = await _customer()
    try:
        call = await customer.call("sip:108@sip.callwatch.local", _sip(server))
        agent_call = await agent.ua.next_call()
        await agent_call.confirmed()
        await agent_call.hangup()
        assert await asyncio.wait_for(call.ended(), 5)
        assert await eventually(lambda: _async(not server.server.b2bua.calls))
    finally:
        await customer.close()
        await agent.ua.close()


async def _async(value: bool) -> bool:
    return value


async def test_cancel_before_answer(server: RunningServer) -> None:
    agent = await _phone(server, _devices(server, "108")[0], never_answer=True)
    customer = await _customer()
    try:
        call = await customer.dial("sip:108@sip.callwatch.local", _sip(server))
        agent_call = await agent.ua.next_call()
        await call.ringing()
        assert await call.cancel() == 487
        assert await asyncio.wait_for(agent_call.ended(), 5)
    finally:
        await customer.close()
        await agent.ua.close()


@pytest.mark.parametrize(
    ("policy", "status"), [({"reject_with": 486}, 486), ({"never_answer": True}, 408)]
)
async def test_busy_and_no_answer(
    server: RunningServer, policy: dict[str, Any], status: int
) -> None:
    agent = await _phone(server, _devices(server, "108")[0], **policy)
    customer = await _customer()
    try:
        with pytest.raises(CallFailed) as failure:
            await customer.call("sip:108@sip.callwatch.local", _sip(server))
        assert failure.value.status == status
    finally:
        await customer.close()
        await agent.ua.close()


@pytest.mark.parametrize(("number", "status"), [("999", 404), ("102", 480)])
async def test_unknown_number_and_no_device(
    server: RunningServer, number: str, status: int
) -> None:
    customer = await _customer()
    try:
        with pytest.raises(CallFailed) as failure:
            await customer.call(f"sip:{number}@sip.callwatch.local", _sip(server))
        assert failure.value.status == status
    finally:
        await customer.close()


@pytest.mark.parametrize("agent_transport", ["UDP", "TLS"])
async def test_srtp_caller(server: RunningServer, agent_transport: str) -> None:
    """SRTP to plain RTP (agent over UDP) and SRTP to SRTP (agent over TLS)."""
    agent = await _phone(
        server, _devices(server, "108")[0], transport=agent_transport, auto_answer_after=0.0
    )
    customer = await _customer()
    try:
        call = await customer.call("sip:108@sip.callwatch.local", _sip(server), srtp=True)
        agent_call = await agent.ua.next_call()
        await agent_call.confirmed()
        assert call.streams[0].secure
        assert agent_call.streams[0].secure is (agent_transport == "TLS")
        await _exchange_audio(call, agent_call)
        await call.hangup()
    finally:
        await customer.close()
        await agent.ua.close()


async def test_stranger_cannot_hijack_or_read_a_stream(server: RunningServer) -> None:
    agent = await _phone(server, _devices(server, "108")[0], auto_answer_after=0.0)
    customer = await _customer()
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    stranger.setblocking(False)
    try:
        call = await customer.call("sip:108@sip.callwatch.local", _sip(server))
        agent_call = await agent.ua.next_call()
        await agent_call.confirmed()
        await _exchange_audio(call, agent_call)  # both legs latched
        relay_port = call.streams[0].remote[1]
        evil = b"\xfe\xed" * 80  # not among PAYLOADS
        forged = bytes([0x80, 0x00, 0x00, 0x01, 0, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF]) + evil
        for _ in range(20):
            stranger.sendto(forged, ("127.0.0.1", relay_port))
        await agent_call.send_payloads(PAYLOADS[:10], paced=False)
        await asyncio.wait_for(call.rtp.wait_received(len(PAYLOADS) + 10), 5)
        assert call.rtp.payloads[-10:] == PAYLOADS[:10]  # the stream was not redirected
        assert evil not in agent_call.rtp.payloads  # nothing forwarded
        a_leg = server.server.b2bua.calls[_session_id(server)].a.endpoint
        assert a_leg is not None
        stats = await server.server.media_engine.stats(a_leg.stream_id)
        assert stats.strangers >= 20
        assert len(agent_call.rtp.payloads) == len(PAYLOADS)
        with pytest.raises(BlockingIOError):
            stranger.recv(2048)  # and nothing was sent to the stranger
        await call.hangup()
    finally:
        stranger.close()
        await customer.close()
        await agent.ua.close()


async def test_hold_by_reinvite_is_reported(server: RunningServer) -> None:
    agent = await _phone(server, _devices(server, "108")[0], auto_answer_after=0.0)
    customer = await _customer()
    token = await server.token("108")
    try:
        call = await customer.call("sip:108@sip.callwatch.local", _sip(server))
        agent_call = await agent.ua.next_call()
        await agent_call.confirmed()
        response = await agent_call.reinvite("sendonly")
        assert response.status == 200
        session_id = _session_id(server)
        path = f"/restapi/v1.0/account/~/telephony/sessions/{session_id}"
        parties = (await _api(server, "GET", path, token)).json()["parties"]
        assert {p["direction"]: p["status"]["code"] for p in parties}["Inbound"] == "Hold"
        assert (await agent_call.reinvite("sendrecv")).status == 200
        parties = (await _api(server, "GET", path, token)).json()["parties"]
        assert {p["direction"]: p["status"]["code"] for p in parties}["Inbound"] == "Answered"
        await call.hangup()
    finally:
        await customer.close()
        await agent.ua.close()


async def test_extension_to_extension_call_needs_digest(server: RunningServer) -> None:
    agent = await _phone(server, _devices(server, "108")[0], auto_answer_after=0.0)
    caller_device = _devices(server, "102")[0]
    caller = UserAgent(username=caller_device["sip_username"])
    await caller.start()
    try:
        with pytest.raises(CallFailed) as refused:
            await caller.call("sip:108@sip.callwatch.local", _sip(server))
        assert refused.value.status == 407
        call = await caller.call(
            "sip:108@sip.callwatch.local",
            _sip(server),
            auth=(
                caller_device["sip_username"],
                caller_device["authorization_id"],
                caller_device["sip_password"],
            ),
        )
        agent_call = await agent.ua.next_call()
        await _exchange_audio(call, agent_call)
        await call.hangup()
    finally:
        await caller.close()
        await agent.ua.close()


async def test_malformed_sdp_is_refused_and_the_server_keeps_serving(
    server: RunningServer,
) -> None:
    agent = await _phone(server, _devices(server, "108")[0], auto_answer_after=0.0)
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            received.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(
        Probe, remote_addr=("127.0.0.1", server.ports.sip)
    )
    body = b"v=0\r\nthis is not sdp\r\n"
    invite = (
        "INVITE sip:108@sip.callwatch.local SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bKbadsdp\r\n"
        f"From: <sip:{CUSTOMER}@127.0.0.1>;tag=bad\r\nTo: <sip:108@sip.callwatch.local>\r\n"
        "Call-ID: bad-sdp-1\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:5999>\r\n"
        f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        transport.sendto(invite)
        final = None
        while final is None:
            data = await asyncio.wait_for(received.get(), 5)
            status = int(data.split(b" ", 2)[1])
            if status >= 200:
                final = status
        assert 400 <= final < 500
        customer = await _customer()
        try:
            call = await customer.call("sip:108@sip.callwatch.local", _sip(server))
            await call.hangup()
        finally:
            await customer.close()
    finally:
        transport.close()
        await agent.ua.close()


async def test_extension_calls_out_of_the_trunk(tmp_path: Path) -> None:
    """A number that is no extension goes to the trunk's gateway, presented as the trunk."""
    gateway = UserAgent(username="pstn-gateway", auto_answer_after=0.0)
    await gateway.start()
    settings = make_settings(tmp_path, trunk_gateway=f"127.0.0.1:{gateway.port()}")
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, settings, srv.ids)
    ports = await srv.start()
    caller_device = tenant.to_json("")["extensions"]
    device = next(e for e in caller_device if e["extension_number"] == "102")["devices"][0]
    caller = UserAgent(username=device["sip_username"])
    await caller.start()
    try:
        call = await caller.call(
            "sip:+14155550199@sip.callwatch.local",
            Address("UDP", "127.0.0.1", ports.sip),
            auth=(device["sip_username"], device["authorization_id"], device["sip_password"]),
        )
        outside = await gateway.next_call()
        assert outside.invite.uri.user == "+14155550199"
        assert outside.invite.from_.uri.user == tenant.trunk.number
        await _exchange_audio(call, outside)
        [session] = [c.session for c in srv.b2bua.calls.values()]
        callee = session.party(srv.b2bua.calls[session.id].callee_party)
        assert callee.extension_id is None and callee.to.phone_number == "+14155550199"
        await call.hangup()
        assert await asyncio.wait_for(outside.ended(), 5)
    finally:
        await caller.close()
        await gateway.close()
        await srv.stop()
        srv.store.close()


async def test_session_timer_negotiated_and_enforced(tmp_path: Path) -> None:
    """RFC 4028: too short an interval gets 422 + Min-SE; an unrefreshed session is hung up."""
    settings = make_settings(tmp_path, min_session_expires=2)
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, settings, srv.ids).to_json("")
    ports = await srv.start()
    device = next(e for e in tenant["extensions"] if e["extension_number"] == "108")["devices"][0]
    agent = UserAgent(username=device["sip_username"], auto_answer_after=0.0)
    await agent.start()
    await agent.register(
        Address("UDP", "127.0.0.1", ports.sip),
        username=device["sip_username"],
        auth_username=device["authorization_id"],
        password=device["sip_password"],
        domain="sip.callwatch.local",
    )
    customer = await _customer()
    server = Address("UDP", "127.0.0.1", ports.sip)
    try:
        with pytest.raises(CallFailed) as short:
            await customer.call(
                "sip:108@sip.callwatch.local",
                server,
                headers=[("Session-Expires", "1"), ("Supported", "timer")],
            )
        assert short.value.status == 422
        call = await customer.call(
            "sip:108@sip.callwatch.local",
            server,
            headers=[("Session-Expires", "2"), ("Supported", "timer")],
        )
        ok = next(r for r in call.responses if r.status == 200)
        assert ok.headers.get("session-expires") == "2;refresher=uac"
        assert ok.headers.get("require") == "timer"
        agent_call = await agent.next_call()
        assert await asyncio.wait_for(call.ended(), 6)  # never refreshed: hung up
        assert await asyncio.wait_for(agent_call.ended(), 6)
    finally:
        await customer.close()
        await agent.close()
        await srv.stop()
        srv.store.close()
