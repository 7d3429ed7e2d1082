"""RTCP compound packets (RFC 3550 §6)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwatch.media.rtcp import (
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdes,
    RtcpSdesChunk,
    RtcpSenderReport,
    RtcpUnknown,
    parse_rtcp,
    serialize_rtcp,
)
from callwatch.media.rtp import RtpError, is_rtcp

# SR with one report block, then SDES CNAME — the compound every softphone sends (RFC 3550 §6.1).
SR_SDES = bytes.fromhex(
    "81c8000c" "11223344" "e9a1b2c3d4e5f607" "00001f40" "00000064" "00003e80"
    "55667788" "05fffffe" "0001000a" "0000001e" "b2c3d4e5" "00010000"
    "81ca0004" "11223344" "0107616c69636540" "68000000"
)  # fmt: skip


class TestParse:
    def test_sender_report_and_sdes(self) -> None:
        sr, sdes = parse_rtcp(SR_SDES)
        assert sr == RtcpSenderReport(
            ssrc=0x11223344, ntp_timestamp=0xE9A1B2C3D4E5F607, rtp_timestamp=8000,
            packet_count=100, octet_count=16000,
            reports=(RtcpReportBlock(0x55667788, 5, -2, 0x1000A, 30, 0xB2C3D4E5, 0x10000),),
        )  # fmt: skip
        assert sdes == RtcpSdes((RtcpSdesChunk(0x11223344, ((1, b"alice@h"),)),))
        assert is_rtcp(SR_SDES)

    def test_round_trip_is_exact(self) -> None:
        assert serialize_rtcp(parse_rtcp(SR_SDES)) == SR_SDES

    def test_receiver_report_bye_and_unknown(self) -> None:
        packets: list[RtcpPacket] = [
            RtcpReceiverReport(7, (RtcpReportBlock(9, 0, 0, 65540, 12),)),
            RtcpBye((7, 8), b"hangup"),
            RtcpUnknown(205, 1, bytes(8)),  # RTPFB generic NACK, kept opaque
        ]
        assert parse_rtcp(serialize_rtcp(packets)) == packets

    def test_padding_is_removed(self) -> None:
        data = bytes.fromhex("a0c900020000000700000004")  # RR, P bit, 4 bytes of padding
        assert parse_rtcp(data) == [RtcpReceiverReport(7)]

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"\x80\xc9", "RTCP packet length is less than 4 bytes"),
            (bytes.fromhex("40c9000100000007"), "RTCP packet has invalid version 1"),
            (bytes.fromhex("80c9000200000007"), "RTCP packet is truncated"),
            (bytes.fromhex("a0c9000100000000"), "RTCP packet padding length is invalid"),
            (bytes.fromhex("81c8000100000007"), "RTCP sender report is truncated"),
            (bytes.fromhex("81c9000100000007"), "RTCP receiver report is truncated"),
            (bytes.fromhex("81ca000100000007"), "RTCP SDES chunk is truncated"),
            (bytes.fromhex("81ca00020000000701050000"), "RTCP SDES item is truncated"),
            (bytes.fromhex("82cb000100000007"), "RTCP bye has truncated source list"),
            (bytes.fromhex("81cb00020000000709000000"), "RTCP bye has truncated reason"),
            (bytes.fromhex("80c900010000000780"), "RTCP packet length is less than 4 bytes"),
        ],
    )  # fmt: skip
    def test_errors_are_precise(self, data: bytes, message: str) -> None:
        with pytest.raises(RtpError, match=f"^{message}$"):
            parse_rtcp(data)

    def test_compound_length_is_limited(self) -> None:
        with pytest.raises(RtpError, match="more than 64 packets"):
            parse_rtcp(RtcpReceiverReport(1).serialize() * 65)


def test_report_block_packets_lost_is_24_bit_signed() -> None:
    with pytest.raises(ValueError, match="24-bit"):
        RtcpReportBlock(1, 0, 1 << 23, 0, 0)
    block = RtcpReportBlock(1, 0, -(1 << 23), 0, 0)
    assert RtcpReportBlock.parse(block.serialize(), 0) == block


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    RtcpReportBlock, u32, st.integers(0, 255), st.integers(-(1 << 23), (1 << 23) - 1), u32, u32,
    u32, u32,
)  # fmt: skip
words = st.binary(max_size=16).map(lambda b: b[: len(b) // 4 * 4])
rtcp_packets = st.one_of(
    st.builds(RtcpSenderReport, u32, st.integers(0, (1 << 64) - 1), u32, u32, u32,
              st.lists(blocks, max_size=3).map(tuple), words),
    st.builds(RtcpReceiverReport, u32, st.lists(blocks, max_size=3).map(tuple), words),
    st.builds(RtcpSdes, st.lists(st.builds(
        RtcpSdesChunk, u32, st.lists(st.tuples(st.integers(1, 8), st.binary(max_size=20)),
                                     max_size=3).map(tuple)), max_size=3).map(tuple)),
    st.builds(RtcpBye, st.lists(u32, max_size=4).map(tuple), st.binary(max_size=20)),
    st.builds(RtcpUnknown, st.integers(204, 207), st.integers(0, 31), words),
)  # fmt: skip


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_rtcp(serialize_rtcp(packets)) == packets


@given(st.binary(max_size=120))
def test_any_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        parse_rtcp(data)
