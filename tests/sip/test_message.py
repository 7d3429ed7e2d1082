"""Tests for callwatch.sip.message: golden captures, RFC 3261 §7 parsing rules, limits, responses.

Golden captures live in ``tests/sip/data/*.txt`` as the exact bytes on the wire, CRLF line endings
included. They were written as Python bytes, never edited as text; :func:`load_capture` refuses a
file whose line endings were converted (if git ever does that, mark ``tests/sip/data/*.txt -text``
in ``.gitattributes``). Provenance:

``ringcentral_seed_invite.txt``
    The "Sample SIP Invite sent to the Supervising Device" from
    ``shared/seed/call-supervision-monitoring-streaming.txt``, header by header and SDP line by line
    as printed there (``P-Acme-VSA`` after ``Content-Length`` included), with two repairs the
    document needs: the blank line between the header section and the SDP is missing in the
    document and is restored, and the document's ``Content-Length: 510`` is wrong — the SDP as
    printed is 515 bytes with CRLF line ends — so the capture says 515.
``sipp_register_auth.txt``
    SIPp 3.6 ``REGISTER`` with digest credentials (``src/auth.cpp`` createAuthHeaderMD5 order, no
    spaces after commas). SIPp's ``[len]`` keyword prints ``%5u``, hence ``Content-Length:     0``;
    ``[branch]`` is ``z9hG4bK-<pid>-<call number>-<scenario message index>`` (2: the REGISTER sent
    after the 401). Password ``101-secret``.
``baresip_register.txt``
    baresip 1.0 (libre sipreg) ``REGISTER`` with RFC 5626 outbound (``reg-id``/``+sip.instance``).
``rc_softphone_sdk_register.txt`` / ``rc_softphone_sdk_register_auth.txt``
    ringcentral-softphone-ts (design doc §6.2): the first ``REGISTER`` and the retry built by
    ``RequestMessage.fork()``. The SDK writes headers in object-key order, so ``Content-Length``,
    ``User-Agent`` and ``CSeq`` come after the ones passed in, and ``Authorization`` is last. The
    fork rewrites Via with ``/;branch=.+?$/``, which also drops ``;alias``. Digest username is the
    authorization id ``60727004``, password ``dev-Pa55w0rd``.
``rc_supervisor_invite_tls.txt``
    The INVITE RingCentral (and our pbx) sends to a supervisor device registered over TLS, in the
    §6.1/§6.2 shape: one Via, lower-case ``p-rc-api-*`` headers, auto-answer headers, SDES-SRTP SDP.
``rc_softphone_sdk_100_trying.txt``, ``rc_softphone_sdk_bye.txt``, ``rc_softphone_sdk_reinvite.txt``
    What the SDK sends back inside that dialog: its automatic 100, ``hangup()`` (fake
    ``<uuid>.invalid`` Via host, no Max-Forwards) and ``toggleReceive()`` (header ``Call-Id``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.sip.errors import MessageTooLarge, ParseError
from callwatch.sip.headers import CSeq, Headers, header_key
from callwatch.sip.message import (
    MAX_HEADERS,
    MAX_LINE_LENGTH,
    MAX_MESSAGE_SIZE,
    REASON_PHRASES,
    Request,
    Response,
    make_response,
    parse_message,
)
from callwatch.sip.uri import NameAddr, SipUri, parse_params

DATA = Path(__file__).parent / "data"

ALL_CAPTURES = (
    "ringcentral_seed_invite.txt",
    "sipp_register_auth.txt",
    "baresip_register.txt",
    "rc_softphone_sdk_register.txt",
    "rc_softphone_sdk_register_auth.txt",
    "rc_supervisor_invite_tls.txt",
    "rc_softphone_sdk_100_trying.txt",
    "rc_softphone_sdk_bye.txt",
    "rc_softphone_sdk_reinvite.txt",
)
REQUEST_CAPTURES = tuple(name for name in ALL_CAPTURES if "100_trying" not in name)
# Senders that already write Content-Length last as "Content-Length: N": serialize() is byte-exact.
BYTE_EXACT_CAPTURES = ("baresip_register.txt", "rc_supervisor_invite_tls.txt")


@functools.cache
def load_capture(name: str) -> bytes:
    """The capture's bytes, checked to still have CRLF line endings."""
    data = (DATA / name).read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b""), f"{name}: bare LF, line endings were converted"
    return data


def parse_capture(name: str) -> Request | Response:
    return parse_message(load_capture(name), stream=True)


def parse_request(
    data: bytes, *, stream: bool = False, max_size: int = MAX_MESSAGE_SIZE
) -> Request:
    message = parse_message(data, stream=stream, max_size=max_size)
    assert isinstance(message, Request)
    return message


