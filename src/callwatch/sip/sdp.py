"""SDP session descriptions (RFC 8866): parse, serialize, typed views.

Theory of operation: :meth:`SessionDescription.parse` splits the body into ``<type>=<value>``
lines (CRLF or LF), cuts them into the session part and one part per ``m=`` line, and builds
frozen dataclasses; :meth:`SessionDescription.serialize` writes them back with CRLF in the order
of RFC 8866 §5 (https://www.rfc-editor.org/rfc/rfc8866#section-5). Lines we do not interpret
(``u= e= p= r= z=`` and extra ``t=``) are kept as :attr:`SessionDescription.extra_lines`, so
``parse(serialize(sd)) == sd`` holds for every valid description. Attributes stay an ordered list
of ``(name, value)``; typed views (:attr:`MediaDescription.rtpmaps`, ``crypto``, ``ptime`` …) are
properties over it, and the attributes behind them are validated when an object is built, so the
views never fail later. Any input gives a description or :class:`ParseError` (status 400; 513 for
an oversized body; 488 is left to callers that find an offer unacceptable).

Line and attribute value types live in :mod:`callwatch.sip.sdp_fields` (re-exported here);
RFC 3264 negotiation (codec choice, answers, offers) lives in :mod:`callwatch.sip.offer_answer`.

Documented leniencies: lines may be in any order inside a section (we write RFC order); runs of
spaces between fields count as one; ``m=`` lines with port 0 may list no formats; trailing empty
lines are ignored. Bodies are UTF-8 (``a=charset`` is not honoured). The module is pure: session
ids, versions, ports and SRTP keys are arguments.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeVar

from callwatch.sip.errors import MessageTooLarge, ParseError
from callwatch.sip.sdp_fields import (
    DIRECTIONS,
    PROTO,
    STATIC_PAYLOAD_TYPES,
    TOKEN,
    Attribute,
    Attributes,
    Bandwidth,
    Connection,
    Crypto,
    Direction,
    InlineKey,
    Origin,
    RtpMap,
    append_attribute,
    check_attributes,
    check_text,
    check_word,
    encode_info_params,
    info_params,
    parse_attribute,
    parse_fmtp,
    parse_int,
    parse_ptime,
    parse_rtcp,
    parse_timing,
    party_id_from_info,
    set_attribute,
    set_direction,
    show,
    split_fields,
)

__all__ = [
    "MAX_MEDIA_DESCRIPTIONS",
    "MAX_SDP_SIZE",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Attributes",
    "Bandwidth",
    "Connection",
    "Crypto",
    "Direction",
    "InlineKey",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "encode_info_params",
    "info_params",
    "party_id_from_info",
]

MAX_SDP_SIZE = 65536  # bytes; far above real bodies (ICE-heavy WebRTC SDP stays under 20 KiB)
MAX_MEDIA_DESCRIPTIONS = 64  # m= lines per body; more is an attack, not a call
_LINE_TYPES = "vosiuepcbtrzkam"  # RFC 8866 §5: every defined <type> letter
_EXTRA_ORDER = {"u": 0, "e": 1, "p": 2, "t": 3, "r": 3, "z": 4}  # RFC 8866 §5 write order
_T = TypeVar("_T")


class _AttributesMixin:
    """Attribute look-ups and copy-with-changes shared by session and media level."""

    __slots__ = ()
    attributes: Attributes

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name`` line (``None`` if absent or a flag)."""
        return next((v for n, v in self.attributes if n == name), None)

    def attribute_values(self, name: str) -> list[str]:
        """Values of every ``a=name:value`` line, in order."""
        return [v for n, v in self.attributes if n == name and v is not None]

    def has_attribute(self, name: str) -> bool:
        """Whether any ``a=name`` line is present."""
        return any(n == name for n, _ in self.attributes)

    @property
    def explicit_direction(self) -> Direction | None:
        """The first direction attribute at this level, ``None`` if there is none."""
        return next((Direction(n) for n, _ in self.attributes if n in DIRECTIONS), None)


