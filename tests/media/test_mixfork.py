"""Transcoding and mixing forks: the pure tick with crafted packets, then real loopback sockets."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from callwatch.media.aio import Endpoint, MediaEngine
from callwatch.media.codecs import g711
from callwatch.media.codecs.base import CodecError, PcmArray
from callwatch.media.codecs.g722 import G722Decoder
from callwatch.media.codecs.opus import OpusDecoder
from callwatch.media.codecs.registry import codec_for
from callwatch.media.control import MediaControl, RelayControl
from callwatch.media.mixfork import FRAME, MAX_CATCH_UP, MixFork
from callwatch.media.ports import MediaLimitError, MediaStateError
from callwatch.media.relay import MAX_FORKS_PER_STREAM, Relay
from callwatch.media.resample import resample
from callwatch.media.restamp import Restamper
from callwatch.media.rtp import RtpPacket
from callwatch.media.srtp import SrtpContext, SrtpDirection
from callwatch.media.transcode import (
    INBOX_LIMIT,
    MAX_PLC_FRAMES,
    UnsupportedFormat,
    resolve_output,
)
from tests.media.loopback import HOST, Phone
from tests.media.relay_helpers import A_REAL, A_SDP, B_REAL, B_SDP, T0, Leg, add_leg, rtp

PCMU = {0: ("PCMU", 8000, None)}
OUT_PCMU = ("PCMU", 8000, None, 0)
SUP = ("192.0.2.30", 7000)
KEY = bytes(range(30))


# -- signals ----------------------------------------------------------------------------------


def voice(seconds: float, rate: int = 8000, f0: float = 220.0, seed: int = 0) -> PcmArray:
    """A speech-like harmonic signal with a slow envelope (deterministic for a seed).

    Telephone-band like the PCMU it stands for: Opus's VOIP mode high-passes the lowest band,
    which on a 140 Hz fundamental alone costs about 0.08 of waveform correlation.
    """
    t = np.arange(int(seconds * rate)) / rate
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, 24)
    wave = sum(np.sin(2 * np.pi * f0 * k * t + phases[k]) / k for k in range(1, 24)
               if f0 * k < 3400)  # fmt: skip
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t + seed)
    return np.asarray(6000 * envelope * wave, dtype=np.int16)


def tone(seconds: float, freq: float = 440.0, rate: int = 8000) -> PcmArray:
    t = np.arange(int(seconds * rate)) / rate
    return np.asarray(10000 * np.sin(2 * np.pi * freq * t), dtype=np.int16)


def ulaw_frames(pcm: PcmArray) -> list[bytes]:
    return [g711.encode(pcm[i : i + 160], "ulaw") for i in range(0, len(pcm) - 159, 160)]


def best_correlation(out: PcmArray, ref: PcmArray, max_lag: int) -> tuple[float, int]:
    """Highest normalised correlation of ``out`` with ``ref`` delayed by 0…max_lag samples."""
    x = out.astype(np.float64)
    r = ref.astype(np.float64)
    best = (-1.0, 0)
    for lag in range(max_lag):
        n = min(len(x) - lag, len(r))
        a, b = x[lag : lag + n], r[:n]
        c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        best = max(best, (c, lag))
    return best


# -- the pure core ----------------------------------------------------------------------------


class Call:
    """Two bridged legs and a supervisor stream, on fake sockets, with a clock."""

    def __init__(self, key_out: bytes | None = None) -> None:
        self.relay = Relay(rng=random.Random(7))
        self.a = add_leg(self.relay, 20000, A_SDP)
        self.b = add_leg(self.relay, 20002, B_SDP)
        self.relay.pair(self.a.stream.stream_id, self.b.stream.stream_id)
        self.sup = add_leg(self.relay, 20004, SUP, key_out=key_out)
        self.tick_no = 0

    def mix(self, *legs: Leg, output: tuple[str, int, int | None, int] = OUT_PCMU,
            fmt: dict[int, tuple[str, int, int | None]] = PCMU) -> MixFork:  # fmt: skip
        sources = {leg.stream.stream_id: fmt for leg in legs}
        return self.relay.add_mix(self.sup.stream.stream_id, sources, output, now=T0)

    def step(self, mix: MixFork, sends: Sequence[tuple[Leg, bytes | None]]) -> None:
        """One 20 ms period: each leg's packet arrives 5 ms in, then the mix ticks."""
        arrival = T0 + self.tick_no * FRAME + 0.005
        for leg, data in sends:
            if data is not None:
                leg.stream.receive_rtp(data, A_REAL if leg is self.a else B_REAL, arrival)
        self.tick_no += 1
        assert mix.tick(T0 + self.tick_no * FRAME) == 1

    def output(self) -> list[RtpPacket]:
        return [RtpPacket.parse(d) for d, _ in self.sup.rtp.sent]