def parse_response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def wire(*lines: str, body: bytes = b"") -> bytes:
    """A message from its start line and header lines, CRLF-terminated, then ``body``."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_params(authorization: str) -> dict[str, str]:
    assert authorization.startswith("Digest ")
    return {k: v.strip('"') for k, v in re.findall(r'([\w-]+)=("[^"]*"|[^,\s]+)', authorization)}


def fields_without_length(message: Request | Response) -> list[tuple[str, str]]:
    return [(n, v) for n, v in message.headers if header_key(n) != "content-length"]


def assert_equivalent(a: Request | Response, b: Request | Response) -> None:
    """Field-by-field equality of two parsed messages (Content-Length compared via the body)."""
    assert type(a) is type(b)
    if isinstance(a, Request):
        assert isinstance(b, Request)
        assert (a.method, a.uri) == (b.method, b.uri)
    else:
        assert isinstance(b, Response)
        assert (a.status, a.reason) == (b.status, b.reason)
    assert fields_without_length(a) == fields_without_length(b)
    assert a.body == b.body
    assert a.vias == b.vias
    assert (a.from_, a.to, a.call_id, a.cseq) == (b.from_, b.to, b.call_id, b.cseq)
    assert a.contacts == b.contacts
    assert a.content_type == b.content_type


def assert_fully_built(message: Request | Response) -> None:
    """Rule 3: a message that parsed has working accessors and survives a serialize round trip."""
    for via in message.vias:
        assert via.transport
    assert message.top_via == message.vias[0]
    assert isinstance(message.from_, NameAddr)
    assert isinstance(message.to, NameAddr)
    assert message.call_id
    assert isinstance(message.cseq, CSeq)
    assert all(isinstance(c, NameAddr) for c in message.contacts)
    assert_equivalent(parse_message(message.serialize()), message)


MANDATORY = (
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds",
    "From: Alice <sip:alice@example.com>;tag=1928301774",
    "To: Bob <sip:bob@example.com>",
    "Call-ID: a84b4c76e66710@pc33.example.com",
    "CSeq: 314159 OPTIONS",
)
OPTIONS_LINE = "OPTIONS sip:bob@example.com SIP/2.0"


def options(*extra: str, body: bytes = b"") -> bytes:
    return wire(OPTIONS_LINE, *MANDATORY, *extra, body=body)


# --------------------------------------------------------------------------------------------
# Golden captures: typed accessors
# --------------------------------------------------------------------------------------------


class TestRingCentralSeedInvite:
    """The seed document's INVITE to a supervising device (design doc §6.1)."""

    def test_request_line(self) -> None:
        msg = parse_capture("ringcentral_seed_invite.txt")
        assert isinstance(msg, Request)
        assert msg.method == "INVITE"
        assert msg.uri == SipUri(
            host="192.168.42.15",
            user="18005557562*102",
            port=62931,
            params={"transport": "TCP", "ob": None},
        )
        assert msg.uri.transport == "TCP"

    def test_dialog_headers(self) -> None:
        msg = parse_capture("ringcentral_seed_invite.txt")
        (via,) = msg.vias
        assert (via.protocol, via.transport, via.host, via.port) == (
            "SIP/2.0",
            "TCP",
            "10.62.192.70",
            5091,
        )
        assert via.branch == "z9hG4bK2fh25j30couuhqiscdi0.1"
        assert msg.from_.uri.user == "+16505550072"
        assert msg.from_.tag == "10.62.25.111-5070-6ce1264681244a"
        assert msg.to.tag is None
        assert msg.to.uri.user == "18005557562*102-c4giuv3vhjebe"
        assert msg.to.uri.params == {"ob": None}
        assert msg.call_id == "198dd3ed335a4cc7832979c3065bb2a7"
        assert msg.cseq == CSeq(31268, "INVITE")
        (contact,) = msg.contacts
        assert (contact.uri.user, contact.uri.host, contact.uri.port) == (
            "+16508370072",
            "10.62.192.70",
            5091,
        )
        assert contact.uri.params == {"transport": "tcp"}
        assert contact.uri.transport == "TCP"
        assert msg.headers.get("Max-Forwards") == "69"
        assert msg.headers.get("user-agent") == "RC_SIPWRP_25.111"

    def test_ringcentral_headers(self) -> None:
        msg = parse_capture("ringcentral_seed_invite.txt")
        names = [name for name, _ in msg.headers]
        assert "p-rc-api-ids" in names
        assert "p-rc-api-monitoring-ids" in names
        assert parse_params(msg.headers.get("P-RC-API-IDS") or "") == {
            "party-id": "cs171841903350030962-6",
            "session-id": "s-cs171841903350030962",
        }
        assert parse_params(msg.headers.get("p-rc-api-monitoring-ids") or "") == {
            "session-id": "s-cs171841903350030962",
            "party-id": "p-cs171841903350030962-2",
        }
        assert msg.headers.get("alert-info") == "Auto Answer"
        call_info = msg.headers.get("call-info") or ""
        assert call_info.startswith("<KyOAG0RTd5fP1WkxMAuXNw..>")
        assert parse_params(call_info.partition(">")[2]) == {
            "purpose": "info",
            "answer-after": "0",
        }
        assert msg.headers.get("P-Acme-VSA") == "200:KyOAG0RTd5fP1WkxMAuXNw.."

    def test_list_and_timer_headers(self) -> None:
        msg = parse_capture("ringcentral_seed_invite.txt")
        assert msg.headers.get_all("allow") == [
            "SUBSCRIBE",
            "NOTIFY",
            "REFER",
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "UPDATE",
            "INFO",
        ]
        assert msg.headers.get_all("k") == ["replaces", "timer", "diversion"]
        assert msg.headers.get("x") == "14400;refresher=uac"
        assert msg.headers.get("min-se") == "90"

    def test_sdp_body(self) -> None:
        data = load_capture("ringcentral_seed_invite.txt")
        msg = parse_capture("ringcentral_seed_invite.txt")
        assert msg.content_type == "application/sdp"
        assert msg.body == data.partition(b"\r\n\r\n")[2]
        assert len(msg.body) == 515
        assert msg.body.startswith(b"v=0\r\no=- 137800156 2016517757 IN IP4 10.62.192.70\r\n")
        assert msg.body.endswith(b"a=rtcp-fb:111 ccm tmmbr\r\na=sendrecv\r\n")
        assert msg.body.count(b"m=audio ") == 2
        assert b"party-id=cs171841903350030962-7" in msg.body

    def test_content_length_moves_after_p_acme_vsa(self) -> None:
        lines = parse_capture("ringcentral_seed_invite.txt").serialize().split(b"\r\n")
        assert lines[lines.index(b"") - 2 : lines.index(b"")] == [
            b"P-Acme-VSA: 200:KyOAG0RTd5fP1WkxMAuXNw..",
            b"Content-Length: 515",
        ]


class TestSippRegisterAuth:
    def test_request(self) -> None:
        msg = parse_capture("sipp_register_auth.txt")
        assert isinstance(msg, Request)
        assert msg.method == "REGISTER"
        assert msg.uri == SipUri(host="127.0.0.1", port=5060)
        assert msg.top_via.transport == "UDP"
        assert (msg.top_via.host, msg.top_via.port) == ("127.0.0.1", 5062)
        assert msg.top_via.branch == "z9hG4bK-21394-1-2"
        assert "rport" not in msg.top_via.params
        assert msg.from_.tag == "21394SIPpTag001"
        assert msg.from_.uri.address_of_record() == "sip:101@127.0.0.1"
        assert msg.to.tag is None
        assert msg.call_id == "1-21394@127.0.0.1"
        assert msg.cseq == CSeq(2, "REGISTER")
        assert msg.headers.get("expires") == "3600"
        assert msg.headers.get("max-forwards") == "70"

    def test_bare_addr_spec_contact(self) -> None:
        (contact,) = parse_capture("sipp_register_auth.txt").contacts
        assert contact == NameAddr(SipUri(host="127.0.0.1", user="101", port=5062))

    def test_padded_content_length(self) -> None:
        data = load_capture("sipp_register_auth.txt")
        assert b"\r\nContent-Length:     0\r\n\r\n" in data
        msg = parse_capture("sipp_register_auth.txt")
        assert msg.headers.get("content-length") == "0"
        assert msg.body == b""
        assert msg.serialize().endswith(b"\r\nContent-Length: 0\r\n\r\n")

    def test_authorization_is_a_valid_digest(self) -> None:
        msg = parse_capture("sipp_register_auth.txt")
        authorization = msg.headers.get("authorization") or ""
        assert authorization.startswith('Digest username="101",realm="callwatch.test",uri=')
        params = digest_params(authorization)
        assert params["uri"] == "sip:127.0.0.1:5060"
        assert params["algorithm"] == "MD5"
        ha1 = md5(f"101:{params['realm']}:101-secret")
        ha2 = md5(f"REGISTER:{params['uri']}")
        assert params["response"] == md5(f"{ha1}:{params['nonce']}:{ha2}")


