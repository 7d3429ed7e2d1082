"""Typed values of single SDP lines and attributes, and the lexical rules they share.

:mod:`callwatch.sip.sdp` assembles whole descriptions; this module parses and writes the pieces:
``o=`` (:class:`Origin`, RFC 8866 §5.2), ``c=`` (:class:`Connection`, §5.7), ``b=``
(:class:`Bandwidth`, §5.8), ``t=`` (§5.9) and the attribute values with a typed view —
``a=rtpmap`` (:class:`RtpMap`, §6.6), ``a=fmtp`` (§6.15), ``a=crypto`` (:class:`Crypto`,
:class:`InlineKey`, RFC 4568 §9), ``a=rtcp`` (RFC 3605), ``a=ptime`` (§6.4), direction
(:class:`Direction`, §6.7) — plus the static payload types of RFC 3551 §6 and RingCentral's
``i=`` line naming a monitored party. Every parser raises only
:class:`~callwatch.sip.errors.ParseError`; every value type round-trips through
``parse``/``serialize``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from callwatch.sip.errors import ParseError

Attribute = tuple[str, str | None]
"""One ``a=`` line: ``(name, value)``; value ``None`` for a flag such as ``a=sendrecv``."""
Attributes = tuple[Attribute, ...]

TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 8866 §9 token
WORD = re.compile(r"[^\x00-\x20\x7f\ud800-\udfff]+")  # RFC 8866 §9 non-ws-string, as str
PROTO = re.compile(rf"{TOKEN.pattern}(/{TOKEN.pattern})*")  # RFC 8866 §9 proto
_DIGITS = re.compile(r"[0-9]{1,40}")
_BAD_TEXT = re.compile(r"[\x00\r\n\ud800-\udfff]")  # not in RFC 8866 §9 text; surrogates: not UTF-8
_PTIME = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
_LIFETIME = re.compile(r"(2\^)?([0-9]{1,20})")
_MKI = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")

# RFC 4568 §6.2, RFC 6188 §7, RFC 7714 §12: master key + master salt bytes per crypto-suite.
SRTP_KEY_SALT_LENGTHS: Mapping[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "F8_128_HMAC_SHA1_80": 30,
    "AES_192_CM_HMAC_SHA1_80": 38,
    "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46,
    "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}


def show(text: str) -> str:
    """``repr`` of ``text`` cut to 40 characters, for error messages."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse_int(text: str, what: str, maximum: int | None = None) -> int:
    """Parse 1–40 ASCII digits (no sign, no ``_``) as an int in ``0..maximum``.

    Raises:
        ParseError: naming ``what``, if ``text`` is not digits or exceeds ``maximum``.
    """
    if _DIGITS.fullmatch(text) is None:
        raise ParseError(f"{what} {show(text)} is not an integer")
    value = int(text)
    if maximum is not None and value > maximum:
        raise ParseError(f"{what} {value} is out of range (0-{maximum})")
    return value


def split_fields(text: str) -> list[str]:
    """Split on spaces; a run of spaces counts as one separator."""
    return [part for part in text.split(" ") if part]


def check_word(value: str, what: str, pattern: re.Pattern[str] = WORD) -> None:
    """Raise :class:`ParseError` unless ``value`` fully matches ``pattern``."""
    if pattern.fullmatch(value) is None:
        raise ParseError(f"{what} {show(value)} is not a valid token")


def check_text(value: str | None, what: str) -> None:
    """Raise :class:`ParseError` if ``value`` holds NUL, CR, LF (RFC 8866 §9) or a surrogate."""
    if value is not None and _BAD_TEXT.search(value):
        raise ParseError(f"{what} contains NUL, CR or LF")


