"""RTP packets (RFC 3550 §5) and the RFC 5761 §4 demultiplexing checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwatch.media.rtp import (
    SEQ_TS_SSRC,
    RtpError,
    RtpExtension,
    RtpHeader,
    RtpPacket,
    is_rtcp,
    is_rtp,
)

# A PCMU packet as softphones send it: V=2, M=1, PT=0, seq 0x1234, ts 0xDEADBEEF, SSRC 0xCAFEBABE.
PCMU = bytes.fromhex("80801234deadbeefcafebabe") + bytes(range(160))


class TestParse:
    def test_fixed_header(self) -> None:
        packet = RtpPacket.parse(PCMU)
        assert packet.header == RtpHeader(
            payload_type=0, sequence_number=0x1234, timestamp=0xDEADBEEF, ssrc=0xCAFEBABE,
            marker=True,
        )  # fmt: skip
        assert packet.payload == bytes(range(160))
        assert packet.padding_size == 0
        assert packet.serialize() == PCMU

    def test_csrc_extension_and_padding_round_trip(self) -> None:
        header = RtpHeader(
            payload_type=111, sequence_number=65535, timestamp=0, ssrc=1, csrc=(2, 3),
            extension=RtpExtension(0xBEDE, bytes.fromhex("10ff0000")),
        )  # fmt: skip
        packet = RtpPacket(header, b"opus", padding_size=4)
        data = packet.serialize()
        assert data[0] == 0x80 | 0x20 | 0x10 | 2
        assert data[-1] == 4
        assert RtpPacket.parse(data) == packet
        assert RtpHeader.parse(data).size == 12 + 8 + 8

    def test_seq_ts_ssrc_struct_reads_offset_2(self) -> None:
        assert SEQ_TS_SSRC.unpack_from(PCMU, 2) == (0x1234, 0xDEADBEEF, 0xCAFEBABE)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"\x80\x00", "RTP packet length is less than 12 bytes"),
            (bytes.fromhex("400000010000000000000001"), "RTP packet has invalid version 1"),
            (bytes.fromhex("82000001000000000000000100000001"), "RTP packet has truncated CSRC"),
            (bytes.fromhex("900000010000000000000001") + b"\xbe\xde", (
                "RTP packet has truncated extension profile / length")),
            (bytes.fromhex("900000010000000000000001beef0002") + bytes(4), (
                "RTP packet has truncated extension value")),
            (bytes.fromhex("a00000010000000000000001") + b"ab\x00", (
                "RTP packet padding length is invalid")),
            (bytes.fromhex("a00000010000000000000001") + b"ab\x04", (
                "RTP packet padding length is invalid")),
        ],
    )  # fmt: skip
    def test_errors_are_precise(self, data: bytes, message: str) -> None:
        with pytest.raises(RtpError, match=f"^{message}$"):
            RtpPacket.parse(data)

    def test_rtp_error_is_value_error(self) -> None:
        assert issubclass(RtpError, ValueError)


class TestConstruction:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"payload_type": 128},
            {"sequence_number": 65536},
            {"timestamp": -1},
            {"ssrc": 1 << 32},
            {"csrc": tuple(range(16))},
        ],
    )
    def test_out_of_range_fields_are_refused(self, kwargs: dict[str, object]) -> None:
        fields: dict[str, object] = {
            "payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0,
        }  # fmt: skip
        fields.update(kwargs)
        with pytest.raises(ValueError, match="RTP"):
            RtpHeader(**fields)  # type: ignore[arg-type]

    def test_extension_must_be_words(self) -> None:
        with pytest.raises(ValueError, match="32-bit words"):
            RtpExtension(1, b"abc")


class TestDemux:
    """RFC 5761 §4: the second octet tells RTP from RTCP on a shared port."""

    @pytest.mark.parametrize(
        ("second", "rtp", "rtcp"),
        [(0, True, False), (0x80, True, False), (101, True, False), (191, True, False),
         (192, False, True), (200, False, True), (201, False, True), (223, False, True),
         (224, True, False)],
    )  # fmt: skip
    def test_second_octet(self, second: int, rtp: bool, rtcp: bool) -> None:
        data = bytes([0x80, second]) + bytes(10)
        assert is_rtp(data) is rtp
        assert is_rtcp(data) is rtcp

    @pytest.mark.parametrize("data", [b"hello", b"", bytes(12), b"\x40" + bytes(11)])
    def test_garbage_is_neither(self, data: bytes) -> None:
        assert not is_rtp(data)
        assert not is_rtcp(data)


headers = st.builds(
    RtpHeader,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none() | st.builds(
        RtpExtension, st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b[: len(b) & ~3])
    ),
)  # fmt: skip
packets = st.builds(
    RtpPacket, headers, st.binary(max_size=64), st.integers(0, 255).map(lambda n: n if n else 0)
)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    assert RtpPacket.parse(packet.serialize()) == packet


@given(packets)
def test_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


@given(packets)
def test_fast_checks_agree_with_the_parser(packet: RtpPacket) -> None:
    data = packet.serialize()
    assert is_rtp(data) is not (192 <= data[1] <= 223)
    assert SEQ_TS_SSRC.unpack_from(data, 2) == (
        packet.header.sequence_number,
        packet.header.timestamp,
        packet.header.ssrc,
    )
