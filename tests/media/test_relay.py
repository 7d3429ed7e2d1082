"""The relay core without sockets: latching, forwarding, SRTP translation, counters, forks."""

from __future__ import annotations

import itertools
import random

import pytest

from callwatch.media.ports import (
    MediaLimitError,
    MediaStateError,
    PortPool,
    PortsExhausted,
    UnknownStream,
)
from callwatch.media.relay import MAX_FORKS_PER_STREAM, Relay
from callwatch.media.rtcp import RtcpReceiverReport, RtcpReportBlock, parse_rtcp
from callwatch.media.rtp import RtpPacket
from callwatch.media.srtp import SrtpContext, SrtpDirection
from tests.media.relay_helpers import (
    A_REAL,
    A_SDP,
    B_REAL,
    B_SDP,
    STRANGER,
    T0,
    Leg,
    add_leg,
    rtp,
)

KEY_A, KEY_B, KEY_RA, KEY_RB = (bytes([n]) * 30 for n in (1, 2, 3, 4))


def bridged(relay: Relay | None = None, **kwargs: bytes | None) -> tuple[Relay, Leg, Leg]:
    relay = Relay(rng=random.Random(1)) if relay is None else relay
    a = add_leg(relay, 20000, A_SDP, key_in=kwargs.get("a_in"), key_out=kwargs.get("a_out"))
    b = add_leg(relay, 20002, B_SDP, key_in=kwargs.get("b_in"), key_out=kwargs.get("b_out"))
    relay.pair(a.stream.stream_id, b.stream.stream_id)
    return relay, a, b


