"""Tests for callwatch.sip.sdp, sdp_fields and offer_answer (RFC 8866, RFC 4568, RFC 3264)."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.sip.errors import ParseError
from callwatch.sip.offer_answer import (
    G722,
    OPUS,
    OPUS_16000,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecSpec,
    answer_crypto,
    build_answer,
    build_session,
    negotiate_dtmf,
    negotiate_media,
    offer_media,
)
from callwatch.sip.sdp import (
    MAX_SDP_SIZE,
    Bandwidth,
    Connection,
    Crypto,
    Direction,
    InlineKey,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    encode_info_params,
    info_params,
    party_id_from_info,
)

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("*.sdp"))
KEY = bytes(range(30))  # AES_CM_128 master key || salt, 30 bytes
PARTY_7 = "p-a7d5f98a6e0d3e218735a44d0be1a1209-7"
PARTY_8 = "p-a7d5f98a6e0d3e218735a44d0be1a1209-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load(name: str) -> SessionDescription:
    return SessionDescription.parse((DATA / name).read_bytes())


def sdp(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


HEAD = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0")


def offer(*media_lines: str, session: tuple[str, ...] = ()) -> SessionDescription:
    return SessionDescription.parse(sdp(*HEAD, *session, *media_lines))


class TestGoldenFixtures:
    """RFC 8866 §5: every captured body parses and round-trips."""

    @pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
    def test_round_trip(self, path: Path) -> None:
        parsed = SessionDescription.parse(path.read_bytes())
        assert SessionDescription.parse(parsed.serialize()) == parsed
        assert bytes(parsed) == parsed.serialize()
        assert SessionDescription.parse(bytes(parsed)).serialize() == parsed.serialize()

    @pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
    def test_serialize_uses_crlf(self, path: Path) -> None:
        text = SessionDescription.parse(path.read_bytes()).serialize().decode()
        assert text.endswith("\r\n")
        assert "\n" not in text.replace("\r\n", "")

    @pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
    def test_lf_and_crlf_agree(self, path: Path) -> None:
        lines = path.read_text().splitlines()
        assert SessionDescription.parse("\n".join(lines)) == SessionDescription.parse(
            "\r\n".join(lines) + "\r\n"
        )

    def test_crlf_fixture_serializes_byte_exact(self) -> None:
        raw = (DATA / "sipp_uac.sdp").read_bytes()
        assert SessionDescription.parse(raw).serialize() == raw


class TestRingCentralMonitoringInvite:
    """The monitoring INVITE body from RingCentral's documentation, two m=audio lines."""

    def test_session_level(self) -> None:
        sd = load("ringcentral_monitoring_invite.sdp")
        assert sd.origin == Origin(
            "-", 4852947655924738196, 4477495385376493473, "IN", "IP4", "104.245.57.182"
        )
        assert sd.session_name == "SmcSip"
        assert sd.connection == Connection("IN", "IP4", "104.245.57.182")
        assert sd.timing == (0, 0)
        assert len(sd.media) == 2

    def test_media(self) -> None:
        first, second = load("ringcentral_monitoring_invite.sdp").media
        assert (first.port, second.port) == (50400, 50402)
        assert first.proto == "RTP/AVP"
        assert first.formats == ("111", "9", "0", "18", "96", "8", "109", "101")
        assert first.payload_types == (111, 9, 0, 18, 96, 8, 109, 101)
        assert list(first.rtpmaps) == [111, 9, 0, 18, 96, 8, 109, 101]
        assert first.rtpmaps[111] == RtpMap(111, "OPUS", 48000, 2)
        assert first.rtpmaps[109] == RtpMap(109, "OPUS", 16000, None)
        assert first.rtpmaps[9] == RtpMap(9, "G722", 8000)
        assert first.fmtp == {
            111: "useinbandfec=1",
            18: "annexb=no",
            96: "mode=20",
            109: "useinbandfec=1",
            101: "0-15",
        }
        assert first.attribute_values("rtcp-fb") == ["111 ccm tmmbr", "109 ccm tmmbr"]
        assert first.direction is Direction.SENDRECV
        assert not first.is_rejected

    def test_info_lines_name_the_monitored_parties(self) -> None:
        first, second = load("ringcentral_monitoring_invite.sdp").media
        assert first.info is not None and second.info is not None
        assert party_id_from_info(first.info) == PARTY_7
        assert party_id_from_info(second.info) == PARTY_8
        assert info_params(first.info) == {
            "session-id": "s-a7d5f98a6e0d3e218735a44d0be1a1209",
            "party-id": PARTY_7,
        }

    def test_info_line_survives_round_trip_verbatim(self) -> None:
        raw = (DATA / "ringcentral_monitoring_invite.sdp").read_text()
        assert (
            raw.replace("\n", "\r\n").encode()
            == load("ringcentral_monitoring_invite.sdp").serialize()
        )


