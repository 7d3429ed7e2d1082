"""Tests for callwatch.sip.framing: Content-Length framing on streams (RFC 3261 §18.3, RFC 5626)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.sip.errors import MessageTooLarge, ParseError
from callwatch.sip.framing import KEEPALIVE, StreamFramer
from callwatch.sip.message import MAX_MESSAGE_SIZE, parse_message

DATA = Path(__file__).parent / "data"
CAPTURES = (
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


@functools.cache
def load_capture(name: str) -> bytes:
    """A golden capture (see test_message.py for provenance), checked to still be CRLF."""
    data = (DATA / name).read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b""), f"{name}: bare LF, line endings were converted"
    return data


def message(body: bytes = b"", *, length: str | None = None, name: str = "Content-Length") -> bytes:
    length = str(len(body)) if length is None else length
    return (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKframe\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"Call-ID: frame@192.0.2.1\r\n"
        b"CSeq: 1 OPTIONS\r\n" + f"{name}: {length}\r\n\r\n".encode() + body
    )


def feed_all(framer: StreamFramer, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


class TestFraming:
    def test_one_message(self) -> None:
        framer = StreamFramer()
        data = message(b"v=0\r\n")
        assert framer.feed(data) == [data]
        assert framer.buffered == 0

    def test_byte_by_byte(self) -> None:
        framer = StreamFramer()
        data = message(b"hello")
        outputs = [framer.feed(data[i : i + 1]) for i in range(len(data))]
        assert outputs[-1] == [data]
        assert all(out == [] for out in outputs[:-1])
        assert framer.buffered == 0

    def test_partial_message_is_held(self) -> None:
        framer = StreamFramer()
        data = message(b"0123456789")
        assert framer.feed(data[:-3]) == []
        assert framer.buffered == len(data) - 3
        assert framer.feed(data[-3:]) == [data]

    def test_several_messages_in_one_read(self) -> None:
        first, second, third = message(b"a"), message(), message(b"ccc")
        assert StreamFramer().feed(first + second + third) == [first, second, third]

    def test_body_containing_crlfcrlf(self) -> None:
        body = b"\r\n\r\nv=0\r\n\r\n"
        data = message(body)
        framed = StreamFramer().feed(data + message())
        assert framed == [data, message()]
        assert parse_message(framed[0], stream=True).body == body

    def test_compact_and_lower_case_content_length(self) -> None:
        compact = message(b"xyz", name="l")
        lower = message(b"xy", name="content-length")
        padded = message(b"x", length="    1")
        assert StreamFramer().feed(compact + lower + padded) == [compact, lower, padded]

    def test_framed_messages_parse(self) -> None:
        data = b"".join(load_capture(name) for name in CAPTURES)
        framed = StreamFramer().feed(data)
        assert framed == [load_capture(name) for name in CAPTURES]
        for item in framed:
            assert parse_message(item, stream=True).serialize()


class TestKeepalive:
    """RFC 5626 §4.4.1: CRLFCRLF ping; a lone CRLF between messages is skipped."""

    def test_ping(self) -> None:
        assert KEEPALIVE == b"\r\n\r\n"
        framer = StreamFramer()
        assert framer.feed(b"\r\n\r\n") == [KEEPALIVE]
        assert framer.buffered == 0

    @pytest.mark.parametrize("split", [1, 2, 3])
    def test_split_ping(self, split: int) -> None:
        framer = StreamFramer()
        assert framer.feed(b"\r\n\r\n"[:split]) == []
        assert framer.feed(b"\r\n\r\n"[split:]) == [KEEPALIVE]

    def test_pings_between_messages(self) -> None:
        data = message(b"a")
        framed = StreamFramer().feed(KEEPALIVE + data + KEEPALIVE + KEEPALIVE + data)
        assert framed == [KEEPALIVE, data, KEEPALIVE, KEEPALIVE, data]

    def test_single_crlf_between_messages_is_skipped(self) -> None:
        data = message(b"a")
        assert StreamFramer().feed(data + b"\r\n" + data) == [data, data]

    def test_lone_crlf_waits(self) -> None:
        framer = StreamFramer()
        assert framer.feed(b"\r\n") == []
        assert framer.buffered == 2
        assert framer.feed(message()) == [message()]

    def test_pong_then_message(self) -> None:
        framer = StreamFramer()
        assert framer.feed(b"\r\n" + message()[:10]) == []
        assert framer.feed(message()[10:]) == [message()]


class TestFramingErrors:
    def test_missing_content_length(self) -> None:
        data = message().replace(b"Content-Length: 0\r\n", b"")
        with pytest.raises(ParseError, match=r"^missing Content-Length on a stream transport$"):
            StreamFramer().feed(data)

    @pytest.mark.parametrize("value", ["abc", "-1", "", "1.0", "\u00b2", "0" * 11])
    def test_invalid_content_length(self, value: str) -> None:
        with pytest.raises(ParseError, match=r"^invalid Content-Length on a stream transport$"):
            StreamFramer().feed(message(length=value))

    def test_header_section_too_large(self) -> None:
        framer = StreamFramer(max_size=1000)
        assert framer.feed(b"X" * 1000) == []
        with pytest.raises(MessageTooLarge, match=r"^header section exceeds the size limit$") as e:
            framer.feed(b"X")
        assert e.value.status_hint == 513

    def test_declared_body_too_large_fails_before_it_arrives(self) -> None:
        head = message(length="70000")
        with pytest.raises(MessageTooLarge) as info:
            StreamFramer().feed(head)
        assert str(info.value) == f"message of {len(head) + 70000} bytes exceeds {MAX_MESSAGE_SIZE}"

    def test_limit_is_inclusive(self) -> None:
        data = message(b"x" * 100)
        assert StreamFramer(max_size=len(data)).feed(data) == [data]
        with pytest.raises(MessageTooLarge):
            StreamFramer(max_size=len(data) - 1).feed(data)


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------------------------


@st.composite
def stream_and_items(draw: st.DrawFn) -> tuple[bytes, list[bytes], int]:
    """Captures, pings and lone CRLFs back to back: the stream, what the framer must yield, and
    how many bytes it must still hold at the end (a trailing lone CRLF waits for more)."""
    items = draw(st.lists(st.sampled_from([*CAPTURES, "ping", "crlf"]), max_size=8))
    stream = b""
    expected: list[bytes] = []
    last = "start"
    for item in items:
        if item == "ping" and last != "crlf":
            stream += KEEPALIVE
            expected.append(KEEPALIVE)
        elif item == "crlf" and last == "message":
            stream += b"\r\n"  # a CRLF right after a CRLF (or at the start) would be a ping
        elif item not in ("ping", "crlf"):
            stream += load_capture(item)
            expected.append(load_capture(item))
            item = "message"
        else:
            continue
        last = item
    return stream, expected, 2 if last == "crlf" else 0


@settings(max_examples=300, deadline=None)
@given(case=stream_and_items(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_yields_exactly_the_messages(
    case: tuple[bytes, list[bytes], int], cuts: list[int]
) -> None:
    stream, expected, left = case
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    framer = StreamFramer()
    assert feed_all(framer, chunks) == expected
    assert framer.buffered == left


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(
        st.binary(max_size=40)
        | st.sampled_from([b"\r\n", b"\r\n\r\n", b"Content-Length: 3\r\n", b"l: 99999\r\n"]),
        max_size=10,
    )
)
def test_arbitrary_bytes_frame_or_raise_parse_error(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_size=200)
    try:
        for chunk in chunks:
            for item in framer.feed(chunk):
                assert item == KEEPALIVE or b"\r\n\r\n" in item
                assert len(item) <= 200
    except ParseError:
        pass
    assert framer.buffered <= 200 + 40
