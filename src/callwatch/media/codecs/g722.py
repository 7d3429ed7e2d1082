"""G.722 wideband ADPCM through PyAV's ``g722`` codec.

G.722 samples audio at 16 kHz and packs two samples per byte (64 kbit/s), but RFC 3551 §4.5.2
fixes its RTP clock at 8000 Hz for historical reasons: a 20 ms packet carries 320 samples in
160 bytes and advances the timestamp by 160. Static payload type 9.
"""

from __future__ import annotations

import numpy as np

from callwatch.media.codecs import _av
from callwatch.media.codecs.base import (
    CodecError,
    FadePlc,
    PcmArray,
    check_frame,
    check_payload,
)

SAMPLE_RATE = 16000
"""PCM rate of G.722 audio."""
RTP_CLOCK_RATE = 8000
"""RTP timestamp clock for G.722 (RFC 3551 §4.5.2 erratum kept for compatibility)."""
FRAME_SAMPLES = 320
"""PCM samples per 20 ms frame (160 payload bytes)."""


class G722Encoder:
    """G.722 encoder: 320 samples of 16 kHz PCM in, 160 bytes out (:class:`~.base.Encoder`)."""

    sample_rate = SAMPLE_RATE
    rtp_clock_rate = RTP_CLOCK_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self) -> None:
        self._ctx = _av.open_encoder("g722", SAMPLE_RATE)
        self._pts = 0

    def encode(self, pcm: PcmArray) -> bytes:
        """Encode exactly one 20 ms frame; other lengths raise :class:`CodecError`."""
        frame = check_frame(pcm, FRAME_SAMPLES, exact=True)
        payload = _av.encode_frame(self._ctx, frame, self._pts)
        self._pts += FRAME_SAMPLES
        return payload


class G722Decoder:
    """G.722 decoder (any payload length, two samples per byte) with repeat-and-fade PLC."""

    sample_rate = SAMPLE_RATE
    rtp_clock_rate = RTP_CLOCK_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self) -> None:
        self._ctx = _av.open_decoder("g722", SAMPLE_RATE)
        self._plc = FadePlc(SAMPLE_RATE, FRAME_SAMPLES)

    def decode(self, payload: bytes) -> PcmArray:
        """Decode a payload; empty gives no samples, library failures raise CodecError."""
        check_payload(payload)
        if not payload:
            return np.zeros(0, dtype=np.int16)
        pcm = _av.decode_packet(self._ctx, payload)
        self._plc.remember(pcm)
        return pcm

    def conceal(self, samples: int) -> PcmArray:
        """Repeat the last frame with a fade to silence over 60 ms."""
        return self._plc.conceal(samples)


__all__ = [
    "FRAME_SAMPLES",
    "RTP_CLOCK_RATE",
    "SAMPLE_RATE",
    "CodecError",
    "G722Decoder",
    "G722Encoder",
]
