"""Speech to RTP payloads: a speaker's 16 kHz timeline encoded frame by frame for a codec."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from callwatch.media.codecs.registry import codec_for
from callwatch.media.resample import Resampler

SPEECH_RATE = 16000
"""Sample rate of the shipped speech."""


def encode_speech(
    pcm: npt.NDArray[np.int16], encoding: str, clock_rate: int, channels: int | None = None
) -> list[bytes]:
    """``pcm`` (16 kHz mono) as 20 ms payloads of the negotiated codec, silence padded."""
    codec = codec_for(encoding, clock_rate, channels)
    encoder = codec.new_encoder()
    audio = pcm
    if encoder.sample_rate != SPEECH_RATE:
        audio = Resampler(SPEECH_RATE, encoder.sample_rate).process(pcm)
    step = encoder.frame_samples
    frames = -(-len(audio) // step)
    padded = np.zeros(frames * step, dtype=np.int16)
    padded[: len(audio)] = audio
    return [encoder.encode(padded[i * step : (i + 1) * step]) for i in range(frames)]
