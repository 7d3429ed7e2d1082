"""RTP and RTCP packets (RFC 3550) as frozen dataclasses, plus the relay's fast demux checks.

Theory of operation
-------------------
Parsing is total: any ``bytes`` give a fully built packet or raise :class:`RtpError` (a
``ValueError``) with a precise, stable message; nothing is parsed lazily. ``serialize()`` is the
exact inverse for every packet ``parse`` accepts (RTCP padding is dropped, RTP padding is kept).

The relay's per-packet path does **not** build these objects — that costs 1–2 µs a packet. It
uses :func:`is_rtp` / :func:`is_rtcp` (RFC 5761 §4 demultiplexing on the second octet) and the
precompiled :data:`SEQ_TS_SSRC` struct; the dataclasses are for the slow path (latching
decisions, RTCP reports, tests, tools).

RTCP compound packets live in :mod:`callwatch.media.rtcp` (same error type, same rules).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "RTP_HEADER_SIZE",
    "SEQ_TS_SSRC",
    "RtpError",
    "RtpExtension",
    "RtpHeader",
    "RtpPacket",
    "is_rtcp",
    "is_rtp",
]


class RtpError(ValueError):
    """Bytes that are not a valid RTP or RTCP packet; the message names the defect.

    The relay never raises this on its per-packet path: it counts and drops bad datagrams.
    """


RTP_VERSION = 2
RTP_HEADER_SIZE = 12
"""Fixed header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC (RFC 3550 §5.1)."""

_FIXED = struct.Struct("!BBHII")
_EXT_HEAD = struct.Struct("!HH")
SEQ_TS_SSRC = struct.Struct("!HII")
"""Sequence number, timestamp and SSRC, read or written at offset 2 of an RTP packet.

The relay's hot path unpacks these three fields with one ``unpack_from(data, 2)`` call and a
fork rewrites them with one ``pack_into(buf, 2, …)``: one C call each instead of object parsing.
"""


def is_rtp(data: bytes) -> bool:
    """Cheap check that ``data`` can be RTP: version 2, long enough, not an RTCP type.

    RFC 5761 §4: on a multiplexed port a second octet of 192–223 (marker + PT 64–95) is RTCP.
    This does not validate CSRC/extension lengths; :meth:`RtpPacket.parse` does.
    """
    return (
        len(data) >= RTP_HEADER_SIZE and data[0] >> 6 == RTP_VERSION and not (192 <= data[1] <= 223)
    )


def is_rtcp(data: bytes) -> bool:
    """Cheap check that ``data`` can be RTCP: version 2, ≥ 8 bytes, PT 192–223 (RFC 5761 §4)."""
    return len(data) >= 8 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1); RFC 8285 one/two-byte forms are just ``profile``."""

    profile: int
    """The 16-bit "defined by profile" field (0xBEDE for RFC 8285 one-byte headers)."""
    data: bytes = b""
    """Extension body; its length is a multiple of 4."""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"RTP extension profile {self.profile} is not 16-bit")
        if len(self.data) % 4 or len(self.data) > 4 * 0xFFFF:
            raise ValueError(f"RTP extension data of {len(self.data)} bytes is not 32-bit words")


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """The RTP header (RFC 3550 §5.1) without the padding flag, which belongs to the packet."""

    payload_type: int
    """7-bit payload type; 64–95 are reserved for RTCP demultiplexing (RFC 5761 §4)."""
    sequence_number: int
    """16-bit sequence number."""
    timestamp: int
    """32-bit media timestamp in the payload's clock units."""
    ssrc: int
    """32-bit synchronisation source."""
    marker: bool = False
    """The M bit: start of a talkspurt for audio (RFC 3551 §4.1)."""
    csrc: tuple[int, ...] = ()
    """Contributing sources, at most 15."""
    extension: RtpExtension | None = None
    """The header extension, if the X bit is set."""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"RTP payload type {self.payload_type} is not 7-bit")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"RTP sequence number {self.sequence_number} is not 16-bit")
        for name, value in (
            ("timestamp", self.timestamp),
            ("SSRC", self.ssrc),
            *(("CSRC", c) for c in self.csrc),
        ):
            if not 0 <= value <= 0xFFFFFFFF:
                raise ValueError(f"RTP {name} {value} is not 32-bit")
        if len(self.csrc) > 15:
            raise ValueError(f"RTP header has {len(self.csrc)} CSRCs; at most 15 fit")

    @property
    def size(self) -> int:
        """Length of the serialized header in bytes."""
        ext = 0 if self.extension is None else 4 + len(self.extension.data)
        return RTP_HEADER_SIZE + 4 * len(self.csrc) + ext

    @classmethod
    def parse(cls, data: bytes) -> RtpHeader:
        """Parse the header at the start of ``data``.

        Raises:
            RtpError: too short, wrong version, or a truncated CSRC list or extension.
        """
        if len(data) < RTP_HEADER_SIZE:
            raise RtpError(f"RTP packet length is less than {RTP_HEADER_SIZE} bytes")
        first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP packet has invalid version {first >> 6}")
        offset = RTP_HEADER_SIZE
        count = first & 0x0F
        if len(data) < offset + 4 * count:
            raise RtpError("RTP packet has truncated CSRC")
        csrc = struct.unpack_from(f"!{count}I", data, offset)
        offset += 4 * count
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpError("RTP packet has truncated extension profile / length")
            profile, words = _EXT_HEAD.unpack_from(data, offset)
            offset += 4
            if len(data) < offset + 4 * words:
                raise RtpError("RTP packet has truncated extension value")
            extension = RtpExtension(profile, bytes(data[offset : offset + 4 * words]))
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
        )

    def serialize(self, *, padding: bool = False) -> bytes:
        """The header bytes; ``padding`` sets the P bit (the packet appends the padding)."""
        first = (RTP_VERSION << 6) | (padding << 5) | (len(self.csrc) & 0x0F)
        if self.extension is not None:
            first |= 0x10
        second = (self.marker << 7) | self.payload_type
        out = [
            _FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension is not None:
            ext = self.extension
            out += [_EXT_HEAD.pack(ext.profile, len(ext.data) // 4), ext.data]
        return b"".join(out)


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """A whole RTP packet: header, payload and the padding that followed it."""

    header: RtpHeader
    """The parsed header."""
    payload: bytes = b""
    """The codec payload, padding removed."""
    padding_size: int = 0
    """Bytes of padding after the payload, including the count octet (0 = P bit clear)."""

    def __post_init__(self) -> None:
        if not 0 <= self.padding_size <= 255:
            raise ValueError(f"RTP padding of {self.padding_size} bytes does not fit one octet")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet (RFC 3550 §5.1).

        Raises:
            RtpError: any malformation, including a padding count larger than the payload.
        """
        header = RtpHeader.parse(data)
        body = bytes(data[header.size :])
        padding_size = 0
        if data[0] & 0x20:
            padding_size = body[-1] if body else 0
            if padding_size == 0 or padding_size > len(body):
                raise RtpError("RTP packet padding length is invalid")
            body = body[:-padding_size]
        return cls(header, body, padding_size)

    def serialize(self) -> bytes:
        """The packet bytes; padding is zeros ended by the count octet (RFC 3550 §5.1)."""
        out = self.header.serialize(padding=self.padding_size > 0) + self.payload
        if self.padding_size:
            out += bytes(self.padding_size - 1) + bytes([self.padding_size])
        return out
