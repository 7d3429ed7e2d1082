"""Receive statistics: RFC 3550 A.1 (sequence), A.3 (loss), A.8 (jitter)."""

from __future__ import annotations

import pytest

from callwatch.media.stats import ReceiveStats

SSRC = 0xABCD
T0 = 1000.0


def feed(stats: ReceiveStats, seqs: list[int], *, step: int = 160, ssrc: int = SSRC) -> None:
    """Packets ``seqs`` with timestamps ``seq * step``, each arriving exactly on time."""
    for seq in seqs:
        stats.update(seq, (seq * step) & 0xFFFFFFFF, ssrc, T0 + seq * step / stats.clock_rate)


class TestLossA3:
    def test_in_order_no_loss(self) -> None:
        stats = ReceiveStats()
        feed(stats, list(range(50)))
        assert (stats.expected, stats.received, stats.lost) == (50, 50, 0)

    def test_gaps_are_lost(self) -> None:
        stats = ReceiveStats()
        feed(stats, [0, 1, 2, 4, 5, 6, 8, 9])
        assert (stats.expected, stats.received, stats.lost) == (10, 8, 2)

    def test_wrap_around(self) -> None:
        stats = ReceiveStats()
        feed(stats, [65533, 65534, 0, 1, 3])  # 65535 and 2 lost across the wrap
        assert stats.highest_sequence == 0x10003
        assert (stats.expected, stats.lost) == (7, 2)

    def test_reordered_packet_fills_the_gap(self) -> None:
        stats = ReceiveStats()
        feed(stats, [10, 11, 13, 12, 14])
        assert (stats.expected, stats.lost) == (5, 0)

    def test_duplicates_make_loss_negative(self) -> None:
        stats = ReceiveStats()
        feed(stats, [1, 2, 2, 3])
        assert stats.lost == -1

    def test_ssrc_change_is_a_new_source_not_a_gap(self) -> None:
        stats = ReceiveStats()
        feed(stats, [100, 101, 102])
        feed(stats, [40000, 40001, 40003], ssrc=0x9999)
        assert (stats.sources, stats.expected, stats.lost) == (2, 7, 1)

    def test_large_jump_needs_two_sequential_packets(self) -> None:
        stats = ReceiveStats()
        feed(stats, [1, 2, 3])
        feed(stats, [20000])  # a stray: not counted, sequence state kept
        assert (stats.expected, stats.received) == (3, 3)
        # The sender restarted at 20000: A.1 believes it at 20001, the packet after the jump.
        feed(stats, [4, 20000, 20001, 20002])
        assert (stats.expected, stats.received, stats.lost) == (4 + 2, 4 + 2, 0)


class TestJitterA8:
    def test_perfectly_paced_stream_has_no_jitter(self) -> None:
        stats = ReceiveStats()
        feed(stats, list(range(100)))
        assert stats.jitter == pytest.approx(0, abs=1e-6)

    def test_one_late_packet(self) -> None:
        """J += (|D| - J) / 16 with D in timestamp units: a packet 10 ms late at 8 kHz is D=80."""
        stats = ReceiveStats(8000)
        for seq in range(5):
            late = 0.010 if seq == 2 else 0.0
            stats.update(seq, seq * 160, SSRC, T0 + seq * 0.020 + late)
        j2 = 80 / 16  # the late packet
        j3 = j2 + (80 - j2) / 16  # the next one on time: transit drops back by 80
        j4 = j3 - j3 / 16
        assert stats.jitter == pytest.approx(j4)
        assert stats.jitter_ms == pytest.approx(j4 / 8)

    def test_jitter_against_a_reference_on_a_crafted_sequence(self) -> None:
        delays_ms = [0, 3, 1, 7, 2, 0, 12, 5, 5, 1, 0, 4]
        stats = ReceiveStats(48000)
        expected, previous = 0.0, None
        for seq, delay in enumerate(delays_ms):
            arrival = T0 + seq * 0.020 + delay / 1000
            stats.update(seq, 5000 + seq * 960, SSRC, arrival)
            transit = arrival * 48000 - (5000 + seq * 960)
            if previous is not None:
                expected += (abs(transit - previous) - expected) / 16
            previous = transit
        assert stats.jitter == pytest.approx(expected)

    def test_timestamp_wrap_is_not_jitter(self) -> None:
        stats = ReceiveStats(8000)
        for i in range(6):
            ts = (0xFFFFFE00 + i * 160) & 0xFFFFFFFF
            stats.update(i, ts, SSRC, T0 + i * 0.020)
        assert stats.jitter == pytest.approx(0, abs=1e-3)


def test_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReceiveStats(0)
