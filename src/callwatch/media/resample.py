"""Integer-ratio sample-rate conversion (8k ↔ 16k ↔ 48k) for transcoding and mixing.

Theory of operation: a Kaiser-windowed sinc low-pass prototype ``h`` (cut-off just below the
lower of the two Nyquist frequencies, unity DC gain) is applied in polyphase form, so no work is
spent on the zeros of the upsampled signal or on the discarded samples of the decimated one:

* up by L:   ``y[nL + p] = L · Σ_k h[p + kL] · x[n − k]``: one ``np.correlate`` per phase p;
* down by M: ``y[m] = Σ_j h[j] · x[mM − j]``, evaluated only at the kept samples by splitting
  ``h`` and ``x`` into M interleaved phases (M short correlations instead of one long one).

The converter is stateful: it keeps the last ``taps − 1`` input samples (and, when decimating,
the phase of the next kept sample), so a stream cut into 20 ms frames of any size is converted
exactly as if it were processed in one piece and frame boundaries produce no clicks. The cost is
a fixed latency of :attr:`Resampler.delay` output samples (linear phase).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PcmArray = npt.NDArray[np.int16]
_F64 = npt.NDArray[np.float64]

SUPPORTED_RATES = (8000, 16000, 24000, 48000)
"""Rates the converter is meant for; any pair whose ratio is an integer works."""

ZERO_CROSSINGS = 16
"""Sinc zero crossings on each side of the prototype's centre (quality vs cost)."""
KAISER_BETA = 8.6
"""Kaiser window β: about 85 dB stop-band attenuation."""
ROLLOFF = 0.92
"""Cut-off as a fraction of the lower Nyquist frequency (transition band lies below it)."""
MAX_INPUT_SAMPLES = 1 << 20
"""Largest block one :meth:`Resampler.process` call accepts (~22 s at 48 kHz)."""


def design_lowpass(ratio: int, taps_per_phase: int) -> _F64:
    """Windowed-sinc prototype for a rate change by ``ratio`` (length ``ratio·taps_per_phase``).

    Returns coefficients with unity DC gain at the high rate.
    """
    length = ratio * taps_per_phase
    cutoff = 0.5 * ROLLOFF / ratio
    centre = (length - 1) / 2.0
    n = np.arange(length, dtype=np.float64) - centre
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(length, KAISER_BETA)
    result: _F64 = h / h.sum()
    return result


def _to_int16(samples: _F64) -> PcmArray:
    """Round and saturate float samples to int16."""
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


class Resampler:
    """Stateful converter from ``from_rate`` to ``to_rate`` (their ratio must be an integer).

    Args:
        from_rate: input sample rate in Hz.
        to_rate: output sample rate in Hz.

    Raises:
        ValueError: the rates are not positive or their ratio is not an integer.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} → {to_rate}")
        if to_rate % from_rate and from_rate % to_rate:
            raise ValueError(f"ratio {from_rate} → {to_rate} is not an integer")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._up = to_rate // from_rate if to_rate >= from_rate else 1
        self._down = from_rate // to_rate if from_rate > to_rate else 1
        ratio = max(self._up, self._down)
        taps_per_phase = 2 * ZERO_CROSSINGS
        self._kernel: _F64 = (
            design_lowpass(ratio, taps_per_phase) if ratio > 1 else np.ones(1, dtype=np.float64)
        )
        if self._up > 1:
            # phase p multiplies x[n − (T−1−i)] by L·h[p + (T−1−i)·L], i = 0 … T−1
            bank = self._kernel.reshape(taps_per_phase, self._up)[::-1] * self._up
            self._phases = [np.ascontiguousarray(bank[:, p]) for p in range(self._up)]
            history = taps_per_phase - 1
        else:
            # output m = Σ_r Σ_q hr[qM + r] · x[mM + qM + r] with hr = h reversed
            reversed_kernel = self._kernel[::-1]
            self._phases = [
                np.ascontiguousarray(reversed_kernel[r :: self._down]) for r in range(self._down)
            ]
            history = self._kernel.shape[0] - 1
        self._history: _F64 = np.zeros(history, dtype=np.float64)
        self._phase = 0

    @property
    def delay(self) -> float:
        """Group delay in output samples (the linear-phase filter's centre)."""
        centre = (int(self._kernel.shape[0]) - 1) / 2.0
        return centre / self._down if self._down > 1 else centre

    def reset(self) -> None:
        """Forget the history, as at construction (use at a stream discontinuity)."""
        self._history[:] = 0.0
        self._phase = 0

    def process(self, pcm: PcmArray) -> PcmArray:
        """Convert the next block of the stream; returns as many samples as are complete.

        Upsampling by L returns exactly ``L·len(pcm)`` samples; decimating by M returns
        ``len(pcm)/M`` samples on average (exactly that when frames are multiples of M).

        Raises:
            ValueError: ``pcm`` is not 1-D or is longer than :data:`MAX_INPUT_SAMPLES`.
        """
        if pcm.ndim != 1 or pcm.shape[0] > MAX_INPUT_SAMPLES:
            raise ValueError(f"expected 1-D PCM of ≤ {MAX_INPUT_SAMPLES} samples")
        if self._up == 1 and self._down == 1:
            return pcm.astype(np.int16, copy=True)
        buffer = np.concatenate((self._history, pcm.astype(np.float64)))
        out = self._upsample(buffer) if self._up > 1 else self._decimate(buffer, pcm.shape[0])
        if self._history.shape[0]:
            self._history = buffer[buffer.shape[0] - self._history.shape[0] :].copy()
        return _to_int16(out)

    def _upsample(self, buffer: _F64) -> _F64:
        count = buffer.shape[0] - self._history.shape[0]
        out = np.empty((count, self._up), dtype=np.float64)
        for p, taps in enumerate(self._phases):
            out[:, p] = np.correlate(buffer, taps, "valid")
        return out.reshape(-1)

    def _decimate(self, buffer: _F64, count: int) -> _F64:
        phase, down = self._phase, self._down
        if count <= phase:
            self._phase -= count
            return np.zeros(0, dtype=np.float64)
        produced = -(-(count - phase) // down)
        self._phase = phase + produced * down - count
        out = np.zeros(produced, dtype=np.float64)
        for r, taps in enumerate(self._phases):
            out += np.correlate(buffer[phase + r :: down], taps, "valid")[:produced]
        return out


def resample(pcm: PcmArray, from_rate: int, to_rate: int) -> PcmArray:
    """One-shot conversion of a whole signal (output is delayed by the filter's group delay)."""
    return Resampler(from_rate, to_rate).process(pcm)