class TestOtherPeers:
    def test_ringcentral_softphone_srtp_answer(self) -> None:
        sd = load("ringcentral_softphone_srtp_answer.sdp")
        (media,) = sd.media
        assert sd.session_name == "rc-softphone-ts"
        assert sd.origin.sess_version == 0
        assert media.proto == "RTP/SAVP"
        assert media.formats == ("109", "101")
        assert media.rtpmaps[109] == RtpMap(109, "OPUS", 16000)
        assert media.fmtp == {101: "0-15"}
        (crypto,) = media.crypto
        assert crypto == Crypto(1, "AES_CM_128_HMAC_SHA1_80", f"inline:{_b64(KEY)}")
        assert crypto.inline_keys() == [InlineKey(KEY)]
        assert len(_b64(KEY)) == 40

    def test_sipp(self) -> None:
        sd = load("sipp_uac.sdp")
        assert sd.origin == Origin("user1", 53655765, 2353687637, "IN", "IP4", "127.0.0.1")
        (media,) = sd.media
        assert (media.media, media.port, media.proto, media.formats) == (
            "audio",
            6000,
            "RTP/AVP",
            ("0",),
        )
        assert media.rtpmaps == {0: RtpMap(0, "PCMU", 8000)}
        assert negotiate_media(media, [OPUS, PCMU]) is not None

    def test_baresip_answer_rejects_second_stream(self) -> None:
        sd = load("baresip_answer_reject_second.sdp")
        accepted, rejected = sd.media
        assert sd.attribute("tool") == "baresip 3.10.1"
        assert accepted.bandwidths == (Bandwidth("AS", 64),)
        assert accepted.label == "1"
        assert accepted.ptime == 20.0
        assert accepted.has_attribute("rtcp-rsize")
        assert not accepted.is_rejected
        assert rejected.is_rejected
        assert rejected.formats == ("0",)
        assert rejected.attributes == ()


class TestStaticPayloadTypes:
    """RFC 3551 §6: static payload types need no a=rtpmap."""

    def test_no_rtpmap(self) -> None:
        (media,) = offer("m=audio 4000 RTP/AVP 0 8").media
        assert media.rtpmaps == {0: RtpMap(0, "PCMU", 8000), 8: RtpMap(8, "PCMA", 8000)}
        match = negotiate_media(media, [PCMA, PCMU])
        assert match is not None and match.spec == PCMA and match.payload_type == 8

    def test_explicit_rtpmap_wins_and_unknown_dynamic_is_skipped(self) -> None:
        (media,) = offer("m=audio 4000 RTP/AVP 0 97", "a=rtpmap:0 pcmu/8000").media
        assert media.rtpmaps == {0: RtpMap(0, "pcmu", 8000)}

    def test_non_rtp_media_has_no_payload_types(self) -> None:
        (media,) = offer("m=application 9 UDP/DTLS/SCTP webrtc-datachannel").media
        assert media.payload_types == ()
        assert media.rtpmaps == {}
        assert not media.is_rtp


ERRORS = [
    (b"", "SDP body is empty"),
    (b"\r\n\r\n", "SDP body is empty"),
    (sdp("o=- 1 1 IN IP4 a", "v=0"), "line 1: SDP must start with v=, got o="),
    (sdp("v=1", *HEAD[1:]), "line 1: unsupported SDP version '1'"),
    (sdp("v=0", "hello"), "line 2: expected <type>=<value>, got 'hello'"),
    (sdp("v=0", "x=1"), "line 2: unknown line type 'x='"),
    (sdp("v=0", "", "s=-"), "line 2: expected <type>=<value>, got ''"),
    (b"v=0\r\no=- 1 1 IN IP4 a\rs=-\r\n", "line 2: NUL or bare CR inside the line"),
    (b"v=0\r\ns=\xff\r\n", "SDP body is not UTF-8 (byte 7)"),
    (sdp(*HEAD[:2], "s=-"), "missing t= line"),
    (sdp("v=0", "s=-", "t=0 0"), "missing o= line"),
    (sdp("v=0", "o=- 1 1 IN IP4 a", "t=0 0"), "missing s= line"),
    (sdp(*HEAD, "s=again"), "line 6: duplicate s= line in session description"),
    (sdp(*HEAD, "v=0"), "line 6: duplicate v= line in session description"),
    (sdp("v=0", "o=- 1 IN IP4 a", "s=-", "t=0 0"), "line 2: o= line needs 6 fields, got 5"),
    (sdp("v=0", "o=- x 1 IN IP4 a"), "line 2: o= sess-id 'x' is not an integer"),
    (sdp(*HEAD[:3], "c=IN IP4"), "line 4: c= line needs 3 fields, got 2"),
    (sdp(*HEAD, "b=AS"), "line 6: b= line 'AS' needs <bwtype>:<bandwidth>"),
    (sdp(*HEAD, "b=AS:fast"), "line 6: b= bandwidth 'fast' is not an integer"),
    (sdp(*HEAD[:4], "t=0"), "line 5: t= line needs 2 fields, got 1"),
    (
        sdp(*HEAD, "m=audio 4000"),
        "line 6: m= line 'audio 4000' needs <media> <port> <proto> <fmt>...",
    ),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP"), "line 6: m= line lists no formats"),
    (sdp(*HEAD, "m=audio 40x0 RTP/AVP 0"), "line 6: m= port '40x0' is not an integer"),
    (sdp(*HEAD, "m=audio -1 RTP/AVP 0"), "line 6: m= port '-1' is not an integer"),
    (sdp(*HEAD, "m=audio 65536 RTP/AVP 0"), "line 6: m= port 65536 is out of range (0-65535)"),
    (sdp(*HEAD, "m=audio 4000/0 RTP/AVP 0"), "line 6: m= port count 0 must be at least 1"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0 PCMU"), "line 6: m= payload type 'PCMU' is not an integer"),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 128"), "line 6: m= payload type 128 is out of range (0-127)"),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "o=- 1 1 IN IP4 a"),
        "line 7: o= line is not allowed in media description (m= line 6)",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "i=a", "i=b"),
        "line 8: duplicate i= line in media description (m= line 6)",
    ),
    (sdp(*HEAD, "a=:x"), "line 6: attribute name '' is not a valid token"),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtpmap:0"),
        "line 7: a=rtpmap '0' needs <pt> <encoding>/<clock rate>",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU"),
        "line 7: a=rtpmap encoding 'PCMU' needs <name>/<rate>[/<ch>]",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/fast"),
        "line 7: a=rtpmap clock rate 'fast' is not an integer",
    ),
    (sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtpmap"), "line 7: a=rtpmap needs a value"),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=ptime:fast"),
        "line 7: a=ptime 'fast' is not a number",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=rtcp:99999"),
        "line 7: a=rtcp port 99999 is out of range (0-65535)",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/AVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
        "line 7: a=crypto '1 AES_CM_128_HMAC_SHA1_80' needs <tag> <suite> <key-params>",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!"),
        "line 7: inline key '!!' is not base64",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\x80A"),
        "line 7: inline key '\\x80A' is not base64",
    ),
    (
        sdp(*HEAD, "m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"),
        "line 7: AES_CM_128_HMAC_SHA1_80 needs a 30-byte key||salt, got 3",
    ),
    (
        sdp(*HEAD[:3], "t=0 0", "m=audio 4000 RTP/AVP 0"),
        "no c= line for m= line 1 nor at session level",
    ),
]