class TestLatching:
    """Symmetric RTP latching and the RTP Bleed defence."""

    def test_hello_is_garbage_then_first_valid_rtp_latches(self) -> None:
        _, a, b = bridged()
        a.stream.receive_rtp(b"hello", A_REAL, T0)
        assert a.stream.latched is None
        assert a.stream.garbage == 1
        assert b.rtp.sent == []
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        assert a.stream.latched == A_REAL
        assert b.rtp.take() == [(rtp(1), B_SDP)]  # out of B's socket, to B's SDP address

    def test_before_latching_only_the_sdp_address_is_sent_to(self) -> None:
        _, a, b = bridged()
        b.stream.receive_rtp(rtp(1, ssrc=2), B_REAL, T0)
        assert a.rtp.take() == [(rtp(1, ssrc=2), A_SDP)]
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        b.stream.receive_rtp(rtp(2, ssrc=2), B_REAL, T0)
        assert a.rtp.take() == [(rtp(2, ssrc=2), A_REAL)]  # now the learned address

    def test_stranger_after_latch_is_dropped_never_forwarded_nor_answered(self) -> None:
        _, a, b = bridged()
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        b.stream.receive_rtp(rtp(1, ssrc=2), B_REAL, T0)
        a.rtp.take(), b.rtp.take()
        for seq in range(2, 12):
            a.stream.receive_rtp(rtp(seq, ssrc=0x6666), STRANGER, T0)
        a.stream.receive_rtp(b"hello", STRANGER, T0)
        assert a.stream.strangers == 11
        assert a.stream.latched == A_REAL
        assert b.rtp.sent == []
        b.stream.receive_rtp(rtp(2, ssrc=2), B_REAL, T0)
        assert a.rtp.take() == [(rtp(2, ssrc=2), A_REAL)]  # B's media still goes to A only
        assert a.stream.packets_in == 1

    def test_first_valid_packet_wins_even_from_a_non_sdp_address(self) -> None:
        """Documented choice: the SDP address is a hint, so latching is first come."""
        _, a, _ = bridged()
        a.stream.receive_rtp(rtp(1), STRANGER, T0)
        a.stream.receive_rtp(rtp(2), A_SDP, T0)
        assert a.stream.latched == STRANGER
        assert a.stream.strangers == 1

    @pytest.mark.parametrize(
        "data",
        [
            bytes([0x82]) + rtp(1)[1:14],  # two CSRCs announced, half of one present
            bytes([0x81]) + rtp(1)[1:12],
            bytes([0xA0]) + rtp(1)[1:-1] + b"\xff",  # padding longer than the payload
            bytes([0x80, 200]) + bytes(10),  # an RTCP type on a non-mux RTP port
        ],
    )  # fmt: skip
    def test_malformed_rtp_does_not_latch(self, data: bytes) -> None:
        _, a, b = bridged()
        a.stream.receive_rtp(data, A_REAL, T0)
        assert a.stream.latched is None
        assert a.stream.garbage == 1
        assert b.rtp.sent == []

    def test_srtp_leg_latches_only_on_an_authenticated_packet(self) -> None:
        _, a, b = bridged(a_in=KEY_A, a_out=KEY_RA)
        phone = SrtpContext(KEY_A, SrtpDirection.OUTBOUND)
        forged = SrtpContext(bytes(30), SrtpDirection.OUTBOUND)
        a.stream.receive_rtp(forged.protect(rtp(1)) or b"", STRANGER, T0)
        a.stream.receive_rtp(rtp(1), STRANGER, T0)  # plain RTP on an SRTP leg
        assert a.stream.latched is None
        assert a.stream.srtp_failures == 2
        a.stream.receive_rtp(phone.protect(rtp(1)) or b"", A_REAL, T0)
        assert a.stream.latched == A_REAL
        assert b.rtp.take() == [(rtp(1), B_SDP)]

    def test_signalled_address_change_resets_the_latch(self) -> None:
        _, a, _ = bridged()
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        a.stream.set_remote(A_SDP)  # same SDP again (e.g. session refresh): latch kept
        assert a.stream.latched == A_REAL
        a.stream.set_remote(("198.51.100.7", 7000))
        assert a.stream.latched is None
        a.stream.receive_rtp(rtp(2), ("198.51.100.7", 7000), T0)
        assert a.stream.latched == ("198.51.100.7", 7000)

    def test_rtcp_latches_on_its_own_port_only_from_the_rtp_host(self) -> None:
        _, a, b = bridged()
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        report = RtcpReceiverReport(0x1111).serialize()
        a.stream.receive_rtcp(report, STRANGER, T0)
        a.stream.receive_rtcp(b"hello", (A_REAL[0], 4003), T0)
        assert (a.stream.strangers, a.stream.garbage) == (1, 1)
        a.stream.receive_rtcp(report, (A_REAL[0], 4003), T0)
        assert b.rtcp.take() == [(report, (B_SDP[0], B_SDP[1] + 1))]
        a.stream.receive_rtcp(report, (A_REAL[0], 4999), T0)
        assert a.stream.strangers == 2
        assert a.stream.snapshot().rtcp_latched == (A_REAL[0], 4003)

    def test_rtcp_on_the_rtp_port_without_mux_is_garbage(self) -> None:
        _, a, b = bridged()
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        a.stream.receive_rtp(RtcpReceiverReport(1).serialize(), A_REAL, T0)
        assert a.stream.garbage == 1
        assert b.rtcp.sent == []


