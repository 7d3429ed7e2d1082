"""The test user agent on real loopback sockets: two UAs calling each other directly, plus a
scripted bare SIP stack for what a UA alone cannot provoke (digest challenges, a deaf peer)."""

from __future__ import annotations

import ast
import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from callwatch.client import (
    CallFailed,
    CallState,
    EndReason,
    RegistrationFailed,
    RtpSession,
    UaCall,
    UserAgent,
)
from callwatch.client.media_session import MediaSession
from callwatch.client.negotiation import make_offer
from callwatch.ids import IdGenerator
from callwatch.media.rtp import RtpHeader, RtpPacket
from callwatch.sip.aio.endpoint import SipEndpoint
from callwatch.sip.aio.tls import ensure_self_signed, server_context
from callwatch.sip.auth import AuthResult, DigestAuthenticator, DigestCredentials
from callwatch.sip.dialog import make_dialog_response
from callwatch.sip.events import Address, RequestReceived, ResponseReceived, SipEvent
from callwatch.sip.headers import Headers
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.offer_answer import PCMA, PCMU, build_answer
from callwatch.sip.sdp import Direction, SessionDescription
from callwatch.sip.stack import SipStack
from callwatch.sip.uri import SipUri

HOST = "127.0.0.1"
WAIT = 5.0  # seconds before a missing event fails a test; never a synchronisation delay
PACKETS = 100
T = TypeVar("T")


class MakeAgent(Protocol):
    def __call__(self, **kwargs: object) -> Awaitable[UserAgent]: ...


@pytest.fixture
async def agent() -> AsyncIterator[MakeAgent]:
    made: list[UserAgent] = []

    async def make(**kwargs: object) -> UserAgent:
        ua = UserAgent(**kwargs)  # type: ignore[arg-type]
        await ua.start()
        made.append(ua)
        return ua

    yield make
    for ua in made:
        await ua.close()


def payloads(seed: int, count: int = PACKETS, size: int = 160) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


async def wait(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, WAIT)


async def connect(
    a: UserAgent, b: UserAgent, transport: str = "UDP", **dial: object
) -> tuple[UaCall, UaCall]:
    """A calls B directly; B answers by its policy. Returns (A's call, B's call) once ACKed."""
    call_a = await a.call(b.uri(transport), b.address(transport), **dial)  # type: ignore[arg-type]
    call_b = await wait(b.next_call())
    await wait(call_b.confirmed())
    return call_a, call_b


async def exchange_media(call_a: UaCall, call_b: UaCall) -> None:
    """100 payloads each way, unpaced; both sides must get them bit-exact and in order."""
    sent_a, sent_b = payloads(1), payloads(2)
    await asyncio.gather(
        call_a.send_payloads(sent_a, paced=False), call_b.send_payloads(sent_b, paced=False)
    )
    await wait(call_a.rtp.wait_received(PACKETS))
    await wait(call_b.rtp.wait_received(PACKETS))
    assert call_b.rtp.payloads == sent_a
    assert call_a.rtp.payloads == sent_b
    for call in (call_a, call_b):
        seqs = [p.header.sequence_number for p in call.rtp.received]
        assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(PACKETS)]
        stamps = [p.header.timestamp for p in call.rtp.received]
        assert stamps == [(stamps[0] + 160 * i) & 0xFFFFFFFF for i in range(PACKETS)]
        assert {p.header.payload_type for p in call.rtp.received} == {0}
        assert call.rtp.counters.unexpected == call.rtp.counters.srtp_failures == 0