class TestErrors:
    """Malformed input gives ParseError with a stable message and status 400."""

    @pytest.mark.parametrize(("data", "message"), ERRORS)
    def test_message(self, data: bytes, message: str) -> None:
        with pytest.raises(ParseError) as info:
            SessionDescription.parse(data)
        assert str(info.value) == message
        assert info.value.status_hint == 400

    def test_oversized_body(self) -> None:
        data = sdp(*HEAD) + b"a=x:" + b"y" * MAX_SDP_SIZE + b"\r\n"
        with pytest.raises(ParseError) as info:
            SessionDescription.parse(data)
        assert info.value.status_hint == 513

    def test_too_many_media(self) -> None:
        with pytest.raises(ParseError, match="more than 64 m= lines"):
            offer(*["m=audio 0 RTP/AVP 0"] * 65)

    def test_surrogate_in_str(self) -> None:
        with pytest.raises(ParseError, match="cannot be encoded"):
            SessionDescription.parse("v=0\ns=\ud800\n")

    def test_unknown_attributes_and_rejected_without_formats_are_accepted(self) -> None:
        sd = offer("m=audio 0 RTP/AVP", "a=x-vendor:anything at all", "a=flag", "a=empty:")
        (media,) = sd.media
        assert media.attributes == (("x-vendor", "anything at all"), ("flag", None), ("empty", ""))
        assert SessionDescription.parse(bytes(sd)) == sd

    def test_lenient_spacing_and_trailing_blank_lines(self) -> None:
        sd = SessionDescription.parse(sdp(*HEAD, "m=audio  4000 RTP/AVP 0 8 ") + b"\r\n\n")
        assert sd.media[0].formats == ("0", "8")


class TestExtraLines:
    """RFC 8866 §5: uninterpreted lines are kept and written in RFC order."""

    def test_order_is_normalised(self) -> None:
        sd = SessionDescription.parse(
            sdp(
                "v=0",
                "o=- 1 1 IN IP4 a",
                "s=-",
                "z=2882844526 -1h",
                "k=prompt",
                "t=1 2",
                "r=7d 1h 0 25h",
                "t=3 4",
                "p=+1 617 555-6011",
                "e=j@example.com",
                "u=http://x/",
                "i=about",
                "c=IN IP4 a",
            )
        )
        assert sd.timing == (1, 2)
        assert sd.key == "prompt"
        assert sd.extra_lines == (
            ("u", "http://x/"),
            ("e", "j@example.com"),
            ("p", "+1 617 555-6011"),
            ("r", "7d 1h 0 25h"),
            ("t", "3 4"),
            ("z", "2882844526 -1h"),
        )
        assert sd.serialize() == sdp(
            "v=0",
            "o=- 1 1 IN IP4 a",
            "s=-",
            "i=about",
            "u=http://x/",
            "e=j@example.com",
            "p=+1 617 555-6011",
            "c=IN IP4 a",
            "t=1 2",
            "r=7d 1h 0 25h",
            "t=3 4",
            "z=2882844526 -1h",
            "k=prompt",
        )
        assert SessionDescription.parse(sd.serialize()) == sd

    def test_media_level_lines(self) -> None:
        sd = offer(
            "m=video 5000/2 RTP/AVP 96",
            "a=rtpmap:96 VP8/90000",
            "k=clear:x",
            "b=TIAS:9",
            "c=IN IP6 ff15::101/3",
            "i=camera",
        )
        (media,) = sd.media
        assert media.port_count == 2
        assert media.connection == Connection("IN", "IP6", "ff15::101/3")
        assert sd.connection_for(media) == media.connection
        assert media.serialize_m_line() == "video 5000/2 RTP/AVP 96"
        assert bytes(sd).endswith(
            sdp(
                "m=video 5000/2 RTP/AVP 96",
                "i=camera",
                "c=IN IP6 ff15::101/3",
                "b=TIAS:9",
                "k=clear:x",
                "a=rtpmap:96 VP8/90000",
            )
        )


