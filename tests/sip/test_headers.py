"""Tests for callwatch.sip.headers: the Headers multidict, names, compact forms, Via and CSeq."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.sip.errors import ParseError
from callwatch.sip.headers import (
    COMPACT_FORMS,
    LIST_HEADERS,
    CSeq,
    Headers,
    Via,
    canonical_name,
    header_key,
)

VIA_A = "SIP/2.0/UDP a.example.com;branch=z9hG4bKa"
VIA_B = "SIP/2.0/TCP b.example.com:5070;branch=z9hG4bKb"
VIA_C = "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKc"


class TestNames:
    """RFC 3261 §7.3.1 (case-insensitive names), §7.3.3 and later compact forms."""

    @pytest.mark.parametrize(
        ("compact", "full"),
        [
            ("i", "call-id"),
            ("m", "contact"),
            ("e", "content-encoding"),
            ("l", "content-length"),
            ("c", "content-type"),
            ("f", "from"),
            ("s", "subject"),
            ("k", "supported"),
            ("t", "to"),
            ("v", "via"),
            ("o", "event"),
            ("r", "refer-to"),
            ("b", "referred-by"),
            ("u", "allow-events"),
            ("x", "session-expires"),
            ("a", "accept-contact"),
            ("j", "reject-contact"),
            ("d", "request-disposition"),
            ("y", "identity"),
        ],
    )
    def test_compact_forms(self, compact: str, full: str) -> None:
        assert COMPACT_FORMS[compact] == full
        assert header_key(compact) == header_key(compact.upper()) == full
        assert header_key(full.upper()) == full

    def test_header_key(self) -> None:
        assert header_key(" Call-ID ") == "call-id"
        assert header_key("P-RC-API-IDS") == "p-rc-api-ids"
        assert header_key("X-Unknown") == "x-unknown"

    @pytest.mark.parametrize(
        ("name", "canonical"),
        [
            ("call-id", "Call-ID"),
            ("CALL-ID", "Call-ID"),
            ("Call-Id", "Call-ID"),
            ("i", "Call-ID"),
            ("cseq", "CSeq"),
            ("www-authenticate", "WWW-Authenticate"),
            ("Www-Authenticate", "WWW-Authenticate"),
            ("min-se", "Min-SE"),
            ("mime-version", "MIME-Version"),
            ("rack", "RAck"),
            ("rseq", "RSeq"),
            ("P-RC-API-IDS", "p-rc-api-ids"),
            ("p-rc-api-monitoring-ids", "p-rc-api-monitoring-ids"),
            ("p-asserted-identity", "P-Asserted-Identity"),
            ("v", "Via"),
            ("l", "Content-Length"),
            ("x", "Session-Expires"),
            ("k", "Supported"),
            ("content-type", "Content-Type"),
            ("max-forwards", "Max-Forwards"),
            ("user-agent", "User-Agent"),
            ("proxy-authorization", "Proxy-Authorization"),
            ("alert-info", "Alert-Info"),
        ],
    )
    def test_canonical_name(self, name: str, canonical: str) -> None:
        assert canonical_name(name) == canonical

    def test_list_headers(self) -> None:
        assert {"via", "contact", "route", "record-route", "allow", "supported"} <= LIST_HEADERS
        assert not {"authorization", "www-authenticate", "date", "subject"} & LIST_HEADERS


class TestHeaders:
    def make(self) -> Headers:
        return Headers(
            [
                ("Via", f"{VIA_A}, {VIA_B}"),
                ("v", VIA_C),
                ("From", "<sip:a@example.com>;tag=1"),
                ("Call-Id", "abc@host"),
                ("Subject", "one, two"),
                ("Route", "<sip:p1;lr>"),
                ("Route", "<sip:p2;lr>, <sip:p3;lr>"),
            ]
        )

    def test_iteration_keeps_spelling_and_order(self) -> None:
        headers = self.make()
        assert [name for name, _ in headers] == [
            "Via",
            "v",
            "From",
            "Call-Id",
            "Subject",
            "Route",
            "Route",
        ]
        assert len(headers) == 7

    def test_get_is_case_and_compact_insensitive(self) -> None:
        headers = self.make()
        assert headers.get("call-id") == headers.get("I") == headers.get("CALL-ID") == "abc@host"
        assert headers.get("f") == "<sip:a@example.com>;tag=1"
        assert headers.get("via") == f"{VIA_A}, {VIA_B}"  # the first field, unsplit
        assert headers.get("to") is None
        assert headers.get("to", "default") == "default"

    def test_get_all_splits_list_headers_only(self) -> None:
        headers = self.make()
        assert headers.get_all("VIA") == [VIA_A, VIA_B, VIA_C]
        assert headers.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
        assert headers.get_all("subject") == ["one, two"]
        assert headers.get_all("contact") == []

    def test_get_all_respects_quotes_and_brackets(self) -> None:
        headers = Headers([("m", '"Doe, J" <sip:j@h;x=1,2>;q=0.1 ,  <sip:k@h>')])
        assert headers.get_all("contact") == ['"Doe, J" <sip:j@h;x=1,2>;q=0.1', "<sip:k@h>"]

    def test_get_all_skips_empty_items(self) -> None:
        assert Headers([("Allow", "INVITE,, ACK ,")]).get_all("allow") == ["INVITE", "ACK"]

    def test_authorization_is_never_split(self) -> None:
        value = 'Digest username="101",realm="r",uri="sip:a",nonce="n",response="x"'
        assert Headers([("Authorization", value)]).get_all("authorization") == [value]

    def test_contains(self) -> None:
        headers = self.make()
        assert "i" in headers
        assert "CALL-ID" in headers
        assert "via" in headers
        assert "To" not in headers
        assert 42 not in headers

    def test_add_appends_with_given_spelling(self) -> None:
        headers = self.make()
        headers.add("p-rc-api-ids", "party-id=p;session-id=s")
        headers.add("VIA", VIA_A)
        assert list(headers)[-2:] == [("p-rc-api-ids", "party-id=p;session-id=s"), ("VIA", VIA_A)]
        assert headers.get_all("via")[-1] == VIA_A

    def test_prepend_makes_a_new_top_via(self) -> None:
        headers = self.make()
        headers.prepend("Via", "SIP/2.0/UDP proxy;branch=z9hG4bKp")
        assert next(iter(headers)) == ("Via", "SIP/2.0/UDP proxy;branch=z9hG4bKp")
        assert headers.get_all("via") == ["SIP/2.0/UDP proxy;branch=z9hG4bKp", VIA_A, VIA_B, VIA_C]

    def test_set_replaces_every_field_in_the_first_place(self) -> None:
        headers = self.make()
        headers.set("route", "<sip:only;lr>")
        assert [name for name, _ in headers] == ["Via", "v", "From", "Call-Id", "Subject", "route"]
        assert headers.get_all("Route") == ["<sip:only;lr>"]
        headers.set("V", VIA_C)
        assert headers.get_all("via") == [VIA_C]
        assert next(name for name, _ in headers) == "V"

    def test_set_appends_when_absent(self) -> None:
        headers = self.make()
        headers.set("To", "<sip:b@example.com>")
        assert list(headers)[-1] == ("To", "<sip:b@example.com>")

    def test_remove_every_spelling(self) -> None:
        headers = self.make()
        headers.remove("VIA")
        assert "via" not in headers
        assert len(headers) == 5
        headers.remove("absent")
        assert len(headers) == 5

    def test_remove_first_on_a_comma_joined_via(self) -> None:
        headers = self.make()
        headers.remove_first("via")
        assert next(iter(headers)) == ("Via", VIA_B)
        assert headers.get_all("via") == [VIA_B, VIA_C]
        headers.remove_first("v")
        assert headers.get_all("via") == [VIA_C]
        assert next(name for name, _ in headers) == "v"
        headers.remove_first("via")
        assert "via" not in headers

    def test_remove_first_keeps_the_remaining_list_intact(self) -> None:
        headers = Headers([("Via", f"{VIA_A} ,  {VIA_B},{VIA_C}")])
        headers.remove_first("via")
        assert headers.get_all("via") == [VIA_B, VIA_C]
        assert Via.parse(headers.get_all("via")[0]).host == "b.example.com"

    def test_remove_first_on_separate_fields(self) -> None:
        headers = self.make()
        headers.remove_first("route")
        assert headers.get_all("route") == ["<sip:p2;lr>", "<sip:p3;lr>"]

    def test_remove_first_of_a_non_list_header_removes_the_field(self) -> None:
        headers = self.make()
        headers.remove_first("subject")
        assert "subject" not in headers
        headers.remove_first("absent")
        assert len(headers) == 6

    def test_remove_first_with_a_quoted_comma(self) -> None:
        headers = Headers([("Contact", '"Doe, J" <sip:j@h>, <sip:k@h>')])
        headers.remove_first("m")
        assert headers.get_all("contact") == ["<sip:k@h>"]

    def test_copy_is_independent(self) -> None:
        headers = self.make()
        copy = headers.copy()
        copy.remove("via")
        copy.add("To", "<sip:b@h>")
        assert headers == self.make()
        assert copy != headers

    def test_equality_compares_spelling_and_order(self) -> None:
        assert Headers([("Via", "x")]) == Headers([("Via", "x")])
        assert Headers([("Via", "x")]) != Headers([("v", "x")])
        assert Headers([("A", "1"), ("B", "2")]) != Headers([("B", "2"), ("A", "1")])
        assert Headers() != [("Via", "x")]

    def test_repr(self) -> None:
        assert repr(Headers([("Via", "x")])) == "Headers([('Via', 'x')])"


class TestVia:
    """RFC 3261 §20.42 Via, §18.2.1 received, RFC 3581 rport."""

    def test_parse(self) -> None:
        via = Via.parse("SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKfae923d5a4fd12aa;rport")
        assert via == Via(
            transport="UDP",
            host="127.0.0.1",
            port=5072,
            params={"branch": "z9hG4bKfae923d5a4fd12aa", "rport": None},
        )
        assert via.protocol == "SIP/2.0"
        assert via.branch == "z9hG4bKfae923d5a4fd12aa"

    def test_received_and_rport_values(self) -> None:
        via = Via.parse("SIP/2.0/TLS 192.168.1.23:53712;rport=53712;received=203.0.113.9;branch=b")
        assert via.params == {"rport": "53712", "received": "203.0.113.9", "branch": "b"}

    def test_transport_is_upper_cased_and_whitespace_tolerated(self) -> None:
        via = Via.parse("  SIP/2.0/tls   host.invalid ;branch=z9hG4bK-1 ; alias ")
        assert (via.transport, via.host, via.port) == ("TLS", "host.invalid", None)
        assert via.params == {"branch": "z9hG4bK-1", "alias": None}
        assert str(via) == "SIP/2.0/TLS host.invalid;branch=z9hG4bK-1;alias"

    @pytest.mark.parametrize(
        ("text", "host", "port"),
        [
            ("SIP/2.0/UDP [2001:db8::9]:5060;branch=x", "[2001:db8::9]", 5060),
            ("SIP/2.0/UDP [::1];branch=x", "[::1]", None),
            ("SIP/2.0/TCP 3f98e277-4cbd-47ad.invalid;branch=x", "3f98e277-4cbd-47ad.invalid", None),
        ],
    )
    def test_hosts(self, text: str, host: str, port: int | None) -> None:
        via = Via.parse(text)
        assert (via.host, via.port) == (host, port)
        assert str(via) == text

    def test_ipv6_received(self) -> None:
        via = Via.parse("SIP/2.0/UDP [::1]:5060;received=[2001:db8::2];rport=5070;branch=x")
        assert via.params["received"] == "[2001:db8::2]"
        assert via.params["rport"] == "5070"

    def test_other_protocol(self) -> None:
        via = Via.parse("SIP/3.0/SCTP h;branch=x")
        assert (via.protocol, via.transport) == ("SIP/3.0", "SCTP")

    def test_with_params_copies(self) -> None:
        via = Via.parse("SIP/2.0/UDP 192.0.2.1:5062;rport;branch=z9hG4bK1")
        stamped = via.with_params(received="203.0.113.9", rport="40000")
        assert str(stamped) == (
            "SIP/2.0/UDP 192.0.2.1:5062;rport=40000;branch=z9hG4bK1;received=203.0.113.9"
        )
        assert via.params == {"rport": None, "branch": "z9hG4bK1"}
        with pytest.raises(dataclasses.FrozenInstanceError):
            via.host = "x"  # type: ignore[misc]

    def test_no_branch(self) -> None:
        assert Via.parse("SIP/2.0/UDP h").branch is None

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "invalid Via sent-protocol in ''"),
            ("SIP/2.0 host", "invalid Via sent-protocol in 'SIP/2.0 host'"),
            ("SIP//UDP host", "invalid Via sent-protocol in 'SIP//UDP host'"),
            ("SIP/2.0/UDP/X host", "invalid Via sent-protocol in 'SIP/2.0/UDP/X host'"),
            ("SIP/2.0/UDP", "Via without sent-by in 'SIP/2.0/UDP'"),
            ("SIP/2.0/UDP ;branch=x", "Via without sent-by in 'SIP/2.0/UDP ;branch=x'"),
            ("SIP/2.0/UDP [::1", "invalid IPv6 sent-by in 'SIP/2.0/UDP [::1'"),
            ("SIP/2.0/UDP [::1]5060", "invalid IPv6 sent-by in 'SIP/2.0/UDP [::1]5060'"),
            ("SIP/2.0/UDP :5060", "invalid Via host in 'SIP/2.0/UDP :5060'"),
            ("SIP/2.0/UDP a b", "invalid Via host in 'SIP/2.0/UDP a b'"),
            ("SIP/2.0/UDP h:0", "invalid Via port in 'SIP/2.0/UDP h:0'"),
            ("SIP/2.0/UDP h:65536", "invalid Via port in 'SIP/2.0/UDP h:65536'"),
            ("SIP/2.0/UDP h:x", "invalid Via port in 'SIP/2.0/UDP h:x'"),
            ("SIP/2.0/UDP h:\u00b2", "invalid Via port in 'SIP/2.0/UDP h:\u00b2'"),
            ("SIP/2.0/UDP h:\u0665\u0660", "invalid Via port in 'SIP/2.0/UDP h:\u0665\u0660'"),
            (
                "SIP/2.0/UDP h:" + "5" * 5000,
                "invalid Via port in 'SIP/2.0/UDP h:" + "5" * 5000 + "'",
            ),
            ("SIP/2.0/UDP h;=x", "empty parameter name in '=x'"),
            ('SIP/2.0/UDP h;x="', "unterminated quoted string in 'x=\"'"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            Via.parse(text)
        assert str(info.value) == message


class TestCSeq:
    """RFC 3261 §20.16: ``CSeq: 1*DIGIT LWS Method``, the number below 2**31."""

    @pytest.mark.parametrize(
        ("text", "seq", "method"),
        [
            ("314159 INVITE", 314159, "INVITE"),
            ("  2   REGISTER  ", 2, "REGISTER"),
            ("0 ACK", 0, "ACK"),
            ("007 BYE", 7, "BYE"),
            ("2147483647 OPTIONS", 2**31 - 1, "OPTIONS"),
        ],
    )
    def test_parse(self, text: str, seq: int, method: str) -> None:
        assert CSeq.parse(text) == CSeq(seq, method)
        assert str(CSeq.parse(text)) == f"{seq} {method}"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("INVITE", "invalid CSeq 'INVITE'"),
            ("1", "invalid CSeq '1'"),
            ("1 ", "invalid CSeq '1 '"),
            ("x INVITE", "invalid CSeq 'x INVITE'"),
            ("-1 INVITE", "invalid CSeq '-1 INVITE'"),
            ("\u00b2 INVITE", "invalid CSeq '\u00b2 INVITE'"),
            ("\u0663 INVITE", "invalid CSeq '\u0663 INVITE'"),
            ("1" * 5000 + " INVITE", "invalid CSeq '" + "1" * 5000 + " INVITE'"),
            ("12345678901 INVITE", "invalid CSeq '12345678901 INVITE'"),
            ("1 IN VITE", "invalid CSeq '1 IN VITE'"),
            ("2147483648 INVITE", "CSeq number out of range in '2147483648 INVITE'"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            CSeq.parse(text)
        assert str(info.value) == message


class TestKnownBugs:
    def test_remove_first_skips_empty_items_like_get_all(self) -> None:
        headers = Headers([("Via", f", {VIA_A}, {VIA_B}")])
        assert headers.get_all("via") == [VIA_A, VIA_B]
        headers.remove_first("via")
        assert headers.get_all("via") == [VIA_B]


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------------------------

header_text = st.text(
    alphabet=st.sampled_from([*'SIP/2.0UDTLCSipsh.:;=<>"\\,[] \t0123456789abx-', "\u00e9"]),
    max_size=40,
)
any_text = st.text(max_size=60) | header_text | st.builds("SIP/2.0/UDP {}".format, header_text)


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_via_parse_gives_a_via_or_parse_error(text: str) -> None:
    try:
        via = Via.parse(text)
    except ParseError:
        return
    assert via.transport == via.transport.upper()
    assert Via.parse(str(via)) == via


@settings(max_examples=300, deadline=None)
@given(any_text | st.builds("{} {}".format, st.integers(-5, 2**32), header_text))
def test_cseq_parse_gives_a_cseq_or_parse_error(text: str) -> None:
    try:
        cseq = CSeq.parse(text)
    except ParseError:
        return
    assert 0 <= cseq.seq < 2**31
    assert CSeq.parse(str(cseq)) == cseq


via_values = st.builds(
    "SIP/2.0/{} h{}.example.com;branch=z9hG4bK{}".format,
    st.sampled_from(["UDP", "TCP", "TLS"]),
    st.integers(0, 99),
    st.integers(0, 10**6),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(via_values, min_size=1, max_size=6),
    cuts=st.lists(st.booleans(), min_size=6, max_size=6),
    spacing=st.sampled_from([",", ", ", " , "]),
)
def test_via_list_splitting_and_remove_first(
    values: list[str], cuts: list[bool], spacing: str
) -> None:
    """However the values are spread over fields, get_all and remove_first agree."""
    fields: list[list[str]] = [[values[0]]]
    for value, new_field in zip(values[1:], cuts, strict=False):
        if new_field:
            fields.append([value])
        else:
            fields[-1].append(value)
    headers = Headers((("Via" if i % 2 else "v"), spacing.join(f)) for i, f in enumerate(fields))
    for i in range(len(values)):
        assert headers.get_all("via") == values[i:]
        assert Via.parse(headers.get_all("via")[0]) == Via.parse(values[i])
        headers.remove_first("via")
    assert "via" not in headers
