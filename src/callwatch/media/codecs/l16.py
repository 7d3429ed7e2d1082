"""L16: uncompressed 16-bit linear PCM in network byte order (RFC 3551 §4.5.11).

Any clock rate is allowed by the RFC; the PCM rate equals the RTP clock. Static payload types
10 and 11 are 44.1 kHz stereo/mono; here it is used with dynamic types at 8, 16 or 48 kHz mono.
"""

from __future__ import annotations

import numpy as np

from callwatch.media.codecs.base import (
    CodecError,
    FadePlc,
    PcmArray,
    check_frame,
    check_payload,
)


class L16Encoder:
    """Big-endian 16-bit PCM packer (:class:`~.base.Encoder`); frames of any length."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.rtp_clock_rate = sample_rate
        self.frame_samples = sample_rate // 50

    def encode(self, pcm: PcmArray) -> bytes:
        """Serialise samples as big-endian int16."""
        return check_frame(pcm, self.frame_samples, exact=False).astype(">i2").tobytes()


class L16Decoder:
    """Big-endian 16-bit PCM unpacker with repeat-and-fade PLC (:class:`~.base.Decoder`)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.rtp_clock_rate = sample_rate
        self.frame_samples = sample_rate // 50
        self._plc = FadePlc(sample_rate, self.frame_samples)

    def decode(self, payload: bytes) -> PcmArray:
        """Unpack a payload; an odd byte count raises :class:`CodecError`."""
        check_payload(payload)
        if len(payload) % 2:
            raise CodecError(f"L16 payload has an odd length ({len(payload)} bytes)")
        pcm = np.frombuffer(payload, dtype=">i2").astype(np.int16)
        self._plc.remember(pcm)
        return pcm

    def conceal(self, samples: int) -> PcmArray:
        """Repeat the last frame with a fade to silence over 60 ms."""
        return self._plc.conceal(samples)


__all__ = ["CodecError", "L16Decoder", "L16Encoder"]
