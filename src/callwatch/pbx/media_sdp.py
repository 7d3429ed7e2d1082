"""SDP ↔ relay: read what a leg's SDP says about its media, and write SDP that points at the relay.

Pure functions over :mod:`callwatch.sip.sdp`. The B2BUA is codec-transparent: the offer it sends
one leg carries the other leg's codec list unchanged (payload types, rtpmap, fmtp, telephone-event),
and only the transport is rewritten: ``c=``, the port, RTP/AVP vs RTP/SAVP, ``a=crypto`` (our key
for that leg), ``a=rtcp``/``a=rtcp-mux``, and the origin line (RFC 3264 §8: our own session id,
version increasing with every new offer or answer we send on that leg).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from callwatch.media.aio import Endpoint
from callwatch.sip.errors import ParseError
from callwatch.sip.sdp import (
    Connection,
    Crypto,
    Direction,
    InlineKey,
    MediaDescription,
    Origin,
    SessionDescription,
)

SRTP_SUITE = "AES_CM_128_HMAC_SHA1_80"
_TRANSPORT_ATTRIBUTES = frozenset(
    {
        "crypto", "rtcp", "rtcp-mux", "candidate", "ice-ufrag", "ice-pwd", "ice-options",
        "ice-lite", "end-of-candidates", "remote-candidates", "fingerprint", "setup", "group",
    }
)  # fmt: skip


class SdpError(ValueError):
    """A leg's SDP cannot be carried (no audio, unsupported transport); status for the answer."""

    def __init__(self, message: str, status: int = 488) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class LegMedia:
    """What one leg's SDP says about its audio stream."""

    address: tuple[str, int] | None
    """Where the leg wants media sent (None: port 0 or 0.0.0.0 hold)."""
    rtcp: tuple[str, int] | None
    rtcp_mux: bool
    srtp: bool
    key: bytes | None
    """The leg's SDES master key||salt (from its first acceptable ``a=crypto``)."""
    crypto_tag: int
    direction: Direction
    clock_rate: int


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body, mapping every failure to :class:`SdpError` (400)."""
    try:
        return SessionDescription.parse(body)
    except ParseError as exc:
        raise SdpError(f"malformed SDP: {exc}", status=400) from None


def audio_index(sd: SessionDescription) -> int:
    """Index of the first active audio m-line.

    Raises:
        SdpError: no audio stream, or it is rejected (488).
    """
    for index, media in enumerate(sd.media):
        if media.media == "audio" and media.port != 0:
            return index
    raise SdpError("no active audio stream in the SDP")


def leg_media(sd: SessionDescription) -> LegMedia:
    """Read the first active audio stream of ``sd``."""
    media = sd.media[audio_index(sd)]
    if media.proto not in ("RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"):
        raise SdpError(f"unsupported media transport {media.proto}")
    srtp = "SAVP" in media.proto
    crypto = _acceptable_crypto(media) if srtp else None
    if srtp and crypto is None:
        raise SdpError(f"RTP/SAVP offered without an {SRTP_SUITE} a=crypto line")
    connection = sd.connection_for(media)
    host = connection.address if connection is not None else "0.0.0.0"
    address = None if _is_null(host) else (host, media.port)
    rtcp_host, rtcp_port = _rtcp_address(media, host)
    rtpmaps = media.rtpmaps
    first = rtpmaps.get(int(media.formats[0])) if media.formats[0].isdigit() else None
    return LegMedia(
        address=address,
        rtcp=None if address is None else (rtcp_host, rtcp_port),
        rtcp_mux=media.rtcp_mux,
        srtp=srtp,
        key=crypto.inline_keys()[0].key_salt if crypto is not None else None,
        crypto_tag=crypto.tag if crypto is not None else 1,
        direction=sd.direction_of(media),
        clock_rate=first.clock_rate if first is not None else 8000,
    )


def relay_sdp(
    template: SessionDescription,
    endpoint: Endpoint,
    *,
    session_id: int,
    version: int,
    srtp: bool,
    crypto_tag: int = 1,
    direction: Direction | None = None,
) -> SessionDescription:
    """``template``'s audio stream (codecs and direction) re-pointed at the relay ``endpoint``.

    Other m-lines are kept but rejected (port 0): the relay carries one audio stream per leg.
    """
    index = audio_index(template)
    media = template.media[index]
    attributes = tuple((n, v) for n, v in media.attributes if n not in _TRANSPORT_ATTRIBUTES)
    media = replace(
        media,
        port=endpoint.port,
        proto="RTP/SAVP" if srtp else "RTP/AVP",
        connection=None,
        attributes=attributes,
    )
    if endpoint.rtcp_mux:
        media = media.with_attribute("rtcp-mux")
    if srtp:
        if endpoint.local_key is None:
            raise SdpError("SRTP leg without a relay key", status=500)
        crypto = Crypto.with_key(crypto_tag, SRTP_SUITE, InlineKey(endpoint.local_key))
        media = media.with_attribute("crypto", crypto.serialize())
    if direction is not None:
        media = media.with_direction(direction)
    others = tuple(
        m if i == index else replace(m, port=0, connection=None)
        for i, m in enumerate(template.media)
    )
    return SessionDescription(
        origin=Origin(
            "callwatch", session_id, version, "IN", _addrtype(endpoint.host), endpoint.host
        ),
        session_name="callwatch",
        connection=Connection("IN", _addrtype(endpoint.host), endpoint.host),
        timing=(0, 0),
        attributes=tuple((n, v) for n, v in template.attributes if n not in _TRANSPORT_ATTRIBUTES),
        media=tuple(media if i == index else m for i, m in enumerate(others)),
    )


def with_direction(
    sd: SessionDescription, direction: Direction, *, version: int
) -> SessionDescription:
    """``sd`` with its audio stream's direction set and the origin version bumped."""
    index = audio_index(sd)
    media = tuple(m.with_direction(direction) if i == index else m for i, m in enumerate(sd.media))
    return replace(sd, origin=replace(sd.origin, sess_version=version), media=media)


def is_hold(direction: Direction) -> bool:
    """True when a party's offer puts the call on hold (it stops receiving)."""
    return direction in (Direction.SENDONLY, Direction.INACTIVE)


def _rtcp_address(media: MediaDescription, host: str) -> tuple[str, int]:
    """``a=rtcp:<port> [IN IP4 <address>]`` (RFC 3605 §2.1), else port + 1 on ``host``."""
    value = media.attribute("rtcp")
    if value is None or media.rtcp is None:
        return host, media.port + 1
    fields = value.split()
    return (fields[3] if len(fields) >= 4 else host), media.rtcp


def _acceptable_crypto(media: MediaDescription) -> Crypto | None:
    for crypto in media.crypto:
        if crypto.suite == SRTP_SUITE and crypto.inline_keys():
            return crypto
    return None


def _is_null(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _addrtype(host: str) -> str:
    return "IP6" if ":" in host else "IP4"