class TestBaresipRegister:
    def test_request(self) -> None:
        msg = parse_capture("baresip_register.txt")
        assert isinstance(msg, Request)
        assert msg.uri == SipUri(host="127.0.0.1")
        assert msg.uri.effective_port == 5060
        via = msg.top_via
        assert (via.transport, via.host, via.port) == ("UDP", "127.0.0.1", 5072)
        assert via.branch == "z9hG4bKfae923d5a4fd12aa"
        assert via.params == {"branch": "z9hG4bKfae923d5a4fd12aa", "rport": None}
        assert msg.from_.tag == "bfe228f219e9cb0e"
        assert msg.to.tag is None
        assert msg.call_id == "b53f16947ccf25ec"
        assert msg.cseq == CSeq(1, "REGISTER")
        assert msg.headers.get("User-Agent") == "baresip v1.0.0 (x86_64/linux)"

    def test_outbound_contact(self) -> None:
        (contact,) = parse_capture("baresip_register.txt").contacts
        assert contact.uri == SipUri(host="127.0.0.1", user="sup1-0x5581b2c8a2d0", port=5072)
        assert contact.params == {
            "expires": "300",
            "+sip.instance": '"<urn:uuid:0b8d7f4e-2a6c-4e1d-9f3b-5c7a1e2d4f60>"',
            "reg-id": "1",
        }

    def test_unspaced_lists(self) -> None:
        msg = parse_capture("baresip_register.txt")
        allow = "INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE"
        assert msg.headers.get_all("allow") == allow.split(",")
        assert msg.headers.get_all("supported") == ["gruu", "outbound", "path", "replaces"]


class TestRingCentralSoftphoneRegister:
    """ringcentral-softphone-ts REGISTER (design doc §6.2)."""

    def test_first_register(self) -> None:
        msg = parse_capture("rc_softphone_sdk_register.txt")
        assert isinstance(msg, Request)
        assert msg.uri == SipUri(host="sip.ringcentral.com")
        via = msg.top_via
        assert (via.transport, via.host, via.port) == ("TLS", "192.168.1.23", 53712)
        assert via.params == {
            "rport": None,
            "branch": "z9hG4bK-c6f87718-6d76-407e-881e-d162ae2eb154",
            "alias": None,
        }
        assert msg.from_.tag == "7f150524-34b9-45df-9e77-69b10f4205b4"
        assert msg.to.uri.address_of_record() == "sip:16505550100@sip.ringcentral.com"
        assert msg.call_id == "907a70c3-1012-4037-b64c-e4228c38fb29"
        assert msg.cseq == CSeq(4817, "REGISTER")
        assert "authorization" not in msg.headers

    def test_outbound_contact(self) -> None:
        (contact,) = parse_capture("rc_softphone_sdk_register.txt").contacts
        assert contact.uri == SipUri(
            host="192.168.1.23",
            user="16505550100",
            port=53712,
            params={"transport": "TLS", "ob": None},
        )
        assert contact.params == {
            "reg-id": "1",
            "+sip.instance": '"<urn:uuid:18f135d2-5f55-4203-b018-50c5a38fd547>"',
        }

    def test_content_length_in_the_middle_is_moved_last(self) -> None:
        msg = parse_capture("rc_softphone_sdk_register.txt")
        names = [name for name, _ in msg.headers]
        assert names[-3:] == ["Content-Length", "User-Agent", "CSeq"]
        again = parse_message(msg.serialize())
        assert [name for name, _ in again.headers][-3:] == ["User-Agent", "CSeq", "Content-Length"]

    def test_authorized_retry(self) -> None:
        first = parse_capture("rc_softphone_sdk_register.txt")
        msg = parse_capture("rc_softphone_sdk_register_auth.txt")
        assert msg.top_via.params == {
            "rport": None,
            "branch": "z9hG4bK-ec66a787-95e7-41d1-b731-af10506bf2ef",
        }
        assert msg.cseq == CSeq(first.cseq.seq + 1, "REGISTER")
        assert (msg.call_id, msg.from_.tag) == (first.call_id, first.from_.tag)
        assert msg.contacts == first.contacts
        assert [name for name, _ in msg.headers][-1] == "Authorization"

    def test_authorization_quotes_the_algorithm(self) -> None:
        authorization = (
            parse_capture("rc_softphone_sdk_register_auth.txt").headers.get("Authorization") or ""
        )
        assert authorization.startswith('Digest algorithm="MD5", username="60727004", ')
        params = digest_params(authorization)
        assert params["uri"] == "sip:sip.ringcentral.com"
        ha1 = md5("60727004:sip.ringcentral.com:dev-Pa55w0rd")
        ha2 = md5("REGISTER:sip:sip.ringcentral.com")
        assert params["response"] == md5(f"{ha1}:{params['nonce']}:{ha2}")


class TestSupervisorInviteOverTls:
    """The INVITE to a TLS-registered supervisor device (design doc §6.1, §6.2)."""

    def test_request_line_targets_the_registered_contact(self) -> None:
        msg = parse_capture("rc_supervisor_invite_tls.txt")
        registered = parse_capture("rc_softphone_sdk_register.txt").contacts[0].uri
        assert isinstance(msg, Request)
        assert msg.method == "INVITE"
        assert msg.uri == registered
        assert msg.uri.params == {"transport": "TLS", "ob": None}

    def test_headers(self) -> None:
        msg = parse_capture("rc_supervisor_invite_tls.txt")
        assert [name for name, _ in msg.headers].count("Via") == 1
        assert len(msg.vias) == 1
        assert msg.top_via.transport == "TLS"
        assert msg.top_via.branch == "z9hG4bK3kq0vh30d0mblsg6qtk0.1"
        assert msg.from_.tag == "10.62.25.111-5070-9b2f1c44a7e04d"
        assert msg.to.tag is None
        assert msg.to.uri.params == {"ob": None}
        assert msg.cseq == CSeq(31269, "INVITE")
        assert msg.contacts[0].uri.transport == "TLS"
        assert msg.headers.get("alert-info") == "Auto Answer"
        assert (msg.headers.get("call-info") or "").endswith(";purpose=info;Answer-After=0")

    def test_party_ids_put_party_id_first(self) -> None:
        msg = parse_capture("rc_supervisor_invite_tls.txt")
        monitoring = msg.headers.get("p-rc-api-monitoring-ids") or ""
        # What DEMO-PV's supervisor-engine.js does with it (design doc §6.1).
        assert monitoring.split(";")[0].split("=")[1] == "p-cs172040118235671044-2"
        assert parse_params(msg.headers.get("p-rc-api-ids") or "") == {
            "party-id": "cs172040118235671044-6",
            "session-id": "s-cs172040118235671044",
        }

    def test_srtp_offer_matches_the_sdk_regexes(self) -> None:
        body = parse_capture("rc_supervisor_invite_tls.txt").body.decode()
        # The regexes ringcentral-softphone-ts answer() applies to the offer.
        assert re.search(r"c=IN IP4 ([\d.]+)", body)[1] == "10.62.192.70"  # type: ignore[index]
        assert re.search(r"m=audio (\d+) ", body)[1] == "50404"  # type: ignore[index]
        assert "m=audio 50404 RTP/SAVP 111 9 0 18 96 8 109 101\r\n" in body
        key = re.search(r"AES_CM_128_HMAC_SHA1_80 inline:(\S+)", body)[1]  # type: ignore[index]
        assert key == "UvImZaYMEtKJGF2VDuiBNgkWb2sRPReNbA/TkB/y"

    def test_readable_by_the_sdks_naive_header_map(self) -> None:
        """The SDK splits header lines on ': ' into a case-sensitive map (design doc §6.2)."""
        head = load_capture("rc_supervisor_invite_tls.txt").partition(b"\r\n\r\n")[0].decode()
        naive = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
        msg = parse_capture("rc_supervisor_invite_tls.txt")
        assert naive["Via"] == str(msg.top_via)
        assert naive["CSeq"] == str(msg.cseq)
        assert naive["Call-ID"] == msg.call_id
        assert naive["p-rc-api-ids"] == msg.headers.get("p-rc-api-ids")
        assert all(": " not in value for _, value in msg.headers)