def packets(payloads: Sequence[bytes], *, ssrc: int = 0x1111, seq0: int = 0, ts0: int = 0,
            pt: int = 0) -> list[bytes]:  # fmt: skip
    return [rtp(seq0 + i, p, ssrc=ssrc, ts=ts0 + 160 * i, pt=pt) for i, p in enumerate(payloads)]


def assert_continuous(out: list[RtpPacket], step: int) -> None:
    assert len({p.header.ssrc for p in out}) == 1
    seqs = [p.header.sequence_number for p in out]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(out))]
    stamps = [p.header.timestamp for p in out]
    assert {(y - x) & 0xFFFFFFFF for x, y in itertools.pairwise(stamps)} == {step}


def start_of(out: list[bytes], first: bytes) -> int:
    return out.index(first)


def test_pcmu_mix_is_the_saturating_sum_of_the_decoded_inputs_re_encoded() -> None:
    call = Call()
    mix = call.mix(call.a, call.b)
    rng = np.random.default_rng(1)
    pa = [rng.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(40)]
    pb = [rng.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(40)]
    for da, db in zip(packets(pa), packets(pb, ssrc=0x2222), strict=True):
        call.step(mix, [(call.a, da), (call.b, db)])
    expected = []
    for x, y in zip(pa, pb, strict=True):
        total = g711.decode(x, "ulaw").astype(np.int32) + g711.decode(y, "ulaw")
        expected.append(g711.encode(np.clip(total, -32768, 32767).astype(np.int16), "ulaw"))
    out = call.output()
    payloads = [p.payload for p in out]
    first = start_of(payloads, expected[0])
    assert payloads[:first] == [b"\xff" * 160] * first  # silence until the buffers play
    assert payloads[first:] == expected[: len(payloads) - first]
    assert first <= 3
    assert_continuous(out, 160)
    assert {p.header.payload_type for p in out} == {0}
    assert out[0].header.marker and not any(p.header.marker for p in out[1:])
    assert len(call.b.rtp.sent) == 40  # the call's own media is untouched


