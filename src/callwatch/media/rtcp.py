"""RTCP compound packets (RFC 3550 §6): SR, RR, SDES, BYE; other types kept opaque.

Theory of operation
-------------------
:func:`parse_rtcp` splits a compound datagram by each packet's length field, removes padding
(RFC 3550 §6.4.1: the P bit, last octet counts the pad) and builds one frozen dataclass per
packet. Any input gives a list or :class:`~callwatch.media.rtp.RtpError`; APP, feedback
(RFC 4585) and XR packets come back as :class:`RtcpUnknown` so a relay can still pass them on.
:func:`serialize_rtcp` is the inverse (padding written only where a body is not 32-bit aligned).

The relay only counts and forwards RTCP; it reads report blocks off the slow path to expose
what the far end says it receives (loss, jitter).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from callwatch.media.rtp import RtpError

__all__ = [
    "RtcpBye",
    "RtcpPacket",
    "RtcpReceiverReport",
    "RtcpReportBlock",
    "RtcpSdes",
    "RtcpSdesChunk",
    "RtcpSenderReport",
    "RtcpUnknown",
    "parse_rtcp",
    "serialize_rtcp",
]

RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE = 200, 201, 202, 203
"""Packet types of RFC 3550 §12.1."""
MAX_COMPOUND_PACKETS = 64
"""A compound datagram with more packets than this is rejected (limits rule)."""

_HEAD = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IQIII")
_BLOCK = struct.Struct("!IBBHIIII")


@dataclass(frozen=True, slots=True)
class RtcpReportBlock:
    """One reception report (RFC 3550 §6.4.1) about the source ``ssrc``."""

    ssrc: int
    """The source this block reports on."""
    fraction_lost: int
    """Loss since the previous report, as a fraction of 256."""
    packets_lost: int
    """Cumulative packets lost (24-bit signed: duplicates can make it negative)."""
    highest_sequence: int
    """Extended highest sequence number received (cycles << 16 | seq)."""
    jitter: int
    """Interarrival jitter in timestamp units (RFC 3550 A.8)."""
    lsr: int = 0
    """Middle 32 bits of the last SR's NTP timestamp."""
    dlsr: int = 0
    """Delay since that SR, in 1/65536 s."""

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError(f"fraction lost {self.fraction_lost} is not 8-bit")
        if not -(1 << 23) <= self.packets_lost < (1 << 23):
            raise ValueError(f"packets lost {self.packets_lost} is not 24-bit signed")

    @classmethod
    def parse(cls, data: bytes, offset: int) -> RtcpReportBlock:
        """The block at ``offset``; the caller checked that 24 bytes are there."""
        ssrc, fraction, lost_hi, lost_lo, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(
            data, offset
        )
        lost = (lost_hi << 16) | lost_lo
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, fraction, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        """The 24-byte block."""
        lost = self.packets_lost & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc, self.fraction_lost, lost >> 16, lost & 0xFFFF,
            self.highest_sequence, self.jitter, self.lsr, self.dlsr,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RtcpSenderReport:
    """SR (RFC 3550 §6.4.1): sender info plus reception reports."""

    ssrc: int
    ntp_timestamp: int
    """64-bit NTP timestamp (seconds << 32 | fraction)."""
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[RtcpReportBlock, ...] = ()
    extension: bytes = b""
    """Profile-specific extension after the report blocks."""

    def serialize(self) -> bytes:
        """The packet with its RTCP header."""
        info = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        blocks = b"".join(r.serialize() for r in self.reports)
        return _frame(RTCP_SR, len(self.reports), info + blocks + self.extension)


@dataclass(frozen=True, slots=True)
class RtcpReceiverReport:
    """RR (RFC 3550 §6.4.2): reception reports from a participant that does not send."""

    ssrc: int
    reports: tuple[RtcpReportBlock, ...] = ()
    extension: bytes = b""

    def serialize(self) -> bytes:
        """The packet with its RTCP header."""
        blocks = b"".join(r.serialize() for r in self.reports)
        return _frame(RTCP_RR, len(self.reports), _SSRC.pack(self.ssrc) + blocks + self.extension)


