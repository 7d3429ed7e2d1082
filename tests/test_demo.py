"""``callwatch demo`` end to end: the recording and transcript come from the real path.

The relay's counters for the supervisor's streams must equal what the monitor's softphone
received, party by party, and the forks must carry the call's codec untouched (zero-copy); the
stereo WAV's left channel must follow the customer's speech and the right channel the agent's;
the transcript must say roughly what was said.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

from callwatch.demo import Demo
from callwatch.sim.speech import load_conversation

SECONDS = 14.0


def _envelope(pcm: np.ndarray, rate: int, window: float = 0.1) -> np.ndarray:
    step = int(rate * window)
    usable = len(pcm) - len(pcm) % step
    frames = pcm[:usable].astype(np.float64).reshape(-1, step)
    return np.sqrt((frames**2).mean(axis=1))


def _best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 40) -> float:
    """Highest normalised correlation of two envelopes over lags 0..max_lag (b delayed in a)."""
    best = -1.0
    for lag in range(max_lag):
        x, y = a[lag:], b[: len(a) - lag]
        n = min(len(x), len(y))
        if n < 20:
            break
        x, y = x[:n] - x[:n].mean(), y[:n] - y[:n].mean()
        denom = np.sqrt((x**2).sum() * (y**2).sum())
        if denom:
            best = max(best, float((x * y).sum() / denom))
    return best


async def test_demo_records_and_transcribes_through_the_real_path(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await Demo(calls=1, data_dir=tmp_path, seconds=SECONDS, report=lines.append).run()
    assert result.ok, (result.problems, lines)
    [call] = result.calls
    assert call.forked and call.forked == call.delivered, (call.forked, call.delivered)
    assert all(count > 100 for count in call.forked.values())
    # the monitor takes the call's own codec: the relay forwards the packets, no transcoding
    assert call.forks == {"customer": "PCMU/8000 zero-copy", "agent": "PCMU/8000 zero-copy"}
    assert all(stats.decoder.packets > 100 for stats in call.streams.values()), call.streams

    assert call.wav is not None
    with wave.open(str(call.wav)) as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, 16000)
        stereo = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    left, right = stereo[0::2], stereo[1::2]
    conversation = load_conversation(call.conversation)
    cut = int(SECONDS * conversation.sample_rate)
    customer = _envelope(conversation.pcm("customer")[:cut], 16000)
    agent = _envelope(conversation.pcm("agent")[:cut], 16000)
    left_env, right_env = _envelope(left, 16000), _envelope(right, 16000)
    assert _best_correlation(left_env, customer) > _best_correlation(left_env, agent) + 0.2
    assert _best_correlation(right_env, agent) > _best_correlation(right_env, customer) + 0.2

    assert call.transcript is not None
    segments = [json.loads(line) for line in call.transcript.read_text().splitlines()]
    assert segments and all(s["text"] for s in segments)
    assert call.wer("agent") < 0.6
    assert any("supervise" in line for line in lines)
