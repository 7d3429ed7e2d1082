"""Wrap-around arithmetic for 16-bit sequence numbers and 32-bit timestamps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwatch.media.seqmath import (
    extend_seq,
    seq_add,
    seq_diff,
    seq_gt,
    seq_lt,
    ts_add,
    ts_diff,
    ts_gt,
    ts_lt,
    wrap_diff,
)


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [(0, 1, 1), (1, 0, -1), (65535, 0, 1), (65535, 1, 2), (0, 65535, -1), (100, 100, 0),
     (0, 32767, 32767), (0, 32768, -32768)],
)  # fmt: skip
def test_seq_diff(a: int, b: int, diff: int) -> None:
    assert seq_diff(a, b) == diff


def test_seq_order_across_wrap() -> None:
    assert seq_lt(65535, 0)
    assert seq_gt(0, 65535)
    assert not seq_lt(5, 5)
    assert seq_add(65535, 2) == 1
    assert seq_add(0, -1) == 65535


def test_timestamps_wrap_at_32_bits() -> None:
    assert ts_diff(0xFFFFFF00, 0x100) == 0x200
    assert ts_lt(0xFFFFFF00, 0x100)
    assert ts_gt(0x100, 0xFFFFFF00)
    assert ts_add(0xFFFFFFFF, 161) == 160


@pytest.mark.parametrize(
    ("seq", "highest", "extended"),
    [(5, 0x1FFFE, 0x20005), (0xFFFE, 0x20003, 0x1FFFE), (10, 0, 10), (0xFFFF, 0, 0)],
)
def test_extend_seq(seq: int, highest: int, extended: int) -> None:
    assert extend_seq(seq, highest) == extended


@given(st.integers(0, 0xFFFF), st.integers(-32768, 32767))
def test_seq_add_and_diff_are_inverse(seq: int, n: int) -> None:
    assert seq_diff(seq, seq_add(seq, n)) == n


@given(st.integers(0, 0xFFFFFFFF), st.integers(-(1 << 31), (1 << 31) - 1))
def test_ts_add_and_diff_are_inverse(ts: int, n: int) -> None:
    assert ts_diff(ts, ts_add(ts, n)) == n
    assert wrap_diff(ts, ts_add(ts, n), 1 << 32) == n
