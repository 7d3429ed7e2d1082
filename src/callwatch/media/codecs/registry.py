"""Map an SDP ``a=rtpmap`` (encoding name / clock rate / channels) to a codec implementation.

``codec_for("G722", 8000, None)`` returns a :class:`CodecInfo` whose factories build a fresh
encoder or decoder per stream and whose numbers give the PCM rate, the RTP clock and the
20 ms frame in both units. Names are matched case-insensitively (RFC 4566 §6: encoding names
are case-insensitive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from callwatch.media.codecs.base import Decoder, Encoder, UnknownCodecError
from callwatch.media.codecs.g711 import G711Decoder, G711Encoder
from callwatch.media.codecs.l16 import L16Decoder, L16Encoder

FRAME_SECONDS = 0.02
"""Packetisation interval assumed for every codec here (ptime 20)."""


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """Everything a stream needs to know about its codec."""

    encoding_name: str
    """Canonical SDP encoding name, upper case (``PCMU``, ``G722``, ``OPUS``, ``L16``)."""
    clock_rate: int
    """RTP timestamp clock rate from the rtpmap."""
    channels: int
    """Channel count from the rtpmap (2 for ``OPUS/48000/2`` even though audio is mono)."""
    sample_rate: int
    """PCM rate the encoder takes and the decoder returns."""
    static_payload_type: int | None
    """RFC 3551 static payload type, or None for dynamic ones."""
    new_encoder: Callable[[], Encoder]
    """Builds a fresh encoder (one per outgoing stream)."""
    new_decoder: Callable[[], Decoder]
    """Builds a fresh decoder (one per incoming stream)."""

    @property
    def frame_samples(self) -> int:
        """PCM samples in one 20 ms frame."""
        return round(self.sample_rate * FRAME_SECONDS)

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp increment per 20 ms frame."""
        return round(self.clock_rate * FRAME_SECONDS)


def _entry(
    name: str,
    clock_rate: int,
    channels: int,
    sample_rate: int,
    static_pt: int | None,
    encoder: Callable[[], Encoder],
    decoder: Callable[[], Decoder],
) -> tuple[tuple[str, int], CodecInfo]:
    info = CodecInfo(name, clock_rate, channels, sample_rate, static_pt, encoder, decoder)
    return (name, clock_rate), info


# PyAV-backed codecs are imported when a stream first needs one, so G.711 and L16 work (and
# this module imports) without the optional PyAV dependency.


def _g722_encoder() -> Encoder:
    from callwatch.media.codecs.g722 import G722Encoder

    return G722Encoder()


def _g722_decoder() -> Decoder:
    from callwatch.media.codecs.g722 import G722Decoder

    return G722Decoder()


def _opus_encoder(rate: int) -> Encoder:
    from callwatch.media.codecs.opus import OpusEncoder

    return OpusEncoder(rate)


def _opus_decoder(rate: int) -> Decoder:
    from callwatch.media.codecs.opus import OpusDecoder

    return OpusDecoder(rate)


# name, RTP clock, rtpmap channels, PCM rate, static PT, encoder factory, decoder factory
_CODECS: dict[tuple[str, int], CodecInfo] = dict([
    _entry("PCMU", 8000, 1, 8000, 0, partial(G711Encoder, "ulaw"), partial(G711Decoder, "ulaw")),
    _entry("PCMA", 8000, 1, 8000, 8, partial(G711Encoder, "alaw"), partial(G711Decoder, "alaw")),
    _entry("G722", 8000, 1, 16000, 9, _g722_encoder, _g722_decoder),
    _entry("OPUS", 48000, 2, 48000, None, partial(_opus_encoder, 48000),
           partial(_opus_decoder, 48000)),
    _entry("OPUS", 16000, 1, 16000, None, partial(_opus_encoder, 16000),
           partial(_opus_decoder, 16000)),
    _entry("L16", 8000, 1, 8000, None, partial(L16Encoder, 8000), partial(L16Decoder, 8000)),
    _entry("L16", 16000, 1, 16000, None, partial(L16Encoder, 16000), partial(L16Decoder, 16000)),
    _entry("L16", 48000, 1, 48000, None, partial(L16Encoder, 48000), partial(L16Decoder, 48000)),
])  # fmt: skip


def supported() -> list[str]:
    """The rtpmap strings this registry knows, e.g. ``["PCMU/8000", "OPUS/48000/2", …]``."""
    return [
        f"{i.encoding_name}/{i.clock_rate}" + (f"/{i.channels}" if i.channels != 1 else "")
        for i in _CODECS.values()
    ]


def codec_for(encoding_name: str, clock_rate: int, channels: int | None = None) -> CodecInfo:
    """Look up the codec of an SDP rtpmap entry.

    Args:
        encoding_name: SDP encoding name, any case (``opus``, ``PCMU``).
        clock_rate: RTP clock rate from the rtpmap.
        channels: channel count from the rtpmap, or None when the rtpmap omits it (then the
            registered count is assumed: 2 for ``OPUS/48000``, 1 otherwise).

    Returns:
        The registered :class:`CodecInfo`.

    Raises:
        UnknownCodecError: no codec matches; the message lists what is supported.
    """
    info = _CODECS.get((encoding_name.upper(), clock_rate))
    if info is None or (channels is not None and channels != info.channels):
        wanted = f"{encoding_name}/{clock_rate}" + (f"/{channels}" if channels else "")
        raise UnknownCodecError(f"unsupported codec {wanted}; supported: {', '.join(supported())}")
    return info


__all__ = ["FRAME_SECONDS", "CodecInfo", "UnknownCodecError", "codec_for", "supported"]
