"""Mix the int16 frames of several parties into one, with saturation instead of wrap-around.

Used when a supervisor's device accepts a single stream (the two parties are mixed), for
barge/whisper conferences (each listener gets everyone but themselves, *mix-minus*) and for
mono recordings. All frames must share a sample rate and length; convert with
:mod:`callwatch.media.resample` first. Sums are taken in int32 (or float64 when gains apply),
then clipped to the int16 range, so loud parties saturate rather than overflow into noise.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

PcmArray = npt.NDArray[np.int16]
K = TypeVar("K", bound=Hashable)

MAX_PARTIES = 64
"""Most frames one mix accepts (a conference far beyond any supervision scenario)."""
MAX_GAIN = 16.0
"""Largest linear gain accepted (+24 dB)."""

_INT16_MIN = -32768
_INT16_MAX = 32767


def _check(frames: Sequence[PcmArray]) -> int:
    """Validate frames for mixing and return their common length."""
    if not frames:
        raise ValueError("nothing to mix")
    if len(frames) > MAX_PARTIES:
        raise ValueError(f"{len(frames)} frames exceed the limit of {MAX_PARTIES}")
    length = frames[0].shape[0]
    for frame in frames:
        if frame.dtype != np.int16 or frame.ndim != 1:
            raise ValueError(f"frames must be 1-D int16, got {frame.dtype} {frame.shape}")
        if frame.shape[0] != length:
            raise ValueError(f"frame lengths differ: {frame.shape[0]} != {length}")
    return int(length)


def saturate(samples: npt.NDArray[np.int32] | npt.NDArray[np.float64]) -> PcmArray:
    """Clip (and round, for floats) wider samples into int16."""
    if samples.dtype.kind == "f":
        samples = np.rint(samples)
    return np.clip(samples, _INT16_MIN, _INT16_MAX).astype(np.int16)


def mix(frames: Sequence[PcmArray], gains: Sequence[float] | None = None) -> PcmArray:
    """Sum equally long int16 frames, optionally scaled per frame, with saturation.

    Args:
        frames: one 1-D int16 frame per party, all the same length.
        gains: optional linear gain per frame (1.0 = unchanged, 0.0 = muted).

    Returns:
        The mixed frame (a new array).

    Raises:
        ValueError: no frames, too many, mismatched shapes or dtypes, or bad gains.
    """
    length = _check(frames)
    if gains is None:
        total = np.zeros(length, dtype=np.int32)
        for frame in frames:
            total += frame
        return saturate(total)
    if len(gains) != len(frames):
        raise ValueError(f"{len(gains)} gains for {len(frames)} frames")
    if any(not 0.0 <= g <= MAX_GAIN for g in gains):
        raise ValueError(f"gains must lie in [0, {MAX_GAIN}]")
    weighted = np.zeros(length, dtype=np.float64)
    for frame, gain in zip(frames, gains, strict=True):
        if gain:
            weighted += frame * gain
    return saturate(weighted)


def mix_minus(frames: Mapping[K, PcmArray]) -> dict[K, PcmArray]:
    """Give every party the mix of all the *other* parties (conference / barge audio).

    Computed as ``total − own`` in int32, so the cost is linear in the number of parties.
    """
    keys = list(frames)
    arrays = [frames[k] for k in keys]
    length = _check(arrays)
    total = np.zeros(length, dtype=np.int32)
    for frame in arrays:
        total += frame
    return {key: saturate(total - frame) for key, frame in zip(keys, arrays, strict=True)}


class Mixer:
    """Per-party gains remembered between frames, on top of :func:`mix`.

    Parties absent from a call to :meth:`mix` are simply not mixed (silence).
    """

    def __init__(self) -> None:
        self._gains: dict[str, float] = {}

    def set_gain(self, party: str, gain: float) -> None:
        """Set a party's linear gain (0.0 mutes; default 1.0)."""
        if not 0.0 <= gain <= MAX_GAIN:
            raise ValueError(f"gain must lie in [0, {MAX_GAIN}], got {gain}")
        if party not in self._gains and len(self._gains) >= MAX_PARTIES:
            raise ValueError(f"more than {MAX_PARTIES} parties")
        self._gains[party] = gain

    def gain(self, party: str) -> float:
        """The party's gain (1.0 unless set)."""
        return self._gains.get(party, 1.0)

    def forget(self, party: str) -> None:
        """Drop a party's gain setting."""
        self._gains.pop(party, None)

    def mix(self, frames: Mapping[str, PcmArray]) -> PcmArray:
        """Mix one frame per present party using the remembered gains."""
        parties = list(frames)
        gains = [self.gain(p) for p in parties]
        arrays = [frames[p] for p in parties]
        if all(g == 1.0 for g in gains):
            return mix(arrays)
        return mix(arrays, gains)
