"""The supervisor softphone over real loopback sockets.

A plain :class:`UserAgent` plays RingCentral's side and INVITEs the softphone directly the way
RingCentral invites a supervisor device (ringcentral-api.md §6.1): ``p-rc-api-ids``,
``p-rc-api-monitoring-ids``, the auto-answer headers, and one ``m=audio`` per monitored party
named by a base64 ``i=`` line and ``a=label``. It then speaks a known tone per party. The
registration tests run the real callwatch registrar.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from callwatch.app import CallwatchServer, provision_demo, server_url
from callwatch.client import CallState, EndReason, RegistrationFailed, UserAgent
from callwatch.client.monitoring import AutoAnswerPolicy, MonitoringIds, header_params
from callwatch.client.sinks import StereoWavRecorder, pump
from callwatch.client.softphone import SipCredentials, Softphone, parse_proxy
from callwatch.client.streams import AudioFrame
from callwatch.client.supervised_call import SupervisedCall
from callwatch.sip.events import Address
from callwatch.sip.headers import Headers
from callwatch.sip.offer_answer import OPUS, OPUS_16000, PCMU, TELEPHONE_EVENT
from tests.client.rc_side import (
    AGENT,
    CUSTOMER,
    HOST,
    SESSION,
    SUPERVISOR,
    CuttableRelay,
    invite,
    rc_headers,
)
from tests.client.tones import (
    PTIME,
    Pcm,
    peak_frequency,
    read_wav,
    send_paced,
    take,
    tone_level,
    tone_payloads,
    voiced,
)
from tests.integration.conftest import RunningServer, make_settings

WAIT = 5.0
T = TypeVar("T")


async def wait(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    return await asyncio.wait_for(awaitable, timeout)


def credentials(**changes: str) -> SipCredentials:
    base = SipCredentials(
        username="sup",
        password="pw",
        authorization_id="dev-1",
        domain="example.test",
        outbound_proxy=f"{HOST}:9",
        transport="UDP",
    )
    return replace(base, **changes)


MakeSoftphone = Callable[..., Awaitable[Softphone]]


@pytest.fixture
async def softphone() -> AsyncIterator[MakeSoftphone]:
    made: list[Softphone] = []

    async def make(
        creds: SipCredentials | None = None, register: bool = False, **kw: Any
    ) -> Softphone:
        phone = Softphone(creds or credentials(), host=HOST, **kw)
        made.append(phone)
        await phone.start(register=register)
        return phone

    yield make
    for phone in made:
        await phone.close()


@pytest.fixture
async def rc() -> AsyncIterator[UserAgent]:
    """RingCentral's side: a plain user agent that INVITEs the softphone directly."""
    ua = UserAgent(username="+14155550100")
    await ua.start()
    yield ua
    await ua.close()


async def next_call(phone: Softphone) -> SupervisedCall:
    return await wait(anext(aiter(phone.calls())))


def spoken(channel: Pcm, seconds: float) -> Pcm:
    """``seconds`` of a WAV channel from 40 ms after its audio starts."""
    start = int(np.argmax(np.abs(channel) > 1000)) + 640
    return channel[start : start + round(seconds * 16000)]


def assert_one_timeline(*streams: list[AudioFrame]) -> None:
    for frames in streams:
        ticks = [f.tick for f in frames]
        assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
        assert [f.sequence for f in frames] == list(
            range(frames[0].sequence, frames[0].sequence + len(frames))
        )
    assert len({frames[0].tick for frames in streams}) == 1  # the same instants


# -- monitoring INVITEs -----------------------------------------------------------------------