class Direction(StrEnum):
    """Media direction attribute (RFC 8866 §6.7, RFC 3264 §5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def reversed(self) -> Direction:
        """The direction an answerer mirrors (RFC 3264 §6.1): sendonly ↔ recvonly."""
        return _REVERSED.get(self, self)

    def intersect(self, other: Direction) -> Direction:
        """Keep only the send/receive abilities both directions allow."""
        send = self in _SENDING and other in _SENDING
        recv = self in _RECEIVING and other in _RECEIVING
        return _FROM_FLAGS[send, recv]


_REVERSED = {Direction.SENDONLY: Direction.RECVONLY, Direction.RECVONLY: Direction.SENDONLY}
_SENDING = (Direction.SENDRECV, Direction.SENDONLY)
_RECEIVING = (Direction.SENDRECV, Direction.RECVONLY)
_FROM_FLAGS = {
    (True, True): Direction.SENDRECV,
    (True, False): Direction.SENDONLY,
    (False, True): Direction.RECVONLY,
    (False, False): Direction.INACTIVE,
}


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line (RFC 8866 §5.2)."""

    username: str = "-"
    """Login of the originating user, ``-`` when none."""
    sess_id: int = 0
    """Numeric session id, unique per ``username``/``address``."""
    sess_version: int = 0
    """Incremented on every modification of the description (RFC 3264 §8)."""
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"
    """Address of the machine that created the session."""

    def __post_init__(self) -> None:
        for name in ("username", "nettype", "addrtype", "address"):
            check_word(getattr(self, name), f"o= {name}")

    @classmethod
    def parse(cls, value: str) -> Origin:
        """Parse the value of an ``o=`` line; raises :class:`ParseError` if malformed."""
        parts = split_fields(value)
        if len(parts) != 6:
            raise ParseError(f"o= line needs 6 fields, got {len(parts)}")
        user, sess_id, version, nettype, addrtype, address = parts
        return cls(
            user, parse_int(sess_id, "o= sess-id"), parse_int(version, "o= sess-version"),
            nettype, addrtype, address,
        )  # fmt: skip

    def serialize(self) -> str:
        """The value of the ``o=`` line."""
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line (RFC 8866 §5.7); multicast ``/ttl/count`` stays inside ``address``."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __post_init__(self) -> None:
        for name in ("nettype", "addrtype", "address"):
            check_word(getattr(self, name), f"c= {name}")

    @classmethod
    def parse(cls, value: str) -> Connection:
        """Parse the value of a ``c=`` line; raises :class:`ParseError` if malformed."""
        parts = split_fields(value)
        if len(parts) != 3:
            raise ParseError(f"c= line needs 3 fields, got {len(parts)}")
        return cls(*parts)

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP6`` for an address containing ``:``, else ``IN IP4``."""
        return cls("IN", "IP6" if ":" in address else "IP4", address)

    def serialize(self) -> str:
        """The value of the ``c=`` line."""
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """A ``b=<bwtype>:<bandwidth>`` line (RFC 8866 §5.8), e.g. ``AS:64`` (kbit/s)."""

    bwtype: str
    bandwidth: int

    def __post_init__(self) -> None:
        check_word(self.bwtype, "b= bwtype", TOKEN)

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        """Parse the value of a ``b=`` line; raises :class:`ParseError` if malformed."""
        bwtype, colon, amount = value.partition(":")
        if not colon:
            raise ParseError(f"b= line {show(value)} needs <bwtype>:<bandwidth>")
        return cls(bwtype, parse_int(amount, "b= bandwidth"))

    def serialize(self) -> str:
        """The value of the ``b=`` line."""
        return f"{self.bwtype}:{self.bandwidth}"


def parse_timing(value: str) -> tuple[int, int]:
    """Parse a ``t=<start> <stop>`` value (RFC 8866 §5.9)."""
    parts = split_fields(value)
    if len(parts) != 2:
        raise ParseError(f"t= line needs 2 fields, got {len(parts)}")
    return parse_int(parts[0], "t= start time"), parse_int(parts[1], "t= stop time")


def parse_attribute(value: str) -> Attribute:
    """Parse an ``a=`` value into ``(name, value)`` and validate known attributes."""
    name, colon, rest = value.partition(":")
    attribute = (name, rest if colon else None)
    check_attributes([attribute])
    return attribute


def check_attributes(attributes: Iterable[Attribute]) -> None:
    """Run :func:`check_attribute` on each attribute."""
    for name, value in attributes:
        check_attribute(name, value)


DIRECTIONS = frozenset(d.value for d in Direction)


def append_attribute(attributes: Attributes, name: str, value: str | None) -> Attributes:
    """``attributes`` plus one validated ``a=name[:value]`` at the end."""
    check_attributes([(name, value)])
    return (*attributes, (name, value))


def set_attribute(attributes: Attributes, name: str, value: str | None) -> Attributes:
    """Replace the first ``a=name`` in place (dropping later ones) or append it."""
    if not any(n == name for n, _ in attributes):
        return append_attribute(attributes, name, value)
    check_attributes([(name, value)])
    first = next(i for i, (n, _) in enumerate(attributes) if n == name)
    kept = (a for i, a in enumerate(attributes) if a[0] != name or i == first)
    return tuple((name, value) if a[0] == name else a for a in kept)


def set_direction(attributes: Attributes, direction: Direction) -> Attributes:
    """Drop every direction attribute and append ``direction``."""
    return (*(a for a in attributes if a[0] not in DIRECTIONS), (direction.value, None))


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    """RTP payload type, 0–127."""
    encoding: str
    """Encoding name as written by the peer (``OPUS``, ``opus``, ``telephone-event``)."""
    clock_rate: int
    """RTP clock rate in Hz (8000 for G722, RFC 3551 §4.5.2)."""
    channels: int | None = None
    """Audio channels; ``None`` when omitted, which means 1."""

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        """Parse an ``a=rtpmap`` value; raises :class:`ParseError` if malformed."""
        parts = split_fields(value)
        if len(parts) != 2:
            raise ParseError(f"a=rtpmap {show(value)} needs <pt> <encoding>/<clock rate>")
        codec = parts[1].split("/")
        if len(codec) not in (2, 3):
            raise ParseError(f"a=rtpmap encoding {show(parts[1])} needs <name>/<rate>[/<ch>]")
        check_word(codec[0], "a=rtpmap encoding name", TOKEN)
        channels = parse_int(codec[2], "a=rtpmap channels") if len(codec) == 3 else None
        pt = parse_int(parts[0], "a=rtpmap payload type", 127)
        return cls(pt, codec[0], parse_int(codec[1], "a=rtpmap clock rate"), channels)

    def serialize(self) -> str:
        """The ``a=rtpmap`` value."""
        channels = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{channels}"


def _static(pt: int, name: str, rate: int, channels: int | None = None) -> tuple[int, RtpMap]:
    return pt, RtpMap(pt, name, rate, channels)


# RFC 3551 §6 tables 4 and 5: payload types that need no a=rtpmap.
STATIC_PAYLOAD_TYPES: Mapping[int, RtpMap] = dict(
    [
        *(_static(pt, name, 8000) for pt, name in [(0, "PCMU"), (3, "GSM"), (4, "G723")]),
        _static(5, "DVI4", 8000), _static(6, "DVI4", 16000), _static(7, "LPC", 8000),
        _static(8, "PCMA", 8000), _static(9, "G722", 8000), _static(10, "L16", 44100, 2),
        _static(11, "L16", 44100), _static(12, "QCELP", 8000), _static(13, "CN", 8000),
        _static(14, "MPA", 90000), _static(15, "G728", 8000), _static(16, "DVI4", 11025),
        _static(17, "DVI4", 22050), _static(18, "G729", 8000), _static(25, "CelB", 90000),
        _static(26, "JPEG", 90000), _static(28, "nv", 90000), _static(31, "H261", 90000),
        _static(32, "MPV", 90000), _static(33, "MP2T", 90000), _static(34, "H263", 90000),
    ]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class InlineKey:
    """An SDES ``inline:<key||salt>[|lifetime][|MKI:length]`` key (RFC 4568 §9.2)."""

    key_salt: bytes
    """Master key followed by master salt."""
    lifetime: int | None = None
    """Packets this key may protect (``2^20`` is written back as ``1048576``)."""
    mki: int | None = None
    """Master key identifier value, with :attr:`mki_length` bytes on the wire."""
    mki_length: int | None = None

    @classmethod
    def parse(cls, info: str) -> InlineKey:
        """Parse the key-info after ``inline:``; raises :class:`ParseError` if malformed."""
        key, *rest = info.split("|")
        lifetime = mki = mki_length = None
        if rest and ":" not in rest[0]:
            lifetime = _parse_lifetime(rest.pop(0))
        if rest:
            mki, mki_length = _parse_mki(rest.pop(0))
        if rest:
            raise ParseError(f"inline key {show(info)} has extra '|' fields")
        return cls(_b64decode(key), lifetime, mki, mki_length)

    def serialize(self) -> str:
        """The key-info, without the ``inline:`` prefix."""
        parts = [base64.b64encode(self.key_salt).decode()]
        if self.lifetime is not None:
            parts.append(str(self.lifetime))
        if self.mki is not None:
            parts.append(f"{self.mki}:{self.mki_length}")
        return "|".join(parts)


def _b64decode(text: str) -> bytes:
    try:
        key = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ParseError(f"inline key {show(text)} is not base64") from None
    if not key:
        raise ParseError("inline key is empty")
    return key


def _parse_lifetime(text: str) -> int:
    match = _LIFETIME.fullmatch(text)
    if match is None:
        raise ParseError(f"inline key lifetime {show(text)} is not [2^]<digits>")
    value = int(match[2])
    return 2**value if match[1] else value


def _parse_mki(text: str) -> tuple[int, int]:
    match = _MKI.fullmatch(text)
    if match is None or not 1 <= int(match[2]) <= 128:
        raise ParseError(f"inline key MKI {show(text)} is not <value>:<length 1-128>")
    return int(match[1]), int(match[2])


@dataclass(frozen=True, slots=True)
class Crypto:
    """``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]`` (RFC 4568 §9.1)."""

    tag: int
    """Identifies this line; an answer echoes the tag it accepts (RFC 4568 §5.1.2)."""
    suite: str
    """Crypto-suite, e.g. ``AES_CM_128_HMAC_SHA1_80``."""
    key_params: str
    """``inline:...`` key parameters, several joined by ``;``."""
    session_params: str | None = None
    """Space-separated session parameters (``UNENCRYPTED_SRTCP`` …), ``None`` if none."""

    @classmethod
    def parse(cls, value: str) -> Crypto:
        """Parse an ``a=crypto`` value and its inline keys; raises :class:`ParseError`."""
        parts = split_fields(value)
        if len(parts) < 3:
            raise ParseError(f"a=crypto {show(value)} needs <tag> <suite> <key-params>")
        if len(parts[0]) > 9:
            raise ParseError(f"a=crypto tag {show(parts[0])} has more than 9 digits")
        check_word(parts[1], "a=crypto suite", TOKEN)
        tag = parse_int(parts[0], "a=crypto tag")
        crypto = cls(tag, parts[1], parts[2], " ".join(parts[3:]) or None)
        crypto.inline_keys()
        return crypto

    @classmethod
    def with_key(cls, tag: int, suite: str, key: InlineKey) -> Crypto:
        """A crypto line carrying one inline key."""
        return cls(tag, suite, f"inline:{key.serialize()}")

    def inline_keys(self) -> list[InlineKey]:
        """The ``inline:`` keys of :attr:`key_params`, checked against the suite's key length.

        Raises:
            ParseError: a key-param is not ``<method>:<info>`` or an inline key is malformed.
        """
        keys = []
        for param in self.key_params.split(";"):
            method, colon, info = param.partition(":")
            if not colon or TOKEN.fullmatch(method) is None:
                raise ParseError(f"a=crypto key-param {show(param)} is not <method>:<info>")
            if method == "inline":
                keys.append(_checked_key(self.suite, InlineKey.parse(info)))
        return keys

    def serialize(self) -> str:
        """The ``a=crypto`` value."""
        tail = "" if self.session_params is None else f" {self.session_params}"
        return f"{self.tag} {self.suite} {self.key_params}{tail}"


def _checked_key(suite: str, key: InlineKey) -> InlineKey:
    expected = SRTP_KEY_SALT_LENGTHS.get(suite)
    if expected is not None and len(key.key_salt) != expected:
        raise ParseError(f"{suite} needs a {expected}-byte key||salt, got {len(key.key_salt)}")
    return key


def parse_fmtp(value: str) -> tuple[str, str]:
    """Split an ``a=fmtp:<format> <params>`` value (RFC 8866 §6.15) into its two parts."""
    fmt, _, params = value.partition(" ")
    check_word(fmt, "a=fmtp format", TOKEN)
    return fmt, params.lstrip(" ")


def parse_rtcp(value: str) -> int:
    """The port of ``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""
    parts = split_fields(value)
    if len(parts) not in (1, 4):
        raise ParseError(f"a=rtcp {show(value)} needs <port> [<nettype> <addrtype> <address>]")
    return parse_int(parts[0], "a=rtcp port", 65535)