@dataclass(frozen=True, slots=True)
class MediaDescription(_AttributesMixin):
    """One ``m=`` section and its ``i= c= b= k= a=`` lines (RFC 8866 §5.14)."""

    media: str = "audio"
    """Media type: ``audio``, ``video``, ``application`` …"""
    port: int = 0
    """Transport port; 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6)."""
    proto: str = "RTP/AVP"
    """Transport protocol, e.g. ``RTP/AVP``, ``RTP/SAVP``, ``UDP/TLS/RTP/SAVPF``."""
    formats: tuple[str, ...] = ()
    """Media formats in preference order; RTP payload type numbers for RTP protocols."""
    port_count: int | None = None
    """Number of ports for hierarchical coding (``m=audio 49170/2``)."""
    info: str | None = None
    """The ``i=`` line (RingCentral puts the monitored party there, see ``party_id_from_info``)."""
    connection: Connection | None = None
    """Media-level ``c=``; falls back to the session's (``SessionDescription.connection_for``)."""
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = None
    """Obsolete ``k=`` line (RFC 8866 §5.12), kept for round trips."""
    attributes: Attributes = ()
    """Media-level ``a=`` lines in order."""

    def __post_init__(self) -> None:
        check_word(self.media, "m= media", TOKEN)
        check_word(self.proto, "m= proto", PROTO)
        parse_int(str(self.port), "m= port", 65535)
        if self.port_count is not None and self.port_count < 1:
            raise ParseError(f"m= port count {self.port_count} must be at least 1")
        if not self.formats and self.port != 0:
            raise ParseError("m= line lists no formats")
        for fmt in self.formats:
            check_word(fmt, "m= format", TOKEN)
            if self.is_rtp:
                parse_int(fmt, "m= payload type", 127)
        check_text(self.info, "i= line")
        check_text(self.key, "k= line")
        check_attributes(self.attributes)

    @classmethod
    def parse_m_line(cls, value: str) -> MediaDescription:
        """Parse an ``m=<media> <port>[/<count>] <proto> <fmt> ...`` value (RFC 8866 §5.14)."""
        parts = split_fields(value)
        if len(parts) < 3:
            raise ParseError(f"m= line {show(value)} needs <media> <port> <proto> <fmt>...")
        media, port_text, proto, *formats = parts
        port, slash, count = port_text.partition("/")
        port_count = parse_int(count, "m= port count") if slash else None
        return cls(media, parse_int(port, "m= port", 65535), proto, tuple(formats), port_count)

    def serialize_m_line(self) -> str:
        """The value of the ``m=`` line."""
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join([self.media, str(port), self.proto, *self.formats])

    @property
    def is_rtp(self) -> bool:
        """Whether formats are RTP payload types (proto mentions ``RTP/``)."""
        return "RTP/" in self.proto

    @property
    def is_rejected(self) -> bool:
        """Port 0: rejected in an answer, disabled in an offer (RFC 3264 §5.1, §6)."""
        return self.port == 0

    @property
    def payload_types(self) -> tuple[int, ...]:
        """Formats as ints (empty for non-RTP protocols)."""
        return tuple(int(f) for f in self.formats) if self.is_rtp else ()

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type → codec in m= order, filling static types (RFC 3551 §6) without a=rtpmap."""
        explicit = {m.payload_type: m for m in map(RtpMap.parse, self.attribute_values("rtpmap"))}
        found = {pt: explicit.get(pt) or STATIC_PAYLOAD_TYPES.get(pt) for pt in self.payload_types}
        return {pt: rtpmap for pt, rtpmap in found.items() if rtpmap is not None}

    @property
    def fmtp(self) -> dict[int, str]:
        """Payload type → format parameters from ``a=fmtp`` (RFC 8866 §6.15)."""
        pairs = (parse_fmtp(v) for v in self.attribute_values("fmtp"))
        return {int(fmt): params for fmt, params in pairs if fmt.isdigit()}

    @property
    def direction(self) -> Direction:
        """Media-level direction, ``sendrecv`` if absent (session level: ``direction_of``)."""
        return self.explicit_direction or Direction.SENDRECV

    @property
    def label(self) -> str | None:
        """``a=label`` (RFC 4574)."""
        return self.attribute("label")

    @property
    def crypto(self) -> list[Crypto]:
        """SDES ``a=crypto`` lines in preference order (RFC 4568 §9.1)."""
        return [Crypto.parse(v) for v in self.attribute_values("crypto")]

    @property
    def rtcp(self) -> int | None:
        """RTCP port from ``a=rtcp`` (RFC 3605), ``None`` meaning port + 1."""
        value = self.attribute("rtcp")
        return None if value is None else parse_rtcp(value)

    @property
    def rtcp_mux(self) -> bool:
        """Whether ``a=rtcp-mux`` is present (RFC 5761 §5.1.1)."""
        return self.has_attribute("rtcp-mux")

    @property
    def ptime(self) -> float | None:
        """Packet time in milliseconds from ``a=ptime`` (RFC 8866 §6.4)."""
        value = self.attribute("ptime")
        return None if value is None else parse_ptime(value)

    def with_attribute(self, name: str, value: str | None = None) -> MediaDescription:
        """A copy with ``a=name[:value]`` appended."""
        return replace(self, attributes=append_attribute(self.attributes, name, value))

    def with_attribute_set(self, name: str, value: str | None = None) -> MediaDescription:
        """A copy where ``a=name`` appears once, with ``value`` (in place of the first)."""
        return replace(self, attributes=set_attribute(self.attributes, name, value))

    def without_attribute(self, name: str) -> MediaDescription:
        """A copy with every ``a=name`` line removed."""
        return replace(self, attributes=tuple(a for a in self.attributes if a[0] != name))

    def with_direction(self, direction: Direction) -> MediaDescription:
        """A copy whose only direction attribute is ``direction``."""
        return replace(self, attributes=set_direction(self.attributes, direction))


@dataclass(frozen=True, slots=True)
class SessionDescription(_AttributesMixin):
    """A whole SDP body (RFC 8866 §5); parse with :meth:`parse`, write with ``bytes(sd)``."""

    origin: Origin
    session_name: str = "-"
    """The ``s=`` line."""
    info: str | None = None
    """Session-level ``i=``."""
    connection: Connection | None = None
    """Session-level ``c=``; required unless every active m= section has its own."""
    timing: tuple[int, int] = (0, 0)
    """First ``t=`` line; ``(0, 0)`` is a permanent session."""
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = None
    """Obsolete session-level ``k=`` line, kept for round trips."""
    attributes: Attributes = ()
    """Session-level ``a=`` lines in order."""
    media: tuple[MediaDescription, ...] = ()
    extra_lines: tuple[tuple[str, str], ...] = ()
    """Uninterpreted ``u= e= p= t= r= z=`` lines as ``(type, value)``, kept in RFC order."""
    version: int = 0
    """``v=``; always 0."""

    def __post_init__(self) -> None:
        if self.version != 0:
            raise ParseError(f"unsupported SDP version {self.version}")
        if len(self.media) > MAX_MEDIA_DESCRIPTIONS:
            raise ParseError(f"more than {MAX_MEDIA_DESCRIPTIONS} m= lines")
        check_text(self.session_name, "s= line")
        check_text(self.info, "i= line")
        check_text(self.key, "k= line")
        check_attributes(self.attributes)
        for kind, value in self.extra_lines:
            if kind not in _EXTRA_ORDER:
                raise ParseError(f"{kind}= cannot be an extra session line")
            check_text(value, f"{kind}= line")
            if kind == "t":
                parse_timing(value)
        extras = tuple(sorted(self.extra_lines, key=lambda line: _EXTRA_ORDER[line[0]]))
        object.__setattr__(self, "extra_lines", extras)
        for index, media in enumerate(self.media, 1):
            if self.connection is None and media.connection is None and not media.is_rejected:
                raise ParseError(f"no c= line for m= line {index} nor at session level")

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body (RFC 8866 §5, §9).

        Args:
            data: the body; ``str`` is encoded as UTF-8 first. CRLF or LF line ends.
        Returns:
            The description; ``parse(sd.serialize()) == sd``.
        Raises:
            ParseError: malformed input (status 400), message naming the line;
                ``MessageTooLarge`` (513) above :data:`MAX_SDP_SIZE` bytes.
        """
        lines = _split_lines(data)
        cuts = [i for i, line in enumerate(lines) if line.kind == "m"] + [len(lines)]
        if len(cuts) - 1 > MAX_MEDIA_DESCRIPTIONS:
            raise ParseError(f"more than {MAX_MEDIA_DESCRIPTIONS} m= lines")
        media = tuple(_parse_media(lines[a:b]) for a, b in itertools.pairwise(cuts))
        return _parse_session(lines[: cuts[0]], media)

    def serialize(self) -> bytes:
        """The body with CRLF line ends, lines in RFC 8866 §5 order."""
        lines = [("v", str(self.version)), ("o", self.origin.serialize())]
        lines += [("s", self.session_name), *_optional("i", self.info)]
        lines += [line for line in self.extra_lines if line[0] in "uep"]
        lines += _optional("c", self.connection.serialize() if self.connection else None)
        lines += [("b", b.serialize()) for b in self.bandwidths]
        lines.append(("t", f"{self.timing[0]} {self.timing[1]}"))
        lines += [line for line in self.extra_lines if line[0] not in "uep"]
        lines += [*_optional("k", self.key), *_attribute_lines(self.attributes)]
        for media in self.media:
            lines += _media_lines(media)
        return "".join(f"{kind}={value}\r\n" for kind, value in lines).encode()

    def __bytes__(self) -> bytes:
        return self.serialize()

    @property
    def direction(self) -> Direction:
        """Session-level direction, ``sendrecv`` if absent (RFC 8866 §6.7)."""
        return self.explicit_direction or Direction.SENDRECV

    def direction_of(self, media: MediaDescription) -> Direction:
        """Effective direction of ``media``: its own attribute, else the session's."""
        return media.explicit_direction or self.direction

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """Effective ``c=`` of ``media``: its own, else the session's (RFC 8866 §5.7)."""
        return media.connection or self.connection

    def with_attribute(self, name: str, value: str | None = None) -> SessionDescription:
        """A copy with session-level ``a=name[:value]`` appended."""
        return replace(self, attributes=append_attribute(self.attributes, name, value))

    def with_attribute_set(self, name: str, value: str | None = None) -> SessionDescription:
        """A copy where session-level ``a=name`` appears once, with ``value``."""
        return replace(self, attributes=set_attribute(self.attributes, name, value))

    def without_attribute(self, name: str) -> SessionDescription:
        """A copy with every session-level ``a=name`` line removed."""
        return replace(self, attributes=tuple(a for a in self.attributes if a[0] != name))


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    kind: str
    value: str