class TestCalls:
    async def test_invite_ringing_answer_ack_media_and_bye(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", auto_answer_after=0.0)
        call_a, call_b = await connect(a, b)

        assert [r.status for r in call_a.responses] == [180, 200]
        assert [r.method for r in call_b.requests] == ["INVITE", "ACK"]
        assert call_b.request_headers.get("call-id") == call_a.call_id
        assert call_a.state is call_b.state is CallState.ESTABLISHED
        await exchange_media(call_a, call_b)

        assert await call_a.hangup() == 200
        assert await wait(call_b.ended()) is EndReason.REMOTE_BYE
        assert call_a.end_reason is EndReason.LOCAL_BYE
        assert a.calls == b.calls == []

    async def test_callee_hangs_up(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", auto_answer_after=0.0)
        call_a, call_b = await connect(a, b)
        assert await call_b.hangup() == 200
        assert await wait(call_a.ended()) is EndReason.REMOTE_BYE
        assert call_a.requests[-1].method == "BYE"

    async def test_manual_answer_after_ringing(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b")
        call_a = await a.dial(b.uri(), b.address())
        assert (await wait(call_a.ringing())).status == 180
        call_b = await wait(b.next_call())
        assert call_b.state is CallState.RINGING
        await call_b.answer()
        await wait(call_a.answered())
        await wait(call_b.confirmed())
        assert call_a.state is CallState.ESTABLISHED

    async def test_cancel_before_answer_gets_487(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", never_answer=True, auto_answer_after=0.0)
        call_a = await a.dial(b.uri(), b.address())
        await wait(call_a.ringing())
        call_b = await wait(b.next_call())

        assert await wait(call_a.cancel()) == 487
        assert await wait(call_b.ended()) is EndReason.REMOTE_CANCEL
        with pytest.raises(CallFailed) as failed:
            await call_a.answered()
        assert failed.value.status == 487
        assert call_a.end_reason is EndReason.LOCAL_CANCEL
        assert call_b.rtp.closed

    async def test_reject_486(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", reject_with=486)
        with pytest.raises(CallFailed) as failed:
            await a.call(b.uri(), b.address())
        assert failed.value.status == 486
        assert failed.value.response is not None
        call_b = await wait(b.next_call())
        assert call_b.end_reason is EndReason.REJECTED

    async def test_reinvite_hold_and_resume(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", auto_answer_after=0.0)
        call_a, call_b = await connect(a, b)

        ok = await call_a.reinvite("sendonly")
        assert ok.status == 200
        assert call_a.streams[0].remote_direction is Direction.RECVONLY
        assert call_b.streams[0].remote_direction is Direction.SENDONLY
        assert call_b.streams[0].local_direction is Direction.RECVONLY
        assert call_b.local_sdp is not None and call_b.local_sdp.origin.sess_version == 2

        await call_a.reinvite(Direction.SENDRECV)
        resumed = call_b.streams[0]
        assert resumed.local_direction is Direction.SENDRECV
        await exchange_media(call_a, call_b)  # long enough for the last ACK to arrive
        assert [r.method for r in call_b.requests] == ["INVITE", "ACK"] * 3

    async def test_srtp_both_ways_bit_exact(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", auto_answer_after=0.0)
        call_a, call_b = await connect(a, b, srtp=True)
        offer = SessionDescription.parse(call_b.invite.body)
        assert offer.media[0].proto == "RTP/SAVP"
        assert call_b.local_sdp is not None and call_b.local_sdp.media[0].crypto
        assert call_a.streams[0].secure and call_b.streams[0].secure
        assert call_a.streams[0].send_key == call_b.streams[0].receive_key
        await exchange_media(call_a, call_b)
        assert call_a.rtp.counters.sent_bytes == PACKETS * (12 + 160 + 10)  # 80-bit auth tag

    async def test_tcp_transport(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", auto_answer_after=0.0)
        call_a, call_b = await connect(a, b, "TCP")
        assert call_b.invite.top_via.transport == "TCP"
        assert call_b.next_hop.connection is not None
        await exchange_media(call_a, call_b)
        assert await call_b.hangup() == 200  # BYE back over A's connection
        assert await wait(call_a.ended()) is EndReason.REMOTE_BYE

    async def test_codec_preference_is_negotiated(self, agent: MakeAgent) -> None:
        a = await agent(username="a", codecs=(PCMU, PCMA))
        b = await agent(username="b", auto_answer_after=0.0, codecs=(PCMA,))
        call_a, call_b = await connect(a, b)
        assert call_a.streams[0].payload_type == call_b.streams[0].payload_type == 8
        assert call_a.streams[0].encoding == "PCMA"

    async def test_two_streams_like_a_supervisor_invite(self, agent: MakeAgent) -> None:
        a = await agent(username="a")
        b = await agent(username="b", auto_answer_after=0.0)
        call_a, call_b = await connect(a, b, streams=2)
        assert len(call_b.media.sessions) == len(call_b.streams) == 2
        second = payloads(3, count=10)
        await call_a.send_payloads(second, paced=False, stream=1)
        await wait(call_b.media.sessions[1].wait_received(10))
        assert call_b.media.sessions[1].payloads == second
        assert call_b.rtp.received == []
        info = await call_a.send_request("INFO", body=b"hi", content_type="text/plain")
        assert info.status == 200 and call_b.requests[-1].body == b"hi"

    async def test_close_hangs_up_live_calls(self, agent: MakeAgent) -> None:
        a = UserAgent(username="a")
        await a.start()
        b = await agent(username="b", auto_answer_after=0.0)
        _, call_b = await connect(a, b)
        await a.close()
        assert await wait(call_b.ended()) is EndReason.REMOTE_BYE


class ScriptedPeer:
    """A bare SIP stack on UDP that answers each request with ``script`` (a test's far end)."""

    def __init__(self, script: Callable[[ScriptedPeer, RequestReceived], None]) -> None:
        self._script = script
        self.requests: list[Request] = []
        self.sources: list[Address] = []
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.endpoint: SipEndpoint | None = None
        self.address = Address("UDP", HOST, 0)

    async def __aenter__(self) -> ScriptedPeer:
        self.endpoint = SipEndpoint(SipStack(IdGenerator(7)), self._on_event)
        self.address = Address("UDP", HOST, await self.endpoint.listen_udp(HOST, 0))
        return self

    async def listen_tls(self, directory: Path) -> Address:
        assert self.endpoint is not None
        context = server_context(*ensure_self_signed(directory, [HOST]))
        return Address("TLS", HOST, await self.endpoint.listen_stream("TLS", HOST, 0, context))

    async def __aexit__(self, *exc: object) -> None:
        assert self.endpoint is not None
        await self.endpoint.close()

    def _on_event(self, event: SipEvent) -> None:
        if isinstance(event, RequestReceived):
            self.requests.append(event.request)
            self.sources.append(event.source)
            if event.transaction is not None:
                self._script(self, event)
        elif isinstance(event, ResponseReceived):
            self.responses.put_nowait(event.response)

    def respond(self, event: RequestReceived, status: int, headers: list[tuple[str, str]]) -> None:
        assert self.endpoint is not None and event.transaction is not None
        response = make_response(event.request, status, to_tag="peer", headers=headers)
        self.endpoint.send_response(event.transaction, response)


async def register(ua: UserAgent, server: Address, password: str = "pw") -> Response:
    return await ua.register(
        server, username="101", auth_username="auth101", password=password, domain="example.test"
    )


def peer_request(method: str, uri: SipUri, *fields: tuple[str, str], body: bytes = b"") -> Request:
    """A request from the scripted peer to a UA (the stack adds Via and Max-Forwards)."""
    base = [("From", "<sip:peer@example.test>;tag=p1"), ("To", f"<{uri}>")]
    base += [("Call-ID", f"{method}-{uri.port}@peer"), ("CSeq", f"1 {method}")]
    return Request(headers=Headers([*base, *fields]), body=body, method=method, uri=uri)


AUTH = DigestAuthenticator(realm="example.test", secret=b"s3cret", algorithms=("SHA-256", "MD5"))


def digest_script(header: str, challenge: str, success: int) -> Callable[..., None]:
    """Challenge requests without credentials; answer ``success`` to ones that verify."""

    def script(peer: ScriptedPeer, event: RequestReceived) -> None:
        value = event.request.headers.get(header)
        if value is None:
            challenges = [(challenge, c.serialize()) for c in AUTH.challenge(0.0)]
            peer.respond(event, 407 if header.startswith("proxy") else 401, challenges)
            return
        creds = DigestCredentials.parse(value)
        result = AUTH.verify(creds, method=event.request.method, password="pw", now=1.0)
        contact = [("Contact", event.request.headers.get("contact") or "")]
        peer.respond(event, success if result is AuthResult.OK else 403, contact)

    return script


class TestDigest:
    async def test_register_answers_401_once(self, agent: MakeAgent) -> None:
        ua = await agent()
        script = digest_script("authorization", "WWW-Authenticate", 200)
        async with ScriptedPeer(script) as registrar:
            ok = await register(ua, registrar.address)
            assert ok.status == 200
            first, second = registrar.requests
            assert first.cseq.seq + 1 == second.cseq.seq and first.call_id == second.call_id
            creds = DigestCredentials.parse(second.headers.get("authorization") or "")
            assert (creds.username, creds.algorithm, creds.qop) == ("auth101", "SHA-256", "auth")
            assert str(second.uri) == "sip:example.test"
            assert second.to.uri == SipUri("example.test", user="101")
            assert second.contacts[0].uri.port == ua.port("UDP")

            await ua.unregister()
            assert registrar.requests[-1].headers.get("expires") == "0"

    async def test_wrong_password_raises_registration_failed(self, agent: MakeAgent) -> None:
        ua = await agent()
        script = digest_script("authorization", "WWW-Authenticate", 200)
        async with ScriptedPeer(script) as registrar:
            with pytest.raises(RegistrationFailed) as failed:
                await register(ua, registrar.address, "wrong")
            assert failed.value.status == 403

    async def test_invite_answers_407_with_proxy_authorization(self, agent: MakeAgent) -> None:
        ua = await agent()
        script = digest_script("proxy-authorization", "Proxy-Authenticate", 486)
        async with ScriptedPeer(script) as proxy:
            with pytest.raises(CallFailed) as failed:
                await ua.call("sip:102@example.test", proxy.address, auth=("101", "a101", "pw"))
            assert failed.value.status == 486  # 486 only once the credentials verified
            invites = [r for r in proxy.requests if r.method == "INVITE"]
            assert [r.cseq.seq for r in invites] == [1, 2]
            assert invites[1].from_.uri.user == "101"
            assert invites[0].from_.tag == invites[1].from_.tag


async def test_tls_registration_is_flow_bound_and_reachable(
    agent: MakeAgent, tmp_path: Path
) -> None:
    ua = await agent(username="sup")
    script = digest_script("authorization", "WWW-Authenticate", 200)
    async with ScriptedPeer(script) as registrar:
        server = await registrar.listen_tls(tmp_path)
        await register(ua, server)
        contact = registrar.requests[-1].contacts[0]
        assert contact.uri.transport == "TLS" and "ob" in contact.uri.params
        assert contact.params["reg-id"] == "1"
        assert contact.params["+sip.instance"] == f'"<{ua.instance_id}>"'

        flow = registrar.sources[-1]  # the server calls back over our own TLS connection
        assert flow.connection is not None
        assert registrar.endpoint is not None
        registrar.endpoint.send_request(peer_request("OPTIONS", contact.uri), flow)
        response = await wait(registrar.responses.get())
        assert response.status == 200


async def test_request_over_a_lost_connection_fails_fast(agent: MakeAgent) -> None:
    ua = await agent(username="b", auto_answer_after=0.0)
    peer = ScriptedPeer(lambda peer, event: None)
    async with peer:
        assert peer.endpoint is not None
        port = await peer.endpoint.listen_stream("TCP", HOST, 0)
        offer = bytes(
            make_offer(address=HOST, ports=[9], codecs=[PCMU], keys=[None], session_id=1, version=1)
        )
        contact = ("Contact", f"<sip:peer@{HOST}:{port};transport=tcp>")
        sdp = ("Content-Type", "application/sdp")
        invite = peer_request("INVITE", SipUri.parse(ua.uri("TCP")), contact, sdp, body=offer)
        peer.endpoint.send_request(invite, ua.address("TCP"))
        call = await wait(ua.next_call())
        assert call.next_hop.connection is not None
        assert (await wait(peer.responses.get())).status == 180
        assert (await wait(peer.responses.get())).status == 200
    flow = await wait(ua.next_closed_flow())
    assert flow.connection == call.next_hop.connection
    # the request fails on the dead flow itself: no timer is left that would end it later
    final = await wait(call.send_request("INFO"))
    assert final.status == 503


def deaf_answerer(peer: ScriptedPeer, event: RequestReceived) -> None:
    """Answers INVITE with 200 and an SDP answer; never answers anything else."""
    request = event.request
    if request.method != "INVITE" or event.transaction is None:
        return
    offer = SessionDescription.parse(request.body)
    answer = build_answer(
        offer, address=HOST, ports=[9], codecs_preference=[PCMU], session_id=1, session_version=1
    )
    contact, sdp = SipUri(HOST, port=peer.address.port), [("Content-Type", "application/sdp")]
    response = make_dialog_response(
        request, 200, local_tag="deaf", contact=contact, headers=sdp, body=bytes(answer)
    )
    assert peer.endpoint is not None
    peer.endpoint.send_response(event.transaction, response)


async def test_hangup_does_not_hang_when_bye_is_never_answered(agent: MakeAgent) -> None:
    ua = await agent()
    async with ScriptedPeer(deaf_answerer) as peer:
        call = await ua.call("sip:deaf@127.0.0.1", peer.address)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await call.hangup(timeout=0.2) is None
        assert loop.time() - started < 1.0
        assert call.state is CallState.ENDED
        assert [r.method for r in peer.requests] == ["INVITE", "ACK", "BYE"]


async def test_srtp_packets_racing_the_answer_are_decrypted_once_keyed() -> None:
    offerer = MediaSession(host=HOST, codecs=[PCMU], ids=IdGenerator(1))
    answerer = MediaSession(host=HOST, codecs=[PCMU], ids=IdGenerator(2))
    try:
        await offerer.open(1, srtp=True)
        offer = offerer.make_offer()
        await answerer.prepare_for(offer)
        answer = answerer.take_offer(offer)
        sent = payloads(4, count=5)
        await answerer.sessions[0].send_payloads(sent, payload_type=0, clock_step=160, paced=False)
        early = offerer.sessions[0]
        await wait(early.wait_until(lambda: early.counters.datagrams == 5))
        offerer.take_answer(answer)  # keys first, then the held packets are sorted
        assert early.payloads == sent and early.counters.srtp_failures == 0
    finally:
        offerer.close()
        answerer.close()


def test_client_never_imports_the_server_side() -> None:
    forbidden = ("callwatch.pbx", "callwatch.api", "callwatch.store", "callwatch.app")
    package = Path(__file__).parents[2] / "src" / "callwatch" / "client"
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            bad = [n for n in names if n.startswith(forbidden)]
            assert not bad, f"{module.name} imports {bad}"


class TestRtpSession:
    async def test_unexpected_sources_are_kept_apart(self) -> None:
        me, peer, stranger = [await RtpSession.open() for _ in range(3)]
        try:
            me.set_remote(*peer.local)
            peer.set_remote(*me.local)
            stranger.set_remote(*me.local)
            stranger.send_packet(b"intruder", payload_type=0, clock_step=160)
            peer.hello()
            await peer.send_payloads([b"one", b"two"], payload_type=0, clock_step=160, paced=False)
            await wait(me.wait_received(2))
            assert me.payloads == [b"one", b"two"]
            assert [d.source for d in me.unexpected] == [stranger.local]
            assert RtpPacket.parse(me.unexpected[0].data).payload == b"intruder"
            assert me.counters.unexpected == 1 and me.counters.non_rtp == 1
        finally:
            for session in (me, peer, stranger):
                session.close()

    async def test_packets_before_the_peer_is_known_are_sorted_later(self) -> None:
        me, peer = await RtpSession.open(), await RtpSession.open()
        try:
            peer.set_remote(*me.local)
            header = RtpHeader(0, 1, 0, 1234)
            peer.send_raw(RtpPacket(header, b"early").serialize())
            await peer.send_payloads([b"late"], payload_type=0, clock_step=160, paced=False)
            await wait(me.wait_until(lambda: me.counters.datagrams == 2))
            assert me.received == []
            me.set_remote(*peer.local)
            assert me.payloads == [b"early", b"late"]
        finally:
            me.close()
            peer.close()

    async def test_paced_sending_follows_the_loop_clock(self) -> None:
        me, peer = await RtpSession.open(), await RtpSession.open()
        try:
            me.set_remote(*peer.local)
            peer.set_remote(*me.local)
            await me.send_payloads([b"x"] * 10, payload_type=8, clock_step=160, ptime=0.02)
            await wait(peer.wait_received(10))
            arrivals = [p.arrival for p in peer.received]
            assert 0.17 <= arrivals[-1] - arrivals[0] < 0.5
            assert peer.received[0].header.marker and not peer.received[1].header.marker
        finally:
            me.close()
            peer.close()