class TestRingCentralSoftphoneInDialog:
    """What ringcentral-softphone-ts sends inside the supervisor dialog."""

    def test_100_trying_copies_the_invite(self) -> None:
        invite = parse_capture("rc_supervisor_invite_tls.txt")
        msg = parse_capture("rc_softphone_sdk_100_trying.txt")
        assert isinstance(msg, Response)
        assert (msg.status, msg.reason) == (100, "Trying")
        assert msg.vias == invite.vias
        assert (msg.call_id, msg.cseq, msg.from_) == (invite.call_id, invite.cseq, invite.from_)
        assert msg.to.uri == invite.to.uri
        assert msg.to.tag == "c7a2ea20-b2f1-4c94-ae05-319acb5c7427"

    def test_bye(self) -> None:
        invite = parse_capture("rc_supervisor_invite_tls.txt")
        msg = parse_capture("rc_softphone_sdk_bye.txt")
        assert isinstance(msg, Request)
        assert msg.method == "BYE"
        assert msg.uri == SipUri(host="sip.ringcentral.com")
        via = msg.top_via
        assert (via.transport, via.host, via.port) == (
            "TLS",
            "3f98e277-4cbd-47ad-9c90-a9587403e430.invalid",
            None,
        )
        assert via.branch == "z9hG4bK-4cdd2055-930d-4eaf-94f4-733f3e7d1bfb"
        assert "max-forwards" not in msg.headers
        assert "contact" not in msg.headers
        assert msg.call_id == invite.call_id
        assert msg.from_.tag == "c7a2ea20-b2f1-4c94-ae05-319acb5c7427"
        assert msg.to == invite.from_
        assert msg.cseq == CSeq(4820, "BYE")

    def test_reinvite_with_call_id_spelled_call_id(self) -> None:
        invite = parse_capture("rc_supervisor_invite_tls.txt")
        msg = parse_capture("rc_softphone_sdk_reinvite.txt")
        assert isinstance(msg, Request)
        assert ("Call-Id", invite.call_id) in list(msg.headers)
        assert msg.call_id == invite.call_id
        assert msg.headers.get("CALL-ID") == invite.call_id
        assert msg.uri == invite.from_.uri
        assert msg.cseq == CSeq(4821, "INVITE")
        assert msg.top_via.params["alias"] is None
        assert msg.contacts[0].uri.params == {"transport": "TLS", "ob": None}
        assert msg.content_type == "application/sdp"
        assert b"\r\na=sendonly\r\n" in msg.body
        assert msg.serialize().startswith(
            b"INVITE sip:+16505550072@10.62.192.70 SIP/2.0\r\nCall-Id: "
        )


# --------------------------------------------------------------------------------------------
# Golden captures: invariants every capture satisfies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_CAPTURES)
class TestCaptureRoundTrip:
    def test_body_is_exact(self, name: str) -> None:
        data = load_capture(name)
        msg = parse_capture(name)
        assert msg.body == data.partition(b"\r\n\r\n")[2]
        assert int(msg.headers.get("content-length") or "") == len(msg.body)

    def test_datagram_and_stream_parse_alike(self, name: str) -> None:
        assert_equivalent(parse_message(load_capture(name)), parse_capture(name))

    def test_serialize_round_trips(self, name: str) -> None:
        msg = parse_capture(name)
        again = parse_message(msg.serialize(), stream=True)
        assert_equivalent(again, msg)
        assert again.serialize() == msg.serialize()
        assert bytes(msg) == msg.serialize()

    def test_content_length_is_last_and_correct(self, name: str) -> None:
        msg = parse_capture(name)
        head, _, body = msg.serialize().partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[-1] == f"Content-Length: {len(msg.body)}".encode()
        assert head.lower().count(b"\r\ncontent-length:") == 1
        assert body == msg.body

    def test_edits_are_seen_by_accessors(self, name: str) -> None:
        msg = parse_capture(name)
        msg.headers.prepend("Via", "SIP/2.0/TLS proxy.example.com;branch=z9hG4bKedit")
        assert msg.top_via.host == "proxy.example.com"
        assert len(msg.vias) == 2
        msg.headers.remove_first("via")
        assert_equivalent(msg, parse_capture(name))


@pytest.mark.parametrize("name", BYTE_EXACT_CAPTURES)
def test_serialize_is_byte_exact_when_content_length_already_last(name: str) -> None:
    assert parse_capture(name).serialize() == load_capture(name)


# --------------------------------------------------------------------------------------------
# RFC 3261 §7: message syntax
# --------------------------------------------------------------------------------------------


