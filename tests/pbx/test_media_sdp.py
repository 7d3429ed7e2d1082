"""Tests for callwatch.pbx.media_sdp: what a leg's SDP says, and SDP that points at the relay.

Bodies are real shapes: SIPp's PCMU offer, a RingCentral multi-codec offer, an SDES offer as the
RingCentral softphone SDK sends it, and hold offers. Every SDP we produce is round-tripped
through ``SessionDescription.parse``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.media.aio import Endpoint
from callwatch.pbx.media_sdp import (
    LegMedia,
    SdpError,
    audio_index,
    is_hold,
    leg_media,
    parse_sdp,
    relay_sdp,
    with_direction,
)
from callwatch.sip.sdp import Connection, Crypto, Direction, SessionDescription

DATA = Path(__file__).parent.parent / "sip" / "data"
KEY = bytes(range(30))
"""The SDES key||salt of the offers below (``inline:AAECAwQF…``)."""
KEY_B64 = base64.b64encode(KEY).decode()
RELAY_KEY = bytes(30)
PLAIN = Endpoint(stream_id=1, host="127.0.0.1", port=20000, rtcp_port=20001, rtcp_mux=False)
MUXED = Endpoint(stream_id=2, host="127.0.0.1", port=20002, rtcp_port=20002, rtcp_mux=True)
SECURE = Endpoint(
    stream_id=3, host="127.0.0.1", port=20004, rtcp_port=20005, rtcp_mux=False, local_key=RELAY_KEY
)


def sdp(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


SIPP_OFFER = (DATA / "sipp_uac.sdp").read_bytes()
RC_OFFER = sdp(
    "v=0",
    "o=- 4852947655924738196 4477495385376493473 IN IP4 104.245.57.182",
    "s=SmcSip",
    "c=IN IP4 104.245.57.182",
    "t=0 0",
    "m=audio 50400 RTP/AVP 111 9 0 8 109 101",
    "a=rtpmap:111 OPUS/48000/2",
    "a=fmtp:111 useinbandfec=1",
    "a=rtcp-fb:111 ccm tmmbr",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:109 OPUS/16000",
    "a=fmtp:109 useinbandfec=1",
    "a=rtcp-fb:109 ccm tmmbr",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=rtcp:50411",
    "a=rtcp-mux",
    "a=ptime:20",
    "a=sendrecv",
)
SRTP_OFFER = sdp(
    "v=0",
    "o=- 1700000000123 1 IN IP4 192.0.2.10",
    "s=rc-softphone-ts",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "m=audio 31416 RTP/SAVP 109 111 0 101",
    "a=rtpmap:109 OPUS/16000",
    "a=rtpmap:111 OPUS/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=sendrecv",
    f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
)
HOLD_OFFER = sdp(
    "v=0",
    "o=user1 53655765 2353687638 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=sendonly",
)


def roundtrip(sd: SessionDescription) -> SessionDescription:
    again = SessionDescription.parse(sd.serialize())
    assert again == sd
    return again


class TestParseSdp:
    """Any failure to parse is a 400 for the leg."""

    def test_real_bodies_parse(self) -> None:
        for body in (SIPP_OFFER, RC_OFFER, SRTP_OFFER, HOLD_OFFER):
            roundtrip(parse_sdp(body))

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "malformed SDP: SDP body is empty"),
            (b"hello", "malformed SDP: line 1: expected <type>=<value>, got 'hello'"),
            (sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "m=audio 4000 RTP/AVP 0"),
             "malformed SDP: no c= line for m= line 1 nor at session level"),
            (SIPP_OFFER.replace(b"a=rtpmap:0 PCMU/8000", b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 x"),
             "malformed SDP: line 7: a=crypto key-param 'x' is not <method>:<info>"),
            (b"v=0\r\n\xff\r\n", "malformed SDP: SDP body is not UTF-8 (byte 5)"),
        ],
    )  # fmt: skip
    def test_malformed_body_is_400(self, body: bytes, message: str) -> None:
        with pytest.raises(SdpError) as caught:
            parse_sdp(body)
        assert caught.value.status == 400
        assert str(caught.value) == message

    def test_oversized_body_is_400(self) -> None:
        with pytest.raises(SdpError, match="exceeds") as caught:
            parse_sdp(SIPP_OFFER + b"a=x:" + b"y" * 70_000 + b"\r\n")
        assert caught.value.status == 400

    @settings(max_examples=150, deadline=None)
    @given(
        body=st.sampled_from([SIPP_OFFER, RC_OFFER, SRTP_OFFER, HOLD_OFFER]),
        cut=st.integers(min_value=0, max_value=800),
        junk=st.binary(max_size=12),
    )
    def test_damaged_bodies_give_a_description_or_sdp_error(
        self, body: bytes, cut: int, junk: bytes
    ) -> None:
        """Fuzz: splice junk into a real body; only SdpError (400 or 488) may come out."""
        damaged = body[:cut] + junk + body[cut + len(junk) :]
        try:
            sd = parse_sdp(damaged)
            media = leg_media(sd)
        except SdpError as exc:
            assert exc.status in (400, 488)
            return
        assert isinstance(media, LegMedia)
        roundtrip(relay_sdp(sd, SECURE, session_id=1, version=1, srtp=True))


class TestRfc3264Section5LegMedia:
    """Reading the first active audio stream of a leg's offer or answer."""

    def test_sipp_pcmu_offer(self) -> None:
        assert leg_media(parse_sdp(SIPP_OFFER)) == LegMedia(
            address=("127.0.0.1", 6000),
            rtcp=("127.0.0.1", 6001),
            rtcp_mux=False,
            srtp=False,
            key=None,
            crypto_tag=1,
            direction=Direction.SENDRECV,
            clock_rate=8000,
        )

    def test_ringcentral_multi_codec_offer(self) -> None:
        """RFC 3605 ``a=rtcp`` port, RFC 5761 ``a=rtcp-mux``, clock rate of OPUS/48000/2."""
        assert leg_media(parse_sdp(RC_OFFER)) == LegMedia(
            address=("104.245.57.182", 50400),
            rtcp=("104.245.57.182", 50411),
            rtcp_mux=True,
            srtp=False,
            key=None,
            crypto_tag=1,
            direction=Direction.SENDRECV,
            clock_rate=48000,
        )

    @pytest.mark.parametrize(
        ("formats", "rtpmaps", "clock_rate"),
        [
            ("9 0", (), 8000),  # G722 is 8000 on the RTP clock (RFC 3551 §4.5.2)
            ("109 0", ("a=rtpmap:109 OPUS/16000",), 16000),
            ("0 111", ("a=rtpmap:111 OPUS/48000/2",), 8000),  # only the first codec counts
            ("96 0", (), 8000),  # dynamic type without rtpmap: the default
        ],
    )
    def test_clock_rate_of_the_first_codec(
        self, formats: str, rtpmaps: tuple[str, ...], clock_rate: int
    ) -> None:
        body = sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
            f"m=audio 4000 RTP/AVP {formats}", *rtpmaps,
        )  # fmt: skip
        assert leg_media(parse_sdp(body)).clock_rate == clock_rate

    def test_sdes_srtp_offer(self) -> None:
        """RFC 4568: the key||salt of the first AES_CM_128_HMAC_SHA1_80 line, with its tag."""
        media = leg_media(parse_sdp(SRTP_OFFER))
        assert media.srtp
        assert media.key == KEY
        assert media.crypto_tag == 1
        assert media.clock_rate == 16000
        assert media.address == ("192.0.2.10", 31416)

    def test_ringcentral_softphone_srtp_answer(self) -> None:
        media = leg_media(parse_sdp((DATA / "ringcentral_softphone_srtp_answer.sdp").read_bytes()))
        assert (media.srtp, media.key, media.crypto_tag) == (True, KEY, 1)

    def test_first_acceptable_crypto_line_wins(self) -> None:
        other = base64.b64encode(bytes(range(100, 146))).decode()
        body = SRTP_OFFER.replace(
            b"a=crypto:1 AES_CM_128_HMAC_SHA1_80",
            f"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{other}\r\n"
            f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{base64.b64encode(bytes(30)).decode()}\r\n"
            "a=crypto:7 AES_CM_128_HMAC_SHA1_80".encode(),
        )
        media = leg_media(parse_sdp(body))
        assert (media.key, media.crypto_tag) == (KEY, 7)

    def test_savpf_with_sdes_is_srtp(self) -> None:
        body = SRTP_OFFER.replace(b"RTP/SAVP", b"RTP/SAVPF")
        assert leg_media(parse_sdp(body)).srtp

    def test_media_level_connection_wins(self) -> None:
        body = SIPP_OFFER.replace(
            b"m=audio 6000 RTP/AVP 0\r\n", b"m=audio 6000 RTP/AVP 0\r\nc=IN IP4 192.0.2.77\r\n"
        )
        media = leg_media(parse_sdp(body))
        assert media.address == ("192.0.2.77", 6000)
        assert media.rtcp == ("192.0.2.77", 6001)

    @pytest.mark.parametrize(
        "connection", ["c=IN IP4 0.0.0.0", "c=IN IP6 ::", "c=IN IP6 0:0:0:0:0:0:0:0"]
    )
    def test_unspecified_address_is_no_address(self, connection: str) -> None:
        """RFC 3264 §8.4 (RFC 2543 hold): media must not be sent to 0.0.0.0."""
        body = SIPP_OFFER.replace(b"c=IN IP4 127.0.0.1", connection.encode())
        media = leg_media(parse_sdp(body))
        assert (media.address, media.rtcp) == (None, None)

    def test_host_name_is_kept_as_is(self) -> None:
        body = SIPP_OFFER.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 media.example.com")
        assert leg_media(parse_sdp(body)).address == ("media.example.com", 6000)

    def test_rtcp_attribute_with_an_address(self) -> None:
        body = RC_OFFER.replace(b"a=rtcp:50411", b"a=rtcp:50411 IN IP4 104.245.57.190")
        assert leg_media(parse_sdp(body)).rtcp == ("104.245.57.190", 50411)

    @pytest.mark.parametrize(
        ("direction_lines", "expected"),
        [
            ((), Direction.SENDRECV),
            (("a=sendonly",), Direction.SENDONLY),
            (("a=inactive",), Direction.INACTIVE),
            (("a=recvonly",), Direction.RECVONLY),
        ],
    )
    def test_media_level_direction(
        self, direction_lines: tuple[str, ...], expected: Direction
    ) -> None:
        body = SIPP_OFFER + sdp(*direction_lines)
        assert leg_media(parse_sdp(body)).direction is expected

    def test_session_level_direction_is_the_fallback(self) -> None:
        """RFC 8866 §6.7: a session-level direction applies to m-lines without their own."""
        session_hold = SIPP_OFFER.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
        assert leg_media(parse_sdp(session_hold)).direction is Direction.SENDONLY
        overridden = session_hold + b"a=sendrecv\r\n"
        assert leg_media(parse_sdp(overridden)).direction is Direction.SENDRECV

    def test_hold_offer(self) -> None:
        media = leg_media(parse_sdp(HOLD_OFFER))
        assert media.direction is Direction.SENDONLY
        assert is_hold(media.direction)
        assert media.address == ("127.0.0.1", 6000)


