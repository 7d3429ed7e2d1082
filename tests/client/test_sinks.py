"""Sinks: frames of two parties lined up by timestamp in a stereo WAV, one WAV per party, the
seed's raw file, a speaker pipe — and a recorder killed with SIGKILL leaves a playable WAV."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from callwatch.client import speaker
from callwatch.client.alignment import TickAligner
from callwatch.client.sinks import (
    RAW_SAMPLE_RATE,
    PerPartyWavRecorder,
    RawFileSink,
    SpeakerSink,
    StereoWavRecorder,
    pump,
)
from callwatch.client.streams import AudioFrame
from tests.client.tones import (
    PTIME,
    Pcm,
    peak_frequency,
    read_wav,
    tone,
    tone_level,
    wav_samples,
)

CUSTOMER, AGENT = "p-customer", "p-agent"


def frames_of(party: str, pcm: Pcm, rate: int, *, first_tick: int = 0) -> list[AudioFrame]:
    n = rate // 50
    return [
        AudioFrame(party, pcm[i * n : (i + 1) * n], rate, (first_tick + i) * PTIME, i)
        for i in range(len(pcm) // n)
    ]


def interleaved(*streams: list[AudioFrame], lag: int = 0) -> list[AudioFrame]:
    """Frames of several parties as concurrent readers deliver them: the second ``lag``
    frames behind the first."""
    first, *others = streams
    out: list[AudioFrame] = []
    for i in range(len(first) + lag):
        if i < len(first):
            out.append(first[i])
        out += [s[i - lag] for s in others if 0 <= i - lag < len(s)]
    return out


def test_stereo_recorder_puts_customer_left_agent_right_aligned(tmp_path: Path) -> None:
    left_src, right_src = tone(440, 1.0, 16000), tone(1000, 1.0, 16000, amplitude=6000)
    customer = frames_of(CUSTOMER, left_src, 16000)
    agent = frames_of(AGENT, right_src, 16000)
    del agent[20:25]  # five agent frames never arrive (a slow reader dropped them)
    recorder = StereoWavRecorder(tmp_path / "call.wav", left_party=CUSTOMER, right_party=AGENT)
    for frame in interleaved(customer, agent, lag=3):
        recorder.write(frame)
    recorder.write(AudioFrame("p-other", left_src[:320], 16000, 0.2, 10))  # ignored
    recorder.close()

    params, pcm = read_wav(tmp_path / "call.wav")
    assert (params.nchannels, params.framerate, params.sampwidth) == (2, 16000, 2)
    assert params.nframes == 50 * 320 == len(left_src)  # no gap, no extra frame
    left, right = pcm[:, 0], pcm[:, 1]
    assert np.array_equal(left, left_src)  # bit-exact: nothing shifted
    assert not np.any(right[20 * 320 : 25 * 320])  # the missing frames became silence …
    assert np.array_equal(right[25 * 320 :], right_src[25 * 320 :])  # … and nothing shifted
    assert tone_level(left, 440, 16000) > 0.99 and tone_level(left, 1000, 16000) < 0.05
    assert tone_level(right, 1000, 16000) > 0.9 and tone_level(right, 440, 16000) < 0.05
    assert recorder.silence_filled == 5 and recorder.late_frames == 0
    assert recorder.first_timestamp == 0.0


def test_stereo_recorder_resamples_and_drops_late_frames(tmp_path: Path) -> None:
    recorder = StereoWavRecorder(tmp_path / "r.wav", CUSTOMER, AGENT, window=5)
    customer = frames_of(CUSTOMER, tone(440, 0.4, 8000), 8000)  # G.711-rate frames
    for frame in customer:
        recorder.write(frame)  # the agent never speaks: written after the window
    recorder.write(frames_of(AGENT, tone(1000, 0.02, 16000), 16000)[0])  # tick 0: too late
    recorder.close()
    assert recorder.late_frames == 1
    params, pcm = read_wav(tmp_path / "r.wav")
    assert params.nframes == 20 * 320
    assert peak_frequency(pcm[:, 0], 16000) == pytest.approx(440, abs=10)
    assert not np.any(pcm[:, 1])


def test_aligner_waits_one_tick_for_parties_heard_recently() -> None:
    aligner = TickAligner()
    one = np.ones(4, dtype=np.int16)
    assert aligner.add("a", 0, one) == []  # b may still come for tick 0
    assert aligner.add("b", 0, one) == []  # and c: one tick of patience
    [zero] = aligner.add("a", 1, one)
    assert zero.tick == 0 and zero.frames.keys() == {"a", "b"}
    assert aligner.add("a", 2, one) == []  # b is behind: tick 1 waits for it
    assert [t.tick for t in aligner.add("b", 1, one)] == [1]
    assert [t.tick for t in aligner.flush()] == [2]
    assert aligner.add("b", 0, one) == [] and aligner.late == 1
    assert [t.tick for t in aligner.add("b", 40, one)] == list(range(3, 16))  # overdue: gaps


def test_per_party_files_share_one_timeline(tmp_path: Path) -> None:
    recorder = PerPartyWavRecorder(tmp_path / "parties")
    customer = frames_of(CUSTOMER, tone(440, 0.5, 16000), 16000)
    agent = frames_of("agent/ext 101", tone(1000, 0.3, 16000), 16000, first_tick=10)
    del customer[5]
    for frame in interleaved(customer, agent):
        recorder.write(frame)
    recorder.close()

    assert set(recorder.paths) == {CUSTOMER, "agent/ext 101"}
    agent_path = recorder.path_for("agent/ext 101")
    assert agent_path.name == "agent_ext_101.wav"
    _, left = read_wav(recorder.paths[CUSTOMER])
    _, right = read_wav(agent_path)
    assert len(left) == 25 * 320 and len(right) == 25 * 320  # 10 silent ticks + 15 spoken
    assert not np.any(left[5 * 320 : 6 * 320]) and np.any(left[6 * 320 : 7 * 320])
    assert not np.any(right[: 10 * 320])
    assert peak_frequency(right[10 * 320 :, 0], 16000) == pytest.approx(1000, abs=10)


def test_raw_file_is_8khz_mono_s16le_mix(tmp_path: Path) -> None:
    sink = RawFileSink(tmp_path / "call.raw")
    customer = frames_of(CUSTOMER, tone(440, 0.5, 16000), 16000)
    agent = frames_of(AGENT, tone(1000, 0.5, 8000), 8000)
    for frame in interleaved(customer, agent, lag=1):
        sink.write(frame)
    sink.close()
    raw = (tmp_path / "call.raw").read_bytes()
    assert sink.sample_rate == RAW_SAMPLE_RATE == 8000
    assert len(raw) == 25 * 160 * 2  # 0.5 s of mono 16-bit at 8 kHz, no header
    mixed = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    assert tone_level(mixed[400:], 440, 8000) > 0.5 and tone_level(mixed[400:], 1000, 8000) > 0.5


async def test_pump_feeds_a_sink_from_concurrent_streams(tmp_path: Path) -> None:
    async def stream(frames: list[AudioFrame]) -> AsyncIterator[AudioFrame]:
        for frame in frames:
            await asyncio.sleep(0)
            yield frame

    recorder = StereoWavRecorder(tmp_path / "pumped.wav", CUSTOMER, AGENT)
    await pump(
        recorder,
        stream(frames_of(CUSTOMER, tone(440, 0.3, 16000), 16000)),
        stream(frames_of(AGENT, tone(1000, 0.3, 16000), 16000)),
    )
    params, pcm = read_wav(tmp_path / "pumped.wav")  # closed by pump
    assert params.nframes == 15 * 320 and recorder.late_frames == 0
    assert tone_level(pcm[:, 1], 1000, 16000) > 0.99


def test_speaker_pipes_the_mix_to_a_player(tmp_path: Path) -> None:
    out = tmp_path / "played.raw"
    sink = SpeakerSink(["sh", "-c", f"cat > '{out}'"], sample_rate=16000)
    for frame in frames_of(CUSTOMER, tone(440, 0.2, 16000), 16000):
        sink.write(frame)
    assert sink.playing
    sink.close()
    played = np.frombuffer(out.read_bytes(), dtype="<i2")
    assert len(played) == 10 * 320 and sink.dropped == 0
    assert peak_frequency(played.astype(np.int16), 16000) == pytest.approx(440, abs=10)


def test_speaker_is_skipped_without_an_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speaker, "audio_output_present", lambda: False)
    assert SpeakerSink.open() is None
    monkeypatch.setattr(speaker, "audio_output_present", lambda: True)
    monkeypatch.setenv("PATH", "")
    assert SpeakerSink.open() is None


RECORDER = """
import sys, time
import numpy as np
from callwatch.client.sinks import StereoWavRecorder
from callwatch.client.streams import AudioFrame

