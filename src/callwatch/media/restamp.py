"""Rewrite SSRC, sequence number and timestamp so that switching sources looks like one stream.

A supervisor's fork, a mix that changes speakers, or a leg re-INVITEd to another device all
send packets from several upstream SSRCs (or one SSRC with a discontinuity) down one outgoing
RTP stream. Receivers expect one SSRC with consecutive sequence numbers and a timestamp that
advances with real time (RFC 3550 §5.1, §8.2); otherwise they reset their decoder or discard
packets. A :class:`Restamper` owns the outgoing identity:

* SSRC: always its own;
* sequence: +1 (mod 2**16) for every packet it rewrites, whatever the input numbers;
* timestamp: ``input + offset`` (mod 2**32). The offset is recomputed (a *rebase*) when the
  input SSRC changes or its timestamp jumps by more than ``max_jump``: the first packet after a
  rebase gets ``last_output + max(frame_step, elapsed · clock_rate)``, where ``elapsed`` is the
  receive-time gap since the previous packet, so silence keeps its length and the timestamp
  never goes backwards;
* marker bit: set on the first packet after a rebase (RFC 3551 §4.1: start of a talkspurt lets
  the receiver resynchronise its playout), otherwise copied from the input.

:meth:`Restamper.rewrite` edits a ``bytearray`` copy of the packet in place with one
``struct`` unpack and one ``pack_into`` (the relay's hot path); :meth:`Restamper.apply` is the
same mapping on plain header fields.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

_HEADER = struct.Struct("!BBHII")
"""First 12 bytes of an RTP header: V/P/X/CC, M/PT, sequence, timestamp, SSRC (RFC 3550 §5.1)."""
_MARKER = 0x80
_TS_MOD = 1 << 32
_TS_HALF = 1 << 31


class RestampError(ValueError):
    """The buffer is too short to hold an RTP header."""


class HeaderFields(NamedTuple):
    """The RTP header fields a :class:`Restamper` reads and writes."""

    marker: bool
    sequence: int
    timestamp: int
    ssrc: int


class Restamper:
    """Maps packets from any number of sources onto one continuous outgoing RTP stream.

    Args:
        ssrc: the outgoing SSRC.
        first_sequence: sequence number of the first rewritten packet.
        first_timestamp: timestamp given to the first packet.
        clock_rate: RTP clock rate, to turn receive-time gaps into timestamp steps.
        frame_step: minimum timestamp advance on a rebase (one 20 ms frame by default).
        max_jump: input timestamp jumps larger than this (either way) trigger a rebase;
            defaults to 2 s of clock.
    """

    __slots__ = (
        "_clock_rate",
        "_frame_step",
        "_last_time",
        "_max_jump",
        "_next_seq",
        "_offset",
        "_source",
        "_src_ts",
        "ssrc",
    )

    def __init__(
        self,
        ssrc: int,
        *,
        first_sequence: int = 0,
        first_timestamp: int = 0,
        clock_rate: int = 8000,
        frame_step: int | None = None,
        max_jump: int | None = None,
    ) -> None:
        self.ssrc = ssrc & 0xFFFFFFFF
        self._clock_rate = clock_rate
        self._frame_step = frame_step if frame_step is not None else clock_rate // 50
        self._max_jump = max_jump if max_jump is not None else 2 * clock_rate
        self._next_seq = first_sequence & 0xFFFF
        self._source: int | None = None
        # the newest source timestamp and its offset: their sum is the last output timestamp
        self._src_ts = 0
        self._offset = (first_timestamp - self._frame_step) % _TS_MOD
        self._last_time: float | None = None

    def rewrite(self, packet: bytearray, now: float) -> None:
        """Rewrite the header of ``packet`` in place.

        Args:
            packet: a writable copy of an RTP packet (at least 12 bytes).
            now: receive time of the packet in seconds (only gaps between calls matter).

        Raises:
            RestampError: ``packet`` is shorter than an RTP header.
        """
        if len(packet) < 12:
            raise RestampError(f"RTP packet of {len(packet)} bytes is shorter than its header")
        first, second, _seq, ts, ssrc = _HEADER.unpack_from(packet)
        delta = (ts - self._src_ts + _TS_HALF) % _TS_MOD - _TS_HALF
        if ssrc != self._source or delta > self._max_jump or delta < -self._max_jump:
            self._rebase(ssrc, ts, now)
            second |= _MARKER
        elif delta > 0:
            self._src_ts = ts
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        self._last_time = now
        _HEADER.pack_into(packet, 0, first, second, seq, (ts + self._offset) % _TS_MOD, self.ssrc)

    def apply(self, fields: HeaderFields, now: float) -> HeaderFields:
        """The same mapping as :meth:`rewrite`, on header fields instead of bytes."""
        packet = bytearray(12)
        second = _MARKER if fields.marker else 0
        _HEADER.pack_into(
            packet, 0, 0x80, second, fields.sequence & 0xFFFF, fields.timestamp, fields.ssrc
        )
        self.rewrite(packet, now)
        _first, second, seq, ts, ssrc = _HEADER.unpack_from(packet)
        return HeaderFields(bool(second & _MARKER), seq, ts, ssrc)

    def _rebase(self, ssrc: int, ts: int, now: float) -> None:
        """Start mapping a new source (or a jumped one) right after the last output."""
        step = self._frame_step
        if self._last_time is not None and self._source is not None:
            step = max(step, round((now - self._last_time) * self._clock_rate))
        target = (self._src_ts + self._offset + step) % _TS_MOD
        self._offset = (target - ts) % _TS_MOD
        self._source = ssrc
        self._src_ts = ts