async def test_monitoring_invite_two_parties_srtp_to_stereo_wav(
    softphone: MakeSoftphone, rc: UserAgent, tmp_path: Path
) -> None:
    phone = await softphone()
    parties = [(CUSTOMER, [PCMU, TELEPHONE_EVENT]), (AGENT, [OPUS, PCMU, TELEPHONE_EVENT])]
    call = await invite(rc, phone, parties, rc_headers(), srtp=True)
    await wait(call.answered())
    sup = await next_call(phone)

    assert sup.state is CallState.ESTABLISHED and sup.auto_answer_requested
    assert (sup.session_id, sup.supervisor_party_id) == (SESSION, SUPERVISOR)
    assert sup.party_ids == [CUSTOMER, AGENT]
    assert [s.secure for s in sup.sip.streams] == [True, True]
    assert [s.encoding.upper() for s in call.streams] == ["PCMU", "OPUS"]
    assert phone.active_calls == [sup]

    recorder = StereoWavRecorder(tmp_path / "call.wav", left_party=CUSTOMER, right_party=AGENT)
    recording = asyncio.create_task(pump(recorder, *sup.parties.values()))
    customer_tap, agent_tap = sup.parties[CUSTOMER].subscribe(), sup.parties[AGENT].subscribe()
    taps = asyncio.gather(take(customer_tap, 40), take(agent_tap, 40))
    await asyncio.gather(
        call.send_payloads(tone_payloads(440, 0.6, "PCMU", 8000), stream=0),
        call.send_payloads(tone_payloads(1000, 0.6, "OPUS", 48000), stream=1),
    )
    customer, agent = await wait(taps)
    assert await call.hangup() == 200
    assert await wait(sup.ended()) is EndReason.REMOTE_BYE
    await wait(recording)  # the streams ended, so the pump ended and closed the file

    assert_one_timeline(customer, agent)
    assert peak_frequency(voiced(customer), 16000) == pytest.approx(440, abs=15)
    assert peak_frequency(voiced(agent), 16000) == pytest.approx(1000, abs=15)
    assert sup.sip.media.sessions[0].counters.srtp_failures == 0
    assert phone.active_calls == []

    params, pcm = read_wav(recorder.path)
    assert params.nchannels == 2 and params.nframes == recorder.ticks_written * 320
    left, right = spoken(pcm[:, 0], 0.4), spoken(pcm[:, 1], 0.4)
    assert tone_level(left, 440, 16000) > 0.9 > 0.1 > tone_level(left, 1000, 16000)
    assert tone_level(right, 1000, 16000) > 0.9 > 0.1 > tone_level(right, 440, 16000)
    assert recorder.late_frames == 0


@pytest.mark.parametrize(("offer_order", "expected"), [(False, "OPUS"), (True, "PCMU")])
async def test_offer_order_takes_the_party_codec_the_server_offers_first(
    softphone: MakeSoftphone, rc: UserAgent, offer_order: bool, expected: str
) -> None:
    """The relay offers the party's own codec first, then Opus 48k …: by default the softphone
    takes its own favourite (a transcoding fork for a PCMU call); with ``offer_order`` it takes
    the party's codec, which the relay forwards untouched."""
    phone = await softphone(offer_order=offer_order)
    parties = [(CUSTOMER, [PCMU, OPUS, OPUS_16000, TELEPHONE_EVENT])]
    call = await invite(rc, phone, parties, rc_headers())
    await wait(call.answered())
    sup = await next_call(phone)
    assert [s.encoding.upper() for s in sup.sip.streams] == [expected]
    assert sup.parties[CUSTOMER].format.encoding.upper() == expected


async def test_loss_and_reordering_on_the_wire_leave_no_gap_in_the_wav(
    softphone: MakeSoftphone, rc: UserAgent, tmp_path: Path
) -> None:
    phone = await softphone()
    parties = [(CUSTOMER, [PCMU]), (AGENT, [OPUS])]
    call = await invite(rc, phone, parties, rc_headers())
    await wait(call.answered())
    sup = await next_call(phone)
    recorder = StereoWavRecorder(tmp_path / "lossy.wav", CUSTOMER, AGENT)
    recording = asyncio.create_task(pump(recorder, *sup.parties.values()))
    started = asyncio.get_running_loop().time()
    sessions = call.media.sessions
    customer = tone_payloads(440, 1.0, "PCMU", 8000)
    agent = tone_payloads(1000, 1.0, "OPUS", 48000)
    (c_sent, c_swapped), (a_sent, a_swapped) = await asyncio.gather(
        send_paced(
            sessions[0], customer, payload_type=0, clock_step=160, loss=0.05, reorder=0.05, seed=3
        ),
        send_paced(
            sessions[1],
            agent,
            payload_type=call.streams[1].payload_type,
            clock_step=960,
            loss=0.05,
            reorder=0.05,
            seed=4,
        ),
    )
    await asyncio.sleep(0.15)  # let the jitter buffers play out what is left
    assert await call.hangup() == 200
    await wait(recording)
    elapsed = asyncio.get_running_loop().time() - started

    assert c_sent < len(customer) and a_sent < len(agent) and c_swapped and a_swapped
    for party in sup.parties.values():
        stats = party.stats
        assert stats.decoder.jitter.lost + stats.decoder.concealed > 0
        assert stats.frames == pytest.approx(elapsed / PTIME, abs=5)  # one frame per 20 ms
    assert abs(recorder.ticks_written - elapsed / PTIME) <= 5  # the file spans the whole time
    assert recorder.late_frames == 0

    params, pcm = read_wav(recorder.path)
    assert params.nframes == recorder.ticks_written * 320
    assert tone_level(spoken(pcm[:, 0], 0.8), 440, 16000) > 0.8
    assert tone_level(spoken(pcm[:, 1], 0.8), 1000, 16000) > 0.8


