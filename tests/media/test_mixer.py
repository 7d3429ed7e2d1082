"""Mixer: saturation instead of wrap-around, gains, mix-minus, limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from callwatch.media.mixer import MAX_PARTIES, Mixer, mix, mix_minus


def frame(*values: int) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
    return np.array(values, dtype=np.int16)


def test_mix_sums_and_clips_without_wrapping() -> None:
    out = mix([frame(30000, -30000, 100, 32767), frame(30000, -30000, -50, 1)])
    assert out.dtype == np.int16
    assert out.tolist() == [32767, -32768, 50, 32767]


def test_mix_applies_gains_and_rounds() -> None:
    out = mix([frame(1000, 3), frame(1000, 3)], gains=[0.5, 0.0])
    assert out.tolist() == [500, 2]
    assert mix([frame(20000)], gains=[4.0]).tolist() == [32767]


def test_mix_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="nothing"):
        mix([])
    with pytest.raises(ValueError, match="lengths differ"):
        mix([frame(1, 2), frame(1)])
    with pytest.raises(ValueError, match="int16"):
        mix([np.zeros(2, dtype=np.int32)])  # type: ignore[list-item,unused-ignore]
    with pytest.raises(ValueError, match="gains"):
        mix([frame(1)], gains=[1.0, 1.0])
    with pytest.raises(ValueError, match="gains must"):
        mix([frame(1)], gains=[-1.0])
    with pytest.raises(ValueError, match="limit"):
        mix([frame(1)] * (MAX_PARTIES + 1))


def test_mix_minus_leaves_each_party_out() -> None:
    out = mix_minus({"a": frame(100, 30000), "b": frame(10, 30000), "c": frame(1, -5)})
    assert out["a"].tolist() == [11, 29995]
    assert out["b"].tolist() == [101, 29995]
    assert out["c"].tolist() == [110, 32767]


def test_mixer_remembers_gains() -> None:
    mixer = Mixer()
    mixer.set_gain("agent", 0.0)
    assert mixer.mix({"agent": frame(500), "customer": frame(7)}).tolist() == [7]
    mixer.forget("agent")
    assert mixer.gain("agent") == 1.0
    assert mixer.mix({"agent": frame(500), "customer": frame(7)}).tolist() == [507]
    with pytest.raises(ValueError):
        mixer.set_gain("x", 100.0)


@given(
    st.lists(hnp.arrays(np.int16, 160, elements=st.integers(-32768, 32767)), min_size=1, max_size=8)
)
def test_mix_equals_clipped_wide_sum(
    frames: list[np.ndarray[tuple[int], np.dtype[np.int16]]],
) -> None:
    expected = np.clip(np.sum([f.astype(np.int64) for f in frames], axis=0), -32768, 32767)
    assert np.array_equal(mix(frames), expected)
