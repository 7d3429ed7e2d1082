"""Per-party audio: RTP in over real loopback sockets, one decoded 20 ms frame per tick out.

The decoder core is also driven without sockets, with explicit arrival and playout times, to
pin exact behaviour under reordering, loss, SSRC changes and stalls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from callwatch.client import ReceivedRtp, RtpSession
from callwatch.client.playout import PlayoutClock
from callwatch.client.stream_decoder import StreamDecoder, StreamFormat
from callwatch.client.streams import AudioFrame, AudioSubscription, PartyAudio
from callwatch.media.rtp import RtpHeader
from tests.client.tones import (
    PTIME,
    peak_frequency,
    send_paced,
    take,
    tone_level,
    tone_payloads,
    voiced,
)

PCMU = StreamFormat(0, "PCMU", 8000)
OPUS_48K = StreamFormat(111, "opus", 48000)
OPUS_16K = StreamFormat(109, "OPUS", 16000)
G722 = StreamFormat(9, "G722", 8000)


@pytest.fixture
async def sockets() -> AsyncIterator[tuple[RtpSession, RtpSession]]:
    sender, receiver = await RtpSession.open(), await RtpSession.open()
    sender.set_remote(*receiver.local)
    receiver.set_remote(*sender.local)
    yield sender, receiver
    sender.close()
    receiver.close()


@pytest.fixture
async def clock() -> AsyncIterator[PlayoutClock]:
    playout = PlayoutClock()
    yield playout
    playout.close()


def assert_continuous(frames: list[AudioFrame], rate: int = 16000) -> None:
    """One frame per tick: consecutive sequence numbers, timestamps 20 ms apart, full frames."""
    first = frames[0]
    for n, frame in enumerate(frames):
        assert frame.sequence == first.sequence + n
        assert frame.tick == first.tick + n
        assert frame.timestamp == pytest.approx(first.timestamp + n * PTIME)
        assert frame.sample_rate == rate and frame.pcm.shape == (rate // 50,)
        assert frame.pcm.dtype == np.int16


@pytest.mark.parametrize(
    ("fmt", "freq"),
    [(PCMU, 440.0), (OPUS_48K, 1000.0), (OPUS_16K, 700.0), (G722, 1200.0)],
    ids=["PCMU", "OPUS-48000", "OPUS-16000", "G722"],
)
async def test_each_codec_decodes_to_its_tone_without_gaps(
    sockets: tuple[RtpSession, RtpSession], clock: PlayoutClock, fmt: StreamFormat, freq: float
) -> None:
    sender, receiver = sockets
    party = PartyAudio("p-1", fmt, clock=clock)
    party.attach(receiver)
    payloads = tone_payloads(freq, 0.6, fmt.encoding, fmt.clock_rate)
    step = round(fmt.clock_rate * PTIME)
    reading = asyncio.create_task(take(party, 45))
    await send_paced(sender, payloads, payload_type=fmt.payload_type, clock_step=step)
    frames = await reading
    party.close()

    assert_continuous(frames)
    assert frames[0].sequence == 0 and frames[0].timestamp == 0.0
    audio = voiced(frames)
    assert len(audio) >= 20 * 320  # most of the 30 packets played as received audio
    assert peak_frequency(audio, 16000) == pytest.approx(freq, abs=15)
    assert tone_level(audio[640:], freq, 16000) > 0.9
    stats = party.stats
    assert stats.decoder.packets == len(payloads) and stats.decoder.decode_errors == 0
    assert stats.frames >= 45 and stats.dropped == 0


async def test_loss_and_reordering_degrade_gracefully(
    sockets: tuple[RtpSession, RtpSession], clock: PlayoutClock
) -> None:
    sender, receiver = sockets
    party = PartyAudio("customer", PCMU, clock=clock)
    party.attach(receiver)
    payloads = tone_payloads(440.0, 1.0, "PCMU", 8000)
    reading = asyncio.create_task(take(party, 60))
    sent, swapped = await send_paced(
        sender, payloads, payload_type=0, clock_step=160, loss=0.05, reorder=0.05, seed=7
    )
    frames = await reading
    party.close()

    assert sent < len(payloads) and swapped > 0
    assert_continuous(frames)
    jitter = party.stats.decoder.jitter
    assert jitter.lost + jitter.empty > 0  # the missing packets were concealed, not skipped
    assert jitter.late == 0  # reordered neighbours still made their playout slot
    audio = np.concatenate([f.pcm for f in frames])
    assert peak_frequency(audio[3200:], 16000) == pytest.approx(440, abs=15)
    assert tone_level(audio[3200:], 440.0, 16000) > 0.8


async def test_silence_before_any_packet_keeps_the_timeline(clock: PlayoutClock) -> None:
    party = PartyAudio("agent", OPUS_48K, clock=clock)
    started = asyncio.get_running_loop().time()
    frames = await take(party, 10)
    elapsed = asyncio.get_running_loop().time() - started
    party.close()
    assert_continuous(frames)
    assert all(f.concealed and not np.any(f.pcm) for f in frames)
    assert 0.15 < elapsed < 0.5  # paced by the clock, not produced in a burst


async def test_parties_on_one_clock_share_timestamps(clock: PlayoutClock) -> None:
    origin = clock.next_index()
    first = PartyAudio("a", PCMU, clock=clock, origin_tick=origin)
    await take(first, 5)
    second = PartyAudio("b", OPUS_16K, clock=clock, origin_tick=origin)
    late, early = await asyncio.gather(take(second, 10), take(first, 10))
    first.close()
    second.close()
    assert late[0].sequence == 0 and late[0].tick >= 5  # joined later on the same timeline
    assert {f.tick for f in late} <= {f.tick for f in early} | {early[-1].tick + 1}
    assert late[0].timestamp == pytest.approx(late[0].tick * PTIME)


async def test_a_slow_reader_loses_its_oldest_frames_only(
    sockets: tuple[RtpSession, RtpSession], clock: PlayoutClock
) -> None:
    sender, receiver = sockets
    party = PartyAudio("p", PCMU, clock=clock, max_queued=5)
    party.attach(receiver)
    other = party.subscribe(max_queued=100)
    await send_paced(
        sender, tone_payloads(440.0, 0.4, "PCMU", 8000), payload_type=0, clock_step=160
    )
    await asyncio.wait_for(receiver.wait_until(lambda: receiver.counters.received == 20), 5)
    party.close()
    kept = [frame async for frame in party]
    everything = [frame async for frame in other]
    assert len(kept) == 5 and party.stats.dropped > 0
    assert kept[-1].sequence == everything[-1].sequence  # the newest frames survive
    assert_continuous(everything)
    assert receiver.counters.received == party.stats.decoder.packets == 20
    assert receiver.received == []  # handed over, not accumulated


async def test_subscription_ends_after_close_and_drains() -> None:
    subscription = AudioSubscription(max_queued=2)
    frame = AudioFrame("p", np.zeros(320, dtype=np.int16), 16000, 0.0, 0)
    subscription.put(frame)
    subscription.close()
    subscription.put(frame)  # ignored once closed
    assert [f async for f in subscription] == [frame]
    with pytest.raises(ValueError, match="at least 1"):
        AudioSubscription(0)


class _Blocker:
    """A listener that stalls the event loop once, like a slow consumer on the same thread."""

    def __init__(self) -> None:
        self.ticks: list[int] = []

    def tick(self, index: int, at: float) -> None:
        if len(self.ticks) == 2:
            time.sleep(0.1)  # deliberately blocks the loop: the clock must catch up
        self.ticks.append(index)

    def close(self) -> None:
        raise AssertionError("not expected")


async def test_clock_catches_up_after_a_stall(clock: PlayoutClock) -> None:
    blocker = _Blocker()
    clock.add(blocker)
    party = PartyAudio("p", PCMU, clock=clock)
    frames = await take(party, 15)
    clock.remove(blocker)
    party.close()
    assert_continuous(frames)
    assert blocker.ticks == list(range(blocker.ticks[0], blocker.ticks[0] + len(blocker.ticks)))
    assert clock.skipped == 0


class _Broken:
    closed = False

    def tick(self, index: int, at: float) -> None:
        raise RuntimeError("boom")

    def close(self) -> None:
        self.closed = True


async def test_a_failing_listener_is_removed_and_the_rest_play_on(
    clock: PlayoutClock, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _Broken()
    clock.add(broken)
    party = PartyAudio("p", PCMU, clock=clock)
    frames = await take(party, 3)
    party.close()
    assert broken.closed and clock.listeners == 0
    assert_continuous(frames)
    assert "tick listener" in caplog.text


# -- the decoder core, with explicit time ------------------------------------------------------


def packet(
    seq: int, ts: int, payload: bytes, arrival: float, pt: int = 0, ssrc: int = 1
) -> ReceivedRtp:
    return ReceivedRtp(RtpHeader(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc), payload, arrival)


def pcmu_packets(count: int, *, start: float = 0.0, ssrc: int = 1) -> list[ReceivedRtp]:
    payloads = tone_payloads(440.0, count * PTIME, "PCMU", 8000)
    return [packet(i, 160 * i, p, start + i * PTIME, ssrc=ssrc) for i, p in enumerate(payloads)]


def play(
    decoder: StreamDecoder, packets: list[ReceivedRtp], ticks: int
) -> list[tuple[np.ndarray, bool]]:
    """Push each packet at its arrival time and pop one frame every 20 ms from t = 0.005."""
    out = []
    pending = sorted(packets, key=lambda p: p.arrival)
    for k in range(ticks):
        now = 0.005 + k * PTIME
        while pending and pending[0].arrival <= now:
            decoder.push(pending.pop(0))
        out.append(decoder.next_frame(now))
    return out


def test_decoder_gives_one_frame_per_tick_through_reordering() -> None:
    decoder = StreamDecoder(PCMU)
    packets = pcmu_packets(50)
    packets[10], packets[11] = packets[11], packets[10]
    packets[10] = ReceivedRtp(packets[10].header, packets[10].payload, packets[11].arrival + 0.001)
    frames = play(decoder, packets, 60)
    assert all(pcm.shape == (320,) for pcm, _ in frames)
    jitter = decoder.stats.jitter
    assert jitter.late == jitter.lost == 0
    # every packet played, except one the buffer may drop to shrink its delay (50 pps seen)
    assert decoder.stats.decoded + jitter.dropped == 50
    assert [c for _, c in frames].count(False) == decoder.stats.decoded


def test_decoder_conceals_a_lost_packet_with_plc() -> None:
    decoder = StreamDecoder(PCMU)
    packets = pcmu_packets(30)
    del packets[12]
    frames = play(decoder, packets, 40)
    stats = decoder.stats
    assert stats.decoded == 29 and stats.concealed >= 1
    assert stats.jitter.lost == 1
    plc = [pcm for pcm, concealed in frames[5:30] if concealed]
    assert plc and np.any(plc[0])  # repeat-and-fade, not silence


def test_decoder_ignores_other_payload_types_and_resets_on_new_ssrc() -> None:
    decoder = StreamDecoder(PCMU)
    packets = pcmu_packets(10) + pcmu_packets(10, start=0.2, ssrc=2)
    packets.insert(3, packet(99, 0, b"\x01\x8a\x03\xc0", 0.061, pt=101))
    frames = play(decoder, packets, 30)
    stats = decoder.stats
    assert stats.foreign == 1 and stats.resets == 1
    assert len(frames) == 30


def test_decoder_renegotiated_codec_and_native_rate() -> None:
    decoder = StreamDecoder(PCMU, sample_rate=None)
    assert decoder.sample_rate == 8000 and decoder.frame_samples == 160
    decoder.set_format(G722)
    assert decoder.sample_rate == 16000 and decoder.stats.resets == 1
    pcm, concealed = decoder.next_frame(0.0)
    assert concealed and pcm.shape == (320,)
    with pytest.raises(ValueError, match="output rate"):
        StreamDecoder(PCMU, sample_rate=22050)


def test_undecodable_codec_plays_silence() -> None:
    decoder = StreamDecoder(StreamFormat(98, "iLBC", 8000))
    assert not decoder.decodable
    frames = play(decoder, [packet(i, 160 * i, b"x" * 38, i * PTIME, pt=98) for i in range(5)], 10)
    assert all(concealed and not np.any(pcm) for pcm, concealed in frames)


def test_stalled_caller_backlog_is_trimmed() -> None:
    decoder = StreamDecoder(PCMU)
    for p in pcmu_packets(40):
        decoder.push(p)
    decoder.next_frame(0.1)
    decoder.next_frame(0.7)  # 30 ticks overdue at once
    assert decoder.stats.trimmed > 0
    pcm, _ = decoder.next_frame(0.72)
    assert pcm.shape == (320,)


@pytest.mark.parametrize(("interval", "counter"), [(0.0199, "dropped"), (0.0201, "inserted")])
def test_clock_drift_is_absorbed_without_growing_latency(interval: float, counter: str) -> None:
    decoder = StreamDecoder(PCMU)
    payload = tone_payloads(440.0, PTIME, "PCMU", 8000)[0]
    packets = [packet(i, 160 * i, payload, i * interval) for i in range(750)]  # 15 s, ±0.5 %
    frames = play(decoder, packets, 740)
    assert all(pcm.shape == (320,) for pcm, _ in frames)
    jitter = decoder.stats.jitter
    assert getattr(jitter, counter) >= 2  # the buffer followed the sender's clock
    assert jitter.delay is not None and jitter.delay < 0.1  # latency did not creep up
    assert jitter.late <= 3 and decoder.stats.trimmed == 0
