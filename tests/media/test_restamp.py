"""Restamper: one continuous outgoing stream across source switches, jumps and wraps."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwatch.media.restamp import HeaderFields, Restamper, RestampError

OWN_SSRC = 0x5EED5EED


def packet(seq: int, ts: int, ssrc: int, marker: bool = False, pt: int = 0) -> bytearray:
    return bytearray(struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc))


def fields(buf: bytearray) -> tuple[int, int, int, int, int]:
    first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", buf)
    return first, second, seq, ts, ssrc


def test_single_source_keeps_spacing_and_gets_our_identity() -> None:
    r = Restamper(OWN_SSRC, first_sequence=7, first_timestamp=1000)
    out = [r.apply(HeaderFields(False, 500 + i, 90_000 + 160 * i, 42), i * 0.02) for i in range(4)]
    assert [o.sequence for o in out] == [7, 8, 9, 10]
    assert [o.timestamp for o in out] == [1000, 1160, 1320, 1480]
    assert {o.ssrc for o in out} == {OWN_SSRC}
    assert [o.marker for o in out] == [True, False, False, False]


def test_source_switch_continues_timestamps_with_real_time_gap() -> None:
    r = Restamper(OWN_SSRC, first_timestamp=0, clock_rate=8000)
    r.apply(HeaderFields(False, 1, 5000, 1), 0.0)
    r.apply(HeaderFields(False, 2, 5160, 1), 0.02)
    # new source 20 ms later: one frame on
    switched = r.apply(HeaderFields(False, 9000, 777_777, 2), 0.04)
    assert switched == HeaderFields(True, 2, 320, OWN_SSRC)
    after = r.apply(HeaderFields(False, 9001, 777_937, 2), 0.06)
    assert after == HeaderFields(False, 3, 480, OWN_SSRC)
    # back to the first source after 1 s of silence: the gap keeps its length
    back = r.apply(HeaderFields(False, 3, 5320, 1), 1.06)
    assert back.marker and back.timestamp == 480 + 8000


def test_large_jump_within_a_source_rebases_but_small_gaps_are_kept() -> None:
    r = Restamper(OWN_SSRC, clock_rate=8000)
    r.apply(HeaderFields(False, 1, 0, 1), 0.0)
    gap = r.apply(HeaderFields(False, 3, 480, 1), 0.06)  # one packet lost upstream
    assert gap == HeaderFields(False, 1, 480, OWN_SSRC)
    jump = r.apply(HeaderFields(False, 4, 3_000_000, 1), 0.08)
    assert jump == HeaderFields(True, 2, 640, OWN_SSRC)
    backwards = r.apply(HeaderFields(False, 5, 0, 1), 0.10)
    assert backwards == HeaderFields(True, 3, 800, OWN_SSRC)


def test_rewrite_in_place_keeps_payload_and_other_bits() -> None:
    r = Restamper(OWN_SSRC, first_sequence=65535, first_timestamp=2**32 - 160)
    buf = packet(10, 0, 9, pt=111) + b"payload"
    r.rewrite(buf, 0.0)
    assert fields(buf) == (0x80, 0x80 | 111, 65535, 2**32 - 160, OWN_SSRC)
    assert buf.endswith(b"payload")
    buf = packet(11, 160, 9, pt=111)
    r.rewrite(buf, 0.02)
    assert fields(buf) == (0x80, 111, 0, 0, OWN_SSRC)  # both fields wrapped
    with pytest.raises(RestampError):
        r.rewrite(bytearray(11), 0.04)


headers = st.tuples(
    st.booleans(),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from([1, 2, 3, 0xFFFFFFFF]),
    st.floats(0.0, 0.5),
)


@given(
    first_seq=st.integers(0, 0xFFFF),
    first_ts=st.integers(0, 0xFFFFFFFF),
    inputs=st.lists(headers, min_size=1, max_size=200),
)
def test_output_sequence_strictly_increments_and_ssrc_is_constant(
    first_seq: int, first_ts: int, inputs: list[tuple[bool, int, int, int, float]]
) -> None:
    r = Restamper(OWN_SSRC, first_sequence=first_seq, first_timestamp=first_ts)
    now, previous, newest = 0.0, None, first_ts
    for marker, seq, ts, ssrc, gap in inputs:
        now += gap
        out = r.apply(HeaderFields(marker, seq, ts, ssrc), now)
        assert out.ssrc == OWN_SSRC
        assert 0 <= out.timestamp <= 0xFFFFFFFF
        ahead = (out.timestamp - newest) % 2**32
        if previous is None:
            assert out.sequence == first_seq and out.timestamp == first_ts and out.marker
        else:
            assert out.sequence == (previous.sequence + 1) & 0xFFFF
            if out.marker and not marker:  # a rebase: one frame (or the real gap) past the newest
                assert 160 <= ahead <= 160 + round(gap * 8000) + 1
        if ahead < 2**31:
            newest = out.timestamp
        previous = out


@given(inputs=st.lists(headers, min_size=1, max_size=50))
def test_rewrite_and_apply_agree(inputs: list[tuple[bool, int, int, int, float]]) -> None:
    a, b = Restamper(OWN_SSRC), Restamper(OWN_SSRC)
    for i, (marker, seq, ts, ssrc, _gap) in enumerate(inputs):
        buf = packet(seq, ts, ssrc, marker) + b"xy"
        a.rewrite(buf, i * 0.02)
        out = b.apply(HeaderFields(marker, seq, ts, ssrc), i * 0.02)
        assert fields(buf)[1:] == (
            (0x80 if out.marker else 0),
            out.sequence,
            out.timestamp,
            out.ssrc,
        )
