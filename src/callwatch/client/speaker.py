"""Listening in on this machine's speaker, when it has one — with no audio library to install.

:class:`SpeakerSink` mixes every party (lined up by tick, as the file sinks do) and pipes the mix
as raw signed 16-bit little-endian mono PCM to a player process. :meth:`SpeakerSink.open` picks
the first player on ``PATH`` (PipeWire ``pw-play``, PulseAudio ``paplay``, ALSA ``aplay``,
SoX ``play`` — the seed's recipe) and only when an audio output seems to exist (ALSA devices in
``/dev/snd``, or a PulseAudio/PipeWire socket); otherwise it returns None and the caller goes
on without sound. The pipe is non-blocking: when the player falls behind, frames are dropped
and counted rather than stalling anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from callwatch.client.alignment import DEFAULT_WINDOW, RateConverter, TickAligner, mix
from callwatch.client.streams import AudioFrame
from callwatch.media.codecs.base import PcmArray

__all__ = ["PLAYERS", "SpeakerSink", "audio_output_present", "find_player"]

PLAYERS: dict[str, tuple[str, ...]] = {
    "pw-play": ("pw-play", "--format=s16", "--rate={rate}", "--channels=1", "-"),
    "paplay": ("paplay", "--raw", "--format=s16le", "--rate={rate}", "--channels=1"),
    "aplay": ("aplay", "-q", "-t", "raw", "-f", "S16_LE", "-r", "{rate}", "-c", "1"),
    "play": ("play", "-q", "-t", "raw", "-e", "signed", "-b", "16", "-r", "{rate}", "-c", "1", "-"),
}
"""Players tried in order, with the arguments that make them read raw mono s16le on stdin."""
CLOSE_TIMEOUT = 2.0
"""Seconds a player may take to finish after its input closed before it is killed."""


def audio_output_present() -> bool:
    """True when an ALSA device or a PulseAudio/PipeWire server seems reachable."""
    if Path("/dev/snd").is_dir() or os.environ.get("PULSE_SERVER"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        return False
    return any((Path(runtime) / name).exists() for name in ("pulse/native", "pipewire-0"))


def find_player(sample_rate: int) -> list[str] | None:
    """The command line of the first player on ``PATH`` for raw PCM at ``sample_rate``."""
    for name, args in PLAYERS.items():
        if shutil.which(name):
            return [arg.format(rate=sample_rate) for arg in args]
    return None


class SpeakerSink:
    """Plays the mix of every party through ``command`` (raw mono s16le on its stdin).

    Args:
        command: the player's command line (see :data:`PLAYERS`).
        sample_rate: the rate the player was told.
        window: ticks a tick waits for a lagging party.
    """

    def __init__(
        self, command: Sequence[str], sample_rate: int = 16000, *, window: int = DEFAULT_WINDOW
    ) -> None:
        self._aligner = TickAligner(window=window)
        self._convert = RateConverter(sample_rate)
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert self._process.stdin is not None
        self._fd = self._process.stdin.fileno()
        os.set_blocking(self._fd, False)
        self.dropped = 0
        """20 ms ticks not played because the player was behind (or gone)."""

    @classmethod
    def open(cls, sample_rate: int = 16000) -> SpeakerSink | None:
        """A sink on this machine's default output, or None when there is no output or no
        player (never raises for that)."""
        command = find_player(sample_rate) if audio_output_present() else None
        if command is None:
            return None
        try:
            return cls(command, sample_rate)
        except OSError:
            return None

    @property
    def sample_rate(self) -> int:
        """The rate the player was told."""
        return self._convert.sample_rate

    @property
    def playing(self) -> bool:
        """True while the player takes audio."""
        return self._process is not None and self._process.poll() is None

    def write(self, frame: AudioFrame) -> None:
        """Queue one frame; plays the mix of every tick it completes (never blocks)."""
        pcm = self._convert.convert(frame.party_id, frame.pcm, frame.sample_rate)
        for aligned in self._aligner.add(frame.party_id, frame.tick, pcm):
            self._play(aligned.frames)

    def _play(self, frames: dict[str, PcmArray]) -> None:
        if self._process is None:
            self.dropped += 1
            return
        fitted = [self._convert.fit(pcm) for pcm in frames.values()]
        data = mix(fitted, self._convert.frame_samples).astype("<i2").tobytes()
        try:
            os.write(self._fd, data)  # ≤ PIPE_BUF bytes: written whole or not at all
        except BlockingIOError:
            self.dropped += 1
        except OSError:  # the player exited (EPIPE): stop feeding it
            self.dropped += 1
            self._stop()

    def close(self) -> None:
        """Play what is pending, end the player's input and wait for it to finish."""
        for aligned in self._aligner.flush():
            self._play(aligned.frames)
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):  # the player already gone: nothing to flush
            process.stdin.close()
        try:
            process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
