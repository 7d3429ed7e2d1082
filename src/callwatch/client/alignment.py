"""Lining up the frames of several parties by tick, for sinks that combine them.

Theory of operation: each party's frames arrive in order, but parties are read by different
consumers, so one may run a few frames ahead of another. A :class:`TickAligner` files frames by
tick (the shared supervision timeline, :attr:`~callwatch.client.streams.AudioFrame.tick`) and
releases ticks strictly in order, each exactly once, as soon as it is complete:

- every named party has its frame (``parties`` given — the stereo recorder), or
- every party heard within the last ``window`` ticks (and, in the first ``window`` ticks, every
  named party) has it and a later tick already exists — one tick of patience lets parties
  that tick together all arrive, or
- the tick is ``window`` ticks older than the newest one (a party fell silent, was dropped by a
  slow consumer, or never came): it is released with what it has.

A frame for a tick already released is late: dropped and counted, never written out of place.
Ticks nobody had frames for are released empty, so a sink's timeline has no gaps: a missing
frame becomes silence, never a shift. :class:`RateConverter` and :func:`mix` bring the frames
of a tick to one rate and one channel. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from callwatch.client.stream_decoder import FRAME_SECONDS
from callwatch.media.codecs.base import PcmArray
from callwatch.media.resample import Resampler

__all__ = ["DEFAULT_WINDOW", "AlignedTick", "RateConverter", "TickAligner", "mix"]

DEFAULT_WINDOW = 25
"""Ticks (500 ms) a tick may wait for a lagging party."""


@dataclass(frozen=True, slots=True)
class AlignedTick:
    """One tick of the timeline with the frames that arrived for it."""

    tick: int
    frames: dict[str, PcmArray] = field(default_factory=dict)
    """Party id → PCM; parties without a frame for this tick are absent (play silence)."""


class TickAligner:
    """Files frames by tick and releases complete ticks in order (see the module docstring).

    Args:
        parties: the parties to wait for; None accepts any party and waits for those heard
            recently.
        window: ticks a tick may wait for a lagging party.
    """

    def __init__(self, parties: Collection[str] | None = None, *, window: int = DEFAULT_WINDOW):
        if window < 1:
            raise ValueError("window must be at least one tick")
        self._fixed = frozenset(parties) if parties is not None else None
        self._window = window
        self._pending: dict[int, dict[str, PcmArray]] = {}
        self._last: dict[str, int] = {}
        self._next: int | None = None
        self._newest: int | None = None
        self._released = False
        self._start: int | None = None
        self._first: int | None = None
        self.late = 0
        """Frames dropped because their tick had already been released."""
        self.ignored = 0
        """Frames of parties not named in ``parties``."""

    @property
    def first_tick(self) -> int | None:
        """The first tick released (the sink's time zero), or the first pending one."""
        return self._first if self._released else self._next

    def add(self, party: str, tick: int, pcm: PcmArray) -> list[AlignedTick]:
        """File one frame; returns the ticks it completed, oldest first."""
        if self._fixed is not None and party not in self._fixed:
            self.ignored += 1
            return []
        self._last[party] = max(self._last.get(party, tick), tick)
        if self._start is None:
            self._start = tick
        if self._next is not None and tick < self._next:
            if self._released:
                self.late += 1
                return []
            self._next = tick
        if self._next is None:
            self._next = tick
        self._pending.setdefault(tick, {})[party] = pcm
        self._newest = tick if self._newest is None else max(self._newest, tick)
        return self._release(final=False)

    def flush(self) -> list[AlignedTick]:
        """Release every pending tick (the stream ended), gaps included."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> list[AlignedTick]:
        out: list[AlignedTick] = []
        while self._next is not None and self._newest is not None and self._next <= self._newest:
            tick = self._next
            frames = self._pending.get(tick, {})
            if not final and not self._ready(tick, frames):
                break
            if not self._released:
                self._released, self._first = True, tick
            out.append(AlignedTick(tick, self._pending.pop(tick, {})))
            self._next = tick + 1
        return out

    def _ready(self, tick: int, frames: dict[str, PcmArray]) -> bool:
        assert self._newest is not None
        if self._newest - tick >= self._window:
            return True
        if self._fixed is not None and self._fixed <= frames.keys():
            return True
        horizon = self._newest - self._window
        expected = {party for party, last in self._last.items() if last >= horizon}
        if self._fixed is not None and self._start is not None and self._start > horizon:
            expected |= self._fixed  # starting: wait for named parties not heard yet
        return expected <= frames.keys() and tick < self._newest


class RateConverter:
    """Brings every party's frames to one rate, with a stateful resampler per party.

    Args:
        sample_rate: the rate frames are converted to (an integer ratio of theirs).
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = round(sample_rate * FRAME_SECONDS)
        self._resamplers: dict[tuple[str, int], Resampler] = {}

    def convert(self, party: str, pcm: PcmArray, rate: int) -> PcmArray:
        """``pcm`` (mono, at ``rate``) at :attr:`sample_rate`.

        Raises:
            ValueError: the two rates are not an integer ratio apart.
        """
        if rate == self.sample_rate:
            return pcm
        key = (party, rate)
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = Resampler(rate, self.sample_rate)
        return resampler.process(pcm)

    def fit(self, pcm: PcmArray) -> PcmArray:
        """Exactly one frame: cut, or padded with silence."""
        n = self.frame_samples
        if pcm.shape[0] == n:
            return pcm
        out = np.zeros(n, dtype=np.int16)
        out[: min(n, pcm.shape[0])] = pcm[:n]
        return out

    def silence(self) -> PcmArray:
        """One frame of silence."""
        return np.zeros(self.frame_samples, dtype=np.int16)


def mix(frames: Collection[PcmArray], samples: int) -> PcmArray:
    """Sum mono frames of ``samples`` samples, saturating to int16 (silence for none)."""
    if not frames:
        return np.zeros(samples, dtype=np.int16)
    total = np.zeros(samples, dtype=np.int32)
    for pcm in frames:
        total[: pcm.shape[0]] += pcm[:samples]
    return np.clip(total, -32768, 32767).astype(np.int16)