async def test_dual_channel_parallel_invites_map_parties_by_header(
    softphone: MakeSoftphone, rc: UserAgent
) -> None:
    phone = await softphone()
    # one single-stream INVITE per party, sent at once; the i= lines name nobody useful, so
    # only p-rc-api-monitoring-ids (in either parameter order) tells the parties apart
    calls = await asyncio.gather(
        invite(rc, phone, [("stream", [PCMU])], rc_headers(CUSTOMER, party_first=True)),
        invite(rc, phone, [("stream", [OPUS_16000])], rc_headers(AGENT, party_first=False)),
    )
    await wait(asyncio.gather(*(c.answered() for c in calls)))
    first, second = await next_call(phone), await next_call(phone)
    by_party = {sup.monitored_party_id: sup for sup in (first, second)}
    assert set(by_party) == {CUSTOMER, AGENT}
    assert by_party[CUSTOMER].party_ids == [CUSTOMER] and by_party[AGENT].party_ids == [AGENT]
    assert first.session_id == second.session_id == SESSION
    assert first.origin_tick == second.origin_tick  # one timeline for the whole supervision

    by_call = {c.call_id: c for c in calls}
    customer_call = by_call[by_party[CUSTOMER].call_id]
    agent_call = by_call[by_party[AGENT].call_id]
    taps = asyncio.gather(
        take(by_party[CUSTOMER].parties[CUSTOMER], 30), take(by_party[AGENT].parties[AGENT], 30)
    )
    await asyncio.gather(
        customer_call.send_payloads(tone_payloads(440, 0.4, "PCMU", 8000)),
        agent_call.send_payloads(tone_payloads(1000, 0.4, "OPUS", 16000)),  # RingCentral's PT 109
    )
    customer, agent = await wait(taps)
    assert agent_call.streams[0].payload_type == 109 and agent_call.streams[0].clock_step == 320
    assert peak_frequency(voiced(customer), 16000) == pytest.approx(440, abs=15)
    assert peak_frequency(voiced(agent), 16000) == pytest.approx(1000, abs=15)
    common = {f.tick for f in customer} & {f.tick for f in agent}
    assert len(common) >= 25  # the two INVITEs' frames land on the same instants


async def test_reinvite_hold_codec_change_and_an_added_party(
    softphone: MakeSoftphone, rc: UserAgent
) -> None:
    phone = await softphone()
    call = await invite(rc, phone, [(CUSTOMER, [PCMU])], rc_headers(), codecs=(PCMU, OPUS))
    await wait(call.answered())
    sup = await next_call(phone)
    party = sup.parties[CUSTOMER]
    assert party.format.encoding == "PCMU"

    await call.reinvite("sendonly")  # hold, and the plain re-offer lists OPUS first-choice too
    await call.media.open(1)  # then another party's stream is added
    ok = await call.reinvite()
    assert ok.status == 200
    await take(party.subscribe(), 1)  # one tick: the call notices the new SDP as it plays
    assert sup.parties[CUSTOMER] is party  # a stream keeps its party
    assert party.format.encoding.upper() == "OPUS"  # our first choice, now that it is offered
    assert sup.party_ids == [CUSTOMER, "stream-1"]

    tap = take(party.subscribe(), 30)
    sending = call.send_payloads(tone_payloads(700, 0.4, "OPUS", 48000))
    frames, _ = await wait(asyncio.gather(tap, sending))
    assert peak_frequency(voiced(frames), 16000) == pytest.approx(700, abs=15)


@pytest.mark.parametrize(
    ("policy", "with_headers", "answered"),
    [
        (AutoAnswerPolicy.WITH_HEADERS, True, True),
        (AutoAnswerPolicy.WITH_HEADERS, False, False),
        (AutoAnswerPolicy.ALWAYS, False, True),
        (AutoAnswerPolicy.NEVER, True, False),
    ],
)
async def test_auto_answer_policy(
    softphone: MakeSoftphone,
    rc: UserAgent,
    policy: AutoAnswerPolicy,
    with_headers: bool,
    answered: bool,
) -> None:
    phone = await softphone(auto_answer=policy)
    call = await invite(rc, phone, [(CUSTOMER, [PCMU])], rc_headers(auto=with_headers))
    sup = await next_call(phone)
    assert sup.auto_answer_requested is with_headers
    if answered:
        await wait(call.answered())
        assert sup.state is CallState.ESTABLISHED
        return
    assert sup.state is CallState.RINGING and call.state is CallState.CALLING
    await sup.answer()  # the application decides
    await wait(call.answered())


