"""RFC 3264 offer/answer over :mod:`callwatch.sip.sdp` descriptions.

Theory of operation: the answerer lists the codecs it can handle, best first, as
:class:`CodecSpec` values. :func:`negotiate_media` picks, for one offered ``m=`` section, the
first of those the offer also lists (matching name case-insensitively, clock rate and channels;
static payload types count even without ``a=rtpmap``) — or, with ``offer_order``, the offer's
first codec among ours: the offerer's preference wins (RFC 3264 §6.1 lets the answerer choose
either way; a relay that lists the codec it can forward untouched first is best served so).
:func:`build_answer` answers every offered section in order (RFC 3264 §6): one voice codec plus
``telephone-event`` when both sides have it, the mirrored direction, and port 0 where the offer
disabled the stream, no codec matched, no local port was given, or SRTP was offered without a
key to answer with. Offers are built with :func:`offer_media` and :func:`build_session`.
Nothing here reads a clock or a random source: session ids, versions, ports and SRTP keys are
arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callwatch.sip.sdp import (
    Attribute,
    Connection,
    Crypto,
    Direction,
    InlineKey,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)
from callwatch.sip.sdp_fields import SRTP_KEY_SALT_LENGTHS

SUPPORTED_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"})
"""Transports :func:`build_answer` accepts; SDES-keyed SRTP needs a :class:`Crypto` per line."""
DEFAULT_SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80",)  # the one profile media/srtp.py implements
_DYNAMIC_PAYLOAD_TYPES = range(96, 128)  # RFC 3551 §3


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """A codec this side can send and receive, as it appears in ``a=rtpmap``."""

    name: str
    """Encoding name, matched case-insensitively (``OPUS`` = ``opus``)."""
    clock_rate: int
    """RTP clock rate in Hz."""
    channels: int | None = None
    """Channels; ``None`` means 1, as in ``a=rtpmap``."""
    fmtp: str | None = None
    """Format parameters we declare for this codec (RFC 8866 §6.15)."""
    payload_type: int | None = None
    """Static payload type (< 96), or the dynamic one we prefer in our own offers."""

    def matches(self, rtpmap: RtpMap) -> bool:
        """Whether ``rtpmap`` names this codec."""
        return (
            rtpmap.encoding.casefold() == self.name.casefold()
            and rtpmap.clock_rate == self.clock_rate
            and (rtpmap.channels or 1) == (self.channels or 1)
        )

    @property
    def is_dtmf(self) -> bool:
        """Whether this is RFC 4733 ``telephone-event`` rather than a voice codec."""
        return self.name.casefold() == "telephone-event"

    def rtpmap(self, payload_type: int) -> RtpMap:
        """This codec's ``a=rtpmap`` under ``payload_type``."""
        return RtpMap(payload_type, self.name, self.clock_rate, self.channels)


PCMU = CodecSpec("PCMU", 8000, payload_type=0)  # RFC 3551 §4.5.14, static PT 0
PCMA = CodecSpec("PCMA", 8000, payload_type=8)  # RFC 3551 §4.5.14, static PT 8
G722 = CodecSpec("G722", 8000, payload_type=9)  # RFC 3551 §4.5.2: 16 kHz audio, 8000 RTP clock
OPUS = CodecSpec("OPUS", 48000, channels=2, payload_type=111)  # RFC 7587; RingCentral PT 111
OPUS_16000 = CodecSpec("OPUS", 16000, payload_type=109)  # RingCentral softphone's rtpmap, PT 109
TELEPHONE_EVENT = CodecSpec("telephone-event", 8000, fmtp="0-15", payload_type=101)  # RFC 4733


@dataclass(frozen=True, slots=True)
class CodecMatch:
    """A codec both sides support: our spec and the offerer's ``a=rtpmap`` for it."""

    spec: CodecSpec
    rtpmap: RtpMap
    """As offered: the offerer's payload type and spelling, echoed in the answer."""

    @property
    def payload_type(self) -> int:
        """The payload type the answer must use (RFC 3264 §6.1)."""
        return self.rtpmap.payload_type


