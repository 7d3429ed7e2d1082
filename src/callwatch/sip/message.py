"""SIP requests and responses: parse from bytes, serialize to bytes (RFC 3261 §7, §20, §25).

Theory of operation: :func:`parse_message` takes the bytes of one datagram or one framed stream
message and returns a fully validated :class:`Request` or :class:`Response`, or raises
:class:`ParseError` with a status hint — nothing else, whatever the bytes. The headers every
transaction and dialog needs (Via, From, To, Call-ID, CSeq) are parsed during validation, so a
message that parsed can be used without further errors; the typed accessors re-read them from the
:class:`Headers` so that edits to the headers are always seen.

Serialization writes the start line, the header fields in order with the spelling they carry, and
``Content-Length`` always last, computed from the body (some softphones split messages on
``Content-Length: 0`` followed by the blank line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from callwatch.sip.errors import MessageTooLarge, ParseError
from callwatch.sip.grammar import parse_uint
from callwatch.sip.headers import CSeq, Headers, Via
from callwatch.sip.uri import NameAddr, SipUri

MAX_MESSAGE_SIZE = 65535
"""Largest message accepted (a UDP datagram's payload limit; RFC 3261 §18.1.1)."""
MAX_HEADERS = 256
"""Most header fields in one message."""
MAX_LINE_LENGTH = 8192
"""Longest header line."""
SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # RFC 3261 §25.1 token


def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


@dataclass(slots=True, eq=False)
class Message:
    """What requests and responses share: header fields and a body."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first."""
        return [Via.parse(v) for v in self.headers.get_all("via")]

    @property
    def top_via(self) -> Via:
        """The first Via value."""
        values = self.headers.get_all("via")
        if not values:
            raise ParseError("missing Via header")
        return Via.parse(values[0])

    @property
    def from_(self) -> NameAddr:
        """The From header."""
        return NameAddr.parse(self._required("from"))

    @property
    def to(self) -> NameAddr:
        """The To header."""
        return NameAddr.parse(self._required("to"))

    @property
    def call_id(self) -> str:
        """The Call-ID header."""
        return self._required("call-id").strip()

    @property
    def cseq(self) -> CSeq:
        """The CSeq header."""
        return CSeq.parse(self._required("cseq"))

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; a ``*`` contact is not a name-addr and is left out (see is_star)."""
        return [NameAddr.parse(v) for v in self.headers.get_all("contact") if v.strip() != "*"]

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower-case, without parameters."""
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise ParseError(f"missing {name} header")
        return value

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(
            f"{n}: {v}" for n, v in self.headers if n.lower() not in ("content-length", "l")
        )
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True, eq=False)
class Request(Message):
    """A SIP request."""

    method: str = "OPTIONS"
    uri: SipUri = field(default_factory=lambda: SipUri(host="invalid"))

    def serialize(self) -> bytes:
        """The request on the wire."""
        return self._serialize(f"{self.method} {self.uri} {SIP_VERSION}")

    def __bytes__(self) -> bytes:
        return self.serialize()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.headers.get('call-id')}>"