def _at(number: int, thunk: Callable[[], _T]) -> _T:
    """Run ``thunk``, prefixing any :class:`ParseError` with ``line <number>: ``."""
    try:
        return thunk()
    except ParseError as exc:
        raise ParseError(f"line {number}: {exc}", status_hint=exc.status_hint) from None


def _decode(data: bytes | str) -> str:
    """Size-check and decode the body as UTF-8."""
    try:
        raw = data.encode() if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:
        raise ParseError("SDP text cannot be encoded as UTF-8") from None
    if len(raw) > MAX_SDP_SIZE:
        raise MessageTooLarge(f"SDP body of {len(raw)} bytes exceeds {MAX_SDP_SIZE}")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise ParseError(f"SDP body is not UTF-8 (byte {exc.start})") from None


def _parse_line(text: str) -> tuple[str, str]:
    """Split one ``<type>=<value>`` line (RFC 8866 §5)."""
    if len(text) < 2 or text[1] != "=":
        raise ParseError(f"expected <type>=<value>, got {show(text)}")
    if text[0] not in _LINE_TYPES:
        raise ParseError(f"unknown line type {show(text[:2])}")
    if "\x00" in text or "\r" in text:
        raise ParseError("NUL or bare CR inside the line")
    return text[0], text[2:]


