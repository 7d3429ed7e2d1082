"""Jitter buffer: ordering, duplicates, loss, lateness, wrap-around, SSRC change, drift."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from callwatch.media.jitter import (
    GapReason,
    JitterBuffer,
    JitterConfig,
    MissingFrame,
    PlayoutFrame,
    PushResult,
)

FRAME = 0.02
STEP = 160  # 20 ms at 8 kHz


@dataclass(frozen=True)
class Packet:
    arrival: float
    seq: int
    ts: int
    index: int
    ssrc: int = 1

    @property
    def payload(self) -> bytes:
        return self.index.to_bytes(4, "big")


def stream(
    count: int,
    *,
    seq0: int = 1000,
    ts0: int = 5000,
    transit: float = 0.03,
    jitter: float = 0.0,
    ppm: float = 0.0,
    loss: float = 0.0,
    seed: int = 1,
) -> list[Packet]:
    """Packets sent every 20 ms of the *sender's* clock, ordered by arrival."""
    rng = random.Random(seed)
    packets = []
    for i in range(count):
        if loss and rng.random() < loss:
            continue
        sent = i * FRAME / (1 + ppm * 1e-6)
        packets.append(
            Packet(
                arrival=sent + transit + rng.random() * jitter,
                seq=(seq0 + i) & 0xFFFF,
                ts=(ts0 + STEP * i) & 0xFFFFFFFF,
                index=i,
            )
        )
    return sorted(packets, key=lambda p: p.arrival)


@dataclass
class Run:
    played: list[int]
    gaps: Counter[GapReason]
    results: Counter[PushResult]
    max_buffered: int
    max_delay: float
    buffer: JitterBuffer


def play(packets: list[Packet], config: JitterConfig | None = None, tick: float = 0.005) -> Run:
    """Feed packets at their arrival times while popping on a 5 ms receiver clock."""
    jb = JitterBuffer(config or JitterConfig(clock_rate=8000))
    run = Run([], Counter(), Counter(), 0, 0.0, jb)
    end = (packets[-1].arrival if packets else 0.0) + 1.0
    k, now = 0, 0.0
    while now < end:
        while k < len(packets) and packets[k].arrival <= now:
            p = packets[k]
            run.results[jb.push(p.seq, p.ts, p.payload, p.arrival, ssrc=p.ssrc)] += 1
            k += 1
        for item in jb.pop(now):
            if isinstance(item, PlayoutFrame):
                run.played.append(int.from_bytes(item.payload, "big"))
            else:
                run.gaps[item.reason] += 1
        run.max_buffered = max(run.max_buffered, jb.stats.buffered)
        run.max_delay = max(run.max_delay, jb.delay or 0.0)
        now = round(now + tick, 9)
    return run


def strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def test_in_order_stream_plays_everything_after_the_initial_delay() -> None:
    jb = JitterBuffer(JitterConfig(clock_rate=8000, initial_delay=0.05))
    assert jb.pop(0.0) == [] and jb.next_deadline() is None
    assert jb.push(1, 1000, b"a", 10.0) is PushResult.RESYNCED
    assert jb.push(2, 1160, b"b", 10.02) is PushResult.STORED
    assert jb.next_deadline() == pytest.approx(10.05)
    assert jb.pop(10.049) == []
    assert jb.pop(10.05) == [PlayoutFrame(timestamp=1000, sequence=1, payload=b"a")]
    assert jb.pop(10.07) == [PlayoutFrame(timestamp=1160, sequence=2, payload=b"b")]
    assert jb.pop(10.09) == [MissingFrame(timestamp=1320, reason=GapReason.EMPTY)]

    run = play(stream(500))
    assert run.played == list(range(500))
    assert run.results[PushResult.STORED] == 499


def test_reordered_packets_play_in_timestamp_order() -> None:
    packets = stream(300)
    for i in range(10, 290, 7):  # swap neighbours' arrival times
        a, b = packets[i], packets[i + 1]
        packets[i] = Packet(a.arrival, b.seq, b.ts, b.index)
        packets[i + 1] = Packet(b.arrival, a.seq, a.ts, a.index)
    run = play(packets)
    assert run.played == list(range(300))
    assert run.buffer.stats.late == 0


def test_duplicates_are_dropped_before_and_after_playout() -> None:
    jb = JitterBuffer(JitterConfig(clock_rate=8000))
    jb.push(1, 0, b"x", 0.0)
    assert jb.push(1, 0, b"x", 0.001) is PushResult.DUPLICATE
    jb.pop(0.05)
    assert jb.push(1, 0, b"x", 0.06) is PushResult.DUPLICATE
    packets = stream(200)
    doubled = sorted(
        packets + [Packet(p.arrival + 0.004, p.seq, p.ts, p.index) for p in packets],
        key=lambda p: p.arrival,
    )
    run = play(doubled)
    assert run.played == list(range(200))
    assert run.results[PushResult.DUPLICATE] == 200


def test_lost_packets_become_missing_frames_in_their_slot() -> None:
    packets = [p for p in stream(100) if p.index not in (20, 21, 50)]
    run = play(packets, JitterConfig(clock_rate=8000, initial_delay=0.08, min_delay=0.08))
    assert run.played == [i for i in range(100) if i not in (20, 21, 50)]
    assert run.gaps[GapReason.LOST] == 3
    assert run.buffer.stats.lost == 3