@dataclass(slots=True, eq=False)
class Response(Message):
    """A SIP response."""

    status: int = 200
    reason: str = "OK"

    def serialize(self) -> bytes:
        """The response on the wire."""
        return self._serialize(f"{SIP_VERSION} {self.status} {self.reason}")

    def __bytes__(self) -> bytes:
        return self.serialize()

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.headers.get('call-id')}>"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to ``request`` as RFC 3261 §8.2.6.2 says.

    Via, From, To, Call-ID and CSeq are copied; ``to_tag`` is added to To when it has none
    (and the status is above 100).
    """
    resp_headers = Headers()
    for via in request.headers.get_all("via"):
        resp_headers.add("Via", via)
    to = request.headers.get("to") or ""
    if to_tag and status > 100 and request.to.tag is None:
        to = str(request.to.with_tag(to_tag))
    resp_headers.add("From", request.headers.get("from") or "")
    resp_headers.add("To", to)
    resp_headers.add("Call-ID", request.call_id)
    resp_headers.add("CSeq", request.headers.get("cseq") or "")
    for name, value in headers:
        resp_headers.add(name, value)
    return Response(
        headers=resp_headers,
        body=body,
        status=status,
        reason=reason or REASON_PHRASES.get(status, "Unknown"),
    )


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")  # bare-LF senders: tolerated, as RFC 3261 §7.5 asks of receivers
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return data[:lf], data[lf + 2 :]
    if crlf >= 0:
        return data[:crlf], data[crlf + 4 :]
    return data.rstrip(b"\r\n"), b""


def _header_lines(head: str) -> list[str]:
    lines: list[str] = []
    for line in head.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and len(lines) > 1:
            lines[-1] += " " + line.strip()  # header folding (RFC 3261 §7.3.1)
        else:
            lines.append(line)
        if len(lines[-1]) > MAX_LINE_LENGTH:
            raise MessageTooLarge(f"header line longer than {MAX_LINE_LENGTH} bytes")
    return lines


def _parse_fields(lines: list[str]) -> Headers:
    if len(lines) > MAX_HEADERS:
        raise MessageTooLarge(f"more than {MAX_HEADERS} header fields")
    fields: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _is_token(name):
            raise ParseError(f"malformed header line {line[:80]!r}")
        fields.append((name, value.strip()))
    return Headers(fields)


def _parse_start_line(line: str) -> tuple[str, str, str]:
    if line.startswith("SIP/"):
        parts = line.split(" ", 2)
        if len(parts) == 2:
            parts.append("")  # an empty reason phrase is allowed (RFC 3261 §25.1)
    else:
        parts = line.split(" ")  # Method SP Request-URI SP SIP-Version: exactly two spaces
    if len(parts) != 3 or not all(parts[:2]):
        raise ParseError(f"malformed start line {line[:80]!r}")
    return parts[0], parts[1], parts[2]


def _body(headers: Headers, rest: bytes, *, stream: bool) -> bytes:
    length_text = headers.get("content-length")
    if length_text is None:
        if stream:
            raise ParseError("missing Content-Length on a stream transport")
        return rest
    length = parse_uint(length_text, "Content-Length")
    if length > len(rest):
        raise ParseError(f"body shorter than Content-Length ({len(rest)} < {length})")
    return rest[:length]


def _validate(message: Message) -> None:
    if not message.headers.get_all("via"):
        raise ParseError("missing Via header")
    for via in message.vias:
        if not via.transport:
            raise ParseError("invalid Via")
    from_, to = message.from_, message.to
    del from_, to
    if not message.call_id:
        raise ParseError("empty Call-ID header")
    message.cseq  # noqa: B018 - parses and validates
    for _ in message.contacts:
        pass


def parse_message(
    data: bytes, *, stream: bool = False, max_size: int = MAX_MESSAGE_SIZE
) -> Request | Response:
    """Parse one SIP message.

    Args:
        data: the bytes of one datagram, or one message framed from a stream.
        stream: True on TCP/TLS/WS, where Content-Length is mandatory (RFC 3261 §18.3).
        max_size: the largest message accepted.

    Raises:
        ParseError: the bytes are not a valid SIP message (``status_hint`` says how to answer).
    """
    if len(data) > max_size:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds {max_size}")
    head_bytes, rest = _split_head(data.lstrip(b"\r\n"))
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"header section is not UTF-8 at byte {exc.start}") from None
    lines = _header_lines(head)
    first, second, third = _parse_start_line(lines[0])
    headers = _parse_fields(lines[1:])
    body = _body(headers, rest, stream=stream)
    message: Request | Response
    if first.startswith("SIP/"):
        message = _build_response(first, second, third, headers, body)
    else:
        message = _build_request(first, second, third, headers, body)
    _validate(message)
    return message


def _build_response(
    version: str, code: str, reason: str, headers: Headers, body: bytes
) -> Response:
    if version != SIP_VERSION:
        raise ParseError(f"unsupported version {version[:20]!r}", status_hint=505)
    if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
        raise ParseError(f"invalid status code {code[:20]!r}")
    return Response(headers=headers, body=body, status=int(code), reason=reason)


def _build_request(method: str, uri: str, version: str, headers: Headers, body: bytes) -> Request:
    if version != SIP_VERSION:
        raise ParseError(f"unsupported version {version[:20]!r}", status_hint=505)
    if not _is_token(method):
        raise ParseError(f"invalid method {method[:20]!r}")
    request = Request(headers=headers, body=body, method=method, uri=SipUri.parse(uri))
    if request.cseq.method != method:
        raise ParseError(f"CSeq method {request.cseq.method!r} does not match {method!r}")
    return request
