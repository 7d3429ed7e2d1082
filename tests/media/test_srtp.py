"""SRTP/SRTCP contexts (RFC 3711, SDES keys per RFC 4568) over pylibsrtp."""

from __future__ import annotations

import pytest

from callwatch.media.rtcp import RtcpReceiverReport
from callwatch.media.rtp import RtpHeader, RtpPacket
from callwatch.media.srtp import (
    SRTP_KEY_SALT_LENGTH,
    SrtpContext,
    SrtpDirection,
    SrtpError,
    generate_key_salt,
)

KEY = bytes(range(30))
OUT, IN = SrtpDirection.OUTBOUND, SrtpDirection.INBOUND


def rtp(seq: int, payload: bytes = b"\xd5" * 160, ssrc: int = 0x1234) -> bytes:
    return RtpPacket(RtpHeader(0, seq, seq * 160, ssrc), payload).serialize()


def test_rtp_round_trip() -> None:
    sender, receiver = SrtpContext(KEY, OUT), SrtpContext(KEY, IN)
    plain = rtp(1)
    protected = sender.protect(plain)
    assert protected is not None
    assert len(protected) == len(plain) + 10  # HMAC-SHA1-80 tag
    assert protected[12:172] != plain[12:]
    assert receiver.unprotect(protected) == plain


def test_rtcp_round_trip() -> None:
    sender, receiver = SrtpContext(KEY, OUT), SrtpContext(KEY, IN)
    plain = RtcpReceiverReport(0x1234).serialize()
    protected = sender.protect_rtcp(plain)
    assert protected is not None
    assert receiver.unprotect_rtcp(protected) == plain


def test_tampered_packet_is_counted_not_raised() -> None:
    sender, receiver = SrtpContext(KEY, OUT), SrtpContext(KEY, IN)
    protected = bytearray(sender.protect(rtp(1)) or b"")
    protected[20] ^= 1
    assert receiver.unprotect(bytes(protected)) is None
    assert receiver.unprotect(rtp(2)) is None  # plain RTP on an SRTP leg
    assert receiver.failures == 2
    assert "authentication" in receiver.last_error


def test_replay_is_rejected() -> None:
    sender, receiver = SrtpContext(KEY, OUT), SrtpContext(KEY, IN)
    protected = sender.protect(rtp(7))
    assert protected is not None
    assert receiver.unprotect(protected) is not None
    assert receiver.unprotect(protected) is None
    assert "replay" in receiver.last_error


def test_two_streams_sharing_a_key_stay_independent() -> None:
    """Each context has its own libsrtp session: replay state is never shared."""
    sender_a, sender_b = SrtpContext(KEY, OUT), SrtpContext(KEY, OUT)
    receiver_a, receiver_b = SrtpContext(KEY, IN), SrtpContext(KEY, IN)
    packets = [sender_a.protect(rtp(seq)) for seq in range(1, 6)]
    assert [sender_b.protect(rtp(seq)) for seq in range(1, 6)] == packets  # same key, same SSRC
    for packet in packets:
        assert packet is not None
        assert receiver_a.unprotect(packet) is not None
    # Stream B has seen none of them: its replay window is its own.
    for packet in packets:
        assert packet is not None
        assert receiver_b.unprotect(packet) is not None
    assert receiver_a.unprotect(packets[0] or b"") is None
    assert (receiver_a.failures, receiver_b.failures) == (1, 0)


def test_duplicates_can_be_protected_again() -> None:
    """A relay re-protects what the far side sent, duplicates included."""
    sender = SrtpContext(KEY, OUT)
    assert sender.protect(rtp(3)) is not None
    assert sender.protect(rtp(3)) is not None


def test_oversized_packet_is_counted() -> None:
    sender = SrtpContext(KEY, OUT)
    assert sender.protect(rtp(1, payload=bytes(1400))) is None
    assert sender.failures == 1


def test_contract_errors() -> None:
    with pytest.raises(SrtpError, match="30 bytes"):
        SrtpContext(bytes(16), IN)
    with pytest.raises(SrtpError, match="inbound"):
        SrtpContext(KEY, IN).protect(rtp(1))
    with pytest.raises(SrtpError, match="outbound"):
        SrtpContext(KEY, OUT).unprotect(rtp(1))
    with pytest.raises(SrtpError, match="inbound"):
        SrtpContext(KEY, IN).protect_rtcp(b"")
    with pytest.raises(SrtpError, match="outbound"):
        SrtpContext(KEY, OUT).unprotect_rtcp(b"")


def test_generated_keys_are_fresh() -> None:
    first, second = generate_key_salt(), generate_key_salt()
    assert len(first) == SRTP_KEY_SALT_LENGTH
    assert first != second
