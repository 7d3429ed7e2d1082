"""The media engine on real loopback sockets: a uvloop thread relaying between UDP "phones"."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from callwatch.media.aio import Endpoint, MediaEngine
from callwatch.media.control import MediaControl, RelayControl
from callwatch.media.ports import MediaError, PortsExhausted, UnknownStream
from callwatch.media.rtcp import RtcpReceiverReport, parse_rtcp
from callwatch.media.rtp import RtpPacket
from callwatch.media.srtp import SrtpContext, SrtpDirection
from tests.media.loopback import HOST, Phone
from tests.media.relay_helpers import rtp

WINDOW = 20  # datagrams in flight per direction, well inside every socket buffer


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = random.randrange(20000, 29000, 2)
    media = MediaEngine(host=HOST, port_min=base, port_max=base + 200)
    await media.start()
    yield media
    await media.stop()


@pytest.fixture
def phones() -> Iterator[list[Phone]]:
    made = [Phone() for _ in range(3)]
    yield made
    for phone in made:
        phone.close()


async def call(
    engine: MediaEngine, a: Phone, b: Phone, **a_kwargs: object
) -> tuple[Endpoint, Endpoint]:
    """Two bridged legs; A advertises a wrong SDP port, as some softphones do."""
    wrong = (HOST, a.address[1] ^ 0x40)
    leg_a = await engine.create_stream(remote=wrong, **a_kwargs)  # type: ignore[arg-type]
    leg_b = await engine.create_stream(remote=b.address)
    await engine.pair(leg_a.stream_id, leg_b.stream_id)
    return leg_a, leg_b


async def test_200_packets_each_way_arrive_bit_exact_and_in_order(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, _ = phones
    leg_a, leg_b = await call(engine, a, b)
    to_a, to_b = (HOST, leg_a.port), (HOST, leg_b.port)
    from_a = [rtp(s, os.urandom(160), ssrc=0xA) for s in range(200)]
    from_b = [rtp(s, os.urandom(160), ssrc=0xB, pt=8) for s in range(200)]

    await a.send(b"hello", to_a)  # a softphone's NAT keep-alive before its first RTP
    await a.send(from_a[0], to_a)
    assert await b.recv() == (from_a[0], to_b)  # from the port B was told in SDP
    await b.send(from_b[0], to_b)
    assert await a.recv() == (from_b[0], to_a)  # to where A really is, not its SDP port

    got_a, got_b = [from_b[0]], [from_a[0]]
    for start in range(1, 200, WINDOW):
        batch = range(start, min(start + WINDOW, 200))
        for seq in batch:
            await a.send(from_a[seq], to_a)
            await b.send(from_b[seq], to_b)
        for _ in batch:
            got_b.append((await b.recv())[0])
            got_a.append((await a.recv())[0])
    assert got_b == from_a
    assert got_a == from_b

    stats_a, stats_b = await engine.stats(leg_a.stream_id), await engine.stats(leg_b.stream_id)
    assert stats_a.latched == a.address
    assert (stats_a.packets_in, stats_a.packets_out, stats_a.garbage) == (200, 200, 1)
    assert (stats_b.packets_in, stats_b.bytes_out, stats_b.lost) == (200, 200 * 172, 0)


async def test_a_stranger_is_neither_forwarded_nor_answered_nor_redirects(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, stranger = phones
    leg_a, leg_b = await call(engine, a, b)
    to_a, to_b = (HOST, leg_a.port), (HOST, leg_b.port)
    await a.send(rtp(1, ssrc=0xA), to_a)
    await b.recv()
    await b.send(rtp(1, ssrc=0xB), to_b)
    await a.recv()

    for seq in range(2, 12):  # valid RTP, to both relay ports, after both legs latched
        await stranger.send(rtp(seq, ssrc=0x5), to_a)
        await stranger.send(rtp(seq, ssrc=0x5), to_b)
    await stranger.send(b"hello", to_a)
    # Each relay socket handles datagrams in order: once these markers are through, so were
    # the stranger's.
    await a.send(rtp(12, ssrc=0xA), to_a)
    await b.send(rtp(12, ssrc=0xB), to_b)
    assert (await b.recv())[0] == rtp(12, ssrc=0xA)
    assert (await a.recv())[0] == rtp(12, ssrc=0xB)
    assert stranger.pending() is None
    assert a.pending() is None
    assert b.pending() is None
    stats_a, stats_b = await engine.stats(leg_a.stream_id), await engine.stats(leg_b.stream_id)
    assert (stats_a.strangers, stats_b.strangers) == (11, 10)
    assert (stats_a.latched, stats_b.latched) == (a.address, b.address)


async def test_srtp_leg_and_plain_leg(engine: MediaEngine, phones: list[Phone]) -> None:
    a, b, _ = phones
    key_a = os.urandom(30)
    leg_a, leg_b = await call(engine, a, b, srtp=True, remote_key=key_a)
    assert leg_a.local_key is not None and leg_b.local_key is None
    a_out = SrtpContext(key_a, SrtpDirection.OUTBOUND)
    a_in = SrtpContext(leg_a.local_key, SrtpDirection.INBOUND)
    to_a, to_b = (HOST, leg_a.port), (HOST, leg_b.port)
    for seq in range(50):
        plain = rtp(seq, os.urandom(160), ssrc=0xA)
        await a.send(a_out.protect(plain) or b"", to_a)
        assert (await b.recv())[0] == plain
        reply = rtp(seq, os.urandom(160), ssrc=0xB)
        await b.send(reply, to_b)
        wire = (await a.recv())[0]
        assert wire != reply
        assert a_in.unprotect(wire) == reply
    # Plain RTP sent to the SRTP leg's port fails authentication and is dropped.
    await a.send(rtp(99, ssrc=0xA), to_a)
    await a.send(a_out.protect(rtp(100, ssrc=0xA)) or b"", to_a)
    assert (await b.recv())[0] == rtp(100, ssrc=0xA)
    assert (await engine.stats(leg_a.stream_id)).srtp_failures == 1


async def test_srtp_key_arriving_in_the_answer(engine: MediaEngine, phones: list[Phone]) -> None:
    a, b, _ = phones
    leg_a, leg_b = await call(engine, a, b, srtp=True)  # our offer: their key comes later
    key_a = os.urandom(30)
    a_out = SrtpContext(key_a, SrtpDirection.OUTBOUND)
    await a.send(a_out.protect(rtp(1, ssrc=0xA)) or b"", (HOST, leg_a.port))
    updated = await engine.update_stream(leg_a.stream_id, remote=a.address, remote_key=key_a)
    assert updated.local_key == leg_a.local_key
    await a.send(a_out.protect(rtp(2, ssrc=0xA)) or b"", (HOST, leg_a.port))
    assert (await b.recv())[0] == rtp(2, ssrc=0xA)
    assert (await engine.stats(leg_a.stream_id)).srtp_failures == 1
    with pytest.raises(MediaError, match="plain RTP"):
        await engine.update_stream(leg_b.stream_id, remote=b.address, remote_key=key_a)


async def test_rtcp_on_port_plus_one(engine: MediaEngine, phones: list[Phone]) -> None:
    a, b, b_rtcp = phones
    leg_a = await engine.create_stream(remote=a.address)
    leg_b = await engine.create_stream(remote=b.address, remote_rtcp=b_rtcp.address)
    await engine.pair(leg_a.stream_id, leg_b.stream_id)
    assert leg_a.rtcp_port == leg_a.port + 1 and not leg_a.rtcp_mux
    report = RtcpReceiverReport(0xA).serialize()
    await a.send(report, (HOST, leg_a.rtcp_port))
    data, source = await b_rtcp.recv()
    assert parse_rtcp(data) == [RtcpReceiverReport(0xA)]
    assert source == (HOST, leg_b.rtcp_port)


async def test_fork_to_a_supervisor(engine: MediaEngine, phones: list[Phone]) -> None:
    a, b, supervisor = phones
    leg_a, _ = await call(engine, a, b)
    sup = await engine.create_stream(remote=supervisor.address, rtcp_mux=True)
    await engine.add_fork(leg_a.stream_id, sup.stream_id)
    sent = [rtp(seq, os.urandom(160), ssrc=0xA) for seq in range(20)]
    for packet in sent:
        await a.send(packet, (HOST, leg_a.port))
        assert (await b.recv())[0] == packet
        data, source = await supervisor.recv()
        assert source == (HOST, sup.port)
        assert RtpPacket.parse(data).payload == RtpPacket.parse(packet).payload
    await engine.remove_fork(leg_a.stream_id, sup.stream_id)
    assert (await engine.stats(sup.stream_id)).packets_out == 20


async def test_ports_are_released_and_busy_ports_skipped() -> None:
    base = random.randrange(20000, 29000, 2)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        busy.bind((HOST, base))  # another process holds the pool's first port
    except OSError:
        pytest.skip("port taken by someone else")
    engine = MediaEngine(host=HOST, port_min=base, port_max=base + 4)
    await engine.start()
    try:
        for _ in range(5):
            endpoint = await engine.create_stream()
            assert endpoint.port == base + 2
            await engine.delete(endpoint.stream_id)
        await engine.create_stream()
        with pytest.raises(PortsExhausted) as caught:
            await engine.create_stream()
        assert caught.value.status_hint == 503
        with pytest.raises(UnknownStream):
            await engine.stats(endpoint.stream_id)
    finally:
        await engine.stop()
        busy.close()


async def test_lifecycle() -> None:
    engine = MediaEngine(host=HOST, port_min=20000, port_max=20010)
    with pytest.raises(MediaError, match="not running"):
        await engine.create_stream()
    await engine.start()
    assert engine.running
    with pytest.raises(MediaError, match="already started"):
        await engine.start()
    await engine.stop()
    await engine.stop()
    assert not engine.running


async def test_relay_control_verbs(engine: MediaEngine, phones: list[Phone]) -> None:
    a, b, _ = phones
    control: MediaControl = RelayControl(engine)
    leg_a = await control.allocate(remote=a.address, label="call-1/customer")
    leg_b = await control.allocate(remote=None, srtp=True, label="call-1/agent")
    leg_b = await control.update(leg_b.stream_id, remote=b.address, remote_key=os.urandom(30))
    assert leg_b.local_key is not None and leg_a.local_key is None
    await control.bridge(leg_a.stream_id, leg_b.stream_id)
    await a.send(rtp(1), (HOST, leg_a.port))
    wire, _ = await b.recv()
    assert SrtpContext(leg_b.local_key, SrtpDirection.INBOUND).unprotect(wire) == rtp(1)
    sup = await control.allocate(remote=None)
    await control.fork(leg_a.stream_id, sup.stream_id)
    await control.unfork(leg_a.stream_id, sup.stream_id)
    await control.unbridge(leg_a.stream_id)
    assert (await control.query(leg_a.stream_id)).label == "call-1/customer"
    assert await control.idle(3600) == []
    assert set(await control.idle(0)) == {leg_a.stream_id, leg_b.stream_id, sup.stream_id}
    for leg in (leg_a, leg_b, sup):
        await control.delete(leg.stream_id)


async def test_a_refused_stream_gives_its_ports_back() -> None:
    base = random.randrange(20000, 29000, 2)
    engine = MediaEngine(host=HOST, port_min=base, port_max=base + 8, max_streams=1)
    await engine.start()
    try:
        first = await engine.create_stream()
        for _ in range(5):  # more refusals than the pool has ports: none may leak
            with pytest.raises(MediaError, match="maximum"):
                await engine.create_stream()
        await engine.delete(first.stream_id)
        await engine.create_stream()
        assert (await engine.totals()).streams == 1
    finally:
        await engine.stop()