def test_pcmu_to_g722_keeps_the_tone() -> None:
    call = Call()
    mix = call.mix(call.a, output=("G722", 8000, None, 9))
    for data in packets(ulaw_frames(tone(1.2))):
        call.step(mix, [(call.a, data)])
    out = call.output()
    assert_continuous(out, 160)  # G.722's RTP clock is 8000 (RFC 3551 §4.5.2)
    assert {p.header.payload_type for p in out} == {9}
    decoder = G722Decoder()
    pcm = np.concatenate([decoder.decode(p.payload) for p in out])[16000 // 5 :]
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    peak = np.argmax(spectrum) * 16000 / len(pcm)
    assert abs(peak - 440) < 5


@pytest.mark.parametrize(("output", "rate", "step"), [
    (("OPUS", 48000, 2, 111), 48000, 960),
    (("opus", 16000, None, 109), 16000, 320),
])  # fmt: skip
def test_opus_outputs_decode_to_the_source(
    output: tuple[str, int, int | None, int], rate: int, step: int
) -> None:
    call = Call()
    mix = call.mix(call.a, output=output)
    source = voice(1.6)
    frames = ulaw_frames(source)
    for data in packets(frames):
        call.step(mix, [(call.a, data)])
    out = call.output()
    assert_continuous(out, step)
    assert {p.header.payload_type for p in out} == {output[3]}
    decoder = OpusDecoder(rate)
    pcm = np.concatenate([decoder.decode(p.payload) for p in out])
    reference = resample(g711.decode(b"".join(frames), "ulaw"), 8000, rate)
    corr, _ = best_correlation(pcm[rate // 5 :], reference[rate // 5 :], rate // 10)
    assert corr >= 0.9


def test_missing_frames_are_concealed_then_silent_and_the_output_never_stalls() -> None:
    call = Call()
    mix = call.mix(call.a)
    data = packets(ulaw_frames(voice(0.8)))
    lost = {10, 11, 20}
    for i in range(80):
        send = data[i] if i < len(data) and i not in lost else None
        call.step(mix, [(call.a, send)])
    (stats,) = mix.stats().sources
    assert mix.stats().packets_sent == len(call.sup.rtp.sent) == 80
    assert stats.decoded == len(data) - len(lost)
    assert stats.concealed == len(lost) + MAX_PLC_FRAMES  # then the source went quiet
    assert stats.silent >= 80 - len(data) - MAX_PLC_FRAMES - 2
    assert_continuous(call.output(), 160)


def test_reordered_packets_play_in_order_and_telephone_events_are_ignored() -> None:
    call = Call()
    mix = call.mix(call.a)
    payloads = [bytes([i + 1]) * 160 for i in range(30)]
    data = packets(payloads)
    data[10], data[11] = data[11], data[10]
    for i, packet in enumerate(data):
        call.step(mix, [(call.a, packet)])
        if i % 7 == 0:
            call.a.stream.receive_rtp(rtp(900 + i, b"\x01\x0a\x00\xa0", pt=101), A_REAL, T0)
    out = [p.payload for p in call.output()]
    first = start_of(out, payloads[0])
    assert out[first:] == payloads[: len(out) - first]
    assert mix.stats().sources[0].ignored == 5


def test_a_new_ssrc_resets_the_source_and_the_output_stays_continuous() -> None:
    call = Call()
    mix = call.mix(call.a)
    first_half = [bytes([0x10 + i]) * 160 for i in range(20)]
    second_half = [bytes([0x40 + i]) * 160 for i in range(20)]
    data = packets(first_half) + packets(second_half, ssrc=0x9999, seq0=5000, ts0=123456)
    for packet in data:
        call.step(mix, [(call.a, packet)])
    for _ in range(4):
        call.step(mix, [])
    out = call.output()
    assert_continuous(out, 160)
    payloads = [p.payload for p in out]
    assert set(second_half) <= set(payloads)
    assert mix.stats().sources[0].resyncs == 1


def test_a_full_inbox_drops_the_oldest_and_counts() -> None:
    call = Call()
    mix = call.mix(call.a)
    for packet in packets([bytes([i]) * 160 for i in range(INBOX_LIMIT + 4)]):
        call.a.stream.receive_rtp(packet, A_REAL, T0)
    stats = mix.stats().sources[0]
    assert (stats.received, stats.overflow) == (INBOX_LIMIT + 4, 4)


def test_malformed_and_undecodable_payloads_are_counted_not_raised() -> None:
    call = Call()
    mix = call.mix(call.a, fmt={96: ("L16", 8000, None)})
    good = np.zeros(160, dtype=">i2").tobytes()
    for i in range(10):
        payload = b"\x00" * 159 if i == 5 else good  # odd length: L16 cannot decode it
        call.step(mix, [(call.a, rtp(i, payload, pt=96))])
    padded = bytearray(rtp(10, b"\x00\x00", pt=96))
    padded[0] |= 0x20
    padded[-1] = 200  # padding longer than the payload
    call.step(mix, [(call.a, bytes(padded))])
    stats = mix.stats().sources[0]
    assert (stats.decode_errors, stats.malformed) == (1, 1)
    assert mix.stats().packets_sent == 11


def test_the_grid_does_not_drift_and_a_stalled_loop_skips_instead_of_bursting() -> None:
    call = Call()
    mix = call.mix(call.a)
    jitter = random.Random(3)
    for n in range(1, 501):
        mix.tick(T0 + n * FRAME + jitter.uniform(-0.0015, 0.004))
    assert mix.next_deadline() == pytest.approx(T0 + 501 * FRAME, abs=1e-9)
    assert len(call.sup.rtp.sent) == 500
    assert mix.tick(T0 + 501 * FRAME + 1.0) == MAX_CATCH_UP
    assert mix.stats().skipped_ticks == 51 - MAX_CATCH_UP
    out = call.output()
    assert (out[-1].header.timestamp - out[-MAX_CATCH_UP - 1].header.timestamp) % 2**32 == (
        51 * 160
    )


def test_an_encoder_failure_drops_the_frame_and_counts() -> None:
    class Broken:
        sample_rate = rtp_clock_rate = 8000
        frame_samples = 160

        def encode(self, pcm: PcmArray) -> bytes:
            raise CodecError("broken")

    call = Call()
    fmt, codec = resolve_output(OUT_PCMU)
    mix = MixFork(call.sup.stream, fmt, codec, Broken(), Restamper(1), ssrc=2)
    mix.add_input(call.a.stream, {0: codec_for("PCMU", 8000)}, T0)
    assert mix.tick(T0 + 3 * FRAME) == 3
    assert (mix.stats().encode_errors, call.sup.rtp.sent) == (3, [])


def test_a_dead_supervisor_is_counted_and_never_holds_up_the_call() -> None:
    call = Call()
    mix = call.mix(call.a, call.b)
    call.sup.rtp.error = ConnectionRefusedError(111, "refused")
    for data in packets(ulaw_frames(voice(0.4))):
        call.step(mix, [(call.a, data), (call.b, data)])
    assert (len(call.a.rtp.sent), len(call.b.rtp.sent)) == (20, 20)
    assert call.sup.stream.send_errors == mix.stats().packets_sent == 20


def test_srtp_target_gets_srtp() -> None:
    call = Call(key_out=KEY)
    mix = call.mix(call.a)
    call.step(mix, [(call.a, rtp(1))])
    ((wire, _),) = call.sup.rtp.sent
    plain = SrtpContext(KEY, SrtpDirection.INBOUND).unprotect(wire)
    assert RtpPacket.parse(plain or b"").payload == b"\xff" * 160


def test_switching_between_fork_and_mix_keeps_one_continuous_stream() -> None:
    call = Call()
    a, sup = call.a.stream.stream_id, call.sup.stream.stream_id
    call.relay.add_fork(a, sup)
    call.a.stream.receive_rtp(rtp(1), A_REAL, T0)
    mix = call.mix(call.a)
    assert call.a.stream._feeds == (mix.inputs[a],)
    call.step(mix, [(call.a, rtp(2))])
    with pytest.raises(MediaStateError, match="already fed"):
        call.relay.add_fork(a, sup)
    call.relay.remove_mix(sup)
    call.relay.add_fork(a, sup)
    call.a.stream.receive_rtp(rtp(3), A_REAL, T0 + 0.04)
    out = call.output()
    assert len(out) == 3
    assert_continuous(out[:2], 160)
    assert out[2].header.ssrc == out[0].header.ssrc
    assert out[2].header.sequence_number == (out[0].header.sequence_number + 2) & 0xFFFF


def test_mix_is_declarative_and_keeps_running_sources() -> None:
    call = Call()
    mix = call.mix(call.a, call.b)
    entry = mix.inputs[call.a.stream.stream_id]
    assert call.mix(call.a, output=("pcmu", 8000, 1, 0)) is mix  # the same rtpmap
    assert mix.inputs == {call.a.stream.stream_id: entry}
    assert call.b.stream._feeds == ()
    dtmf = {0: ("PCMU", 8000, None), 101: ("telephone-event", 8000, None)}
    assert call.mix(call.a, fmt=dtmf) is mix
    other = call.mix(call.a, output=("G722", 8000, None, 9))
    assert other is not mix and mix.closed
    assert call.a.stream._feeds == (other.inputs[call.a.stream.stream_id],)


def test_teardown_by_source_and_by_target() -> None:
    call = Call()
    mix = call.mix(call.a, call.b)
    a, b, sup = (leg.stream.stream_id for leg in (call.a, call.b, call.sup))
    call.relay.remove_fork(a, sup)
    call.step(mix, [(call.b, rtp(1))])
    call.relay.remove_stream(b)
    assert mix.next_deadline() is None and mix.tick(T0 + 10) == 0
    mix = call.mix(call.a)  # a source again: the timer has a deadline again
    assert mix.next_deadline() == pytest.approx(T0 + FRAME)
    call.relay.remove_stream(sup)
    assert mix.closed and call.a.stream._feeds == ()
    call.a.stream.receive_rtp(rtp(1), A_REAL, T0)
    assert len(call.b.rtp.sent) == 0


def test_an_idle_mix_gives_way_to_a_fork() -> None:
    call = Call()
    a, sup = call.a.stream.stream_id, call.sup.stream.stream_id
    mix = call.mix(call.a)
    call.relay.remove_fork(a, sup)  # how the pbx ends supervision: unfork every source
    call.relay.add_fork(a, sup)
    assert mix.closed and call.a.stream._feeds == (call.sup.stream._fork,)


def test_mix_rules() -> None:
    call = Call()
    a, b, sup = (leg.stream.stream_id for leg in (call.a, call.b, call.sup))
    relay = call.relay
    with pytest.raises(UnsupportedFormat, match="unsupported codec G729") as info:
        relay.add_mix(sup, {a: PCMU}, ("G729", 8000, None, 18), now=T0)
    assert info.value.status_hint == 488
    with pytest.raises(UnsupportedFormat, match="payload type"):
        relay.add_mix(sup, {a: {200: ("PCMU", 8000, None)}}, OUT_PCMU, now=T0)
    with pytest.raises(UnsupportedFormat, match="at least one"):
        relay.add_mix(sup, {a: {}}, OUT_PCMU, now=T0)
    with pytest.raises(MediaStateError, match="bridged"):
        relay.add_mix(b, {a: PCMU}, OUT_PCMU, now=T0)
    with pytest.raises(MediaStateError, match="itself"):
        relay.add_mix(sup, {sup: PCMU}, OUT_PCMU, now=T0)
    with pytest.raises(MediaStateError, match="at least one source"):
        relay.add_mix(sup, {}, OUT_PCMU, now=T0)
    with pytest.raises(MediaStateError, match="no mix"):
        relay.mix_stats(sup)
    relay.add_mix(sup, {a: PCMU}, OUT_PCMU, now=T0)
    with pytest.raises(MediaStateError, match="fork target"):
        relay.pair(a, sup)
    for n in range(MAX_FORKS_PER_STREAM - 1):
        relay.add_fork(a, add_leg(relay, 21000 + 2 * n, None).stream.stream_id)
    extra = add_leg(relay, 22000, None).stream.stream_id
    with pytest.raises(MediaLimitError, match="forks"):
        relay.add_mix(extra, {a: PCMU}, OUT_PCMU, now=T0)
    relay.add_mix(sup, {a: PCMU, b: PCMU}, OUT_PCMU, now=T0)  # a already feeds this one
    assert relay.mix_stats(sup).target == sup


# -- real sockets through the engine ----------------------------------------------------------


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = random.randrange(30000, 39000, 2)
    media = MediaEngine(host=HOST, port_min=base, port_max=base + 200)
    await media.start()
    yield media
    await media.stop()


@pytest.fixture
def phones() -> Iterator[list[Phone]]:
    made = [Phone() for _ in range(4)]
    yield made
    for phone in made:
        phone.close()


async def bridged(engine: MediaEngine, a: Phone, b: Phone) -> tuple[Endpoint, Endpoint]:
    leg_a = await engine.create_stream(remote=a.address, label="customer")
    leg_b = await engine.create_stream(remote=b.address, label="agent")
    await engine.pair(leg_a.stream_id, leg_b.stream_id)
    return leg_a, leg_b


async def talk(sends: Sequence[tuple[Phone, list[bytes], tuple[str, int]]]) -> None:
    """Every phone sends its next packet every 20 ms (paced on the loop's clock)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(max(len(data) for _, data, _ in sends)):
        for phone, data, to in sends:
            if i < len(data):
                await phone.send(data[i], to)
        await asyncio.sleep(max(0.0, start + (i + 1) * FRAME - loop.time()))
    await asyncio.sleep(0.15)


def by_port(received: list[tuple[bytes, tuple[str, int]]], port: int) -> list[RtpPacket]:
    return [RtpPacket.parse(d) for d, addr in received if addr[1] == port]


def decoded(out: list[RtpPacket], decode: Callable[[bytes], PcmArray]) -> PcmArray:
    return np.concatenate([decode(p.payload) for p in out])


async def test_zero_copy_forks_deliver_each_party_bit_exact(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, device = phones[:3]
    leg_a, leg_b = await bridged(engine, a, b)
    sup_a = await engine.create_stream(remote=device.address)
    sup_b = await engine.create_stream(remote=device.address)
    await engine.add_fork(leg_a.stream_id, sup_a.stream_id)
    await engine.add_fork(leg_b.stream_id, sup_b.stream_id)
    pa = [rtp(i, bytes([i]) * 160, ssrc=1) for i in range(40)]
    pb = [rtp(i, bytes([255 - i]) * 160, ssrc=2) for i in range(40)]
    await talk([(a, pa, (HOST, leg_a.port)), (b, pb, (HOST, leg_b.port))])
    got = device.drain()
    assert [p.payload for p in by_port(got, sup_a.port)] == [RtpPacket.parse(p).payload for p in pa]
    assert [p.payload for p in by_port(got, sup_b.port)] == [RtpPacket.parse(p).payload for p in pb]
    assert [d for d, _ in b.drain()] == pa and [d for d, _ in a.drain()] == pb


async def test_transcoding_fork_pcmu_to_g722(engine: MediaEngine, phones: list[Phone]) -> None:
    a, b, device = phones[:3]
    leg_a, _ = await bridged(engine, a, b)
    sup = await engine.create_stream(remote=device.address)
    control: MediaControl = RelayControl(engine)
    await control.mix(sup.stream_id, {leg_a.stream_id: PCMU}, output=("G722", 8000, None, 9))
    source = voice(1.2)
    frames = ulaw_frames(source)
    await talk([(a, packets(frames), (HOST, leg_a.port))])
    out = by_port(device.drain(), sup.port)
    assert {p.header.payload_type for p in out} == {9}
    pcm = decoded(out, G722Decoder().decode)
    reference = resample(g711.decode(b"".join(frames), "ulaw"), 8000, 16000)
    corr, _ = best_correlation(pcm, reference[3200:], 16000 // 5)
    assert corr >= 0.9
    stats = await control.query_mix(sup.stream_id)
    assert stats.sources[0].decoded >= len(frames) - 2


async def test_mix_of_both_parties_into_one_pcmu_stream(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, device = phones[:3]
    leg_a, leg_b = await bridged(engine, a, b)
    sup = await engine.create_stream(remote=device.address)
    sources = {leg_a.stream_id: PCMU, leg_b.stream_id: PCMU}
    await engine.mix(sup.stream_id, sources, output=OUT_PCMU)
    x, y = voice(1.2, f0=200, seed=1), voice(1.2, f0=270, seed=2)
    fa, fb = ulaw_frames(x), ulaw_frames(y)
    await talk([(a, packets(fa, ssrc=1), (HOST, leg_a.port)),
                (b, packets(fb, ssrc=2), (HOST, leg_b.port))])  # fmt: skip
    out = decoded(by_port(device.drain(), sup.port), lambda p: g711.decode(p, "ulaw"))
    rx, ry = g711.decode(b"".join(fa), "ulaw"), g711.decode(b"".join(fb), "ulaw")
    _, lag_x = best_correlation(out, rx, 2400)  # each party may sit a frame apart in the mix
    _, lag_y = best_correlation(out, ry, 2400)
    start = max(lag_x, lag_y) + 800
    stop = min(len(out), len(rx) + min(lag_x, lag_y)) - 800
    expected = _aligned_sum(rx, ry, lag_x, lag_y, start, stop)
    assert _corr(out[start:stop], expected) >= 0.9


def _aligned_sum(rx: PcmArray, ry: PcmArray, lag_x: int, lag_y: int, start: int,
                 stop: int) -> npt.NDArray[np.float64]:  # fmt: skip
    idx = np.arange(start, stop)
    return rx[idx - lag_x].astype(np.float64) + ry[idx - lag_y]


def _corr(a: PcmArray, b: npt.NDArray[np.float64]) -> float:
    x = a.astype(np.float64)
    return float(np.dot(x, b) / (np.linalg.norm(x) * np.linalg.norm(b) + 1e-9))


async def test_the_fork_latches_on_the_device_after_its_hello(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, advertised, device = phones
    leg_a, _ = await bridged(engine, a, b)
    sup = await engine.create_stream(remote=advertised.address)  # the SDP's (wrong) port
    await engine.add_fork(leg_a.stream_id, sup.stream_id)
    await talk([(a, [rtp(1)], (HOST, leg_a.port))])
    assert len(advertised.drain()) == 1  # not latched yet: the SDP address
    await device.send(b"hello", (HOST, sup.port))
    await talk([(a, [rtp(2)], (HOST, leg_a.port))])
    assert len(advertised.drain()) == 1  # a hello is not RTP: no latch
    await device.send(rtp(1, b"\xff" * 160, ssrc=77), (HOST, sup.port))
    await talk([(a, [rtp(3), rtp(4)], (HOST, leg_a.port))])
    assert [RtpPacket.parse(d).payload for d, _ in device.drain()] == [
        RtpPacket.parse(rtp(n)).payload for n in (3, 4)
    ]
    assert advertised.drain() == []
    stats = await engine.stats(sup.stream_id)
    assert (stats.latched, stats.garbage, stats.unroutable) == (device.address, 1, 0)


async def test_a_dead_supervisor_does_not_disturb_the_call(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, dead, _ = phones
    leg_a, leg_b = await bridged(engine, a, b)
    fork_target = await engine.create_stream(remote=dead.address)
    mix_target = await engine.create_stream(remote=dead.address)
    dead.close()  # ICMP port unreachable from now on
    await engine.add_fork(leg_a.stream_id, fork_target.stream_id)
    await engine.mix(mix_target.stream_id, {leg_a.stream_id: PCMU, leg_b.stream_id: PCMU},
                     output=("OPUS", 48000, 2, 111))  # fmt: skip
    pa = [rtp(i, bytes([i]) * 160, ssrc=1) for i in range(50)]
    pb = [rtp(i, bytes([99]) * 160, ssrc=2) for i in range(50)]
    await talk([(a, pa, (HOST, leg_a.port)), (b, pb, (HOST, leg_b.port))])
    assert [d for d, _ in b.drain()] == pa
    assert [d for d, _ in a.drain()] == pb
    stats = await engine.mix_stats(mix_target.stream_id)
    assert stats.ticks >= 45 and stats.tick_errors == 0
    await engine.unmix(mix_target.stream_id)
    await engine.delete(leg_a.stream_id)  # teardown of a fork source
    assert (await engine.stats(fork_target.stream_id)).packets_out == 50


async def test_the_mix_timer_stops_without_sources(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    a, b, device = phones[:3]
    leg_a, _ = await bridged(engine, a, b)
    sup = await engine.create_stream(remote=device.address)
    await engine.mix(sup.stream_id, {leg_a.stream_id: PCMU}, output=OUT_PCMU)
    await asyncio.sleep(0.1)
    await engine.remove_fork(leg_a.stream_id, sup.stream_id)
    await asyncio.sleep(0.05)
    ticks = (await engine.mix_stats(sup.stream_id)).ticks
    await asyncio.sleep(0.1)
    assert (await engine.mix_stats(sup.stream_id)).ticks == ticks
    assert engine._mix_timers == {}
    await engine.mix(sup.stream_id, {leg_a.stream_id: PCMU}, output=OUT_PCMU)
    await asyncio.sleep(0.1)
    assert (await engine.mix_stats(sup.stream_id)).ticks > ticks
    await engine.delete(sup.stream_id)
    await asyncio.sleep(0.05)
    assert engine._mix_timers == {}