class TestStartLine:
    """RFC 3261 §7.1 Request-Line, §7.2 Status-Line, §8.2.2.1, §8.2.1."""

    def test_request(self) -> None:
        msg = parse_request(options())
        assert (msg.method, str(msg.uri)) == ("OPTIONS", "sip:bob@example.com")

    def test_extension_method(self) -> None:
        data = wire("PUBLISH sip:bob@example.com SIP/2.0", *MANDATORY[:4], "CSeq: 1 PUBLISH")
        assert parse_request(data).method == "PUBLISH"

    def test_response(self) -> None:
        msg = parse_response(wire("SIP/2.0 481 Call/Transaction Does Not Exist", *MANDATORY))
        assert (msg.status, msg.reason) == (481, "Call/Transaction Does Not Exist")

    @pytest.mark.parametrize("line", ["SIP/2.0 200 ", "SIP/2.0 200"])
    def test_empty_reason_phrase(self, line: str) -> None:
        msg = parse_response(wire(line, *MANDATORY))
        assert (msg.status, msg.reason) == (200, "")
        assert msg.serialize().startswith(b"SIP/2.0 200 \r\n")
        assert parse_response(msg.serialize()).reason == ""

    def test_sips_request_uri(self) -> None:
        data = wire(
            "INVITE sips:bob@biloxi.example.com SIP/2.0",
            "Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=z9hG4bK74bf9",
            *MANDATORY[1:4],
            "CSeq: 1 INVITE",
        )
        msg = parse_request(data)
        assert (msg.uri.scheme, msg.uri.effective_port) == ("sips", 5061)
        assert msg.serialize().startswith(b"INVITE sips:bob@biloxi.example.com SIP/2.0\r\n")

    def test_tel_request_uri_is_416(self) -> None:
        data = wire("INVITE tel:+16505550100 SIP/2.0", *MANDATORY[:4], "CSeq: 1 INVITE")
        with pytest.raises(ParseError, match=r"^unsupported URI scheme 'tel'$") as info:
            parse_message(data)
        assert info.value.status_hint == 416

    @pytest.mark.parametrize(
        ("line", "version"),
        [
            ("OPTIONS sip:bob@example.com SIP/3.0", "'SIP/3.0'"),
            ("OPTIONS sip:bob@example.com SIP/1.0", "'SIP/1.0'"),
            ("SIP/3.0 200 OK", "'SIP/3.0'"),
        ],
    )
    def test_wrong_version_is_505(self, line: str, version: str) -> None:
        with pytest.raises(ParseError, match=f"^unsupported version {version}$") as info:
            parse_message(wire(line, *MANDATORY))
        assert info.value.status_hint == 505

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("OPTIONS", "malformed start line 'OPTIONS'"),
            ("OPTIONS sip:bob@example.com", "malformed start line 'OPTIONS sip:bob@example.com'"),
            ("OPT(ONS sip:bob@example.com SIP/2.0", "invalid method 'OPT(ONS'"),
            ("SIP/2.0 2OO OK", "invalid status code '2OO'"),
            ("SIP/2.0 99 Low", "invalid status code '99'"),
            ("SIP/2.0 700 High", "invalid status code '700'"),
            ("SIP/2.0 2000 OK", "invalid status code '2000'"),
        ],
    )
    def test_malformed(self, line: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            parse_message(wire(line, *MANDATORY))
        assert str(info.value) == message
        assert info.value.status_hint == 400

    @pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n\r\n"])
    def test_empty_input(self, data: bytes) -> None:
        with pytest.raises(ParseError, match=r"^malformed start line ''$"):
            parse_message(data)

    def test_cseq_method_must_match(self) -> None:
        data = wire(OPTIONS_LINE, *MANDATORY[:4], "CSeq: 314159 BYE")
        with pytest.raises(ParseError, match=r"^CSeq method 'BYE' does not match 'OPTIONS'$"):
            parse_message(data)

    def test_leading_crlfs_are_ignored(self) -> None:
        """RFC 3261 §7.5: CRLFs before the start line are skipped."""
        assert parse_request(b"\r\n\r\n" + options()).method == "OPTIONS"


class TestHeaderFields:
    """RFC 3261 §7.3: header field format, compact forms, folding, multiple values."""

    def test_compact_forms(self) -> None:
        data = wire(
            "INVITE sip:bob@example.com SIP/2.0",
            "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKcompact",
            "f: <sip:alice@example.com>;tag=a1",
            "t: <sip:bob@example.com>",
            "i: compact@192.0.2.1",
            "CSeq: 7 INVITE",
            "m: <sip:alice@192.0.2.1>;expires=60",
            "k: timer, 100rel",
            "x: 1800;refresher=uac",
            "s: hello",
            "o: refer",
            "c: application/sdp",
            "e: gzip",
            "l: 5",
            body=b"v=0\r\n",
        )
        msg = parse_request(data, stream=True)
        assert msg.top_via.branch == "z9hG4bKcompact"
        assert (msg.from_.tag, msg.to.uri.user, msg.call_id) == ("a1", "bob", "compact@192.0.2.1")
        assert msg.contacts[0].params == {"expires": "60"}
        assert msg.headers.get_all("supported") == ["timer", "100rel"]
        assert msg.headers.get("session-expires") == "1800;refresher=uac"
        assert msg.headers.get("subject") == "hello"
        assert msg.headers.get("event") == "refer"
        assert msg.headers.get("content-encoding") == "gzip"
        assert msg.content_type == "application/sdp"
        assert msg.body == b"v=0\r\n"
        out = msg.serialize()
        assert b"\r\nv: SIP/2.0/UDP" in out  # spelling kept
        assert b"\r\nl:" not in out
        assert out.endswith(b"\r\nContent-Length: 5\r\n\r\nv=0\r\n")
        assert_equivalent(parse_message(out), msg)

    def test_names_are_case_insensitive(self) -> None:
        data = wire(
            "OPTIONS sip:bob@example.com SIP/2.0",
            "VIA: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKcase",
            "fRoM: <sip:alice@example.com>;tag=x",
            "TO: <sip:bob@example.com>",
            "call-id: lower@case",
            "cseq: 1 OPTIONS",
            "CONTENT-LENGTH: 0",
        )
        msg = parse_request(data, stream=True)
        assert (msg.top_via.branch, msg.from_.tag) == ("z9hG4bKcase", "x")
        assert (msg.call_id, msg.cseq) == ("lower@case", CSeq(1, "OPTIONS"))
        assert next(iter(msg.headers)) == ("VIA", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKcase")

    def test_whitespace_around_colon(self) -> None:
        msg = parse_request(options("Subject \t:   spaced out  "))
        assert msg.headers.get("subject") == "spaced out"
        assert ("Subject", "spaced out") in list(msg.headers)

    def test_empty_value(self) -> None:
        assert parse_request(options("Subject:")).headers.get("subject") == ""

    def test_multiple_via_values_in_one_line_and_across_lines(self) -> None:
        data = wire(
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKa, SIP/2.0/UDP p2.example.com:5070"
            ";branch=z9hG4bKb;received=192.0.2.7",
            "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKc",
            *MANDATORY[1:],
        )
        msg = parse_response(data)
        assert [v.host for v in msg.vias] == ["p1.example.com", "p2.example.com", "192.0.2.1"]
        assert [v.branch for v in msg.vias] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
        assert msg.vias[1].params["received"] == "192.0.2.7"
        assert msg.top_via.host == "p1.example.com"

    def test_folding(self) -> None:
        data = wire(
            OPTIONS_LINE,
            "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKa,",
            "  SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKb",
            *MANDATORY[1:],
            "Subject: I know you're there,",
            "\tpick up the phone",
            "   and talk to me!",
        )
        msg = parse_request(data)
        assert [v.branch for v in msg.vias] == ["z9hG4bKa", "z9hG4bKb"]
        assert (
            msg.headers.get("subject") == "I know you're there, pick up the phone and talk to me!"
        )
        assert_equivalent(parse_message(msg.serialize()), msg)

    def test_folding_onto_the_start_line_is_rejected(self) -> None:
        data = wire(OPTIONS_LINE, " continued", *MANDATORY)
        with pytest.raises(ParseError, match=r"^malformed header line ' continued'$"):
            parse_message(data)

    def test_contact_list_with_quoted_display_names(self) -> None:
        data = wire(
            "REGISTER sip:example.com SIP/2.0",
            *MANDATORY[:4],
            "CSeq: 1 REGISTER",
            r'Contact: "Doe, John \"JD\"" <sip:john@192.0.2.4>;q=0.7, "Smith; A <x>" '
            "<sip:a@192.0.2.5;transport=tcp>;expires=60",
            "m: sip:bare@192.0.2.6;expires=0",
        )
        john, smith, bare = parse_request(data).contacts
        assert john.display_name == 'Doe, John "JD"'
        assert (john.uri.user, john.params) == ("john", {"q": "0.7"})
        assert smith.display_name == "Smith; A <x>"
        assert (smith.uri.transport, smith.params) == ("TCP", {"expires": "60"})
        assert (bare.display_name, bare.uri.user, bare.params) == (None, "bare", {"expires": "0"})

    def test_star_contact_is_not_a_binding(self) -> None:
        data = wire(
            "REGISTER sip:example.com SIP/2.0",
            *MANDATORY[:4],
            "CSeq: 2 REGISTER",
            "Contact: *",
            "Expires: 0",
        )
        msg = parse_request(data)
        assert msg.contacts == []
        assert msg.headers.get("contact") == "*"

    def test_ipv6(self) -> None:
        data = wire(
            "OPTIONS sip:alice@[2001:db8::10]:5070;transport=tcp SIP/2.0",
            "Via: SIP/2.0/TCP [2001:db8::9]:5060;branch=z9hG4bKv6;received=[2001:db8::1]"
            ";rport=49152",
            "Via: SIP/2.0/UDP [::1];branch=z9hG4bKv6b",
            "From: <sip:[::1]:5060>;tag=v6",
            "To: <sip:alice@[2001:db8::10]>",
            "Call-ID: v6@[2001:db8::9]",
            "CSeq: 1 OPTIONS",
            "Contact: <sips:[2001:db8::9]:5061>",
        )
        msg = parse_request(data)
        assert (msg.uri.host, msg.uri.port, msg.uri.transport) == ("[2001:db8::10]", 5070, "TCP")
        top, second = msg.vias
        assert (top.host, top.port) == ("[2001:db8::9]", 5060)
        assert top.params == {"branch": "z9hG4bKv6", "received": "[2001:db8::1]", "rport": "49152"}
        assert (second.host, second.port) == ("[::1]", None)
        assert (msg.from_.uri.host, msg.from_.uri.port, msg.from_.uri.user) == ("[::1]", 5060, None)
        assert msg.contacts[0].uri.effective_port == 5061
        assert_equivalent(parse_message(msg.serialize()), msg)

    @pytest.mark.parametrize(
        ("line", "shown"),
        [
            ("NoColonHere", "'NoColonHere'"),
            ("Bad Name: x", "'Bad Name: x'"),
            (": nameless", "': nameless'"),
            ("Via(x): y", "'Via(x): y'"),
        ],
    )
    def test_malformed_header_line(self, line: str, shown: str) -> None:
        with pytest.raises(ParseError) as info:
            parse_message(options(line))
        assert str(info.value) == f"malformed header line {shown}"

    def test_header_section_must_be_utf8(self) -> None:
        data = options().replace(b"Alice", b"Al\xe9ce")
        with pytest.raises(ParseError, match=r"^header section is not UTF-8 at byte \d+$"):
            parse_message(data)

    def test_body_may_be_any_bytes(self) -> None:
        body = bytes(range(256))
        msg = parse_request(options("Content-Type: application/octet-stream", body=body))
        assert msg.body == body

    def test_bare_lf_line_endings_are_tolerated(self) -> None:
        data = options("Content-Length: 3", body=b"abc").replace(b"\r\n", b"\n")
        msg = parse_request(data)
        assert (msg.call_id, msg.body) == ("a84b4c76e66710@pc33.example.com", b"abc")


class TestMandatoryHeaders:
    """RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Max-Forwards (not enforced) and Via."""

    @pytest.mark.parametrize(
        ("missing", "message"),
        [
            ("Via", "missing Via header"),
            ("From", "missing from header"),
            ("To", "missing to header"),
            ("Call-ID", "missing call-id header"),
            ("CSeq", "missing cseq header"),
        ],
    )
    @pytest.mark.parametrize("start", [OPTIONS_LINE, "SIP/2.0 200 OK"])
    def test_missing(self, start: str, missing: str, message: str) -> None:
        lines = [line for line in MANDATORY if not line.startswith(f"{missing}:")]
        with pytest.raises(ParseError) as info:
            parse_message(wire(start, *lines))
        assert str(info.value) == message
        assert info.value.status_hint == 400

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            ("Call-ID: ", "empty Call-ID header"),
            ("From: ", "not a URI: ''"),
            ("To: Bob", "not a URI: 'Bob'"),
            ("CSeq: OPTIONS", "invalid CSeq 'OPTIONS'"),
            ("Via: SIP/2.0/UDP", "Via without sent-by in 'SIP/2.0/UDP'"),
            ("Via: SIP/2.0 host", "invalid Via sent-protocol in 'SIP/2.0 host'"),
        ],
    )
    def test_invalid(self, bad: str, message: str) -> None:
        name = bad.partition(":")[0]
        lines = [bad if line.startswith(f"{name}:") else line for line in MANDATORY]
        with pytest.raises(ParseError) as info:
            parse_message(wire(OPTIONS_LINE, *lines))
        assert str(info.value) == message

    def test_invalid_contact_is_rejected_at_parse_time(self) -> None:
        with pytest.raises(ParseError, match=r"^missing '>' in '<sip:a@b'$"):
            parse_message(options("Contact: <sip:a@b"))

    def test_to_with_an_angle_bracket_in_a_bare_addr_spec_is_rejected(self) -> None:
        """Otherwise the To of a response, bracketed by make_response, would not parse again."""
        lines = [
            m if not m.startswith("To:") else "To: sip:bob@example.com?x=>y" for m in MANDATORY
        ]
        with pytest.raises(ParseError, match=r"^invalid character in URI 'sip:bob@"):
            parse_message(wire(OPTIONS_LINE, *lines))

    def test_max_forwards_is_not_required(self) -> None:
        assert "max-forwards" not in parse_request(options()).headers