class TestForwarding:
    def test_payloads_are_forwarded_unchanged_both_ways_with_counters(self) -> None:
        _, a, b = bridged()
        for seq in range(1, 51):
            a.stream.receive_rtp(rtp(seq), A_REAL, T0 + seq * 0.02)
            b.stream.receive_rtp(rtp(seq, ssrc=2, pt=8), B_REAL, T0 + seq * 0.02)
        assert [d for d, _ in b.rtp.sent] == [rtp(s) for s in range(1, 51)]
        assert [d for d, _ in a.rtp.sent] == [rtp(s, ssrc=2, pt=8) for s in range(1, 51)]
        stats = a.stream.snapshot()
        assert (stats.packets_in, stats.bytes_in) == (50, 50 * 172)
        assert (stats.packets_out, stats.bytes_out) == (50, 50 * 172)
        assert (stats.expected, stats.lost, stats.sources) == (50, 0, 1)
        assert stats.last_packet_at == T0 + 50 * 0.02

    def test_telephone_event_and_any_codec_pass_through(self) -> None:
        _, a, b = bridged()
        packets = [rtp(1, b"opus" * 20, pt=111), rtp(2, bytes.fromhex("018003c0"), pt=101),
                   rtp(3, bytes(160), pt=9)]  # fmt: skip
        for packet in packets:
            a.stream.receive_rtp(packet, A_REAL, T0)
        assert [d for d, _ in b.rtp.sent] == packets

    def test_unpaired_stream_counts_unroutable(self) -> None:
        relay = Relay()
        a = add_leg(relay, 20000, A_SDP)
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        assert (a.stream.packets_in, a.stream.unroutable) == (1, 1)

    def test_partner_without_any_address_counts_unroutable(self) -> None:
        relay = Relay()
        a, b = add_leg(relay, 20000, A_SDP), add_leg(relay, 20002, None)
        relay.pair(a.stream.stream_id, b.stream.stream_id)
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        assert b.stream.unroutable == 1
        assert b.rtp.sent == []

    def test_send_errors_are_counted_and_dropped(self) -> None:
        _, a, b = bridged()
        b.rtp.error = BlockingIOError(11, "buffer full")
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        assert (b.stream.send_errors, b.stream.packets_out) == (1, 0)

    def test_rtcp_goes_to_port_plus_one_and_reports_are_read(self) -> None:
        _, a, b = bridged()
        b.stream.receive_rtp(rtp(1, ssrc=2), B_REAL, T0)
        block = RtcpReportBlock(2, 12, 7, 1, 33)
        report = RtcpReceiverReport(0x1111, (block,)).serialize()
        a.stream.receive_rtcp(report, (A_REAL[0], 4003), T0 + 5)
        assert b.rtcp.take() == [(report, (B_SDP[0], B_SDP[1] + 1))]
        stats = a.stream.snapshot()
        assert (stats.far_end_lost, stats.far_end_jitter) == (7, 33)
        assert (stats.rtcp_packets_in, b.stream.rtcp_packets_out) == (1, 1)
        assert stats.last_packet_at == T0 + 5

    def test_rtcp_mux_leg_to_a_plain_rtcp_leg(self) -> None:
        relay = Relay()
        a = add_leg(relay, 20000, A_SDP, mux=True)
        b = add_leg(relay, 20002, B_SDP)
        relay.pair(a.stream.stream_id, b.stream.stream_id)
        report = RtcpReceiverReport(0x1111).serialize()
        a.stream.receive_rtp(report, A_REAL, T0)  # RTCP may latch a mux port too
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        assert a.stream.latched == A_REAL
        assert b.rtcp.take() == [(report, (B_SDP[0], B_SDP[1] + 1))]
        b.stream.receive_rtcp(report, (B_REAL[0], B_REAL[1] + 1), T0)
        assert a.rtp.take()[-1] == (report, A_REAL)  # onto A's one port

    def test_loss_and_jitter_from_a_crafted_sequence(self) -> None:
        _, a, _ = bridged()
        arrivals = {0: 0.0, 1: 0.0, 2: 0.0, 4: 0.010, 5: 0.0, 7: 0.0, 8: 0.0, 9: 0.0}
        for seq, late in arrivals.items():
            a.stream.receive_rtp(rtp(seq), A_REAL, T0 + seq * 0.020 + late)
        stats = a.stream.snapshot()
        assert (stats.expected, stats.lost) == (10, 2)
        j = 0.0
        for d in (0, 0, 80, 80, 0, 0, 0):  # |D| per packet after the first, in 8 kHz units
            j += (d - j) / 16
        assert stats.jitter == pytest.approx(j)
        assert stats.jitter_ms == pytest.approx(j / 8)