async def test_cancel_and_reject_end_the_call(softphone: MakeSoftphone, rc: UserAgent) -> None:
    phone = await softphone(auto_answer=AutoAnswerPolicy.NEVER)
    call = await invite(rc, phone, [(CUSTOMER, [PCMU])], rc_headers())
    sup = await next_call(phone)
    assert await wait(call.cancel()) == 487
    assert await wait(sup.ended()) is EndReason.REMOTE_CANCEL
    assert [f async for f in sup.parties[CUSTOMER]] != []  # drained, then the stream ended

    refused = await invite(rc, phone, [(CUSTOMER, [PCMU])], rc_headers())
    second = await next_call(phone)
    second.reject(486)
    assert await wait(second.ended()) is EndReason.REJECTED
    with pytest.raises(Exception, match="486"):
        await wait(refused.answered())


async def test_close_ends_calls_and_the_call_iterator(
    softphone: MakeSoftphone, rc: UserAgent
) -> None:
    phone = await softphone()
    call = await invite(rc, phone, [(CUSTOMER, [PCMU])], rc_headers())
    await wait(call.answered())
    calls = phone.calls()
    sup = await wait(anext(calls))
    await phone.close()
    with pytest.raises(StopAsyncIteration):
        await wait(anext(calls))
    assert sup.done and sup.parties[CUSTOMER].closed
    assert await wait(call.ended()) is EndReason.REMOTE_BYE


def test_header_parsing_is_by_name_not_position() -> None:
    headers = Headers(
        [
            ("P-RC-API-IDS", "party-id=p-9;session-id=s-1"),
            ("p-rc-api-monitoring-ids", "session-id=s-1; party-id=p-7"),
        ]
    )
    ids = MonitoringIds.from_headers(headers)
    assert (ids.session_id, ids.supervisor_party_id, ids.monitored_party_id) == (
        "s-1",
        "p-9",
        "p-7",
    )
    assert header_params('a = 1 ;b="x"; c') == {"a": "1", "b": "x"}
    assert parse_proxy("[::1]:5096", "TLS") == ("::1", 5096)
    assert parse_proxy("sip10.ringcentral.com", "TLS") == ("sip10.ringcentral.com", 5061)
    with pytest.raises(ValueError, match="transport"):
        Softphone(credentials(transport="WSS"))


# -- registration against the real callwatch registrar ---------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path, min_expires=1)
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, settings, srv.ids)
    ports = await srv.start()
    try:
        yield RunningServer(
            srv, ports, tenant.to_json(server_url(settings, ports)), server_url(settings, ports)
        )
    finally:
        await srv.stop()
        srv.store.close()


def device_credentials(
    server: RunningServer, proxy: str, transport: str, number: str = "101"
) -> SipCredentials:
    device = server.extension(number)["devices"][0]
    return SipCredentials(
        username=device["sip_username"],
        password=device["sip_password"],
        authorization_id=device["authorization_id"],
        domain=server.server.settings.sip.domain,
        outbound_proxy=proxy,
        transport=transport,
    )


async def test_keepalive_refreshes_before_expiry(
    server: RunningServer, softphone: MakeSoftphone
) -> None:
    creds = device_credentials(server, f"{HOST}:{server.ports.sip}", "UDP")
    phone = await softphone(creds, register=True, expires=1)
    assert phone.registration.registered and phone.registration.expires == 1
    assert phone.device_id == creds.authorization_id
    registrar = server.server.registrar
    for count in (2, 3, 4):
        status = await wait(phone.next_registration())
        assert status.registered and status.registrations == count
    assert registrar.is_online(phone.device_id)  # 2 s after a 1 s registration: refreshed
    [binding] = registrar.bindings(phone.device_id)
    assert binding.cseq >= 4 and binding.call_id == registrar.bindings(phone.device_id)[0].call_id


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
async def test_reregisters_after_the_connection_drops(
    server: RunningServer, softphone: MakeSoftphone, transport: str
) -> None:
    relay = CuttableRelay(server.ports.sip if transport == "TCP" else server.ports.sip_tls)
    port = await relay.start()
    try:
        creds = device_credentials(server, f"{HOST}:{port}", transport)
        phone = await softphone(creds, register=True)
        registrar = server.server.registrar
        [before] = registrar.bindings(phone.device_id)
        relay.cut()
        lost = await wait(phone.next_registration())
        assert not lost.registered and lost.flow_losses == 1
        again = await wait(phone.next_registration())
        assert again.registered and again.registrations == 2
        [after] = registrar.bindings(phone.device_id)
        assert after.source.connection != before.source.connection  # over the new connection
        assert relay.connections == 2 and registrar.is_online(phone.device_id)
    finally:
        await relay.close()