path, = sys.argv[1:]
rate, n = 16000, 320
recorder = StereoWavRecorder(path, "customer", "agent", rate, flush_interval=0.5)
t = np.arange(n) / rate
for tick in range(100_000):
    phase = tick * n / rate
    left = np.round(8000 * np.sin(2 * np.pi * 440 * (t + phase))).astype(np.int16)
    right = np.round(8000 * np.sin(2 * np.pi * 1000 * (t + phase))).astype(np.int16)
    recorder.write(AudioFrame("customer", left, rate, tick * 0.02, tick))
    recorder.write(AudioFrame("agent", right, rate, tick * 0.02, tick))
    if tick == 60:
        print("recording", flush=True)
    time.sleep(0.002)  # ten times real time: mid-stream whenever the kill lands
"""


def test_kill_9_leaves_a_playable_wav(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    command = [sys.executable, "-c", RECORDER, str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "recording"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL

    params, pcm = read_wav(path)  # the stdlib reader accepts the file
    assert (params.nchannels, params.framerate) == (2, 16000)
    assert params.nframes >= 8000 and params.nframes % 320 == 0  # whole flushed ticks
    assert np.array_equal(pcm, wav_samples(path.read_bytes(), 2))
    assert tone_level(pcm[:, 0], 440, 16000) > 0.99 and tone_level(pcm[:, 1], 1000, 16000) > 0.99
