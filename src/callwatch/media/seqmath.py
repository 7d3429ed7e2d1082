"""Wrap-around arithmetic for RTP sequence numbers (16 bit) and timestamps (32 bit).

RFC 3550 §5.1: both fields wrap, so "later" means "less than half the number space ahead"
(RFC 1982 serial number arithmetic). Every function here is pure and total on its domain.
"""

from __future__ import annotations

SEQ_MOD = 1 << 16
"""Sequence numbers are 16-bit (RFC 3550 §5.1)."""
TS_MOD = 1 << 32
"""Timestamps and SSRCs are 32-bit (RFC 3550 §5.1)."""


def wrap_diff(a: int, b: int, modulus: int) -> int:
    """Signed distance from ``a`` to ``b`` on a ring of ``modulus`` values.

    Returns the ``d`` with ``(a + d) % modulus == b`` and ``-modulus/2 <= d < modulus/2``.
    """
    half = modulus >> 1
    return ((b - a + half) % modulus) - half


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**16."""
    return (seq + n) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Signed distance from sequence number ``a`` to ``b`` (``seq_diff(65535, 1) == 2``)."""
    return wrap_diff(a, b, SEQ_MOD)


def seq_lt(a: int, b: int) -> bool:
    """True when ``a`` comes before ``b`` (RFC 1982 for 16-bit serial numbers)."""
    return seq_diff(a, b) > 0


def seq_gt(a: int, b: int) -> bool:
    """True when ``a`` comes after ``b``."""
    return seq_diff(b, a) > 0


def ts_add(ts: int, n: int) -> int:
    """``ts + n`` modulo 2**32."""
    return (ts + n) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance from timestamp ``a`` to ``b``."""
    return wrap_diff(a, b, TS_MOD)


def ts_lt(a: int, b: int) -> bool:
    """True when timestamp ``a`` comes before ``b``."""
    return ts_diff(a, b) > 0


def ts_gt(a: int, b: int) -> bool:
    """True when timestamp ``a`` comes after ``b``."""
    return ts_diff(b, a) > 0


def extend_seq(seq: int, highest_extended: int) -> int:
    """Extend a 16-bit ``seq`` to the 32-bit counter closest to ``highest_extended``.

    This is the "extended highest sequence number" of RFC 3550 §6.4.1 (cycles in the high
    16 bits), computed for an arbitrary, possibly reordered, packet. Never negative.
    """
    extended = highest_extended + seq_diff(highest_extended & 0xFFFF, seq)
    return max(extended, 0)
