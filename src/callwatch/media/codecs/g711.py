"""G.711 μ-law (PCMU) and A-law (PCMA) with numpy look-up tables.

The tables are computed once per process from a vectorised transcription of the ITU-T G.191
Software Tool Library reference (``g711.c``: ``ulaw_compress``/``ulaw_expand``,
``alaw_compress``/``alaw_expand``), the reference implementation of ITU-T G.711 (11/88):

* encode: a 65,536-entry table indexed by the int16 sample reinterpreted as uint16;
* decode: a 256-entry int16 table indexed by the code byte;
* μ-law ↔ A-law: 256-byte ``bytes.translate`` tables (decode with one law, encode with the
  other).

The stdlib ``audioop`` module (deprecated, removed in Python 3.13) is only a test oracle: decode
tables agree bit for bit. The μ-law encoders differ on some negative inputs, because G.191 takes
the one's complement of negative samples while ``audioop`` negates them; the test suite pins the
exact count. RFC 3551 §4.5.14 maps PCMU/PCMA to payload types 0 and 8 at an 8000 Hz clock.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from callwatch.media.codecs.base import (
    CodecError,
    FadePlc,
    PcmArray,
    check_frame,
    check_payload,
)

Law = Literal["ulaw", "alaw"]
"""Which G.711 companding law: μ-law (PCMU, North America/Japan) or A-law (PCMA)."""

SAMPLE_RATE = 8000
"""G.711 samples and clocks at 8 kHz (RFC 3551 §4.5.14)."""
FRAME_SAMPLES = 160
"""Samples (and bytes) per 20 ms frame."""

_I32 = npt.NDArray[np.int32]


def _bit_length(values: _I32) -> _I32:
    """Number of significant bits of each non-negative value (0 for 0)."""
    out = np.zeros_like(values)
    work = values.copy()
    while np.any(work):
        nonzero = work > 0
        out += nonzero
        work >>= 1
    return out


def _ulaw_compress(lin: _I32) -> _I32:
    """G.191 ``ulaw_compress`` on int16 values held in int32."""
    absno = np.where(lin < 0, (~lin) >> 2, lin >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = _bit_length(absno >> 6) + 1
    high_nibble = 8 - segno
    low_nibble = 0xF - ((absno >> segno) & 0xF)
    code = (high_nibble << 4) | low_nibble
    result: _I32 = np.where(lin >= 0, code | 0x80, code)
    return result


def _ulaw_expand(code: _I32) -> _I32:
    """G.191 ``ulaw_expand`` on code bytes held in int32."""
    sign = np.where(code < 0x80, -1, 1)
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x7
    segment = exponent + 1
    mantissa = mantissa & 0xF
    step = 4 << segment
    result: _I32 = sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)
    return result


def _alaw_compress(lin: _I32) -> _I32:
    """G.191 ``alaw_compress`` on int16 values held in int32."""
    ix = np.where(lin < 0, (~lin) >> 4, lin >> 4)
    iexp = np.maximum(_bit_length(ix) - 4, 1)
    segmented = (ix >> (iexp - 1)) - 16 + (iexp << 4)
    code = np.where(ix > 15, segmented, ix)
    code = np.where(lin >= 0, code | 0x80, code)
    return code ^ 0x55


def _alaw_expand(code: _I32) -> _I32:
    """G.191 ``alaw_expand`` on code bytes held in int32."""
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0xF
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 0x8
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(code > 127, mant, -mant)


def _all_int16() -> _I32:
    """Every int16 value, ordered by its uint16 bit pattern (the encode-table index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


@cache
def encode_table(law: Law) -> npt.NDArray[np.uint8]:
    """The 65,536-entry encode table of ``law``, indexed by ``sample.view(np.uint16)``."""
    compress = _ulaw_compress if law == "ulaw" else _alaw_compress
    table = compress(_all_int16()).astype(np.uint8)
    table.setflags(write=False)
    return table


@cache
def decode_table(law: Law) -> npt.NDArray[np.int16]:
    """The 256-entry int16 decode table of ``law``."""
    expand = _ulaw_expand if law == "ulaw" else _alaw_expand
    table = expand(np.arange(256, dtype=np.int32)).astype(np.int16)
    table.setflags(write=False)
    return table


@cache
def _translate_table(src: Law, dst: Law) -> bytes:
    """``bytes.translate`` table re-encoding ``src`` codes as ``dst`` codes."""
    linear = decode_table(src).view(np.uint16)
    return encode_table(dst)[linear].tobytes()


def encode(pcm: PcmArray, law: Law) -> bytes:
    """Compand int16 PCM (8 kHz) into G.711 bytes, one byte per sample."""
    return encode_table(law)[pcm.view(np.uint16)].tobytes()


def decode(payload: bytes, law: Law) -> PcmArray:
    """Expand G.711 bytes into int16 PCM; every byte string is valid."""
    return decode_table(law)[np.frombuffer(payload, dtype=np.uint8)]


def ulaw_to_alaw(payload: bytes) -> bytes:
    """Transcode a PCMU payload to PCMA without touching numpy (one ``bytes.translate``)."""
    return payload.translate(_translate_table("ulaw", "alaw"))


def alaw_to_ulaw(payload: bytes) -> bytes:
    """Transcode a PCMA payload to PCMU."""
    return payload.translate(_translate_table("alaw", "ulaw"))


class G711Encoder:
    """Stateless G.711 encoder (PCMU or PCMA) satisfying :class:`~.base.Encoder`.

    Accepts frames of any length (G.711 is sample-based); 160 samples make one 20 ms payload.
    """

    sample_rate = SAMPLE_RATE
    rtp_clock_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, law: Law) -> None:
        self.law: Law = law
        self._table = encode_table(law)

    def encode(self, pcm: PcmArray) -> bytes:
        """Encode int16 PCM; raise :class:`CodecError` if it is not 1-D int16."""
        frame = check_frame(pcm, FRAME_SAMPLES, exact=False)
        return self._table[frame.view(np.uint16)].tobytes()


class G711Decoder:
    """G.711 decoder with repeat-and-fade concealment, satisfying :class:`~.base.Decoder`."""

    sample_rate = SAMPLE_RATE
    rtp_clock_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, law: Law) -> None:
        self.law: Law = law
        self._table = decode_table(law)
        self._plc = FadePlc(SAMPLE_RATE, FRAME_SAMPLES)

    def decode(self, payload: bytes) -> PcmArray:
        """Decode any bytes (each byte is one sample); oversized payloads raise CodecError."""
        check_payload(payload)
        pcm: PcmArray = self._table[np.frombuffer(payload, dtype=np.uint8)]
        self._plc.remember(pcm)
        return pcm

    def conceal(self, samples: int) -> PcmArray:
        """Repeat the last frame with a fade to silence over 60 ms."""
        return self._plc.conceal(samples)


__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "CodecError",
    "G711Decoder",
    "G711Encoder",
    "Law",
    "alaw_to_ulaw",
    "decode",
    "decode_table",
    "encode",
    "encode_table",
    "ulaw_to_alaw",
]