def _matches(offered: MediaDescription, specs: Sequence[CodecSpec]) -> list[CodecMatch]:
    """Every (spec, offered codec) pair that matches, in ``specs`` order then offer order."""
    rtpmaps = offered.rtpmaps.values()
    return [CodecMatch(spec, r) for spec in specs for r in rtpmaps if spec.matches(r)]


def negotiate_media(
    offer_media: MediaDescription, supported: Sequence[CodecSpec], *, offer_order: bool = False
) -> CodecMatch | None:
    """Pick the voice codec for one offered ``m=`` section (RFC 3264 §6.1).

    Args:
        offer_media: the offered section; its port is not looked at.
        supported: our codecs, most preferred first; ``telephone-event`` entries are skipped.
        offer_order: prefer the offer's order to ours.
    Returns:
        Our most preferred codec that the offer lists (with ``offer_order``: the offer's most
        preferred codec that we support), or ``None``.
    """
    voice = [spec for spec in supported if not spec.is_dtmf]
    matches = _matches(offer_media, voice)
    if offer_order:
        position = {pt: index for index, pt in enumerate(offer_media.rtpmaps)}
        matches.sort(key=lambda match: position[match.payload_type])  # stable: ours breaks ties
    return next(iter(matches), None)


def negotiate_dtmf(
    offer_media: MediaDescription, supported: Sequence[CodecSpec], clock_rate: int
) -> CodecMatch | None:
    """Pick ``telephone-event`` (RFC 4733 §7.1), preferring the voice codec's ``clock_rate``."""
    found = _matches(offer_media, [spec for spec in supported if spec.is_dtmf])
    same_rate = [match for match in found if match.rtpmap.clock_rate == clock_rate]
    return next(iter(same_rate or found), None)


def answer_crypto(
    offered: Sequence[Crypto], key_salt: bytes, suites: Sequence[str] = DEFAULT_SRTP_SUITES
) -> Crypto | None:
    """Accept the first offered SDES line we support, keyed with ``key_salt`` (RFC 4568 §7.1.2).

    Args:
        offered: the offer's ``a=crypto`` lines, in its preference order.
        key_salt: our master key + salt; only suites with that key length are eligible.
        suites: crypto-suites we implement.
    Returns:
        A crypto line with the offered tag and suite and our inline key, or ``None``.
    """
    for crypto in offered:
        if crypto.suite in suites and SRTP_KEY_SALT_LENGTHS.get(crypto.suite) == len(key_salt):
            return Crypto.with_key(crypto.tag, crypto.suite, InlineKey(key_salt))
    return None


def offer_media(
    *,
    port: int,
    codecs: Sequence[CodecSpec],
    proto: str = "RTP/AVP",
    direction: Direction = Direction.SENDRECV,
    info: str | None = None,
    crypto: Crypto | None = None,
    ptime: int | None = None,
) -> MediaDescription:
    """An audio ``m=`` section offering ``codecs`` in order (RFC 3264 §5.1).

    Each codec keeps its ``payload_type`` unless another codec already took it; codecs without
    one get the lowest free dynamic type. ``a=rtpmap`` is written for static types too.

    Raises:
        ValueError: more codecs than free dynamic payload types.
    """
    pts = _assign_payload_types(codecs)
    attributes: list[Attribute] = []
    for spec, pt in zip(codecs, pts, strict=True):
        attributes += _codec_attributes(spec, spec.rtpmap(pt))
    if ptime is not None:
        attributes.append(("ptime", str(ptime)))
    if crypto is not None:
        attributes.append(("crypto", crypto.serialize()))
    attributes.append((direction.value, None))
    formats = tuple(map(str, pts))
    return MediaDescription("audio", port, proto, formats, info=info, attributes=tuple(attributes))


def _assign_payload_types(codecs: Sequence[CodecSpec]) -> list[int]:
    wanted = {spec.payload_type for spec in codecs}
    free = (pt for pt in _DYNAMIC_PAYLOAD_TYPES if pt not in wanted)
    chosen: list[int] = []
    for spec in codecs:
        pt = spec.payload_type if spec.payload_type not in (None, *chosen) else next(free, None)
        if pt is None:
            raise ValueError("no free dynamic payload type left")
        chosen.append(pt)
    return chosen