def parse_ptime(value: str) -> float:
    """The packet time in milliseconds of ``a=ptime`` (RFC 8866 §6.4, int or real)."""
    if _PTIME.fullmatch(value) is None:
        raise ParseError(f"a=ptime {show(value)} is not a number")
    return float(value)


_VALUE_PARSERS: Mapping[str, Callable[[str], object]] = {
    "rtpmap": RtpMap.parse,
    "fmtp": parse_fmtp,
    "crypto": Crypto.parse,
    "rtcp": parse_rtcp,
    "ptime": parse_ptime,
}


def check_attribute(name: str, value: str | None) -> None:
    """Validate the name, the text and, for attributes with a typed view, the value.

    Raises:
        ParseError: bad name, NUL/CR/LF in the value, or a malformed typed value.
    """
    check_word(name, "attribute name", TOKEN)
    check_text(value, f"a={name}")
    parser = _VALUE_PARSERS.get(name)
    if parser is None:
        return
    if value is None:
        raise ParseError(f"a={name} needs a value")
    parser(value)


def info_params(info: str) -> dict[str, str]:
    """``key=value`` pairs of an ``i=`` line, plain or base64 as RingCentral sends them.

    RingCentral's monitoring INVITE carries ``i=`` lines whose base64 decodes to
    ``session-id=s-...;;party-id=p-...``; plain ``party-id=...`` text is accepted too.
    Returns an empty dict when neither form is a ``;``-separated list of ``key=value``.
    """
    try:
        decoded: str | None = base64.b64decode(info.strip().encode("ascii"), validate=True).decode()
    except ValueError:  # binascii.Error, UnicodeEncodeError, UnicodeDecodeError
        decoded = None
    for text in (decoded, info):
        params = _key_values(text) if text is not None else {}
        if params:
            return params
    return {}


def _key_values(text: str) -> dict[str, str]:
    pairs = [item.strip().partition("=") for item in text.split(";") if item.strip()]
    if not pairs or not all(eq and key for key, eq, _ in pairs):
        return {}
    return {key.strip(): value.strip() for key, _, value in pairs}


def party_id_from_info(info: str) -> str | None:
    """The ``party-id`` named by a (base64 or plain) ``i=`` line, ``None`` if absent."""
    return info_params(info).get("party-id")


def encode_info_params(params: Mapping[str, str]) -> str:
    """Base64 ``i=`` value in RingCentral's ``key=value;;key=value`` form."""
    text = ";;".join(f"{key}={value}" for key, value in params.items())
    return base64.b64encode(text.encode()).decode()