def test_missing_frame_carries_the_slot_timestamp() -> None:
    jb = JitterBuffer(JitterConfig(clock_rate=8000, initial_delay=0.04))
    jb.push(1, 1000, b"a", 0.0)
    jb.push(3, 1320, b"c", 0.0)
    items = jb.pop(0.081)
    assert items == [
        PlayoutFrame(1000, 1, b"a"),
        MissingFrame(1160, GapReason.LOST),
        PlayoutFrame(1320, 3, b"c"),
    ]


def test_late_packet_is_dropped_and_the_delay_grows() -> None:
    jb = JitterBuffer(JitterConfig(clock_rate=8000, initial_delay=0.04, min_delay=0.02))
    jb.push(0, 0, b"0", 0.0)
    assert jb.pop(0.04)[0] == PlayoutFrame(0, 0, b"0")
    assert jb.pop(0.06) == [MissingFrame(160, GapReason.EMPTY)]
    before = jb.delay
    assert jb.push(1, 160, b"1", 0.09) is PushResult.LATE  # 70 ms after sending
    assert jb.stats.late == 1
    items = jb.pop(0.2)
    assert any(isinstance(i, MissingFrame) and i.reason is GapReason.INSERTED for i in items)
    assert before == pytest.approx(0.04)
    assert (jb.delay or 0) >= 0.07 - 1e-9  # the late packet would now be in time


def test_delay_adapts_to_jitter_then_shrinks_slowly() -> None:
    calm, noisy = stream(500, jitter=0.002), stream(500, jitter=0.08, seed=3)
    run_calm = play(calm)
    run_noisy = play(noisy)
    assert run_calm.buffer.delay == pytest.approx(0.03, abs=0.012)
    noisy_delay = run_noisy.buffer.delay
    assert noisy_delay is not None and 0.08 <= noisy_delay <= 0.12
    assert run_noisy.buffer.stats.late < 10  # only while the delay was still growing
    # a spike followed by calm: the delay comes back down, one frame per shrink interval
    spike = stream(1500, seed=4)
    spike = [
        Packet(p.arrival + (0.15 if p.index == 100 else 0), p.seq, p.ts, p.index) for p in spike
    ]
    run = play(sorted(spike, key=lambda p: p.arrival))
    assert run.max_delay > 0.15
    assert run.buffer.delay is not None and run.buffer.delay < 0.05
    assert run.buffer.stats.dropped >= 5


@pytest.mark.parametrize(("seq0", "ts0"), [(65500, 1000), (1000, 2**32 - 8000), (65535, 2**32 - 1)])
def test_sequence_and_timestamp_wrap_around(seq0: int, ts0: int) -> None:
    run = play(stream(400, seq0=seq0, ts0=ts0, jitter=0.01))
    assert run.played == list(range(400))
    assert run.buffer.stats.resets == 0


def test_ssrc_change_resets_and_plays_the_new_source() -> None:
    first = stream(100)
    second = [
        Packet(p.arrival + 3.0, (p.seq + 3000) & 0xFFFF, p.ts + 123_456, 1000 + p.index, 2)
        for p in stream(100)
    ]
    run = play(first + second)
    assert run.played == list(range(100)) + list(range(1000, 1100))
    assert run.results[PushResult.RESYNCED] == 2
    assert run.buffer.stats.resets == 1


def test_timestamp_jump_within_one_ssrc_needs_confirmation() -> None:
    jb = JitterBuffer(JitterConfig(clock_rate=8000))
    for i in range(5):
        jb.push(i, i * STEP, b"old", i * FRAME)
    assert jb.push(5, 10_000_000, b"new", 0.1) is PushResult.DISCARDED
    assert jb.push(99, 10_000_160, b"x", 0.12) is PushResult.DISCARDED  # not its successor
    assert jb.push(100, 10_000_320, b"y", 0.14) is PushResult.RESYNCED
    assert jb.stats.resets == 1
    played = [i for i in jb.pop(1.0) if isinstance(i, PlayoutFrame)]
    assert [p.payload for p in played] == [b"x", b"y"]


@pytest.mark.parametrize("ppm", [500.0, -500.0])
def test_clock_drift_over_ten_minutes_stays_bounded(ppm: float) -> None:
    packets = stream(30_000, ppm=ppm, jitter=0.01, seed=7)
    run = play(packets, tick=0.01)
    stats = run.buffer.stats
    # 600 s × 500 ppm = 300 ms = 15 frames to drop (fast sender) or insert (slow sender)
    adjusted = stats.dropped if ppm > 0 else stats.inserted
    assert 10 <= adjusted <= 25
    assert run.max_buffered <= 10
    assert run.max_delay <= 0.1
    assert stats.late <= 5
    assert strictly_increasing(run.played)
    assert len(run.played) >= 30_000 - 25


def test_stalled_caller_is_bounded_by_capacity() -> None:
    config = JitterConfig(clock_rate=8000, capacity=30)
    jb = JitterBuffer(config)
    for i in range(20):
        jb.push(i, i * STEP, b"p", i * FRAME)
    items = jb.pop(100.0)
    assert len(items) == config.capacity
    assert jb.stats.buffered == 0


def test_every_push_is_bounded_and_deterministic() -> None:
    rng = random.Random(11)
    packets = [
        Packet(
            rng.uniform(0, 20),
            rng.randrange(65536),
            rng.randrange(2**32),
            i,
            rng.choice([1, 1, 1, 2]),
        )
        for i in range(3000)
    ]
    packets.sort(key=lambda p: p.arrival)
    one, two = play(packets), play(packets)
    assert one.played == two.played and one.gaps == two.gaps
    assert one.max_buffered <= one.buffer.config.capacity
    with pytest.raises(ValueError):
        JitterConfig(clock_rate=8000, min_delay=0.1, initial_delay=0.05)