class TestAttributes:
    def test_with_attribute_set_and_remove(self) -> None:
        media = MediaDescription("audio", 4000, "RTP/AVP", ("0",), attributes=(("ptime", "20"),))
        media = media.with_attribute("rtcp-mux").with_attribute("ptime", "30")
        assert media.rtcp_mux
        assert media.attribute_values("ptime") == ["20", "30"]
        media = media.with_attribute_set("ptime", "40")
        assert media.attributes == (("ptime", "40"), ("rtcp-mux", None))
        assert media.with_attribute_set("label", "x").label == "x"
        assert media.without_attribute("ptime").attributes == (("rtcp-mux", None),)

    def test_direction(self) -> None:
        media = MediaDescription("audio", 4000, "RTP/AVP", ("0",))
        assert media.direction is Direction.SENDRECV
        assert media.explicit_direction is None
        media = media.with_direction(Direction.SENDONLY).with_direction(Direction.INACTIVE)
        assert media.attributes == (("inactive", None),)
        sd = build_session(
            address="192.0.2.1",
            media=[MediaDescription("audio", 1, formats=("0",))],
            session_id=1,
            session_version=1,
        ).with_attribute("recvonly")
        assert sd.direction is Direction.RECVONLY
        assert sd.direction_of(sd.media[0]) is Direction.RECVONLY
        assert sd.direction_of(media) is Direction.INACTIVE
        assert sd.with_attribute_set("sendonly").without_attribute("recvonly").direction is (
            Direction.SENDONLY
        )

    def test_typed_views(self) -> None:
        (media,) = offer(
            "m=audio 4000 RTP/AVP 0",
            "a=rtcp:4005 IN IP4 192.0.2.9",
            "a=ptime:22.5",
            "a=fmtp:0 a=b; c=d",
        ).media
        assert media.rtcp == 4005
        assert media.ptime == 22.5
        assert media.fmtp == {0: "a=b; c=d"}
        assert media.crypto == []
        assert media.label is None

    def test_invalid_attribute_rejected_when_added(self) -> None:
        media = MediaDescription("audio", 4000, "RTP/AVP", ("0",))
        with pytest.raises(ParseError, match="a=rtpmap"):
            media.with_attribute("rtpmap", "zero")
        with pytest.raises(ParseError, match="attribute name"):
            media.with_attribute("bad name")
        with pytest.raises(ParseError, match="contains NUL, CR or LF"):
            media.with_attribute("x", "1\r\na=injected")


class TestConstruction:
    """Objects built in code obey the rules parsing enforces, so they always serialize."""

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: MediaDescription(port=70000, formats=("0",)), "out of range"),
            (lambda: MediaDescription(port=1), "lists no formats"),
            (lambda: MediaDescription(port=1, formats=("x",)), "payload type"),
            (lambda: MediaDescription(media="a b", port=0), "m= media"),
            (lambda: Origin(username="a b"), "o= username"),
            (lambda: Connection(address=""), "c= address"),
            (lambda: Bandwidth("A:S", 1), "b= bwtype"),
            (lambda: SessionDescription(Origin(), session_name="x\r\nv=0"), "s= line"),
            (lambda: SessionDescription(Origin(), version=1), "unsupported SDP version 1"),
            (lambda: SessionDescription(Origin(), extra_lines=(("m", "x"),)), "m= cannot"),
            (lambda: SessionDescription(Origin(), extra_lines=(("t", "x"),)), "t= line needs"),
        ],
    )
    def test_invalid(self, build: object, message: str) -> None:
        with pytest.raises(ParseError, match=message):
            build()  # type: ignore[operator]

    def test_built_description_round_trips(self) -> None:
        sd = SessionDescription(
            origin=Origin("alice", 7, 8, "IN", "IP6", "2001:db8::1"),
            connection=Connection.for_address("2001:db8::1"),
            extra_lines=(("z", "0 0"), ("u", "http://example.com/")),
            media=(MediaDescription("audio", 0),),
        )
        assert sd.extra_lines == (("u", "http://example.com/"), ("z", "0 0"))
        assert sd.connection == Connection("IN", "IP6", "2001:db8::1")
        assert SessionDescription.parse(bytes(sd)) == sd