class TestRfc3264Section6NotAcceptable:
    """What the B2BUA cannot carry is a 488."""

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (RC_OFFER.replace(b"RTP/AVP", b"UDP/TLS/RTP/SAVPF"),
             "unsupported media transport UDP/TLS/RTP/SAVPF"),
            (SIPP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP"),
             "RTP/SAVP offered without an AES_CM_128_HMAC_SHA1_80 a=crypto line"),
            (SRTP_OFFER.replace(b"AES_CM_128_HMAC_SHA1_80", b"AES_CM_128_HMAC_SHA1_32"),
             "RTP/SAVP offered without an AES_CM_128_HMAC_SHA1_80 a=crypto line"),
            (SIPP_OFFER.replace(b"m=audio 6000", b"m=audio 0"),
             "no active audio stream in the SDP"),
            (SIPP_OFFER.replace(b"m=audio 6000 RTP/AVP 0", b"m=video 6000 RTP/AVP 31"),
             "no active audio stream in the SDP"),
            (SIPP_OFFER.replace(b"m=audio 6000 RTP/AVP 0", b"m=audio 6000 udp t38"),
             "unsupported media transport udp"),
        ],
    )  # fmt: skip
    def test_488(self, body: bytes, message: str) -> None:
        with pytest.raises(SdpError) as caught:
            leg_media(parse_sdp(body))
        assert caught.value.status == 488
        assert str(caught.value) == message

    def test_no_media_at_all(self) -> None:
        sd = parse_sdp(sdp("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"))
        with pytest.raises(SdpError) as caught:
            audio_index(sd)
        assert caught.value.status == 488

    def test_first_active_audio_stream_is_used(self) -> None:
        body = sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
            "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000",
            "m=audio 0 RTP/AVP 0",
            "m=audio 4002 RTP/AVP 8",
        )  # fmt: skip
        sd = parse_sdp(body)
        assert audio_index(sd) == 2
        assert leg_media(sd).address == ("192.0.2.1", 4002)


