"""Tests for callwatch.sip.uri: SIP/SIPS URIs (RFC 3261 §19.1), name-addr (§20.10), parameters."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.sip.errors import ParseError
from callwatch.sip.uri import NameAddr, SipUri, format_params, parse_params, split_quoted


class TestSipUri:
    """RFC 3261 §19.1.1: ``sip:user:password@host:port;uri-parameters?headers``."""

    def test_every_component(self) -> None:
        uri = SipUri.parse(
            "sip:alice:secretword@atlanta.example.com:5061;transport=tcp;lr"
            "?subject=project%20x&priority=urgent"
        )
        assert uri == SipUri(
            host="atlanta.example.com",
            user="alice",
            port=5061,
            scheme="sip",
            password="secretword",
            params={"transport": "tcp", "lr": None},
            headers="subject=project%20x&priority=urgent",
        )
        assert uri.transport == "TCP"
        assert uri.effective_port == 5061

    def test_host_only(self) -> None:
        uri = SipUri.parse("sip:sip.ringcentral.com")
        assert (uri.user, uri.host, uri.port, uri.params, uri.headers) == (
            None,
            "sip.ringcentral.com",
            None,
            {},
            None,
        )
        assert uri.effective_port == 5060
        assert uri.transport is None

    def test_sips_default_port(self) -> None:
        uri = SipUri.parse("sips:bob@biloxi.example.com")
        assert (uri.scheme, uri.effective_port) == ("sips", 5061)

    def test_scheme_is_case_insensitive(self) -> None:
        assert SipUri.parse("SIP:Bob@Example.COM").scheme == "sip"
        assert str(SipUri.parse("SIPS:bob@example.com")) == "sips:bob@example.com"

    def test_user_part_is_kept_as_received(self) -> None:
        uri = SipUri.parse("sip:%61lice;phone-context=x@example.com")
        assert (uri.user, uri.host) == ("%61lice;phone-context=x", "example.com")
        assert SipUri.parse("sip:18005557562*102@192.168.42.15").user == "18005557562*102"
        assert SipUri.parse("sip:+16505550072@10.62.192.70").user == "+16505550072"

    @pytest.mark.parametrize(
        ("text", "host", "port"),
        [
            ("sip:[2001:db8::1]", "[2001:db8::1]", None),
            ("sip:[::1]:5060", "[::1]", 5060),
            ("sips:alice@[2001:db8::10]:5071;transport=tls", "[2001:db8::10]", 5071),
            ("sip:192.0.2.4:5060", "192.0.2.4", 5060),
        ],
    )
    def test_hosts(self, text: str, host: str, port: int | None) -> None:
        uri = SipUri.parse(text)
        assert (uri.host, uri.port) == (host, port)
        assert str(uri) == text

    def test_parameters_keep_order_and_lower_case_names(self) -> None:
        uri = SipUri.parse("sip:u@1.2.3.4:5061;Transport=TLS;ob;maddr=239.255.255.1;ttl=15")
        assert list(uri.params.items()) == [
            ("transport", "TLS"),
            ("ob", None),
            ("maddr", "239.255.255.1"),
            ("ttl", "15"),
        ]
        assert str(uri) == "sip:u@1.2.3.4:5061;transport=TLS;ob;maddr=239.255.255.1;ttl=15"

    def test_empty_password(self) -> None:
        uri = SipUri.parse("sip:alice:@example.com")
        assert (uri.user, uri.password) == ("alice", "")
        assert str(uri) == "sip:alice:@example.com"

    @pytest.mark.parametrize(
        "text",
        [
            "sip:alice@atlanta.example.com",
            "sip:alice:secretword@atlanta.example.com;transport=tcp",
            "sips:alice@atlanta.example.com?subject=project%20x&priority=urgent",
            "sip:+1-212-555-1212:1234@gateway.example.com;user=phone",
            "sips:1212@gateway.example.com",
            "sip:alice@192.0.2.4",
            "sip:atlanta.example.com;method=REGISTER?to=alice%40atlanta.example.com",
            "sip:alice;day=tuesday@atlanta.example.com",
            "sip:16505550100@192.168.1.23:53712;transport=TLS;ob",
        ],
    )
    def test_rfc_3261_examples_round_trip(self, text: str) -> None:
        """The examples of RFC 3261 §19.1.3 (and one of ours) format back to themselves."""
        assert str(SipUri.parse(text)) == text

    def test_surrounding_whitespace_is_ignored(self) -> None:
        assert SipUri.parse("  sip:a@b  ") == SipUri(host="b", user="a")

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "not a URI: ''"),
            ("sip", "not a URI: 'sip'"),
            ("sip:", "not a URI: 'sip:'"),
            ("sip:@example.com", "empty user part in 'sip:@example.com'"),
            ("sip::pw@example.com", "empty user part in 'sip::pw@example.com'"),
            ("sip:alice@", "invalid host in ''"),
            ("sip:;transport=tcp", "invalid host in ''"),
            ("sip:exa mple.com", "invalid character in URI 'sip:exa mple.com'"),
            ("sip:a@<b>", "invalid character in URI 'sip:a@<b>'"),
            ('sip:"b"', "invalid character in URI 'sip:\"b\"'"),
            ("sip:a>b@example.com", "invalid character in URI 'sip:a>b@example.com'"),
            ("sip:bob@example.com?x=>y", "invalid character in URI 'sip:bob@example.com?x=>y'"),
            ("sip:h;x=a\tb", "invalid character in URI 'sip:h;x=a\\tb'"),
            ("sip:example.com:0", "invalid port in 'example.com:0'"),
            ("sip:example.com:65536", "invalid port in 'example.com:65536'"),
            ("sip:example.com:50a", "invalid port in 'example.com:50a'"),
            ("sip:example.com:-1", "invalid port in 'example.com:-1'"),
            ("sip:example.com:\u00b2", "invalid port in 'example.com:\u00b2'"),
            ("sip:example.com:\u0665\u0660", "invalid port in 'example.com:\u0665\u0660'"),
            ("sip:h:" + "1" * 5000, "invalid port in 'h:" + "1" * 5000 + "'"),
            ("sip:[::1", "unterminated IPv6 reference in '[::1'"),
            ("sip:[::1]5060", "junk after IPv6 reference in '[::1]5060'"),
            ("sip:[::1]:x", "invalid port in '[::1]:x'"),
            ("sip:example.com;=x", "empty parameter name in '=x'"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            SipUri.parse(text)
        assert str(info.value) == message
        assert info.value.status_hint == 400

    @pytest.mark.parametrize(
        "text", ["tel:+16505550100", "http://example.com/", "urn:uuid:1234", "mailto:a@b"]
    )
    def test_other_schemes_are_416(self, text: str) -> None:
        with pytest.raises(ParseError, match=r"^unsupported URI scheme ") as info:
            SipUri.parse(text)
        assert info.value.status_hint == 416

    def test_with_and_without_params_copy(self) -> None:
        uri = SipUri.parse("sip:u@h;transport=tcp;ob")
        changed = uri.with_params(transport="tls", lr=None)
        assert str(changed) == "sip:u@h;transport=tls;ob;lr"
        assert str(uri) == "sip:u@h;transport=tcp;ob"
        assert str(changed.without_params("ob", "lr", "absent")) == "sip:u@h;transport=tls"

    def test_is_frozen(self) -> None:
        uri = SipUri.parse("sip:u@h")
        with pytest.raises(dataclasses.FrozenInstanceError):
            uri.host = "other"  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("text", "aor"),
        [
            ("sip:Alice@Atlanta.Example.COM:5061;transport=tcp", "sip:Alice@atlanta.example.com"),
            ("sips:bob@[2001:DB8::1]", "sips:bob@[2001:db8::1]"),
            ("sip:example.com", "sip:example.com"),
        ],
    )
    def test_address_of_record(self, text: str, aor: str) -> None:
        assert SipUri.parse(text).address_of_record() == aor


class TestNameAddr:
    """RFC 3261 §20.10 / §25.1: ``[display-name] <addr-spec> *(;param)`` or ``addr-spec``."""

    def test_quoted_display_name_with_escapes(self) -> None:
        value = NameAddr.parse(r'"Bob \"The Builder\" \\o/" <sip:bob@example.com>;tag=a6c85cf')
        assert value.display_name == 'Bob "The Builder" \\o/'
        assert value.uri == SipUri(host="example.com", user="bob")
        assert value.tag == "a6c85cf"
        assert str(value) == r'"Bob \"The Builder\" \\o/" <sip:bob@example.com>;tag=a6c85cf'

    def test_special_characters_inside_quotes(self) -> None:
        value = NameAddr.parse('"Doe, John; <Jr.>" <sip:john@example.com;transport=tcp>;q=0.5')
        assert value.display_name == "Doe, John; <Jr.>"
        assert value.uri.params == {"transport": "tcp"}
        assert value.params == {"q": "0.5"}

    def test_unquoted_display_name(self) -> None:
        value = NameAddr.parse("Bob Smith <sip:bob@example.com>")
        assert value.display_name == "Bob Smith"
        assert str(value) == '"Bob Smith" <sip:bob@example.com>'

    def test_no_display_name(self) -> None:
        value = NameAddr.parse("<sip:+16505550072@10.62.192.70>;tag=10.62.25.111-5070-6ce1264")
        assert value.display_name is None
        assert value.tag == "10.62.25.111-5070-6ce1264"
        assert str(value) == "<sip:+16505550072@10.62.192.70>;tag=10.62.25.111-5070-6ce1264"

    def test_addr_spec_parameters_belong_to_the_header(self) -> None:
        """RFC 3261 §20: parameters after a bare addr-spec are header parameters."""
        value = NameAddr.parse("sip:alice@example.com;tag=88sja8x;expires=0")
        assert value.uri == SipUri(host="example.com", user="alice")
        assert value.params == {"tag": "88sja8x", "expires": "0"}
        assert str(value) == "<sip:alice@example.com>;tag=88sja8x;expires=0"

    def test_uri_parameters_stay_in_brackets(self) -> None:
        value = NameAddr.parse("<sip:u@h;transport=TLS;ob>;reg-id=1;expires=300")
        assert value.uri.params == {"transport": "TLS", "ob": None}
        assert value.params == {"reg-id": "1", "expires": "300"}

    def test_instance_id_with_angle_brackets_in_quotes(self) -> None:
        value = NameAddr.parse(
            '<sip:sup1-0x55@127.0.0.1:5072>;+sip.instance="<urn:uuid:0b8d7f4e>";reg-id=1'
        )
        assert value.params == {"+sip.instance": '"<urn:uuid:0b8d7f4e>"', "reg-id": "1"}
        assert str(value).endswith(';+sip.instance="<urn:uuid:0b8d7f4e>";reg-id=1')

    def test_uri_headers_inside_brackets(self) -> None:
        value = NameAddr.parse("<sip:a@b?Replaces=abc%40h%3Bto-tag%3D1>;tag=2")
        assert value.uri.headers == "Replaces=abc%40h%3Bto-tag%3D1"
        assert value.tag == "2"

    def test_with_tag(self) -> None:
        value = NameAddr.parse("Bob <sip:bob@example.com>;x=1")
        tagged = value.with_tag("t1")
        assert str(tagged) == '"Bob" <sip:bob@example.com>;x=1;tag=t1'
        assert value.tag is None
        assert str(tagged.with_tag("t2")) == '"Bob" <sip:bob@example.com>;x=1;tag=t2'

    def test_ipv6_and_sips(self) -> None:
        value = NameAddr.parse("<sips:[2001:db8::9]:5061>")
        assert (value.uri.scheme, value.uri.host, value.uri.port) == ("sips", "[2001:db8::9]", 5061)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                '"Bob <sip:bob@example.com>',
                "unterminated display name in '\"Bob <sip:bob@example.com>'",
            ),
            ('"Bob" sip:bob@example.com', "display name without <uri> in 'sip:bob@example.com'"),
            ("<sip:bob@example.com", "missing '>' in '<sip:bob@example.com'"),
            ("<sip:bob@example.com> junk", "junk after '>' in '<sip:bob@example.com> junk'"),
            ("<>", "not a URI: ''"),
            ("", "not a URI: ''"),
            ("Bob", "not a URI: 'Bob'"),
            ('<sip:a@b>;x="open', "unterminated quoted string in ';x=\"open'"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            NameAddr.parse(text)
        assert str(info.value) == message

    @pytest.mark.parametrize("text", ["sip:a>b@example.com", "sip:bob@example.com?x=>y"])
    def test_bare_addr_spec_with_angle_bracket_is_rejected(self, text: str) -> None:
        """Otherwise its bracketed form, as written by str(), would not parse again."""
        with pytest.raises(ParseError, match=r"^invalid character in URI "):
            NameAddr.parse(text)

    def test_tel_uri_is_416(self) -> None:
        with pytest.raises(ParseError) as info:
            NameAddr.parse("<tel:+16505550100>;tag=1")
        assert info.value.status_hint == 416


class TestParams:
    def test_parse(self) -> None:
        assert parse_params(";a=1;B=Two;flag") == {"a": "1", "b": "Two", "flag": None}
        assert parse_params("a=1") == {"a": "1"}
        assert parse_params("") == {}

    def test_whitespace_and_empty_items(self) -> None:
        assert parse_params(" ; a = 1 ;; b ;") == {"a": "1", "b": None}
        assert parse_params("party-id=p-1; session-id=s-1") == {
            "party-id": "p-1",
            "session-id": "s-1",
        }

    def test_empty_value_is_not_a_flag(self) -> None:
        assert parse_params(";a=;b") == {"a": "", "b": None}
        assert format_params({"a": "", "b": None}) == ";a=;b"

    def test_quoted_values_keep_quotes_and_separators(self) -> None:
        assert parse_params(';x="a;b=c";y=2') == {"x": '"a;b=c"', "y": "2"}

    def test_repeated_name_keeps_the_last_value_in_the_first_place(self) -> None:
        assert list(parse_params(";a=1;b=2;A=3").items()) == [("a", "3"), ("b", "2")]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (";=1", "empty parameter name in ';=1'"),
            ("a=1; =2", "empty parameter name in 'a=1; =2'"),
            (';x="unterminated', "unterminated quoted string in ';x=\"unterminated'"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        with pytest.raises(ParseError) as info:
            parse_params(text)
        assert str(info.value) == message

    def test_format_round_trip(self) -> None:
        params = {"transport": "tls", "ob": None, "+sip.instance": '"<urn:uuid:1>"'}
        assert format_params(params) == ';transport=tls;ob;+sip.instance="<urn:uuid:1>"'
        assert parse_params(format_params(params)) == params


class TestSplitQuoted:
    def test_plain(self) -> None:
        assert split_quoted("a, b,c", ",") == ["a", " b", "c"]
        assert split_quoted("", ",") == [""]

    def test_separators_inside_quotes_and_brackets(self) -> None:
        text = '"Doe, J" <sip:a@b;x=1,2>, <sip:c@d>'
        assert split_quoted(text, ",") == ['"Doe, J" <sip:a@b;x=1,2>', " <sip:c@d>"]
        assert split_quoted(text, ";") == [text]

    def test_escaped_quote(self) -> None:
        assert split_quoted(r'"a\",b" <sip:x@y>,<sip:z@w>', ",") == [
            r'"a\",b" <sip:x@y>',
            "<sip:z@w>",
        ]
        assert split_quoted(r'"a\\",b', ",") == [r'"a\\"', "b"]

    def test_unbalanced_closing_bracket_is_ignored(self) -> None:
        assert split_quoted('a>,"b",<c,d>', ",") == ["a>", '"b"', "<c,d>"]

    def test_unterminated_quote(self) -> None:
        with pytest.raises(ParseError, match=r"^unterminated quoted string in '\"a,b'$"):
            split_quoted('"a,b', ",")


# --------------------------------------------------------------------------------------------
# Rule 7: parsers never crash, and whatever parses formats back to the same value (hypothesis)
# --------------------------------------------------------------------------------------------

uri_text = st.text(
    alphabet=st.sampled_from([*'sip:SIP@;=<>",\\[]?&% .\t0123456789abcz-+*/', "\u00e9"]),
    max_size=40,
)
any_text = st.text(max_size=60) | uri_text | st.builds("sip:{}".format, uri_text)


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_sip_uri_parse_gives_a_uri_or_parse_error(text: str) -> None:
    try:
        uri = SipUri.parse(text)
    except ParseError:
        return
    assert SipUri.parse(str(uri)) == uri


@settings(max_examples=500, deadline=None)
@given(any_text | st.builds("{} <{}>{}".format, uri_text, any_text, uri_text))
def test_name_addr_parse_gives_a_value_or_parse_error(text: str) -> None:
    try:
        value = NameAddr.parse(text)
    except ParseError:
        return
    # An empty quoted display name formats as no display name (see the report, minor).
    expected = dataclasses.replace(value, display_name=value.display_name or None)
    assert NameAddr.parse(str(value)) == expected


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_params_and_split_give_a_value_or_parse_error(text: str) -> None:
    try:
        params = parse_params(text)
    except ParseError:
        pass
    else:
        assert all(name == name.lower() and name for name in params)
    try:
        parts = split_quoted(text, ",")
    except ParseError:
        return
    assert ",".join(parts) == text