async def test_wrong_password_fails_start(server: RunningServer, softphone: MakeSoftphone) -> None:
    creds = replace(
        device_credentials(server, f"{HOST}:{server.ports.sip}", "TCP"), password="nope"
    )
    with pytest.raises(RegistrationFailed) as failed:
        await softphone(creds, register=True)
    assert failed.value.status == 403


async def test_min_expires_is_honoured(tmp_path: Path, softphone: MakeSoftphone) -> None:
    settings = make_settings(tmp_path, min_expires=120)
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, settings, srv.ids)
    ports = await srv.start()
    try:
        running = RunningServer(srv, ports, tenant.to_json(server_url(settings, ports)), "")
        creds = device_credentials(running, f"{HOST}:{ports.sip}", "UDP")
        phone = await softphone(creds, register=True, expires=30)
        assert phone.registration.expires == 120  # 423 Interval Too Brief, then Min-Expires
        await phone.close()  # unregisters while the registrar is still there
        assert not srv.registrar.is_online(phone.device_id)
    finally:
        await srv.stop()
        srv.store.close()


# -- end to end: supervise through callwatch, hear both parties ----------------------------------


async def test_supervise_through_callwatch_streams_each_party(
    server: RunningServer, softphone: MakeSoftphone
) -> None:
    phone = await softphone(
        device_credentials(server, f"{HOST}:{server.ports.sip_tls}", "TLS"), register=True
    )
    sip = Address("UDP", HOST, server.ports.sip)
    agent_dev = server.extension("108")["devices"][0]
    agent_ua = UserAgent(username=agent_dev["sip_username"], auto_answer_after=0.0)
    customer_ua = UserAgent(username="+14155550123")
    await agent_ua.start()
    await customer_ua.start()
    try:
        await agent_ua.register(
            sip,
            username=agent_dev["sip_username"],
            auth_username=agent_dev["authorization_id"],
            password=agent_dev["sip_password"],
            domain=server.server.settings.sip.domain,
        )
        customer = await customer_ua.call("sip:108@sip.callwatch.local", sip)
        agent = await wait(agent_ua.next_call())
        await wait(agent.confirmed())
        [session_id] = list(server.server.b2bua.calls)
        token = await server.token("101")
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post(
                f"/restapi/v1.0/account/~/telephony/sessions/{session_id}/supervise",
                json={
                    "mode": "Listen",
                    "agentExtensionNumber": "108",
                    "supervisorDeviceId": phone.device_id,
                },
                headers={"Authorization": f"bearer {token}"},
            )
        assert response.status_code == 201, response.text
        sup = await next_call(phone)
        legs = server.server.b2bua.calls[session_id]
        assert sup.session_id == session_id and sup.supervisor_party_id == response.json()["id"]
        assert set(sup.party_ids) == {legs.caller_party, legs.callee_party}
        taps = asyncio.gather(
            take(sup.parties[legs.caller_party], 30), take(sup.parties[legs.callee_party], 30)
        )
        await asyncio.gather(
            customer.send_payloads(tone_payloads(440, 0.4, "PCMU", 8000)),
            agent.send_payloads(tone_payloads(1000, 0.4, "PCMU", 8000)),
        )
        heard_customer, heard_agent = await wait(taps)
        assert peak_frequency(voiced(heard_customer), 16000) == pytest.approx(440, abs=15)
        assert peak_frequency(voiced(heard_agent), 16000) == pytest.approx(1000, abs=15)
        await customer.hangup()
        assert await wait(sup.ended()) is EndReason.REMOTE_BYE
    finally:
        await customer_ua.close()
        await agent_ua.close()


def test_supervisor_sdk_imports_only_what_any_server_allows() -> None:
    allowed = (
        "callwatch.client",
        "callwatch.sip",
        "callwatch.media",
        "callwatch.ids",
        "callwatch.clock",
    )
    package = Path(__file__).parents[2] / "src" / "callwatch" / "client"
    mine = ["softphone", "supervised_call", "registration", "sip_account", "monitoring", "streams"]
    mine += ["stream_decoder", "playout", "alignment", "sinks", "speaker"]
    for name in mine:
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("callwatch"):
                assert (node.module or "").startswith(allowed), f"{name}.py imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("callwatch") for a in node.names)
