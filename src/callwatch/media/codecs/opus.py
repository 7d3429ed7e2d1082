"""Opus through PyAV's ``libopus`` encoder and decoder, in RingCentral's two RTP flavours.

* ``OPUS/48000/2``, dynamic PT 111 (RFC 7587): the RTP clock is always 48 kHz whatever the
  audio bandwidth, so a 20 ms packet advances the timestamp by 960. ``/2`` only says a receiver
  must accept stereo; we send mono and decode to mono (libopus downmixes) unless asked for two
  channels.
* ``OPUS/16000``, dynamic PT 109: RingCentral's softphone uses a non-standard 16 kHz RTP clock
  (timestamp step 320 per 20 ms) with 16 kHz audio.

The bitstream is the same Opus either way; only the clock and the PCM rate differ. FFmpeg's
libopus decoder always outputs 48 kHz (setting the context's rate is ignored, STACK §2), so the
decoder converts to the requested rate with a stateful :class:`~callwatch.media.resample.Resampler`.

Loss concealment uses libopus's own PLC: a payload consisting of a lone TOC byte (frame count
code 0, no frame data) makes ``opus_decode`` conceal one frame of the TOC's duration
(RFC 6716 §3.1 and libopus ``opus_decode_frame``: "Payloads of 1 (2 including ToC) or 0
trigger the PLC/DTX"). The TOC of the last good packet is reused so the duration matches.
"""

from __future__ import annotations

import numpy as np

from callwatch.media.codecs import _av
from callwatch.media.codecs.base import (
    MAX_CONCEAL_SAMPLES,
    CodecError,
    PcmArray,
    check_conceal,
    check_frame,
    check_payload,
)
from callwatch.media.resample import Resampler

DECODER_RATE = 48000
"""Rate FFmpeg's libopus decoder produces regardless of configuration."""
ENCODER_RATES = (8000, 12000, 16000, 24000, 48000)
"""Input rates libopus accepts (RFC 6716 §2)."""
DECODE_RATES = (8000, 16000, 24000, 48000)
"""Output rates the decoder offers (integer fractions of 48 kHz)."""
DEFAULT_BIT_RATES = {48000: 32000, 24000: 28000, 16000: 24000, 12000: 20000, 8000: 16000}
"""Encoder bit rates per input rate: ≈ the measured STACK §2 settings."""
_TOC_CODE_MASK = 0xFC
"""Clears the two frame-count bits of a TOC byte (RFC 6716 §3.1) → code 0, one frame."""


class OpusEncoder:
    """Mono Opus encoder for one 20 ms frame per call (:class:`~.base.Encoder`).

    Args:
        sample_rate: PCM input rate; also the RTP clock unless ``rtp_clock_rate`` is given.
        rtp_clock_rate: RTP clock; 48000 for RFC 7587, 16000 for RingCentral's PT 109.
        bit_rate: target bits per second (defaults per :data:`DEFAULT_BIT_RATES`).
        application: libopus application mode (``voip``, ``audio`` or ``lowdelay``).
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        *,
        rtp_clock_rate: int | None = None,
        bit_rate: int | None = None,
        application: str = "voip",
    ) -> None:
        if sample_rate not in ENCODER_RATES:
            raise CodecError(f"Opus cannot encode at {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.rtp_clock_rate = rtp_clock_rate or sample_rate
        self.frame_samples = sample_rate // 50
        options = {"application": application, "frame_duration": "20"}
        rate = bit_rate or DEFAULT_BIT_RATES[sample_rate]
        self._ctx = _av.open_encoder("libopus", sample_rate, bit_rate=rate, options=options)
        self._pts = 0

    def encode(self, pcm: PcmArray) -> bytes:
        """Encode exactly one 20 ms frame; other lengths raise :class:`CodecError`."""
        frame = check_frame(pcm, self.frame_samples, exact=True)
        payload = _av.encode_frame(self._ctx, frame, self._pts)
        self._pts += self.frame_samples
        return payload


class OpusDecoder:
    """Opus decoder to int16 at ``sample_rate`` with libopus PLC (:class:`~.base.Decoder`).

    Args:
        sample_rate: output PCM rate (one of :data:`DECODE_RATES`).
        rtp_clock_rate: RTP clock of the stream (defaults to ``sample_rate``).
        channels: 1 for mono (libopus downmixes stereo streams), 2 for ``(n, 2)`` output at
            48 kHz.
    """

    def __init__(
        self, sample_rate: int = 48000, *, rtp_clock_rate: int | None = None, channels: int = 1
    ) -> None:
        if sample_rate not in DECODE_RATES:
            raise CodecError(f"Opus decoder cannot output {sample_rate} Hz")
        if channels not in (1, 2) or (channels == 2 and sample_rate != DECODER_RATE):
            raise CodecError("stereo Opus output is available at 48000 Hz only")
        self.sample_rate = sample_rate
        self.rtp_clock_rate = rtp_clock_rate or sample_rate
        self.frame_samples = sample_rate // 50
        self.channels = channels
        self._ctx = _av.open_decoder("libopus", DECODER_RATE, channels=channels)
        self._resampler = (
            Resampler(DECODER_RATE, sample_rate) if sample_rate != DECODER_RATE else None
        )
        self._plc_toc: int | None = None

    def decode(self, payload: bytes) -> PcmArray:
        """Decode one Opus packet; empty gives no samples, bad packets raise CodecError."""
        check_payload(payload)
        if not payload:
            return self._empty()
        pcm = self._convert(_av.decode_packet(self._ctx, payload, self.channels))
        self._plc_toc = payload[0] & _TOC_CODE_MASK
        return pcm

    def conceal(self, samples: int) -> PcmArray:
        """Run libopus PLC until ``samples`` output samples exist (silence before any packet)."""
        check_conceal(samples)
        if self._plc_toc is None or samples == 0:
            shape = samples if self.channels == 1 else (samples, 2)
            return np.zeros(shape, dtype=np.int16)
        parts: list[PcmArray] = []
        have = 0
        toc = bytes((self._plc_toc,))
        while have < samples:
            part = self._convert(_av.decode_packet(self._ctx, toc, self.channels))
            if part.shape[0] == 0 or have > MAX_CONCEAL_SAMPLES:
                raise CodecError("Opus PLC produced no audio")
            parts.append(part)
            have += part.shape[0]
        return np.concatenate(parts)[:samples]

    def _convert(self, pcm: PcmArray) -> PcmArray:
        return pcm if self._resampler is None else self._resampler.process(pcm)

    def _empty(self) -> PcmArray:
        return np.zeros(0 if self.channels == 1 else (0, 2), dtype=np.int16)


__all__ = ["DECODE_RATES", "ENCODER_RATES", "CodecError", "OpusDecoder", "OpusEncoder"]