def _split_lines(data: bytes | str) -> list[_Line]:
    """The non-empty lines of the body; the first must be ``v=``."""
    texts = _decode(data).split("\n")
    while texts and texts[-1] in ("", "\r"):
        texts.pop()
    if not texts:
        raise ParseError("SDP body is empty")
    lines = []
    for number, text in enumerate(texts, 1):
        kind, value = _at(number, partial(_parse_line, text.removesuffix("\r")))
        lines.append(_Line(number, kind, value))
    if lines[0].kind != "v":
        raise ParseError(f"line 1: SDP must start with v=, got {lines[0].kind}=")
    return lines


@dataclass(slots=True)
class _Section:
    """Lines of one section sorted into buckets while parsing."""

    where: str
    singles: dict[str, _Line] = field(default_factory=dict)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    extras: list[_Line] = field(default_factory=list)

    def add(self, line: _Line, singles: str, extras: str) -> None:
        """File ``line`` into its bucket, parsing ``a=``, ``b=`` and ``t=`` on the way."""
        if line.kind == "a":
            self.attributes.append(parse_attribute(line.value))
        elif line.kind == "b":
            self.bandwidths.append(Bandwidth.parse(line.value))
        elif line.kind in singles:
            if line.kind in self.singles:
                raise ParseError(f"duplicate {line.kind}= line in {self.where}")
            _SINGLE_PARSERS.get(line.kind, _text)(line.value)
            self.singles[line.kind] = line
        elif line.kind in extras:
            if line.kind == "t":
                parse_timing(line.value)
            self.extras.append(line)
        else:
            raise ParseError(f"{line.kind}= line is not allowed in {self.where}")

    def get(self, kind: str, parse: Callable[[str], _T]) -> _T | None:
        """Parse the single ``kind=`` line with ``parse``, ``None`` if absent."""
        line = self.singles.get(kind)
        return None if line is None else _at(line.number, lambda: parse(line.value))