class TestBody:
    """RFC 3261 §18.3 framing and §20.14 Content-Length."""

    def test_datagram_without_content_length_takes_the_rest(self) -> None:
        assert parse_request(options(body=b"rest\r\n\r\nof it")).body == b"rest\r\n\r\nof it"

    def test_datagram_body_beyond_content_length_is_discarded(self) -> None:
        assert parse_request(options("Content-Length: 4", body=b"v=0\r\ntrailing")).body == b"v=0\r"

    def test_stream_requires_content_length(self) -> None:
        with pytest.raises(ParseError, match=r"^missing Content-Length on a stream transport$"):
            parse_message(options(), stream=True)

    def test_stream_with_content_length(self) -> None:
        assert parse_request(options("l: 3", body=b"abc"), stream=True).body == b"abc"

    def test_content_length_whitespace(self) -> None:
        assert parse_request(options("Content-Length:    3   ", body=b"abc")).body == b"abc"

    @pytest.mark.parametrize("value", ["abc", "-1", "+3", "1.5", "0x10", "3 3"])
    def test_invalid_content_length(self, value: str) -> None:
        with pytest.raises(ParseError) as info:
            parse_message(options(f"Content-Length: {value}", body=b"abc"))
        assert str(info.value) == f"invalid Content-Length {value!r}"

    def test_body_shorter_than_content_length(self) -> None:
        with pytest.raises(ParseError, match=r"^body shorter than Content-Length \(3 < 10\)$"):
            parse_message(options("Content-Length: 10", body=b"abc"), stream=True)

    def test_body_containing_blank_lines(self) -> None:
        body = b"v=0\r\n\r\n\r\nx"
        assert parse_request(options(f"Content-Length: {len(body)}", body=body)).body == body

    def test_content_type(self) -> None:
        msg = parse_request(options("Content-Type: Application/SDP ; charset=utf-8"))
        assert msg.content_type == "application/sdp"
        assert parse_request(options()).content_type is None