class TestSrtpTranslation:
    """A leg's own key decrypts what it sends; our key for the other leg protects the copy."""

    @pytest.mark.parametrize(
        ("a_srtp", "b_srtp"), [(True, False), (False, True), (True, True)],
        ids=["srtp-to-rtp", "rtp-to-srtp", "srtp-to-srtp"],
    )  # fmt: skip
    def test_payload_arrives_intact(self, a_srtp: bool, b_srtp: bool) -> None:
        keys = {"a_in": KEY_A, "a_out": KEY_RA} if a_srtp else {}
        keys |= {"b_in": KEY_B, "b_out": KEY_RB} if b_srtp else {}
        _, a, b = bridged(**keys)
        phone_a = SrtpContext(KEY_A, SrtpDirection.OUTBOUND)
        phone_b = SrtpContext(KEY_RB, SrtpDirection.INBOUND)
        sent = [rtp(seq) for seq in range(1, 21)]
        for packet in sent:
            wire = phone_a.protect(packet) if a_srtp else packet
            a.stream.receive_rtp(wire or b"", A_REAL, T0)
        got = [d for d, _ in b.rtp.sent]
        decoded = [phone_b.unprotect(d) for d in got] if b_srtp else got
        assert [RtpPacket.parse(d or b"").payload for d in decoded] == [
            RtpPacket.parse(p).payload for p in sent
        ]
        assert decoded == sent
        assert a.stream.srtp_failures == b.stream.srtp_failures == 0

    def test_srtcp_is_translated_too(self) -> None:
        _, a, b = bridged(a_in=KEY_A, a_out=KEY_RA, b_in=KEY_B, b_out=KEY_RB)
        phone_a = SrtpContext(KEY_A, SrtpDirection.OUTBOUND)
        phone_b = SrtpContext(KEY_RB, SrtpDirection.INBOUND)
        a.stream.receive_rtp(phone_a.protect(rtp(1)) or b"", A_REAL, T0)
        report = RtcpReceiverReport(0x1111).serialize()
        a.stream.receive_rtcp(phone_a.protect_rtcp(report) or b"", (A_REAL[0], 4003), T0)
        ((wire, _),) = b.rtcp.sent
        assert parse_rtcp(phone_b.unprotect_rtcp(wire) or b"") == [RtcpReceiverReport(0x1111)]


class TestForks:
    def fork_setup(self, **kwargs: bytes | None) -> tuple[Relay, Leg, Leg, Leg]:
        relay, a, b = bridged()
        sup = add_leg(relay, 20004, ("192.0.2.30", 7000), key_out=kwargs.get("sup_out"))
        relay.add_fork(a.stream.stream_id, sup.stream.stream_id)
        return relay, a, b, sup

    def test_fork_restamps_into_one_continuous_stream(self) -> None:
        _, a, b, sup = self.fork_setup()
        for seq in (100, 101, 102):
            a.stream.receive_rtp(rtp(seq), A_REAL, T0 + seq * 0.02)
        a.stream.receive_rtp(rtp(7, ssrc=0x2222, ts=999), A_REAL, T0 + 103 * 0.02)  # new SSRC
        a.stream.receive_rtp(rtp(8, ssrc=0x2222, ts=1159), A_REAL, T0 + 104 * 0.02)
        out = [RtpPacket.parse(d) for d, _ in sup.rtp.sent]
        assert len(b.rtp.sent) == 5  # the call itself is untouched
        assert len({p.header.ssrc for p in out}) == 1
        assert out[0].header.ssrc not in (0x1111, 0x2222)
        seqs = [p.header.sequence_number for p in out]
        assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(5)]
        stamps = [p.header.timestamp for p in out]
        assert [(y - x) & 0xFFFFFFFF for x, y in itertools.pairwise(stamps)] == [160] * 4
        assert [p.payload for p in out] == [RtpPacket.parse(d).payload for d, _ in b.rtp.sent]
        assert {addr for _, addr in sup.rtp.sent} == {("192.0.2.30", 7000)}

    def test_moving_a_fork_to_another_party_keeps_the_output_continuous(self) -> None:
        relay, a, b, sup = self.fork_setup()
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        relay.remove_fork(a.stream.stream_id, sup.stream.stream_id)
        relay.add_fork(b.stream.stream_id, sup.stream.stream_id)
        b.stream.receive_rtp(rtp(500, ssrc=2), B_REAL, T0 + 0.02)
        first, second = (RtpPacket.parse(d).header for d, _ in sup.rtp.sent)
        assert second.ssrc == first.ssrc
        assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF

    def test_a_dead_supervisor_never_holds_up_the_call(self) -> None:
        _, a, b, sup = self.fork_setup()
        sup.rtp.error = ConnectionRefusedError(111, "refused")
        for seq in range(1, 11):
            a.stream.receive_rtp(rtp(seq), A_REAL, T0)
        assert len(b.rtp.sent) == 10
        assert (sup.stream.send_errors, b.stream.send_errors) == (10, 0)

    def test_fork_into_an_srtp_supervisor(self) -> None:
        _, a, _, sup = self.fork_setup(sup_out=KEY_RB)
        a.stream.receive_rtp(rtp(1), A_REAL, T0)
        ((wire, _),) = sup.rtp.sent
        plain = SrtpContext(KEY_RB, SrtpDirection.INBOUND).unprotect(wire)
        assert RtpPacket.parse(plain or b"").payload == RtpPacket.parse(rtp(1)).payload

    def test_fork_rules(self) -> None:
        relay, a, b, sup = self.fork_setup()
        ids = a.stream.stream_id, b.stream.stream_id, sup.stream.stream_id
        with pytest.raises(MediaStateError, match="itself"):
            relay.add_fork(ids[0], ids[0])
        with pytest.raises(MediaStateError, match="bridged"):
            relay.add_fork(ids[0], ids[1])
        with pytest.raises(MediaStateError, match="already fed"):
            relay.add_fork(ids[1], ids[2])
        with pytest.raises(MediaStateError, match="fork target"):
            relay.pair(ids[0], ids[2])
        for n in range(MAX_FORKS_PER_STREAM - 1):
            extra = add_leg(relay, 21000 + 2 * n, None)
            relay.add_fork(ids[0], extra.stream.stream_id)
        with pytest.raises(MediaLimitError, match="forks"):
            relay.add_fork(ids[0], add_leg(relay, 22000, None).stream.stream_id)

    def test_removing_a_stream_removes_its_bridge_and_forks(self) -> None:
        relay, a, b, sup = self.fork_setup()
        relay.remove_stream(a.stream.stream_id)
        assert b.stream.peer is None
        relay.add_fork(b.stream.stream_id, sup.stream.stream_id)  # the target is free again
        relay.remove_stream(sup.stream.stream_id)
        b.stream.receive_rtp(rtp(1, ssrc=2), B_REAL, T0)
        assert sup.rtp.sent == []
        with pytest.raises(UnknownStream, match="no media stream"):
            relay.get(a.stream.stream_id)