def _collect(lines: Sequence[_Line], where: str, singles: str, extras: str = "") -> _Section:
    section = _Section(where)
    for line in lines:
        _at(line.number, partial(section.add, line, singles, extras))
    return section


def _text(value: str) -> str:
    return value


def _parse_version(value: str) -> int:
    if value != "0":
        raise ParseError(f"unsupported SDP version {show(value)}")
    return 0


_SINGLE_PARSERS: dict[str, Callable[[str], object]] = {
    "v": _parse_version,
    "o": Origin.parse,
    "c": Connection.parse,
}


def _parse_session(
    lines: Sequence[_Line], media: tuple[MediaDescription, ...]
) -> SessionDescription:
    """Build the description from its session-level lines and media."""
    section = _collect(lines, "session description", singles="vosick", extras="ueptrz")
    section.get("v", _parse_version)
    for kind in "ost":
        if kind not in section.singles and all(x.kind != kind for x in section.extras):
            raise ParseError(f"missing {kind}= line")
    times = [x for x in section.extras if x.kind == "t"]
    return SessionDescription(
        origin=section.get("o", Origin.parse) or Origin(),
        session_name=section.get("s", _text) or "",
        info=section.get("i", _text),
        connection=section.get("c", Connection.parse),
        timing=parse_timing(times[0].value),
        bandwidths=tuple(section.bandwidths),
        key=section.get("k", _text),
        attributes=tuple(section.attributes),
        media=media,
        extra_lines=tuple((x.kind, x.value) for x in section.extras if x is not times[0]),
    )


def _parse_media(lines: Sequence[_Line]) -> MediaDescription:
    """Build one media description from its ``m=`` line and the lines after it."""
    head = lines[0]
    media = _at(head.number, lambda: MediaDescription.parse_m_line(head.value))
    section = _collect(lines[1:], f"media description (m= line {head.number})", singles="ick")
    return replace(
        media,
        info=section.get("i", _text),
        connection=section.get("c", Connection.parse),
        bandwidths=tuple(section.bandwidths),
        key=section.get("k", _text),
        attributes=tuple(section.attributes),
    )


def _optional(kind: str, value: str | None) -> list[tuple[str, str]]:
    return [] if value is None else [(kind, value)]


def _attribute_lines(attributes: Iterable[Attribute]) -> list[tuple[str, str]]:
    return [("a", name if value is None else f"{name}:{value}") for name, value in attributes]


def _media_lines(media: MediaDescription) -> list[tuple[str, str]]:
    connection = media.connection.serialize() if media.connection else None
    return [
        ("m", media.serialize_m_line()),
        *_optional("i", media.info),
        *_optional("c", connection),
        *(("b", b.serialize()) for b in media.bandwidths),
        *_optional("k", media.key),
        *_attribute_lines(media.attributes),
    ]