class TestRelaySdp:
    """Codec-transparent re-pointing at the relay (RFC 3264 §8 origin, RFC 4568 crypto)."""

    def test_ringcentral_offer_to_a_plain_leg(self) -> None:
        """The whole body: codecs, fmtp and telephone-event kept exactly; transport rewritten."""
        relayed = relay_sdp(parse_sdp(RC_OFFER), PLAIN, session_id=3920, version=1, srtp=False)
        assert relayed.serialize() == sdp(
            "v=0",
            "o=callwatch 3920 1 IN IP4 127.0.0.1",
            "s=callwatch",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 111 9 0 8 109 101",
            "a=rtpmap:111 OPUS/48000/2",
            "a=fmtp:111 useinbandfec=1",
            "a=rtcp-fb:111 ccm tmmbr",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:109 OPUS/16000",
            "a=fmtp:109 useinbandfec=1",
            "a=rtcp-fb:109 ccm tmmbr",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        )
        roundtrip(relayed)

    def test_rtcp_mux_is_offered_when_the_endpoint_muxes(self) -> None:
        relayed = relay_sdp(parse_sdp(RC_OFFER), MUXED, session_id=1, version=1, srtp=False)
        media = roundtrip(relayed).media[0]
        assert media.port == 20002
        assert [n for n, _ in media.attributes].count("rtcp-mux") == 1
        assert media.rtcp is None
        relayed = relay_sdp(parse_sdp(SIPP_OFFER), MUXED, session_id=1, version=1, srtp=False)
        assert relayed.media[0].rtcp_mux

    def test_sipp_offer_to_an_srtp_leg(self) -> None:
        relayed = relay_sdp(
            parse_sdp(SIPP_OFFER), SECURE, session_id=77, version=3, srtp=True, crypto_tag=4
        )
        assert relayed.serialize() == sdp(
            "v=0",
            "o=callwatch 77 3 IN IP4 127.0.0.1",
            "s=callwatch",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            "m=audio 20004 RTP/SAVP 0",
            "a=rtpmap:0 PCMU/8000",
            f"a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(RELAY_KEY).decode()}",
        )
        media = leg_media(roundtrip(relayed))
        assert (media.srtp, media.key, media.crypto_tag) == (True, RELAY_KEY, 4)

    def test_srtp_offer_gets_our_key_in_place_of_theirs(self) -> None:
        relayed = relay_sdp(parse_sdp(SRTP_OFFER), SECURE, session_id=1, version=1, srtp=True)
        [crypto] = roundtrip(relayed).media[0].crypto
        assert crypto == Crypto(
            1, "AES_CM_128_HMAC_SHA1_80", f"inline:{base64.b64encode(RELAY_KEY).decode()}"
        )
        assert relayed.media[0].formats == ("109", "111", "0", "101")

    def test_srtp_offer_to_a_plain_leg(self) -> None:
        relayed = relay_sdp(parse_sdp(SRTP_OFFER), PLAIN, session_id=1, version=1, srtp=False)
        media = roundtrip(relayed).media[0]
        assert media.proto == "RTP/AVP"
        assert media.crypto == []
        assert leg_media(relayed).srtp is False

    def test_srtp_without_a_relay_key_is_500(self) -> None:
        with pytest.raises(SdpError) as caught:
            relay_sdp(parse_sdp(SIPP_OFFER), PLAIN, session_id=1, version=1, srtp=True)
        assert caught.value.status == 500

    @pytest.mark.parametrize("version", [0, 1, 2, 2**62])
    def test_origin_version_is_as_given(self, version: int) -> None:
        relayed = relay_sdp(parse_sdp(SIPP_OFFER), PLAIN, session_id=9, version=version, srtp=False)
        assert (roundtrip(relayed).origin.sess_id, relayed.origin.sess_version) == (9, version)

    def test_ipv6_endpoint(self) -> None:
        endpoint = Endpoint(
            stream_id=4, host="2001:db8::5", port=20006, rtcp_port=20007, rtcp_mux=False
        )
        relayed = relay_sdp(parse_sdp(SIPP_OFFER), endpoint, session_id=1, version=1, srtp=False)
        assert relayed.connection == Connection("IN", "IP6", "2001:db8::5")
        assert b"o=callwatch 1 1 IN IP6 2001:db8::5\r\n" in roundtrip(relayed).serialize()

    def test_direction_is_kept_or_replaced(self) -> None:
        hold = parse_sdp(HOLD_OFFER)
        kept = relay_sdp(hold, PLAIN, session_id=1, version=1, srtp=False)
        assert kept.direction_of(kept.media[0]) is Direction.SENDONLY
        answered = relay_sdp(
            hold, PLAIN, session_id=1, version=1, srtp=False, direction=Direction.RECVONLY
        )
        media = roundtrip(answered).media[0]
        assert media.explicit_direction is Direction.RECVONLY
        assert [n for n, _ in media.attributes if n in {d.value for d in Direction}] == ["recvonly"]
        assert media.fmtp == {101: "0-16"}

    def test_session_level_direction_survives(self) -> None:
        body = SIPP_OFFER.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
        relayed = relay_sdp(parse_sdp(body), PLAIN, session_id=1, version=1, srtp=False)
        assert relayed.direction_of(roundtrip(relayed).media[0]) is Direction.SENDONLY

    def test_other_media_lines_are_rejected_with_port_0(self) -> None:
        """RFC 3264 §6: the m-line count stays; streams we do not carry get port 0."""
        body = sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
            "m=video 5000 RTP/AVP 96", "c=IN IP4 192.0.2.9", "a=rtpmap:96 H264/90000",
            "m=audio 4002 RTP/AVP 8", "c=IN IP4 192.0.2.8", "a=rtpmap:8 PCMA/8000",
            "m=audio 4004 RTP/AVP 0",
            "m=application 5060 udp sip",
        )  # fmt: skip
        relayed = roundtrip(relay_sdp(parse_sdp(body), PLAIN, session_id=1, version=1, srtp=False))
        assert [(m.media, m.port, m.connection) for m in relayed.media] == [
            ("video", 0, None),
            ("audio", 20000, None),
            ("audio", 0, None),
            ("application", 0, None),
        ]
        assert relayed.media[0].formats == ("96",)
        assert audio_index(relayed) == 1

    def test_ringcentral_monitoring_invite_second_stream_rejected(self) -> None:
        template = parse_sdp((DATA / "ringcentral_monitoring_invite.sdp").read_bytes())
        relayed = roundtrip(relay_sdp(template, PLAIN, session_id=1, version=1, srtp=False))
        assert [m.port for m in relayed.media] == [20000, 0]
        assert relayed.media[0].info == template.media[0].info  # the party id stays readable
        assert relayed.media[0].attributes == template.media[0].attributes

    def test_media_level_ice_and_transport_attributes_are_removed(self) -> None:
        body = SRTP_OFFER + sdp(
            "a=rtcp:31417",
            "a=rtcp-mux",
            "a=ice-ufrag:F7gI",
            "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
            "a=candidate:1 1 UDP 2130706431 192.0.2.10 31416 typ host",
            "a=candidate:1 2 UDP 2130706430 192.0.2.10 31417 typ host",
        )
        relayed = roundtrip(relay_sdp(parse_sdp(body), SECURE, session_id=1, version=1, srtp=True))
        names = [n for n, _ in relayed.media[0].attributes]
        assert names == ["rtpmap", "rtpmap", "rtpmap", "rtpmap", "fmtp", "sendrecv", "crypto"]

    def test_session_level_group_and_ice_lite_are_removed(self) -> None:
        body = SIPP_OFFER.replace(
            b"t=0 0\r\n", b"t=0 0\r\na=group:BUNDLE 0\r\na=ice-lite\r\na=tool:sipp\r\n"
        )
        relayed = roundtrip(relay_sdp(parse_sdp(body), PLAIN, session_id=1, version=1, srtp=False))
        assert relayed.attributes == (("tool", "sipp"),)

    def test_session_level_ice_credentials_are_removed(self) -> None:
        body = SIPP_OFFER.replace(
            b"t=0 0\r\n", b"t=0 0\r\na=ice-pwd:31ec21eb38b2ec6d36e8dc7b\r\na=ice-ufrag:0f2fdd34\r\n"
        )
        relayed = relay_sdp(parse_sdp(body), PLAIN, session_id=1, version=1, srtp=False)
        assert not relayed.has_attribute("ice-ufrag")
        assert not relayed.has_attribute("ice-pwd")

    @settings(max_examples=60, deadline=None)
    @given(
        body=st.sampled_from([SIPP_OFFER, RC_OFFER, SRTP_OFFER, HOLD_OFFER]),
        endpoint=st.sampled_from([MUXED, SECURE]),
        version=st.integers(min_value=0, max_value=2**63 - 1),
        tag=st.integers(min_value=1, max_value=999_999_999),
        direction=st.none() | st.sampled_from(Direction),
    )
    def test_relayed_sdp_describes_the_endpoint(
        self,
        body: bytes,
        endpoint: Endpoint,
        version: int,
        tag: int,
        direction: Direction | None,
    ) -> None:
        """Property: codecs are the template's; leg_media of the result is the endpoint."""
        template = parse_sdp(body)
        srtp = endpoint.local_key is not None
        relayed = roundtrip(
            relay_sdp(
                template,
                endpoint,
                session_id=5,
                version=version,
                srtp=srtp,
                crypto_tag=tag,
                direction=direction,
            )
        )
        original, ours = template.media[0], relayed.media[0]
        assert ours.formats == original.formats
        assert ours.rtpmaps == original.rtpmaps
        assert ours.fmtp == original.fmtp
        media = leg_media(relayed)
        assert media.address == (endpoint.host, endpoint.port)
        assert (media.rtcp_mux, media.srtp, media.key) == (
            endpoint.rtcp_mux,
            srtp,
            endpoint.local_key,
        )
        assert media.crypto_tag == (tag if srtp else 1)
        assert media.direction is (direction or template.direction_of(original))
        assert relayed.origin.sess_version == version


