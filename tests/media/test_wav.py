"""WAV/raw writers: header correctness, periodic flushes, and survival of ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from callwatch.media.wav import HEADER_SIZE, RawWriter, WavError, WavWriter, interleave

Pcm = np.ndarray[tuple[int], np.dtype[np.int16]]


def pattern(start: int, count: int) -> Pcm:
    """Deterministic non-repeating-looking samples: frame i of the stream is f(i)."""
    i = np.arange(start, start + count, dtype=np.int64)
    return ((i * 7919 + 13) % 65536 - 32768).astype(np.int16)


def read_wav(path: Path) -> tuple[wave._wave_params, Pcm]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(params.nframes), dtype="<i2").astype(np.int16)
    return params, data


def test_mono_wav_round_trips_through_the_wave_module(tmp_path: Path) -> None:
    path = tmp_path / "m.wav"
    with WavWriter(path, 8000, 1, flush_interval=0.05) as writer:
        for n in range(10):
            writer.write(pattern(160 * n, 160))
        assert writer.frames_written == 1600
        assert writer.frames_flushed >= 1200
    params, data = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert np.array_equal(data, pattern(0, 1600))
    assert path.stat().st_size == HEADER_SIZE + 3200


def test_stereo_interleave_and_2d_input(tmp_path: Path) -> None:
    left, right = pattern(0, 320), pattern(1000, 300)
    stereo = interleave(left, right)
    assert stereo.shape == (640,)
    assert stereo[0::2].tolist() == left.tolist()
    assert stereo[1::2].tolist() == right.tolist() + [0] * 20
    path = tmp_path / "s.wav"
    with WavWriter(path, 16000, 2) as writer:
        writer.write(stereo)
        writer.write(stereo.reshape(-1, 2))
    params, data = read_wav(path)
    assert (params.nchannels, params.nframes) == (2, 640)
    assert np.array_equal(data, np.concatenate([stereo, stereo]))


def test_header_is_valid_before_close(tmp_path: Path) -> None:
    path = tmp_path / "open.wav"
    writer = WavWriter(path, 8000, flush_interval=1.0)
    assert read_wav(path)[0].nframes == 0
    writer.write(pattern(0, 4000))  # half the interval: still buffered
    assert read_wav(path)[0].nframes == 0
    writer.write(pattern(4000, 4000))
    params, data = read_wav(path)
    assert params.nframes == 8000 and np.array_equal(data, pattern(0, 8000))
    writer.close()
    writer.close()
    with pytest.raises(WavError, match="closed"):
        writer.write(pattern(0, 1))


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "x.wav", 8000, 2) as writer:
        with pytest.raises(WavError, match="whole frames"):
            writer.write(pattern(0, 3))
        with pytest.raises(WavError, match="int16"):
            writer.write(np.zeros(4, dtype=np.float32))  # type: ignore[arg-type,unused-ignore]
    with pytest.raises(WavError):
        WavWriter(tmp_path / "y.wav", 8000, 3)


def test_raw_writer_is_headerless_little_endian(tmp_path: Path) -> None:
    path = tmp_path / "call.raw"
    with RawWriter(path, 8000) as writer:
        writer.write(pattern(0, 800))
    assert path.read_bytes() == pattern(0, 800).astype("<i2").tobytes()


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from callwatch.media.wav import WavWriter, interleave

    def pattern(start, count):
        i = np.arange(start, start + count, dtype=np.int64)
        return ((i * 7919 + 13) % 65536 - 32768).astype(np.int16)

    path, channels = sys.argv[1], int(sys.argv[2])
    writer = WavWriter(path, 8000, channels, flush_interval=0.1)
    reported = 0
    for n in range(30000):  # 10 minutes of audio at most; the parent kills us long before
        frame = pattern(160 * n, 160)
        writer.write(frame if channels == 1 else interleave(frame, -frame))
        if writer.frames_flushed != reported:
            reported = writer.frames_flushed
            print(reported, flush=True)
        time.sleep(0.001)
    """
)


@pytest.mark.parametrize("channels", [1, 2])
def test_file_survives_sigkill_up_to_the_last_flush(tmp_path: Path, channels: int) -> None:
    path = tmp_path / "killed.wav"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(channels)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    last_flushed = 0
    try:
        for line in child.stdout:
            last_flushed = int(line)
            if last_flushed >= 8000:  # a second of audio flushed, still writing
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert last_flushed >= 8000
    params, data = read_wav(path)
    assert params.nframes >= last_flushed
    expected = pattern(0, params.nframes)
    if channels == 2:
        expected = interleave(expected, -expected)
    assert np.array_equal(data, expected)
    # nothing beyond the data chunk the header describes, except a possibly torn tail
    assert path.stat().st_size >= HEADER_SIZE + params.nframes * 2 * channels