class TestLimits:
    """Rule 8: size limits raise MessageTooLarge (513)."""

    def test_message_too_large(self) -> None:
        data = options("Content-Length: 70000", body=b"x" * 70000)
        with pytest.raises(MessageTooLarge) as info:
            parse_message(data)
        assert str(info.value) == f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}"
        assert info.value.status_hint == 513
        assert isinstance(info.value, ParseError)

    def test_exactly_max_size_is_accepted(self) -> None:
        head = options("Content-Length: 00000")
        body_length = MAX_MESSAGE_SIZE - len(head)
        data = options(f"Content-Length: {body_length:05d}", body=b"x" * body_length)
        assert len(data) == MAX_MESSAGE_SIZE
        assert len(parse_request(data).body) == body_length
        with pytest.raises(MessageTooLarge):
            parse_message(data + b"x")

    def test_custom_max_size(self) -> None:
        data = options()
        with pytest.raises(MessageTooLarge, match=rf"^message of {len(data)} bytes exceeds 100$"):
            parse_message(data, max_size=100)
        assert parse_request(data, max_size=len(data)).method == "OPTIONS"

    def test_too_many_headers(self) -> None:
        extra = [f"X-H{i}: {i}" for i in range(MAX_HEADERS - len(MANDATORY))]
        assert len(parse_request(options(*extra)).headers) == MAX_HEADERS
        with pytest.raises(MessageTooLarge, match=rf"^more than {MAX_HEADERS} header fields$"):
            parse_message(options(*extra, "X-One-Too-Many: 1"))

    def test_line_too_long(self) -> None:
        prefix = "Subject: "
        fits = prefix + "a" * (MAX_LINE_LENGTH - len(prefix))
        assert parse_request(options(fits)).headers.get("subject") == fits[len(prefix) :]
        with pytest.raises(MessageTooLarge) as info:
            parse_message(options(fits + "a"))
        assert str(info.value) == f"header line longer than {MAX_LINE_LENGTH} bytes"
        assert info.value.status_hint == 513

    def test_start_line_too_long(self) -> None:
        line = "OPTIONS sip:" + "b" * MAX_LINE_LENGTH + "@example.com SIP/2.0"
        with pytest.raises(MessageTooLarge):
            parse_message(wire(line, *MANDATORY))


class TestMakeResponse:
    """RFC 3261 §8.2.6.2: headers copied from the request into the response."""

    def request(self, *extra: str, to: str = "To: Bob <sip:bob@example.com>;x=1") -> Request:
        return parse_request(
            wire(
                "INVITE sip:bob@example.com SIP/2.0",
                "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP 192.0.2.1"
                ";branch=z9hG4bK1;rport=5060;received=192.0.2.1",
                "Max-Forwards: 69",
                "From: Alice <sip:alice@example.com>;tag=1928301774",
                to,
                "i: a84b4c76e66710@pc33.example.com",
                "CSeq:  314159   INVITE",
                "Contact: <sip:alice@192.0.2.1>",
                *extra,
            )
        )

    def test_copies_dialog_headers(self) -> None:
        req = self.request()
        resp = make_response(req, 180, to_tag="t1")
        assert [name for name, _ in resp.headers] == ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
        assert resp.headers.get_all("via") == req.headers.get_all("via")
        assert resp.headers.get("from") == "Alice <sip:alice@example.com>;tag=1928301774"
        assert resp.headers.get("cseq") == "314159   INVITE"
        assert resp.call_id == req.call_id
        assert resp.vias == req.vias
        assert (resp.status, resp.reason) == (180, "Ringing")

    @pytest.mark.parametrize("status", [101, 180, 183, 200, 486, 603])
    def test_adds_to_tag_above_100(self, status: int) -> None:
        resp = make_response(self.request(), status, to_tag="t1")
        assert resp.to == NameAddr(SipUri("example.com", "bob"), "Bob", {"x": "1", "tag": "t1"})

    def test_no_to_tag_on_100(self) -> None:
        resp = make_response(self.request(), 100, to_tag="t1")
        assert resp.headers.get("to") == "Bob <sip:bob@example.com>;x=1"
        assert resp.to.tag is None

    def test_no_to_tag_without_one_given(self) -> None:
        assert make_response(self.request(), 200).to.tag is None

    def test_existing_to_tag_is_kept(self) -> None:
        req = self.request(to="To: <sip:bob@example.com>;tag=already")
        resp = make_response(req, 200, to_tag="other")
        assert resp.headers.get("to") == "<sip:bob@example.com>;tag=already"

    def test_reason_phrases(self) -> None:
        req = self.request()
        assert make_response(req, 486).reason == "Busy Here"
        assert make_response(req, 299).reason == "Unknown"
        assert make_response(req, 200, "Fine").reason == "Fine"
        assert REASON_PHRASES[513] == "Message Too Large"

    def test_extra_headers_and_body(self) -> None:
        resp = make_response(
            self.request(),
            200,
            to_tag="t1",
            headers=[("Contact", "<sip:bob@192.0.2.4>"), ("Content-Type", "application/sdp")],
            body=b"v=0\r\n",
        )
        assert [name for name, _ in resp.headers][-2:] == ["Contact", "Content-Type"]
        out = resp.serialize()
        assert out.startswith(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1")
        assert out.endswith(b"\r\nContent-Length: 5\r\n\r\nv=0\r\n")
        again = parse_response(out)
        assert_equivalent(again, resp)
        assert again.to.tag == "t1"

    @pytest.mark.parametrize("name", REQUEST_CAPTURES)
    def test_responds_to_every_captured_request(self, name: str) -> None:
        req = parse_capture(name)
        assert isinstance(req, Request)
        resp = parse_response(make_response(req, 200, to_tag="cw-tag").serialize())
        assert resp.top_via == req.top_via
        assert (resp.call_id, resp.cseq, resp.from_) == (req.call_id, req.cseq, req.from_)
        assert resp.to.tag == (req.to.tag or "cw-tag")


class TestBuildingMessages:
    def test_request_from_parts(self) -> None:
        headers = Headers([(n, v) for n, _, v in (m.partition(": ") for m in MANDATORY)])
        req = Request(headers=headers, method="OPTIONS", uri=SipUri("example.com", "bob"))
        assert bytes(req) == options("Content-Length: 0")
        assert repr(req) == (
            "<Request OPTIONS sip:bob@example.com call-id=a84b4c76e66710@pc33.example.com>"
        )

    def test_response_repr(self) -> None:
        resp = parse_response(wire("SIP/2.0 486 Busy Here", *MANDATORY))
        assert repr(resp) == "<Response 486 Busy Here call-id=a84b4c76e66710@pc33.example.com>"

    def test_defaults(self) -> None:
        assert (Request().method, str(Request().uri)) == ("OPTIONS", "sip:invalid")
        assert (Response().status, Response().reason, Response().body) == (200, "OK", b"")

    def test_accessors_on_an_empty_message_raise_parse_error(self) -> None:
        msg = Request()
        assert msg.vias == []
        with pytest.raises(ParseError, match=r"^missing Via header$"):
            _ = msg.top_via
        with pytest.raises(ParseError, match=r"^missing call-id header$"):
            _ = msg.call_id


class TestNumbers:
    """Rule 7: numbers are 1*DIGIT in ASCII, at most 10 digits; anything else is a ParseError."""

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("Content-Length: \u00b2", "invalid Content-Length '\u00b2'"),
            ("Content-Length: \u0663", "invalid Content-Length '\u0663'"),
            ("Content-Length: \uff13", "invalid Content-Length '\uff13'"),
            ("Content-Length: " + "0" * 5000, "invalid Content-Length '" + "0" * 20 + "'"),
            ("Content-Length: 00000000000", "invalid Content-Length '00000000000'"),
            ("CSeq: \u00b2 OPTIONS", "invalid CSeq '\u00b2 OPTIONS'"),
            ("CSeq: \u0663 OPTIONS", "invalid CSeq '\u0663 OPTIONS'"),
            ("CSeq: 1" + "0" * 10 + " OPTIONS", "invalid CSeq '1" + "0" * 10 + " OPTIONS'"),
            ("Via: SIP/2.0/UDP h:\u00b2", "invalid Via port in 'SIP/2.0/UDP h:\u00b2'"),
            (
                "Via: SIP/2.0/UDP h:" + "5" * 5000,
                "invalid Via port in 'SIP/2.0/UDP h:" + "5" * 5000 + "'",
            ),
        ],
    )
    def test_rejected(self, line: str, message: str) -> None:
        name = line.partition(":")[0]
        lines = [line if m.startswith(f"{name}:") else m for m in MANDATORY]
        if name == "Content-Length":
            lines.append(line)
        with pytest.raises(ParseError) as info:
            parse_message(wire(OPTIONS_LINE, *lines))
        assert str(info.value) == message

    def test_ten_digits_are_accepted(self) -> None:
        assert parse_request(options("Content-Length: 0000000003", body=b"abc")).body == b"abc"

    @pytest.mark.parametrize("code", ["\u0662\u0660\u0660", "\u00b2\u00b2\u00b2", "２００"])
    def test_status_code_digits_are_ascii(self, code: str) -> None:
        with pytest.raises(ParseError) as info:
            parse_message(wire(f"SIP/2.0 {code} OK", *MANDATORY))
        assert str(info.value) == f"invalid status code {code!r}"


