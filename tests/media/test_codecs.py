"""Codecs: G.711 against audioop, G.722/Opus tone round trips, registry, resampler, fuzzing."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.media.codecs import g711
from callwatch.media.codecs.base import MAX_PAYLOAD_BYTES, CodecError, Decoder, Encoder
from callwatch.media.codecs.g722 import G722Decoder, G722Encoder
from callwatch.media.codecs.opus import OpusDecoder, OpusEncoder
from callwatch.media.codecs.registry import CodecInfo, UnknownCodecError, codec_for, supported
from callwatch.media.resample import Resampler, resample

Pcm = npt.NDArray[np.int16]
ALL_INT16: Pcm = np.arange(65536, dtype=np.uint16).view(np.int16)

# μ-law encoders disagree on 508 of 65,536 inputs: G.191 maps a negative sample x through
# ~x >> 2 (one's complement), audioop through -(x >> 2); the two differ by one 14-bit step,
# which matters only where that step crosses a quantisation boundary.
ULAW_AUDIOOP_DIFFERENCES = 508


def _audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop


def tone(rate: int, seconds: float, freq: float, amplitude: float = 8000.0) -> Pcm:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_frequency(pcm: Pcm, rate: int) -> float:
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return float(np.argmax(spectrum) * rate / x.shape[0])


def best_alignment(ref: Pcm, out: Pcm, max_lag: int) -> tuple[float, float]:
    """(correlation, SNR dB) of ``out`` against ``ref`` at the lag that maximises correlation."""
    r = ref.astype(np.float64)
    best = (-1.0, -np.inf)
    for lag in range(max_lag):
        o = out[lag : lag + r.shape[0]].astype(np.float64)
        if o.shape[0] < r.shape[0]:
            break
        corr = float(np.corrcoef(r, o)[0, 1])
        if corr > best[0]:
            snr = 10 * np.log10(np.sum(r**2) / max(np.sum((r - o) ** 2), 1e-9))
            best = (corr, float(snr))
    return best


def run_codec(encoder: Encoder, decoder: Decoder, pcm: Pcm) -> tuple[Pcm, list[bytes]]:
    n = encoder.frame_samples
    payloads = [encoder.encode(pcm[i : i + n]) for i in range(0, pcm.shape[0] - n + 1, n)]
    return np.concatenate([decoder.decode(p) for p in payloads]), payloads


# ---------------------------------------------------------------------- G.711


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_decode_table_is_bit_exact_with_audioop(law: g711.Law) -> None:
    audioop = _audioop()
    expand = audioop.ulaw2lin if law == "ulaw" else audioop.alaw2lin
    reference = np.frombuffer(expand(bytes(range(256)), 2), dtype="<i2")
    assert np.array_equal(g711.decode_table(law), reference)


def test_g711_alaw_encode_agrees_with_audioop_on_every_input() -> None:
    audioop = _audioop()
    reference = np.frombuffer(audioop.lin2alaw(ALL_INT16.astype("<i2").tobytes(), 2), np.uint8)
    assert np.array_equal(g711.encode_table("alaw"), reference)


def test_g711_ulaw_encode_agreement_with_audioop_is_pinned() -> None:
    audioop = _audioop()
    reference = np.frombuffer(audioop.lin2ulaw(ALL_INT16.astype("<i2").tobytes(), 2), np.uint8)
    ours = g711.encode_table("ulaw")
    differs = np.nonzero(ours != reference)[0]
    assert differs.shape[0] == ULAW_AUDIOOP_DIFFERENCES
    assert np.all(ALL_INT16[differs] < 0)
    # always the neighbouring code, i.e. one quantisation step apart
    assert np.all(np.abs(ours[differs].astype(int) - reference[differs].astype(int)) == 1)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_round_trip_error_is_within_half_a_step(law: g711.Law) -> None:
    x = ALL_INT16.astype(np.int64)
    decoded = g711.decode(g711.encode(ALL_INT16, law), law).astype(np.int64)
    # segment s covers magnitudes [2**(7+s), 2**(8+s)) (μ-law: after adding the bias 132)
    # and is quantised in steps of 2**(s+3) in 16-bit units
    magnitude = np.abs(x) + 132 if law == "ulaw" else np.maximum(np.abs(x), 256)
    segment = np.clip(np.floor(np.log2(magnitude)).astype(np.int64) - 7, 0, 7)
    half_step = 2 ** (segment + 2)
    error = np.abs(decoded - x)
    in_range = np.abs(x) <= (32635 if law == "ulaw" else 32767)  # μ-law clips at 32635
    assert np.all(error[in_range] <= half_step[in_range])
    assert np.max(error) <= (32768 - 32124 if law == "ulaw" else 512)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_codes_survive_decode_then_encode(law: g711.Law) -> None:
    codes = bytes(range(256))
    again = g711.encode(g711.decode(codes, law), law)
    if law == "alaw":
        assert again == codes
    else:  # 0x7F (negative zero) re-encodes as 0xFF (positive zero)
        assert again == codes.replace(b"\x7f", b"\xff")


def test_g711_transcode_tables_match_decode_then_encode() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_to_alaw(codes) == g711.encode(g711.decode(codes, "ulaw"), "alaw")
    assert g711.alaw_to_ulaw(codes) == g711.encode(g711.decode(codes, "alaw"), "ulaw")
    speech = tone(8000, 0.5, 440, 12000)
    via_alaw = g711.alaw_to_ulaw(g711.ulaw_to_alaw(g711.encode(speech, "ulaw")))
    error = g711.decode(via_alaw, "ulaw").astype(int) - speech.astype(int)
    assert np.sqrt(np.mean(error**2)) < 0.02 * 12000


def test_g711_codec_objects_and_plc() -> None:
    info = codec_for("PCMU", 8000)
    encoder, decoder = info.new_encoder(), info.new_decoder()
    pcm = tone(8000, 0.02, 1000)
    payload = encoder.encode(pcm)
    assert len(payload) == 160
    assert np.array_equal(decoder.decode(payload), g711.decode(payload, "ulaw"))
    concealed = [decoder.conceal(160) for _ in range(4)]
    assert np.abs(concealed[0]).max() > 1000
    assert np.abs(concealed[0][-40:]).max() < np.abs(concealed[0][:40]).max()
    assert not concealed[3].any()  # faded to silence after 60 ms
    decoder.decode(payload)
    assert np.abs(decoder.conceal(160)).max() > 1000  # fresh audio restores the gain


# ---------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "clock", "channels", "rate", "frame", "step"),
    [
        ("PCMU", 8000, None, 8000, 160, 160),
        ("pcma", 8000, 1, 8000, 160, 160),
        ("G722", 8000, None, 16000, 320, 160),
        ("opus", 48000, 2, 48000, 960, 960),
        ("OPUS", 48000, None, 48000, 960, 960),
        ("OPUS", 16000, None, 16000, 320, 320),
        ("L16", 16000, 1, 16000, 320, 320),
    ],
)
def test_registry_numbers(
    name: str, clock: int, channels: int | None, rate: int, frame: int, step: int
) -> None:
    info = codec_for(name, clock, channels)
    assert (info.sample_rate, info.frame_samples, info.timestamp_step) == (rate, frame, step)
    assert info.new_encoder().frame_samples == frame
    decoder = info.new_decoder()
    assert (decoder.sample_rate, decoder.rtp_clock_rate) == (rate, clock)


@pytest.mark.parametrize(
    ("name", "clock", "channels"), [("GSM", 8000, None), ("OPUS", 8000, None), ("PCMU", 8000, 2)]
)
def test_registry_unknown_codec_is_a_clear_error(name: str, clock: int, channels: int) -> None:
    with pytest.raises(UnknownCodecError, match=r"unsupported codec .*supported: PCMU/8000"):
        codec_for(name, clock, channels)
    assert "OPUS/48000/2" in supported()


# ---------------------------------------------------------------------- G.722 and Opus


@pytest.mark.parametrize("freq", [440.0, 1000.0])
@pytest.mark.parametrize(
    ("factory", "min_corr", "min_snr"),
    [
        (lambda: codec_for("G722", 8000), 0.999, 30.0),
        (lambda: codec_for("OPUS", 48000, 2), 0.95, 10.0),
        (lambda: codec_for("OPUS", 16000), 0.95, 10.0),
    ],
    ids=["g722", "opus48", "opus16"],
)
def test_tone_survives_encode_decode(
    factory: Callable[[], CodecInfo], min_corr: float, min_snr: float, freq: float
) -> None:
    info = factory()
    pcm = tone(info.sample_rate, 1.0, freq)
    decoded, payloads = run_codec(info.new_encoder(), info.new_decoder(), pcm)
    assert len(payloads) == 50
    assert decoded.shape[0] == pcm.shape[0]
    steady = decoded[info.sample_rate // 2 :]
    assert peak_frequency(steady, info.sample_rate) == pytest.approx(freq, abs=3.0)
    frame = info.frame_samples
    corr, snr = best_alignment(pcm[10 * frame : 40 * frame], decoded[10 * frame :], 2 * frame)
    assert corr > min_corr
    assert snr > min_snr


def test_g722_frame_is_160_bytes_and_timestamp_step_is_160() -> None:
    encoder = G722Encoder()
    assert len(encoder.encode(tone(16000, 0.02, 440))) == 160
    assert codec_for("G722", 8000).timestamp_step == 160
    with pytest.raises(CodecError, match="320 samples"):
        encoder.encode(tone(16000, 0.01, 440))


def test_opus_16k_decoder_returns_16k_audio_not_48k() -> None:
    encoder, decoder = OpusEncoder(16000), OpusDecoder(16000)
    out = decoder.decode(encoder.encode(tone(16000, 0.02, 440)))
    assert out.shape == (320,)


def test_opus_stereo_output_and_plc() -> None:
    encoder, decoder = OpusEncoder(48000), OpusDecoder(48000, channels=2)
    assert decoder.conceal(960).shape == (960, 2)  # silence before any packet
    pcm = tone(48000, 0.2, 440)
    for i in range(0, pcm.shape[0], 960):
        out = decoder.decode(encoder.encode(pcm[i : i + 960]))
    assert out.shape == (960, 2)
    plc = decoder.conceal(960)
    assert plc.shape == (960, 2)
    assert np.abs(plc).max() > 100  # libopus PLC continues the tone


def test_opus_plc_at_16k_has_requested_length() -> None:
    encoder, decoder = OpusEncoder(16000), OpusDecoder(16000)
    pcm = tone(16000, 0.2, 440)
    for i in range(0, pcm.shape[0], 320):
        decoder.decode(encoder.encode(pcm[i : i + 320]))
    assert decoder.conceal(320).shape == (320,)
    assert decoder.conceal(500).shape == (500,)


@pytest.mark.parametrize(
    "spec", ["PCMU/8000", "PCMA/8000", "G722/8000", "OPUS/48000/2", "OPUS/16000", "L16/8000"]
)
@settings(max_examples=150, deadline=None)
@given(payloads=st.lists(st.binary(max_size=1600), min_size=1, max_size=6))
def test_any_bytes_decode_or_raise_codec_error(spec: str, payloads: list[bytes]) -> None:
    name, clock, *channels = spec.split("/")
    decoder = codec_for(name, int(clock), int(channels[0]) if channels else None).new_decoder()
    for payload in payloads:
        try:
            out = decoder.decode(payload)
        except CodecError:
            continue
        assert out.dtype == np.int16
    assert decoder.conceal(decoder.frame_samples).shape[0] == decoder.frame_samples


def test_oversized_payload_and_bad_frames_raise_codec_error() -> None:
    with pytest.raises(CodecError):
        G722Decoder().decode(bytes(MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(CodecError, match="int16"):
        OpusEncoder().encode(np.zeros(960, dtype=np.float32))  # type: ignore[arg-type,unused-ignore]
    with pytest.raises(CodecError, match="960 samples"):
        OpusEncoder().encode(np.zeros(959, dtype=np.int16))
    with pytest.raises(CodecError):
        codec_for("L16", 8000).new_decoder().decode(b"\x00")
    with pytest.raises(CodecError):
        OpusDecoder(16000, channels=2)


# ---------------------------------------------------------------------- resampler


@pytest.mark.parametrize(
    ("src", "dst"),
    [(8000, 16000), (16000, 8000), (48000, 16000), (16000, 48000), (8000, 48000), (48000, 8000)],
)
@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_resampler_keeps_frequency_and_amplitude(src: int, dst: int, freq: float) -> None:
    pcm = tone(src, 1.0, freq, 10000)
    frame = src // 50
    converter = Resampler(src, dst)
    out = np.concatenate([converter.process(pcm[i : i + frame]) for i in range(0, src, frame)])
    assert out.shape[0] == dst
    steady = out[dst // 4 :].astype(np.float64)
    assert peak_frequency(steady.astype(np.int16), dst) == pytest.approx(freq, abs=2.0)
    rms = np.sqrt(np.mean(steady**2))
    assert rms == pytest.approx(10000 / np.sqrt(2), rel=0.005)


def test_resampler_framing_does_not_change_the_output() -> None:
    pcm = tone(48000, 0.5, 1000, 20000)
    whole = resample(pcm, 48000, 16000)
    converter = Resampler(48000, 16000)
    sizes = [7, 960, 1, 333, 2000, 959]
    parts: list[Pcm] = []
    start = 0
    while start < pcm.shape[0]:
        size = sizes[len(parts) % len(sizes)]
        parts.append(converter.process(pcm[start : start + size]))
        start += size
    assert np.array_equal(np.concatenate(parts), whole)


def test_resampler_rejects_aliases_and_bad_ratios() -> None:
    alias = resample(tone(16000, 1.0, 6000, 10000), 16000, 8000)[400:]
    assert np.sqrt(np.mean(alias.astype(np.float64) ** 2)) < 10  # > 60 dB down
    with pytest.raises(ValueError, match="not an integer"):
        Resampler(44100, 48000)
    assert np.array_equal(Resampler(8000, 8000).process(ALL_INT16[:10]), ALL_INT16[:10])