class TestCrypto:
    """RFC 4568 §9: SDES a=crypto lines and inline keys."""

    def test_lifetime_mki_and_session_params(self) -> None:
        value = f"7 AES_CM_128_HMAC_SHA1_32 inline:{_b64(KEY)}|2^20|1:4 KDR=1 UNENCRYPTED_SRTCP"
        crypto = Crypto.parse(value)
        assert crypto.tag == 7
        assert crypto.session_params == "KDR=1 UNENCRYPTED_SRTCP"
        assert crypto.inline_keys() == [InlineKey(KEY, 1 << 20, 1, 4)]
        assert Crypto.parse(crypto.serialize()) == crypto

    def test_inline_key_round_trip(self) -> None:
        for key in (InlineKey(KEY), InlineKey(KEY, 1000), InlineKey(KEY, None, 2, 2)):
            assert InlineKey.parse(key.serialize()) == key

    def test_several_keys_and_unknown_suite(self) -> None:
        crypto = Crypto.parse(f"1 FUTURE_SUITE inline:{_b64(b'ab')};inline:{_b64(b'cd')}")
        assert [k.key_salt for k in crypto.inline_keys()] == [b"ab", b"cd"]

    @pytest.mark.parametrize(
        ("info", "message"),
        [
            (f"{_b64(KEY)}|soon", "lifetime 'soon'"),
            (f"{_b64(KEY)}|1:0", "MKI '1:0'"),
            (f"{_b64(KEY)}|1|1:4|x", "extra '|' fields"),
            ("", "inline key is empty"),
        ],
    )
    def test_bad_inline_key(self, info: str, message: str) -> None:
        with pytest.raises(ParseError, match=message):
            InlineKey.parse(info)

    def test_bad_crypto(self) -> None:
        with pytest.raises(ParseError, match="more than 9 digits"):
            Crypto.parse("1234567890 AES_CM_128_HMAC_SHA1_80 inline:AAAA")
        with pytest.raises(ParseError, match="is not <method>:<info>"):
            Crypto.parse("1 AES_CM_128_HMAC_SHA1_80 nokey")

    def test_answer_crypto_picks_first_supported_suite_and_echoes_tag(self) -> None:
        offered = [
            Crypto.with_key(1, "AES_256_CM_HMAC_SHA1_80", InlineKey(bytes(46))),
            Crypto.with_key(2, "AES_CM_128_HMAC_SHA1_32", InlineKey(bytes(30))),
            Crypto.with_key(3, "AES_CM_128_HMAC_SHA1_80", InlineKey(bytes(30))),
        ]
        chosen = answer_crypto(offered, KEY)
        assert chosen == Crypto(3, "AES_CM_128_HMAC_SHA1_80", f"inline:{_b64(KEY)}")
        suites = ("AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80")
        explicit = answer_crypto(offered, KEY, suites)
        assert explicit == Crypto(2, "AES_CM_128_HMAC_SHA1_32", f"inline:{_b64(KEY)}")
        assert answer_crypto(offered[:2], KEY) is None  # _32 is not implemented by media/srtp


class TestInfoParams:
    def test_plain_and_base64(self) -> None:
        assert party_id_from_info("party-id=p-1;session-id=s-1") == "p-1"
        encoded = encode_info_params({"session-id": "s-9", "party-id": "p-9"})
        assert base64.b64decode(encoded) == b"session-id=s-9;;party-id=p-9"
        assert party_id_from_info(encoded) == "p-9"

    @pytest.mark.parametrize(
        "info", ["", "camera", "abcd", "/w==", "session-id=s-1", "=x", "é", "\ud800"]
    )
    def test_no_party(self, info: str) -> None:
        assert party_id_from_info(info) is None


class TestDirection:
    """RFC 3264 §6.1: the answer mirrors sendonly/recvonly."""

    def test_reversed(self) -> None:
        assert Direction.SENDONLY.reversed() is Direction.RECVONLY
        assert Direction.RECVONLY.reversed() is Direction.SENDONLY
        assert Direction.SENDRECV.reversed() is Direction.SENDRECV
        assert Direction.INACTIVE.reversed() is Direction.INACTIVE

    @pytest.mark.parametrize(
        ("a", "b", "result"),
        [
            ("sendrecv", "sendonly", "sendonly"),
            ("sendrecv", "recvonly", "recvonly"),
            ("sendonly", "recvonly", "inactive"),
            ("sendrecv", "sendrecv", "sendrecv"),
            ("inactive", "sendrecv", "inactive"),
        ],
    )
    def test_intersect(self, a: str, b: str, result: str) -> None:
        assert Direction(a).intersect(Direction(b)) is Direction(result)