# --------------------------------------------------------------------------------------------
# Regressions: bugs found and fixed
# --------------------------------------------------------------------------------------------


class TestKnownBugs:
    @pytest.mark.parametrize(
        "line", ["OPTIONS  sip:bob@example.com SIP/2.0", "OPTIONS sip:bob@example.com SIP/2.0 "]
    )
    def test_extra_space_in_request_line_is_400_not_505(self, line: str) -> None:
        with pytest.raises(ParseError) as info:
            parse_message(wire(line, *MANDATORY))
        assert info.value.status_hint == 400

    def test_bare_lf_message_whose_body_contains_crlfcrlf(self) -> None:
        body = b"a\r\n\r\nb"
        data = options(f"Content-Length: {len(body)}").replace(b"\r\n", b"\n") + body
        assert parse_request(data).body == body

    def test_folded_header_longer_than_max_line_length(self) -> None:
        folded = ["Subject: start"] + [" " + "a" * 8000] * 4
        with pytest.raises(MessageTooLarge):
            parse_message(options(*folded))


# --------------------------------------------------------------------------------------------
# Rule 7: parsers never crash (hypothesis)
# --------------------------------------------------------------------------------------------

INTERESTING = [
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\r\n ",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"=",
    b'"',
    b"\\",
    b"<",
    b">",
    b"[",
    b"]",
    b"@",
    b"/",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"0",
    b"99999",
    b"Content-Length: 9\r\n",
    b"l: 0\r\n",
    b"Via: SIP/2.0/UDP x\r\n",
    b"sips:",
    b"tel:",
]


@st.composite
def mutated_captures(draw: st.DrawFn) -> bytes:
    data = bytearray(load_capture(draw(st.sampled_from(ALL_CAPTURES))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=6))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 24))]
        elif kind == "replace":
            data[pos : pos + draw(st.integers(1, 8))] = draw(st.sampled_from(INTERESTING))
    return bytes(data)


HEADER_NAMES = [
    "Via",
    "v",
    "From",
    "f",
    "To",
    "t",
    "Call-ID",
    "i",
    "CSeq",
    "Contact",
    "m",
    "Content-Length",
    "l",
    "Content-Type",
    "Record-Route",
    "Route",
    "Allow",
    "X",
]
sip_text = st.text(
    alphabet=st.sampled_from([*'sip:@;=<>",\\[]/ .\t0123456789abzSIPUDTCL-*%?&+', "\u00e9"]),
    max_size=40,
)


@st.composite
def fuzzed_value(draw: st.DrawFn, value: str) -> str:
    """``value`` with a random slice replaced by SIP-ish text."""
    start = draw(st.integers(0, len(value)))
    end = draw(st.integers(start, len(value)))
    return value[:start] + draw(sip_text) + value[end:]


@st.composite
def structured_messages(draw: st.DrawFn) -> bytes:
    """A well-formed message with one header value or the Request-URI fuzzed, maybe more."""
    lines = list(MANDATORY)
    start = draw(st.sampled_from([OPTIONS_LINE, OPTIONS_LINE, "SIP/2.0 200 OK", "SIP/2.0 100 "]))
    target = draw(st.integers(0, len(lines)))
    if target == len(lines):
        start = f"OPTIONS {draw(fuzzed_value('sip:bob@example.com'))} SIP/2.0"
    else:
        name, _, value = lines[target].partition(": ")
        lines[target] = f"{name}: {draw(fuzzed_value(value))}"
    if draw(st.integers(0, 5)) == 0:
        del lines[draw(st.integers(0, len(lines) - 1))]
    lines += draw(
        st.lists(st.builds("{}: {}".format, st.sampled_from(HEADER_NAMES), sip_text), max_size=2)
    )
    return wire(start, *lines, body=draw(st.binary(max_size=12)))


def assert_message_or_parse_error(data: bytes, *, stream: bool) -> None:
    try:
        message = parse_message(data, stream=stream)
    except ParseError:
        return
    assert isinstance(message, Request | Response)
    assert_fully_built(message)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=600), stream=st.booleans())
def test_any_bytes_give_a_message_or_parse_error(data: bytes, stream: bool) -> None:
    assert_message_or_parse_error(data, stream=stream)


@settings(max_examples=400, deadline=None)
@given(data=structured_messages(), stream=st.booleans())
def test_structured_garbage_gives_a_message_or_parse_error(data: bytes, stream: bool) -> None:
    assert_message_or_parse_error(data, stream=stream)


@settings(max_examples=500, deadline=None)
@given(data=mutated_captures(), stream=st.booleans())
def test_mutated_captures_give_a_message_or_parse_error(data: bytes, stream: bool) -> None:
    assert_message_or_parse_error(data, stream=stream)
