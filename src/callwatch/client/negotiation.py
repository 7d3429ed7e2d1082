"""SDP offers and answers for the user agent, and what they negotiated per stream (RFC 3264).

Theory of operation: the user agent offers one audio section per RTP socket it bound, with its
codec preference and, for SRTP, ``RTP/SAVP`` plus one ``a=crypto`` line carrying a fresh key
(RFC 4568). It answers every offered section (:func:`make_answer`), accepting SRTP whenever the
offer asks for it. Once both descriptions are known, :func:`negotiate` reads back, per section,
the payload type both sides use (the answer's first format, RFC 3264 §6.1), the peer's address,
both SRTP keys (ours protects what we send, the peer's what it sends; RFC 4568 §6.1) and both
directions. Pure functions: ports, keys and session ids are arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callwatch.media.srtp import SRTP_PROFILE
from callwatch.sip.offer_answer import (
    CodecSpec,
    answer_crypto,
    build_answer,
    build_session,
    offer_media,
)
from callwatch.sip.sdp import Crypto, Direction, InlineKey, MediaDescription, SessionDescription

__all__ = ["StreamMedia", "make_answer", "make_offer", "negotiate"]

SUPPORTED_SUITES = (SRTP_PROFILE,)
"""SDES crypto-suites our RTP sessions implement (media.srtp offers only this one)."""
DEFAULT_PTIME = 0.02
"""Packet interval when the peer states no ``a=ptime`` (seconds)."""


@dataclass(frozen=True, slots=True)
class StreamMedia:
    """What one ``m=`` section negotiated to."""

    index: int
    """Position of the section in the descriptions."""
    remote: tuple[str, int] | None
    """The peer's RTP address; None when the section was rejected (port 0)."""
    payload_type: int
    """Payload type both sides use for voice."""
    encoding: str
    """Codec encoding name as the answer spells it (``PCMU``, ``opus``)."""
    clock_rate: int
    """RTP clock rate of the codec."""
    dtmf_payload_type: int | None
    """``telephone-event`` payload type, if negotiated."""
    send_key: bytes | None
    """Our SRTP master key||salt (protects what we send); None for plain RTP."""
    receive_key: bytes | None
    """The peer's SRTP master key||salt (unprotects what it sends)."""
    local_direction: Direction
    """Direction in our description."""
    remote_direction: Direction
    """Direction in the peer's description."""
    info: str | None = None
    """The offer's ``i=`` line for this section (RingCentral names the monitored party there)."""
    label: str | None = None
    """The offer's ``a=label``."""
    ptime: float = DEFAULT_PTIME
    """Packet interval the peer asked for, in seconds."""

    @property
    def clock_step(self) -> int:
        """Timestamp increment per packet (160 for 20 ms at 8000 Hz)."""
        return round(self.clock_rate * self.ptime)

    @property
    def secure(self) -> bool:
        """True when both directions are SRTP."""
        return self.send_key is not None and self.receive_key is not None


_NOT_VOICE = frozenset({"telephone-event", "cn"})


def _crypto_for(key: bytes | None) -> Crypto | None:
    return None if key is None else Crypto.with_key(1, SRTP_PROFILE, InlineKey(key))


def make_offer(
    *,
    address: str,
    ports: Sequence[int],
    codecs: Sequence[CodecSpec],
    keys: Sequence[bytes | None],
    direction: Direction = Direction.SENDRECV,
    session_id: int,
    version: int,
) -> SessionDescription:
    """One audio section per port; ``RTP/SAVP`` with our key where ``keys[i]`` is set."""
    media = [
        offer_media(
            port=port,
            codecs=codecs,
            proto="RTP/AVP" if key is None else "RTP/SAVP",
            direction=direction,
            crypto=_crypto_for(key),
        )
        for port, key in zip(ports, keys, strict=True)
    ]
    return build_session(
        address=address, media=media, session_id=session_id, session_version=version
    )


def make_answer(
    offer: SessionDescription,
    *,
    address: str,
    ports: Sequence[int | None],
    codecs: Sequence[CodecSpec],
    keys: Sequence[bytes | None],
    direction: Direction | None = None,
    session_id: int,
    version: int,
    offer_order: bool = False,
) -> SessionDescription:
    """Answer every offered section (RFC 3264 §6); SRTP sections are keyed with ``keys[i]``.

    Each section takes our most preferred codec the offer lists, or with ``offer_order`` the
    offer's most preferred codec among ``codecs``. Sections we cannot accept come back with
    port 0 (see :func:`accepted`).
    """
    crypto = [
        answer_crypto(section.crypto, key, SUPPORTED_SUITES)
        if key is not None and "SAVP" in section.proto
        else None
        for section, key in zip(offer.media, keys, strict=True)
    ]
    return build_answer(
        offer,
        address=address,
        ports=ports,
        codecs_preference=codecs,
        session_id=session_id,
        session_version=version,
        direction=direction,
        crypto=crypto,
        offer_order=offer_order,
    )


def accepted(answer: SessionDescription) -> bool:
    """True when at least one audio section of ``answer`` is active."""
    return any(m.media == "audio" and not m.is_rejected for m in answer.media)


def negotiate(
    local: SessionDescription, remote: SessionDescription, *, we_offered: bool
) -> list[StreamMedia]:
    """What each section negotiated, given our and the peer's description.

    Raises:
        ValueError: the descriptions have different numbers of sections.
    """
    if len(local.media) != len(remote.media):
        raise ValueError(f"{len(local.media)} local vs {len(remote.media)} remote m= lines")
    offer, answer = (local, remote) if we_offered else (remote, local)
    return [
        _negotiate_section(index, local, remote, offer.media[index], answer.media[index])
        for index in range(len(local.media))
    ]


def _negotiate_section(
    index: int,
    local: SessionDescription,
    remote: SessionDescription,
    offered: MediaDescription,
    answered: MediaDescription,
) -> StreamMedia:
    ours, theirs = local.media[index], remote.media[index]
    rtpmaps = {**offered.rtpmaps, **answered.rtpmaps}
    formats = [rtpmaps[pt] for pt in answered.payload_types if pt in rtpmaps]
    voice = [m for m in formats if m.encoding.lower() not in _NOT_VOICE]
    dtmf = [m.payload_type for m in formats if m.encoding.lower() == "telephone-event"]
    rtpmap = voice[0] if voice else None
    pt = rtpmap.payload_type if rtpmap else 0
    live = not answered.is_rejected and not offered.is_rejected and rtpmap is not None
    connection = remote.connection_for(theirs)
    secure = "SAVP" in answered.proto and live
    tag = answered.crypto[0].tag if secure and answered.crypto else None
    return StreamMedia(
        index=index,
        remote=(connection.address, theirs.port) if live and connection else None,
        payload_type=pt,
        encoding=rtpmap.encoding if rtpmap else "",
        clock_rate=rtpmap.clock_rate if rtpmap else 8000,
        dtmf_payload_type=dtmf[0] if dtmf else None,
        send_key=_key(ours, tag) if secure else None,
        receive_key=_key(theirs, tag) if secure else None,
        local_direction=local.direction_of(ours),
        remote_direction=remote.direction_of(theirs),
        info=offered.info,
        label=offered.label,
        ptime=(theirs.ptime / 1000) if theirs.ptime else DEFAULT_PTIME,
    )


def _key(media: MediaDescription, tag: int | None) -> bytes | None:
    lines = media.crypto
    chosen = next((c for c in lines if c.tag == tag), lines[0] if lines else None)
    keys = chosen.inline_keys() if chosen is not None else []
    return keys[0].key_salt if keys else None