class TestNegotiation:
    """RFC 3264 §6.1: the answerer picks by its own preference order."""

    def test_answerer_preference_wins(self) -> None:
        media = load("ringcentral_monitoring_invite.sdp").media[0]
        for prefs, expected in [
            ([PCMU, OPUS], (PCMU, 0)),
            ([OPUS_16000, PCMU], (OPUS_16000, 109)),
            ([G722], (G722, 9)),
            ([TELEPHONE_EVENT, PCMA], (PCMA, 8)),
            ([OPUS], (OPUS, 111)),
        ]:
            match = negotiate_media(media, prefs)
            assert match is not None
            assert (match.spec, match.payload_type) == expected

    def test_offer_order_lets_the_offerer_preference_win(self) -> None:
        """RingCentral's offer lists 111 9 0 18 96 8 109: with ``offer_order`` the first of those
        we support wins, and our list only decides what we support."""
        media = load("ringcentral_monitoring_invite.sdp").media[0]
        for prefs, expected in [
            ([PCMU, OPUS], (OPUS, 111)),
            ([PCMU, G722], (G722, 9)),
            ([PCMA, OPUS_16000, PCMU], (PCMU, 0)),
            ([TELEPHONE_EVENT, OPUS_16000], (OPUS_16000, 109)),
        ]:
            match = negotiate_media(media, prefs, offer_order=True)
            assert match is not None
            assert (match.spec, match.payload_type) == expected
        (relay,) = offer("m=audio 4000 RTP/AVP 0 111", "a=rtpmap:111 OPUS/48000/2").media
        ours = negotiate_media(relay, [OPUS, PCMU])
        theirs = negotiate_media(relay, [OPUS, PCMU], offer_order=True)
        assert ours is not None and ours.spec == OPUS
        assert theirs is not None and theirs.spec == PCMU  # the party's codec: a zero-copy fork

    def test_case_insensitive_and_channels(self) -> None:
        (media,) = offer(
            "m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 OPUS/16000/1"
        ).media
        assert negotiate_media(media, [OPUS]) is not None
        match = negotiate_media(media, [OPUS_16000])
        assert match is not None and match.rtpmap == RtpMap(97, "OPUS", 16000, 1)
        assert negotiate_media(media, [CodecSpec("OPUS", 48000)]) is None

    def test_no_common_codec(self) -> None:
        (media,) = offer("m=audio 4000 RTP/AVP 18").media
        assert negotiate_media(media, [PCMU, OPUS]) is None

    def test_dtmf_prefers_matching_clock_rate(self) -> None:
        (media,) = offer(
            "m=audio 4000 RTP/AVP 0 101 102",
            "a=rtpmap:101 telephone-event/48000",
            "a=rtpmap:102 telephone-event/8000",
        ).media
        te48 = replace(TELEPHONE_EVENT, clock_rate=48000)
        match = negotiate_dtmf(media, [te48, TELEPHONE_EVENT], 8000)
        assert match is not None and match.payload_type == 102
        match = negotiate_dtmf(media, [te48], 8000)
        assert match is not None and match.payload_type == 101