@dataclass(frozen=True, slots=True)
class RtcpSdesChunk:
    """One SDES chunk: a source and its (item type, value) pairs, e.g. ``(1, b"cname")``."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RtcpSdes:
    """SDES (RFC 3550 §6.5): source descriptions."""

    chunks: tuple[RtcpSdesChunk, ...] = ()

    def serialize(self) -> bytes:
        """The packet with its RTCP header; each chunk ends with null octets to a word."""
        body = bytearray()
        for chunk in self.chunks:
            body += _SSRC.pack(chunk.ssrc)
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise ValueError(f"SDES item {kind} of {len(value)} bytes does not fit")
                body += bytes([kind, len(value)]) + value
            body += bytes(4 - len(body) % 4)
        return _frame(RTCP_SDES, len(self.chunks), bytes(body))


@dataclass(frozen=True, slots=True)
class RtcpBye:
    """BYE (RFC 3550 §6.6): the sources are leaving, with an optional reason."""

    sources: tuple[int, ...] = ()
    reason: bytes = b""

    def serialize(self) -> bytes:
        """The packet with its RTCP header; the reason is zero-padded to a word."""
        if len(self.reason) > 255:
            raise ValueError(f"BYE reason of {len(self.reason)} bytes does not fit")
        body = b"".join(_SSRC.pack(s) for s in self.sources)
        if self.reason:
            reason = bytes([len(self.reason)]) + self.reason
            body += reason + bytes(-len(reason) % 4)
        return _frame(RTCP_BYE, len(self.sources), body)


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """Any other RTCP packet (APP, RTPFB/PSFB feedback, XR …), body kept as is."""

    packet_type: int
    count: int
    """The 5-bit count/subtype field of the header."""
    body: bytes = b""

    def serialize(self) -> bytes:
        """The packet with its RTCP header."""
        return _frame(self.packet_type, self.count, self.body)


RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye | RtcpUnknown
"""Any packet of a compound RTCP datagram."""


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram (RFC 3550 §6.1).

    Raises:
        RtpError: a header, length, padding or body is malformed, or the compound is too long.
    """
    if len(data) < 4:
        raise RtpError("RTCP packet length is less than 4 bytes")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(packets) == MAX_COMPOUND_PACKETS:
            raise RtpError(f"RTCP compound packet has more than {MAX_COMPOUND_PACKETS} packets")
        if len(data) - pos < 4:
            raise RtpError("RTCP packet length is less than 4 bytes")
        first, packet_type, words = _HEAD.unpack_from(data, pos)
        if first >> 6 != 2:
            raise RtpError(f"RTCP packet has invalid version {first >> 6}")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtpError("RTCP packet is truncated")
        body = bytes(data[pos + 4 : end])
        if first & 0x20:
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise RtpError("RTCP packet padding length is invalid")
            body = body[:-pad]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        pos = end
    return packets


def serialize_rtcp(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """A compound datagram of ``packets`` in order."""
    return b"".join(p.serialize() for p in packets)


def _frame(packet_type: int, count: int, body: bytes) -> bytes:
    """Prefix ``body`` with an RTCP header, padding it to 32 bits with the P bit if needed."""
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP count {count} does not fit 5 bits")
    first = 0x80 | count
    if len(body) % 4:
        pad = 4 - len(body) % 4
        body += bytes(pad - 1) + bytes([pad])
        first |= 0x20
    if len(body) // 4 > 0xFFFF:
        raise ValueError(f"RTCP body of {len(body)} bytes is too long")
    return _HEAD.pack(first, packet_type, len(body) // 4) + body


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < _SENDER_INFO.size + 24 * count:
            raise RtpError("RTCP sender report is truncated")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports, rest = _parse_blocks(body, _SENDER_INFO.size, count)
        return RtcpSenderReport(ssrc, ntp, rtp_ts, packets, octets, reports, rest)
    if packet_type == RTCP_RR:
        if len(body) < 4 + 24 * count:
            raise RtpError("RTCP receiver report is truncated")
        reports, rest = _parse_blocks(body, 4, count)
        return RtcpReceiverReport(_SSRC.unpack_from(body)[0], reports, rest)
    if packet_type == RTCP_SDES:
        return RtcpSdes(_parse_sdes_chunks(body, count))
    if packet_type == RTCP_BYE:
        return _parse_bye(body, count)
    return RtcpUnknown(packet_type, count, body)


def _parse_blocks(
    body: bytes, offset: int, count: int
) -> tuple[tuple[RtcpReportBlock, ...], bytes]:
    blocks = tuple(RtcpReportBlock.parse(body, offset + 24 * i) for i in range(count))
    return blocks, body[offset + 24 * count :]


def _parse_sdes_chunks(body: bytes, count: int) -> tuple[RtcpSdesChunk, ...]:
    chunks: list[RtcpSdesChunk] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise RtpError("RTCP SDES chunk is truncated")
        ssrc = _SSRC.unpack_from(body, pos)[0]
        pos += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if pos >= len(body):
                raise RtpError("RTCP SDES chunk is truncated")
            kind = body[pos]
            if kind == 0:
                pos += 4 - pos % 4  # the null item plus padding to the next word
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtpError("RTCP SDES item is truncated")
            length = body[pos + 1]
            items.append((kind, body[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        chunks.append(RtcpSdesChunk(ssrc, tuple(items)))
    return tuple(chunks)


def _parse_bye(body: bytes, count: int) -> RtcpBye:
    if len(body) < 4 * count:
        raise RtpError("RTCP bye has truncated source list")
    sources = struct.unpack_from(f"!{count}I", body)
    reason = b""
    if len(body) > 4 * count:
        length = body[4 * count]
        if 4 * count + 1 + length > len(body):
            raise RtpError("RTCP bye has truncated reason")
        reason = body[4 * count + 1 : 4 * count + 1 + length]
    return RtcpBye(tuple(sources), reason)