def _codec_attributes(spec: CodecSpec, rtpmap: RtpMap) -> list[Attribute]:
    fmtp = [] if spec.fmtp is None else [("fmtp", f"{rtpmap.payload_type} {spec.fmtp}")]
    return [("rtpmap", rtpmap.serialize()), *fmtp]


def build_session(
    *,
    address: str,
    media: Sequence[MediaDescription],
    session_id: int,
    session_version: int,
    username: str = "-",
    session_name: str = "-",
) -> SessionDescription:
    """A description with ``o=``/``c=`` on ``address`` and ``t=0 0`` around ``media``.

    Uses ``IN IP6`` for addresses containing ``:`` and ``IN IP4`` otherwise (RFC 8866 §5.2).
    """
    connection = Connection.for_address(address)
    origin = Origin(username, session_id, session_version, "IN", connection.addrtype, address)
    return SessionDescription(
        origin=origin, session_name=session_name, connection=connection, media=tuple(media)
    )


def build_answer(
    offer: SessionDescription,
    *,
    address: str,
    ports: Sequence[int | None],
    codecs_preference: Sequence[CodecSpec],
    session_id: int,
    session_version: int,
    direction: Direction | None = None,
    crypto: Sequence[Crypto | None] = (),
    username: str = "-",
    session_name: str = "-",
    offer_order: bool = False,
) -> SessionDescription:
    """Answer every offered ``m=`` section, in order (RFC 3264 §6).

    Args:
        offer: the remote offer.
        address: our media address, written to ``o=`` and ``c=``.
        ports: our RTP port per offered section; ``None`` rejects that section.
        codecs_preference: our codecs, best first; include ``TELEPHONE_EVENT`` to keep DTMF.
        session_id, session_version: for our ``o=`` line (RFC 3264 §5, §8).
        direction: what we want to do; intersected with the mirror of the offered direction.
        crypto: our ``a=crypto`` per section (see :func:`answer_crypto`); SRTP sections
            without one are rejected.
        username, session_name: for ``o=`` and ``s=``.
        offer_order: per section, take the offer's most preferred codec that we support rather
            than our most preferred one that it offers (see :func:`negotiate_media`).
    Returns:
        The answer; sections we cannot accept have port 0 and their first offered format.
    Raises:
        ValueError: ``ports`` does not have one entry per offered section.
    """
    if len(ports) != len(offer.media):
        raise ValueError(f"{len(ports)} ports for {len(offer.media)} offered m= lines")
    media = [
        _answer_media(
            offer, offered, port, codecs_preference, direction, _nth(crypto, index), offer_order
        )
        for index, (offered, port) in enumerate(zip(offer.media, ports, strict=True))
    ]
    return build_session(
        address=address,
        media=media,
        session_id=session_id,
        session_version=session_version,
        username=username,
        session_name=session_name,
    )


def _nth(items: Sequence[Crypto | None], index: int) -> Crypto | None:
    return items[index] if index < len(items) else None


def _answer_media(
    offer: SessionDescription,
    offered: MediaDescription,
    port: int | None,
    codecs: Sequence[CodecSpec],
    wish: Direction | None,
    crypto: Crypto | None,
    offer_order: bool = False,
) -> MediaDescription:
    """Answer one offered section, or reject it with port 0."""
    voice = negotiate_media(offered, codecs, offer_order=offer_order)
    secure = "SAVP" in offered.proto
    if (
        voice is None
        or port is None
        or offered.is_rejected
        or offered.proto not in SUPPORTED_PROTOS
        or (secure and crypto is None)
    ):
        return MediaDescription(offered.media, 0, offered.proto, offered.formats[:1])
    matches = [voice, negotiate_dtmf(offered, codecs, voice.rtpmap.clock_rate)]
    attributes: list[Attribute] = []
    for match in filter(None, matches):
        attributes += _codec_attributes(match.spec, match.rtpmap)
    if secure and crypto is not None:
        attributes.append(("crypto", crypto.serialize()))
    mirrored = offer.direction_of(offered).reversed()
    attributes.append((mirrored.intersect(wish or mirrored).value, None))
    formats = tuple(str(match.payload_type) for match in filter(None, matches))
    return MediaDescription(
        offered.media, port, offered.proto, formats, attributes=tuple(attributes)
    )