class TestBuildAnswer:
    """RFC 3264 §6: one answer m= line per offered one, same order."""

    def answer(self, sd: SessionDescription, **kwargs: object) -> SessionDescription:
        defaults: dict[str, object] = {
            "address": "198.51.100.7",
            "ports": [40000 + 2 * i for i in range(len(sd.media))],
            "codecs_preference": [OPUS_16000, PCMU, TELEPHONE_EVENT],
            "session_id": 42,
            "session_version": 1,
        }
        defaults.update(kwargs)
        return build_answer(sd, **defaults)  # type: ignore[arg-type]

    def test_ringcentral_monitoring_offer(self) -> None:
        answer = self.answer(load("ringcentral_monitoring_invite.sdp"))
        media = sdp(
            "a=rtpmap:109 OPUS/16000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=sendrecv",
        )
        assert answer.serialize() == (
            sdp("v=0", "o=- 42 1 IN IP4 198.51.100.7", "s=-", "c=IN IP4 198.51.100.7", "t=0 0")
            + sdp("m=audio 40000 RTP/AVP 109 101")
            + media
            + sdp("m=audio 40002 RTP/AVP 109 101")
            + media
        )
        assert SessionDescription.parse(bytes(answer)) == answer

    def test_missing_port_rejects_that_stream(self) -> None:
        answer = self.answer(load("ringcentral_monitoring_invite.sdp"), ports=[40000, None])
        assert [m.port for m in answer.media] == [40000, 0]
        assert answer.media[1] == MediaDescription("audio", 0, "RTP/AVP", ("111",))
        assert answer.media[1].is_rejected

    def test_disabled_offer_stream_stays_disabled(self) -> None:
        sd = offer("m=audio 4000 RTP/AVP 0", "m=audio 0 RTP/AVP 0")
        assert [m.port for m in self.answer(sd).media] == [40000, 0]

    def test_no_common_codec_rejects(self) -> None:
        sd = offer("m=audio 4000 RTP/AVP 18", "m=video 5000 RTP/AVP 96", "a=rtpmap:96 VP8/90000")
        answer = self.answer(sd)
        assert [(m.media, m.port, m.formats) for m in answer.media] == [
            ("audio", 0, ("18",)),
            ("video", 0, ("96",)),
        ]

    def test_unsupported_proto_rejects(self) -> None:
        sd = offer("m=audio 4000 UDP/TLS/RTP/SAVPF 0")
        assert self.answer(sd).media[0].is_rejected

    @pytest.mark.parametrize(
        ("offered", "wish", "answered"),
        [
            ("sendrecv", None, "sendrecv"),
            ("sendonly", None, "recvonly"),
            ("recvonly", None, "sendonly"),
            ("inactive", None, "inactive"),
            ("sendrecv", Direction.SENDONLY, "sendonly"),
            ("recvonly", Direction.SENDRECV, "sendonly"),
            ("sendonly", Direction.SENDONLY, "inactive"),
        ],
    )
    def test_direction_mirrored(self, offered: str, wish: Direction | None, answered: str) -> None:
        sd = offer("m=audio 4000 RTP/AVP 0", f"a={offered}")
        assert self.answer(sd, direction=wish).media[0].direction is Direction(answered)

    def test_session_level_direction_fallback(self) -> None:
        sd = offer(
            "m=audio 4000 RTP/AVP 0",
            "m=audio 4002 RTP/AVP 0",
            "a=inactive",
            session=("a=sendonly",),
        )
        answer = self.answer(sd)
        assert [m.direction for m in answer.media] == [Direction.RECVONLY, Direction.INACTIVE]

    def test_telephone_event_only_when_offered_and_supported(self) -> None:
        sd = offer("m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")
        assert self.answer(sd).media[0].formats == ("0", "101")
        assert self.answer(sd, codecs_preference=[PCMU]).media[0].formats == ("0",)
        assert self.answer(offer("m=audio 4000 RTP/AVP 0")).media[0].formats == ("0",)

    def test_telephone_event_alone_is_not_a_codec(self) -> None:
        sd = offer("m=audio 4000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000")
        assert self.answer(sd).media[0].is_rejected

    def test_srtp_needs_crypto(self) -> None:
        sd = load("ringcentral_softphone_srtp_answer.sdp")
        assert self.answer(sd).media[0].is_rejected
        crypto = answer_crypto(sd.media[0].crypto, bytes(30))
        answer = self.answer(sd, crypto=[crypto], ports=[40000])
        (media,) = answer.media
        assert media.proto == "RTP/SAVP"
        assert media.formats == ("109", "101")
        assert media.crypto == [Crypto(1, "AES_CM_128_HMAC_SHA1_80", f"inline:{_b64(bytes(30))}")]

    def test_ipv6_and_names(self) -> None:
        answer = self.answer(
            offer("m=audio 4000 RTP/AVP 0"),
            address="2001:db8::7",
            username="callwatch",
            session_name="supervise",
        )
        assert answer.origin == Origin("callwatch", 42, 1, "IN", "IP6", "2001:db8::7")
        assert answer.connection == Connection("IN", "IP6", "2001:db8::7")
        assert answer.session_name == "supervise"

    def test_port_count_mismatch(self) -> None:
        with pytest.raises(ValueError, match="1 ports for 2 offered m= lines"):
            self.answer(load("ringcentral_monitoring_invite.sdp"), ports=[1])


class TestOfferMedia:
    def test_payload_types_and_attributes(self) -> None:
        custom = CodecSpec("L16", 16000)
        media = offer_media(
            port=4000,
            codecs=[OPUS, PCMU, custom, TELEPHONE_EVENT],
            ptime=20,
            direction=Direction.SENDONLY,
            info="monitor",
            crypto=Crypto(1, "X", "inline:AAAA"),
        )
        assert media.formats == ("111", "0", "96", "101")
        assert media.rtpmaps[96] == RtpMap(96, "L16", 16000)
        assert media.fmtp == {101: "0-15"}
        assert media.ptime == 20
        assert media.direction is Direction.SENDONLY
        assert media.info == "monitor"

    def test_payload_type_clash_moves_to_dynamic(self) -> None:
        media = offer_media(port=4000, codecs=[OPUS, replace(G722, payload_type=111)])
        assert media.formats == ("111", "96")

    def test_too_many_codecs(self) -> None:
        codecs = [CodecSpec(f"C{i}", 8000) for i in range(33)]
        with pytest.raises(ValueError, match="no free dynamic payload type"):
            offer_media(port=4000, codecs=codecs)

    def test_offer_answer_loop(self) -> None:
        sd = build_session(
            address="192.0.2.1",
            session_id=1,
            session_version=2,
            media=[
                offer_media(
                    port=4000, codecs=[OPUS, PCMA, TELEPHONE_EVENT], direction=Direction.SENDONLY
                ),
                offer_media(port=4002, codecs=[PCMU]),
            ],
        )
        parsed = SessionDescription.parse(bytes(sd))
        assert parsed == sd
        answer = build_answer(
            parsed,
            address="192.0.2.2",
            ports=[5000, 5002],
            codecs_preference=[PCMA, PCMU, TELEPHONE_EVENT],
            session_id=9,
            session_version=9,
        )
        assert [(m.formats, m.direction) for m in answer.media] == [
            (("8", "101"), Direction.RECVONLY),
            (("0",), Direction.SENDRECV),
        ]


