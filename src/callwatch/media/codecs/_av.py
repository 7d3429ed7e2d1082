"""Thin PyAV helpers shared by the G.722 and Opus wrappers.

Two PyAV behaviours matter here and are handled once, in this module:

* ``CodecContext.decode(Packet(b""))`` is a *flush*: the decoder drains and then refuses every
  later packet with ``EOFError``. Empty payloads therefore never reach PyAV.
* Every PyAV failure derives from ``av.error.FFmpegError`` (some also from ``ValueError`` or
  ``EOFError``); they are re-raised as :class:`~callwatch.media.codecs.base.CodecError`.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.error
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.codec.context import CodecContext
from av.packet import Packet

from callwatch.media.codecs.base import CodecError, PcmArray

_AV_ERRORS = (av.error.FFmpegError, ValueError, EOFError, OSError, MemoryError)
"""What PyAV raises on bad input or a broken context."""


def open_encoder(
    codec: str,
    sample_rate: int,
    *,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> AudioCodecContext:
    """Open a mono s16 encoder context for ``codec`` at ``sample_rate``."""
    try:
        ctx = CodecContext.create(codec, "w")
        if not isinstance(ctx, AudioCodecContext):
            raise CodecError(f"{codec} is not an audio codec")
        ctx.sample_rate = sample_rate
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.time_base = Fraction(1, sample_rate)
        if bit_rate is not None:
            ctx.bit_rate = bit_rate
        if options:
            ctx.options = options
        ctx.open()
    except _AV_ERRORS as exc:
        raise CodecError(f"cannot open {codec} encoder: {exc}") from exc
    return ctx


def open_decoder(codec: str, sample_rate: int, *, channels: int = 1) -> AudioCodecContext:
    """Create an s16 decoder context for ``codec`` (opened lazily by PyAV on first packet)."""
    try:
        ctx = CodecContext.create(codec, "r")
        if not isinstance(ctx, AudioCodecContext):
            raise CodecError(f"{codec} is not an audio codec")
        ctx.sample_rate = sample_rate
        ctx.layout = "mono" if channels == 1 else "stereo"
        ctx.format = "s16"
    except _AV_ERRORS as exc:
        raise CodecError(f"cannot create {codec} decoder: {exc}") from exc
    return ctx


def encode_frame(ctx: AudioCodecContext, pcm: PcmArray, pts: int) -> bytes:
    """Encode exactly one codec frame of mono PCM and return the single packet it yields."""
    try:
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = ctx.sample_rate
        frame.pts = pts
        packets = ctx.encode(frame)
    except _AV_ERRORS as exc:
        raise CodecError(f"{ctx.name} encode failed: {exc}") from exc
    if len(packets) != 1:
        raise CodecError(f"{ctx.name} produced {len(packets)} packets for one frame")
    return bytes(packets[0])


def decode_packet(ctx: AudioCodecContext, payload: bytes, channels: int = 1) -> PcmArray:
    """Decode one non-empty payload to int16 PCM: 1-D when mono, ``(n, 2)`` when stereo."""
    if not payload:
        raise CodecError("empty payload")
    try:
        frames = ctx.decode(Packet(payload))
        arrays = [frame.to_ndarray() for frame in frames]
    except _AV_ERRORS as exc:
        raise CodecError(f"{ctx.name} decode failed: {exc}") from exc
    if not arrays:
        return np.zeros(0 if channels == 1 else (0, 2), dtype=np.int16)
    pcm = np.concatenate(arrays, axis=1) if len(arrays) > 1 else arrays[0]
    if pcm.dtype != np.int16:
        raise CodecError(f"{ctx.name} returned {pcm.dtype} samples, expected int16")
    # packed s16 comes back as shape (1, samples·channels), interleaved
    flat = np.asarray(pcm, dtype=np.int16).reshape(-1)
    return flat if channels == 1 else flat.reshape(-1, channels)