class TestRelayTable:
    def test_idle_streams(self) -> None:
        relay, a, b = bridged()
        a.stream.receive_rtp(rtp(1), A_REAL, T0 + 25)
        assert relay.idle_streams(T0 + 30, 30) == [b.stream.stream_id]
        assert relay.idle_streams(T0 + 55, 30) == [a.stream.stream_id, b.stream.stream_id]
        assert relay.idle_streams(T0 + 10, 30) == []

    def test_stream_limit(self) -> None:
        relay = Relay(max_streams=2)
        bridged(relay)
        with pytest.raises(MediaLimitError, match="maximum of 2"):
            add_leg(relay, 20010, None)

    def test_pairing_rules(self) -> None:
        relay, a, b = bridged()
        c = add_leg(relay, 20004, None)
        with pytest.raises(MediaStateError, match="itself"):
            relay.pair(c.stream.stream_id, c.stream.stream_id)
        relay.pair(a.stream.stream_id, c.stream.stream_id)  # transfer: B is unbridged
        assert b.stream.peer is None
        assert a.stream.peer is c.stream
        assert len(relay) == 3
        assert relay.stats(c.stream.stream_id).stream_id == c.stream.stream_id


class TestPortPool:
    def test_even_rtp_ports_round_robin_and_late_reuse(self) -> None:
        pool = PortPool(20001, 20008)
        assert [pool.allocate() for _ in range(3)] == [20002, 20004, 20006]
        pool.release(20002)
        assert pool.allocate() == 20002
        assert (pool.available, pool.in_use) == (0, 3)
        with pytest.raises(PortsExhausted):
            pool.allocate()

    def test_misuse(self) -> None:
        with pytest.raises(ValueError, match="no RTP/RTCP pair"):
            PortPool(20000, 20000)
        pool = PortPool(20000, 20010)
        with pytest.raises(ValueError, match="not allocated"):
            pool.release(20000)


def test_totals_sum_every_stream() -> None:
    relay, a, b = bridged()
    a.stream.receive_rtp(b"hello", A_REAL, T0)
    for seq in (1, 2, 4):
        a.stream.receive_rtp(rtp(seq), A_REAL, T0)
    b.stream.receive_rtp(rtp(1, ssrc=2), B_REAL, T0)
    totals = relay.totals()
    assert (totals.streams, totals.packets_in, totals.packets_out) == (2, 4, 4)
    assert (totals.bytes_in, totals.dropped, totals.lost) == (4 * 172, 1, 1)