# --- property tests (STYLE rule 7: parsers never crash on input) -------------------------------

FIXTURE_BYTES = [path.read_bytes() for path in FIXTURES]
SDP_LINES = [line for data in FIXTURE_BYTES for line in data.decode().splitlines()] + [
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ptime:20",
    "a=inactive",
    "a=recvonly",
    "t=1 2",
    "r=1 2 3",
    "z=1 -1h",
    "k=prompt",
    "u=x",
    "e=x",
    "p=x",
    "b=AS:1",
    "c=IN IP6 ::1",
    "m=audio 0 RTP/AVP",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "m=audio 1/2 RTP/AVP 0",
    "i=",
    "s=",
]


def check_parse(data: bytes | str) -> None:
    """Invariant: a description that round-trips, or ParseError; nothing else."""
    try:
        parsed = SessionDescription.parse(data)
    except ParseError as exc:
        assert exc.status_hint in (400, 513)
        return
    serialized = parsed.serialize()
    assert SessionDescription.parse(serialized) == parsed
    assert SessionDescription.parse(serialized).serialize() == serialized
    for media in parsed.media:
        _ = (media.rtpmaps, media.fmtp, media.crypto, media.rtcp, media.ptime, media.direction)
        for crypto in media.crypto:
            crypto.inline_keys()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURE_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.binary(min_size=1, max_size=4)
            | st.sampled_from(
                [
                    b" ",
                    b"\r",
                    b"\n",
                    b"=",
                    b":",
                    b"/",
                    b"0",
                    b"\r\n",
                    b"a=",
                    b"m=",
                    b"\x00",
                    b"\xff",
                ]
            )
        )
        if op == "insert":
            data[at:at] = chunk
        elif op == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


@st.composite
def shuffled_lines(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.sampled_from(SDP_LINES), max_size=30))
    head = draw(st.sampled_from([["v=0", *HEAD[1:]], ["v=0"], []]))
    return "\n".join(head + lines)


@given(st.binary(max_size=512))
def test_random_bytes_never_crash(data: bytes) -> None:
    check_parse(data)


@given(st.text(max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    check_parse(text)
    check_parse("v=0\n" + text)


@settings(max_examples=1000)
@given(mutated())
def test_mutated_fixtures_never_crash(data: bytes) -> None:
    check_parse(data)


@settings(max_examples=300)
@given(shuffled_lines())
def test_recombined_lines_never_crash(text: str) -> None:
    check_parse(text)


@st.composite
def fuzzed_lines(draw: st.DrawFn) -> str:
    alphabet = st.sampled_from(list("0123456789 /:=-.aAzZ\t\r\x00é"))
    values = st.text(alphabet, max_size=20)
    lines = draw(st.lists(st.tuples(st.sampled_from("vosiuepcbtrzkamx"), values), max_size=20))
    body = [f"{kind}={value}" for kind, value in lines]
    return "\r\n".join(["v=0", *HEAD[1:], *body])


@settings(max_examples=300)
@given(fuzzed_lines())
def test_fuzzed_lines_never_crash(text: str) -> None:
    check_parse(text)


def _media() -> st.SearchStrategy[MediaDescription]:
    token = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9\-.]{0,8}", fullmatch=True)
    text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r\n"))
    names = token.filter(lambda n: n not in {"rtpmap", "fmtp", "crypto", "rtcp", "ptime"})
    attribute = st.tuples(names, st.none() | text) | st.sampled_from(
        [("rtpmap", "0 PCMU/8000"), ("fmtp", "101 0-15"), ("ptime", "20"), ("sendonly", None)]
    )
    return st.builds(
        MediaDescription,
        media=token,
        port=st.integers(1, 65535),
        proto=st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF"]),
        formats=st.lists(st.integers(0, 127).map(str), min_size=1, max_size=5).map(tuple),
        port_count=st.none() | st.integers(1, 4),
        info=st.none() | text,
        bandwidths=st.lists(st.builds(Bandwidth, token, st.integers(0, 10**6))).map(tuple),
        attributes=st.lists(attribute, max_size=6).map(tuple),
    )


@given(
    media=st.lists(_media(), max_size=3),
    name=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r\n")),
    sess_id=st.integers(0, 2**64),
)
def test_built_descriptions_round_trip(
    media: list[MediaDescription], name: str, sess_id: int
) -> None:
    sd = SessionDescription(
        origin=Origin("-", sess_id, 1, "IN", "IP4", "192.0.2.1"),
        session_name=name,
        connection=Connection.for_address("192.0.2.1"),
        media=tuple(media),
    )
    assert SessionDescription.parse(sd.serialize()) == sd


@given(st.text(max_size=80))
def test_value_parsers_never_crash(text: str) -> None:
    party_id_from_info(text)
    for parse in (Crypto.parse, RtpMap.parse, InlineKey.parse, Origin.parse, Connection.parse):
        with contextlib.suppress(ParseError):
            parse(text)
