"""Codec and media-core costs per 20 ms frame, and real-time streams one core could sustain.

For each registered codec: µs to encode and to decode one frame of a 440 Hz + 1 kHz tone mix
(best of several rounds, to damp noise from other processes), and ``0.02 s / decode time`` =
concurrent real-time decode streams per core. Also the helpers on the same path: G.711
transcoding, resampling, mixing, restamping and the jitter buffer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from bench.common import Row
from callwatch.media.codecs import g711
from callwatch.media.codecs.registry import codec_for
from callwatch.media.jitter import JitterBuffer, JitterConfig
from callwatch.media.mixer import mix
from callwatch.media.resample import Resampler
from callwatch.media.restamp import Restamper

FRAME_SECONDS = 0.02
ROUNDS = 5
CODECS = [("PCMU", 8000, None), ("PCMA", 8000, None), ("G722", 8000, None),
          ("OPUS", 48000, 2), ("OPUS", 16000, None), ("L16", 16000, None)]  # fmt: skip


def _signal(rate: int, seconds: float = 1.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    wave = 6000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 1000 * t)
    pcm: npt.NDArray[np.int16] = np.round(wave).astype(np.int16)
    return pcm


def _best_us(step: Callable[[int], object], iterations: int) -> float:
    """Best mean µs per call of ``step(i)`` over :data:`ROUNDS` rounds."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(iterations):
            step(i)
        best = min(best, (time.perf_counter() - start) / iterations)
    return best * 1e6


def _codec_rows(name: str, clock: int, channels: int | None) -> list[Row]:
    info = codec_for(name, clock, channels)
    label = f"{name}/{clock}" + (f"/{channels}" if channels else "")
    n = info.frame_samples
    pcm = _signal(info.sample_rate)
    frames = [pcm[i : i + n] for i in range(0, pcm.shape[0] - n + 1, n)]
    encoder, decoder = info.new_encoder(), info.new_decoder()
    payloads = [encoder.encode(f) for f in frames]
    iterations = 300 if name == "OPUS" else 2000
    enc_us = _best_us(lambda i: encoder.encode(frames[i % len(frames)]), iterations)
    dec_us = _best_us(lambda i: decoder.decode(payloads[i % len(payloads)]), iterations)
    # conceal right after a good frame (a faded-out PLC would only measure np.zeros)
    both_us = _best_us(
        lambda i: (decoder.decode(payloads[i % len(payloads)]), decoder.conceal(n)), iterations
    )
    plc_us = max(0.0, both_us - dec_us)
    size = sum(len(p) for p in payloads) / len(payloads)
    return [
        Row(f"{label} encode", enc_us, "µs/frame", f"{n} samples → {size:.0f} B"),
        Row(f"{label} decode", dec_us, "µs/frame"),
        Row(f"{label} conceal (PLC)", plc_us, "µs/frame", "first lost frame after a good one"),
        Row(f"{label} decode streams", 1e6 * FRAME_SECONDS / dec_us, "streams/core",
            "real-time 20 ms decodes one core sustains"),
        Row(f"{label} encode streams", 1e6 * FRAME_SECONDS / enc_us, "streams/core"),
    ]  # fmt: skip


def _helper_rows() -> list[Row]:
    ulaw = g711.encode(_signal(8000)[:160], "ulaw")
    pcm48 = _signal(48000)[:960]
    pcm8 = _signal(8000)[:160]
    down, up = Resampler(48000, 16000), Resampler(8000, 16000)
    parties = [_signal(8000)[:160], _signal(8000)[160:320]]
    restamper = Restamper(0x1234)
    packet = bytearray(12 + 160)
    packet[0] = 0x80
    jb = JitterBuffer(JitterConfig(clock_rate=8000))

    def jitter_step(i: int) -> None:
        jb.push(i & 0xFFFF, (160 * i) & 0xFFFFFFFF, ulaw, i * FRAME_SECONDS, ssrc=1)
        jb.pop(i * FRAME_SECONDS)

    return [
        Row("μ-law→A-law translate", _best_us(lambda i: g711.ulaw_to_alaw(ulaw), 20000),
            "µs/frame", "bytes.translate, 160 B"),
        Row("resample 48k→16k", _best_us(lambda i: down.process(pcm48), 2000), "µs/frame"),
        Row("resample 8k→16k", _best_us(lambda i: up.process(pcm8), 2000), "µs/frame"),
        Row("mix 2 parties (8 kHz)", _best_us(lambda i: mix(parties), 5000), "µs/frame"),
        Row("restamp rewrite", _best_us(lambda i: restamper.rewrite(packet, i * 0.02), 50000),
            "µs/packet", "struct unpack + pack_into in place"),
        Row("jitter push+pop", _best_us(jitter_step, 5000), "µs/packet"),
    ]  # fmt: skip


def run() -> list[Row]:
    """Measure every codec and media helper; returns the table rows."""
    rows: list[Row] = []
    for name, clock, channels in CODECS:
        rows.extend(_codec_rows(name, clock, channels))
    rows.extend(_helper_rows())
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.figure:32} {row.value:12,.2f} {row.unit:14} {row.note}")