class TestWithDirection:
    def test_sets_the_audio_direction_and_the_version(self) -> None:
        offer = parse_sdp(SIPP_OFFER)
        held = roundtrip(with_direction(offer, Direction.SENDONLY, version=2353687638))
        assert held.media[0].explicit_direction is Direction.SENDONLY
        assert held.origin.sess_version == 2353687638
        assert held.origin.sess_id == offer.origin.sess_id
        resumed = with_direction(parse_sdp(HOLD_OFFER), Direction.SENDRECV, version=9)
        assert [n for n, _ in resumed.media[0].attributes][-1] == "sendrecv"
        assert not resumed.media[0].has_attribute("sendonly")
        assert is_hold(leg_media(resumed).direction) is False

    def test_only_the_audio_stream_changes(self) -> None:
        body = sdp(
            "v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
            "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=sendrecv",
            "m=audio 4002 RTP/AVP 8",
        )  # fmt: skip
        changed = with_direction(parse_sdp(body), Direction.INACTIVE, version=2)
        assert changed.media[0] == parse_sdp(body).media[0]
        assert changed.media[1].explicit_direction is Direction.INACTIVE


@pytest.mark.parametrize(
    ("direction", "hold"),
    [
        (Direction.SENDRECV, False),
        (Direction.RECVONLY, False),
        (Direction.SENDONLY, True),
        (Direction.INACTIVE, True),
    ],
)
def test_is_hold(direction: Direction, hold: bool) -> None:
    """RFC 3264 §8.4: a party holds by offering sendonly (or inactive)."""
    assert is_hold(direction) is hold
