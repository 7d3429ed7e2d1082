"""What every audio codec looks like to the rest of callwatch.

An :class:`Encoder` turns one 20 ms frame of mono int16 PCM at the codec's own sample rate into
one RTP payload; a :class:`Decoder` turns any payload back into int16 PCM and, when the jitter
buffer reports a missing frame, conceals it (packet loss concealment, PLC). Both are stateful
(ADPCM predictors, Opus state) so there is one instance per stream and direction.

Three numbers describe a codec and must not be confused (RFC 3551 §4.5):

* ``sample_rate``: the PCM rate the encoder takes and the decoder returns;
* ``rtp_clock_rate``: the RTP timestamp clock (G.722 runs at 16 kHz but is clocked at 8000);
* ``frame_samples``: PCM samples in one 20 ms frame (``sample_rate // 50``).

Every failure a codec library can raise on hostile input is wrapped in :class:`CodecError`, so a
relay or a client can drop the payload and carry on.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

PcmArray = npt.NDArray[np.int16]
"""Mono int16 PCM samples (native byte order)."""

FRAMES_PER_SECOND = 50
"""Frames per second at the 20 ms packetisation every supported codec uses here."""

MAX_PAYLOAD_BYTES = 16384
"""Largest payload a decoder accepts (1 s of G.711 is 8000 bytes; an Opus packet ≤ 1275·3)."""

MAX_CONCEAL_SAMPLES = 48000
"""Largest single concealment request (one second at 48 kHz)."""

_FADE_SECONDS = 0.06
"""Repeat-and-fade PLC reaches silence after this much concealed audio."""


class CodecError(ValueError):
    """A payload or PCM frame could not be encoded or decoded.

    Raised for malformed payloads, wrong frame sizes and any error of the underlying codec
    library (PyAV's ``av.error.FFmpegError`` family is caught and re-raised as this).
    """


class UnknownCodecError(CodecError):
    """No codec is registered for an SDP ``encoding-name/clock-rate/channels`` triple."""


class Encoder(Protocol):
    """Turns 20 ms PCM frames into RTP payloads (one instance per outgoing stream)."""

    @property
    def sample_rate(self) -> int:
        """PCM sample rate the encoder expects."""
        ...

    @property
    def rtp_clock_rate(self) -> int:
        """RTP timestamp clock rate of the payloads."""
        ...

    @property
    def frame_samples(self) -> int:
        """PCM samples in one 20 ms frame."""
        ...

    def encode(self, pcm: PcmArray) -> bytes:
        """Encode one frame of mono int16 PCM; raise :class:`CodecError` on a bad frame."""
        ...


class Decoder(Protocol):
    """Turns RTP payloads into PCM and conceals lost frames (one instance per stream)."""

    @property
    def sample_rate(self) -> int:
        """PCM sample rate of the decoded audio."""
        ...

    @property
    def rtp_clock_rate(self) -> int:
        """RTP timestamp clock rate of the payloads."""
        ...

    @property
    def frame_samples(self) -> int:
        """PCM samples in one 20 ms frame."""
        ...

    def decode(self, payload: bytes) -> PcmArray:
        """Decode one payload; any bytes give audio or :class:`CodecError`."""
        ...

    def conceal(self, samples: int) -> PcmArray:
        """Return ``samples`` samples standing in for audio that never arrived."""
        ...


def check_frame(pcm: PcmArray, frame_samples: int, *, exact: bool) -> PcmArray:
    """Validate a PCM frame handed to an encoder and return it as contiguous mono int16.

    Args:
        pcm: the frame.
        frame_samples: the codec's 20 ms frame length.
        exact: require exactly ``frame_samples`` samples (frame-based codecs such as Opus).

    Raises:
        CodecError: wrong dtype, shape or length.
    """
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise CodecError(f"PCM must be 1-D int16, got {pcm.dtype} with shape {pcm.shape}")
    if exact and pcm.shape[0] != frame_samples:
        raise CodecError(f"frame must have {frame_samples} samples, got {pcm.shape[0]}")
    if pcm.shape[0] > MAX_CONCEAL_SAMPLES:
        raise CodecError(f"frame of {pcm.shape[0]} samples exceeds {MAX_CONCEAL_SAMPLES}")
    return np.ascontiguousarray(pcm)


def check_payload(payload: bytes) -> None:
    """Raise :class:`CodecError` when ``payload`` exceeds :data:`MAX_PAYLOAD_BYTES`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CodecError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")


def check_conceal(samples: int) -> None:
    """Raise :class:`CodecError` for a negative or oversized concealment request."""
    if not 0 <= samples <= MAX_CONCEAL_SAMPLES:
        raise CodecError(f"cannot conceal {samples} samples (limit {MAX_CONCEAL_SAMPLES})")


class FadePlc:
    """Repeat-and-fade concealment for codecs without their own PLC (G.711, G.722, L16).

    Remembers the last decoded frame; a concealment request repeats it while a linear gain
    ramps from the current level to silence over :data:`_FADE_SECONDS`, continuing across
    consecutive requests. A real decoded frame restores full gain.
    """

    def __init__(self, sample_rate: int, frame_samples: int) -> None:
        self._history: PcmArray = np.zeros(0, dtype=np.int16)
        self._frame_samples = frame_samples
        self._fade_samples = max(1, int(sample_rate * _FADE_SECONDS))
        self._gain = 1.0

    def remember(self, pcm: PcmArray) -> None:
        """Record freshly decoded audio (keeps the last ``frame_samples`` samples)."""
        if pcm.shape[0] == 0:
            return
        self._history = pcm[-self._frame_samples :].copy()
        self._gain = 1.0

    def conceal(self, samples: int) -> PcmArray:
        """Return ``samples`` samples of faded repetition (silence once fully faded)."""
        check_conceal(samples)
        if self._history.shape[0] == 0 or self._gain <= 0.0:
            return np.zeros(samples, dtype=np.int16)
        reps = -(-samples // self._history.shape[0])
        repeated = np.tile(self._history, reps)[:samples].astype(np.float64)
        step = 1.0 / self._fade_samples
        ramp = np.clip(self._gain - step * np.arange(samples, dtype=np.float64), 0.0, 1.0)
        self._gain = max(0.0, self._gain - step * samples)
        return np.round(repeated * ramp).astype(np.int16)
