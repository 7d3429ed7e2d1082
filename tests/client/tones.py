"""Known audio for the client media tests: tones, their RTP payloads, paced senders with loss
and reordering, and the measurements that tell one party's tone from another's."""

from __future__ import annotations

import asyncio
import random
import wave
from collections.abc import AsyncIterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callwatch.client import RtpSession
from callwatch.client.streams import AudioFrame
from callwatch.media.codecs.registry import codec_for
from callwatch.media.rtp import RtpHeader, RtpPacket
from callwatch.media.wav import HEADER_SIZE

Pcm = npt.NDArray[np.int16]
PTIME = 0.02
WAIT = 5.0


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000) -> Pcm:
    """A sine of ``freq`` Hz."""
    t = np.arange(round(seconds * rate)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def encode(pcm: Pcm, encoding: str, clock_rate: int) -> list[bytes]:
    """``pcm`` (at the codec's PCM rate) as one payload per 20 ms."""
    info = codec_for(encoding, clock_rate)
    encoder = info.new_encoder()
    n = info.frame_samples
    return [encoder.encode(pcm[i : i + n]) for i in range(0, len(pcm) - n + 1, n)]


def tone_payloads(freq: float, seconds: float, encoding: str, clock_rate: int) -> list[bytes]:
    """A tone encoded with ``encoding/clock_rate`` (at that codec's PCM rate)."""
    rate = codec_for(encoding, clock_rate).sample_rate
    return encode(tone(freq, seconds, rate), encoding, clock_rate)


def peak_frequency(pcm: Pcm, rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of ``pcm`` (Hann-windowed)."""
    samples = pcm.astype(np.float64) * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(samples))
    spectrum[:3] = 0  # ignore DC
    return float(np.argmax(spectrum) * rate / len(pcm))


def tone_level(pcm: Pcm, freq: float, rate: int) -> float:
    """Normalised correlation (0 … 1) of ``pcm`` with a tone of ``freq`` at its best phase."""
    if not len(pcm) or not np.any(pcm):
        return 0.0
    t = np.arange(len(pcm)) / rate
    x = pcm.astype(np.float64)
    i, q = x @ np.sin(2 * np.pi * freq * t), x @ np.cos(2 * np.pi * freq * t)
    return float(np.hypot(i, q) / (np.linalg.norm(x) * np.sqrt(len(pcm) / 2)))


def voiced(frames: list[AudioFrame]) -> Pcm:
    """The samples of frames that carry received (not concealed) audio, in order."""
    parts = [f.pcm for f in frames if not f.concealed]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


async def send_paced(
    session: RtpSession,
    payloads: list[bytes],
    *,
    payload_type: int,
    clock_step: int,
    loss: float = 0.0,
    reorder: float = 0.0,
    seed: int = 1,
    ssrc: int = 0x1234ABCD,
) -> tuple[int, int]:
    """Send ``payloads`` as plain RTP, one per 20 ms, dropping a ``loss`` share of them and
    swapping a ``reorder`` share of neighbour pairs (chosen by ``seed``). Returns (packets
    sent, pairs swapped)."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    start = loop.time()
    seq0, ts0 = rng.randrange(1 << 16), rng.randrange(1 << 32)
    count = len(payloads)
    lost = set(rng.sample(range(1, count), round(loss * count)))
    pairs = rng.sample(range(1, count - 1, 2), round(reorder * count))  # disjoint neighbours
    order = list(range(count))
    for i in pairs:
        order[i], order[i + 1] = order[i + 1], order[i]
    swapped, sent = len(pairs), 0
    for position, index in enumerate(order):
        await asyncio.sleep(max(0.0, start + position * PTIME - loop.time()))
        if index in lost:
            continue
        header = RtpHeader(
            payload_type,
            (seq0 + index) & 0xFFFF,
            (ts0 + index * clock_step) & 0xFFFFFFFF,
            ssrc,
            marker=index == 0,
        )
        session.send_raw(RtpPacket(header, payloads[index]).serialize())
        sent += 1
    return sent, swapped


async def take(source: AsyncIterable[AudioFrame], count: int) -> list[AudioFrame]:
    """The next ``count`` frames of ``source`` (fails after a generous timeout)."""
    frames: list[AudioFrame] = []

    async def read() -> None:
        async for frame in source:
            frames.append(frame)
            if len(frames) == count:
                return

    await asyncio.wait_for(read(), WAIT + count * PTIME)
    return frames


def wav_samples(data: bytes, channels: int) -> Pcm:
    """The samples a WAV's header says it holds (what a player would play)."""
    declared = int.from_bytes(data[40:44], "little")
    body = data[HEADER_SIZE : HEADER_SIZE + declared]
    return np.frombuffer(body, dtype="<i2").astype(np.int16).reshape(-1, channels)


def read_wav(path: Path) -> tuple[wave._wave_params, Pcm]:
    """A WAV file as the standard library reads it: parameters and (frames, channels) PCM."""
    with wave.open(str(path)) as wav:
        params = wav.getparams()
        data = wav.readframes(params.nframes)
    return params, np.frombuffer(data, dtype="<i2").astype(np.int16).reshape(-1, params.nchannels)
