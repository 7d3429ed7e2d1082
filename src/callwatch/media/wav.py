"""Crash-safe PCM16 WAV and raw PCM writers for call recordings.

A WAV file states its own length twice (RIFF chunk size at byte 4, data chunk size at byte 40),
so a writer that only fills them in on close leaves an unreadable or empty-looking file when the
process dies. :class:`WavWriter` keeps the header true at every flush instead:

1. audio is buffered in memory until ``flush_interval`` seconds of it are pending;
2. a flush appends the samples with ``os.pwrite`` and only then rewrites the whole 44-byte
   header with one ``os.pwrite`` — a single syscall, so a ``SIGKILL`` leaves either the old or
   the new header, each describing data that is fully on disk (in the page cache, which
   survives the process; pass ``fsync=True`` to survive a power cut too);
3. :meth:`WavWriter.close` flushes what is left.

After a crash the file is a valid WAV of everything up to the last flush (any later bytes past
the data chunk are ignored by readers). Samples are little-endian int16 (WAVE_FORMAT_PCM).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

PcmArray = npt.NDArray[np.int16]

HEADER_SIZE = 44
"""Bytes of the canonical RIFF/WAVE header written here (fmt chunk of 16 bytes)."""
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_SIZE - 8)
"""RIFF sizes are 32-bit: the data chunk cannot exceed this (about 4 GiB)."""
MAX_FLUSH_INTERVAL = 60.0
"""Longest audio (seconds) a writer may hold in memory between flushes."""
_PCM_FORMAT = 1


class WavError(OSError):
    """The writer was misused (closed, wrong shape) or the 4 GiB WAV limit was reached."""


def wav_header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """The 44-byte header of a PCM16 WAV with ``data_bytes`` bytes of samples."""
    block_align = 2 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        HEADER_SIZE - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        _PCM_FORMAT,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,
        b"data",
        data_bytes,
    )


def interleave(left: PcmArray, right: PcmArray) -> PcmArray:
    """Interleave two mono int16 signals into L R L R …; the shorter is padded with silence."""
    if left.ndim != 1 or right.ndim != 1:
        raise ValueError("interleave takes two 1-D arrays")
    length = max(left.shape[0], right.shape[0])
    out = np.zeros((length, 2), dtype=np.int16)
    out[: left.shape[0], 0] = left
    out[: right.shape[0], 1] = right
    return out.reshape(-1)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _as_bytes(pcm: PcmArray, channels: int) -> bytes:
    """Validate ``pcm`` (1-D interleaved or shape ``(n, channels)``) and serialise it LE."""
    if pcm.dtype != np.int16:
        raise WavError(f"samples must be int16, got {pcm.dtype}")
    if pcm.ndim == 2 and pcm.shape[1] == channels:
        pcm = pcm.reshape(-1)
    if pcm.ndim != 1 or pcm.shape[0] % channels:
        raise WavError(f"expected whole frames of {channels} channel(s), got shape {pcm.shape}")
    return pcm.astype("<i2", copy=False).tobytes()


class _PcmFile:
    """Shared buffering for the WAV and raw writers: pending bytes, offsets, flush policy."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        channels: int,
        flush_interval: float,
        fsync: bool,
        data_offset: int,
    ) -> None:
        if sample_rate <= 0 or channels not in (1, 2):
            raise WavError(f"unsupported format: {sample_rate} Hz, {channels} channels")
        if not 0 <= flush_interval <= MAX_FLUSH_INTERVAL:
            raise WavError(f"flush_interval must lie in [0, {MAX_FLUSH_INTERVAL}] s")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self._fsync = fsync
        self._flush_bytes = max(2 * channels, int(flush_interval * sample_rate) * 2 * channels)
        self._data_offset = data_offset
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flushed_bytes = 0
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._commit(self._fd)

    @property
    def frames_flushed(self) -> int:
        """Sample frames (one sample per channel) that a crash right now would keep."""
        return self._flushed_bytes // (2 * self.channels)

    @property
    def frames_written(self) -> int:
        """Sample frames accepted so far, flushed or not."""
        return (self._flushed_bytes + self._pending_bytes) // (2 * self.channels)

    def write(self, pcm: PcmArray) -> None:
        """Queue samples (1-D interleaved or ``(n, channels)``); flushes every interval."""
        if self._fd is None:
            raise WavError(f"{self.path} is closed")
        data = _as_bytes(pcm, self.channels)
        if self._flushed_bytes + self._pending_bytes + len(data) > MAX_DATA_BYTES:
            raise WavError(f"{self.path} would exceed the 4 GiB WAV limit")
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Write pending samples, then make the file describe them."""
        if self._fd is None:
            raise WavError(f"{self.path} is closed")
        if self._pending:
            data = b"".join(self._pending)
            _pwrite_all(self._fd, data, self._data_offset + self._flushed_bytes)
            self._flushed_bytes += len(data)
            self._pending.clear()
            self._pending_bytes = 0
        self._commit(self._fd)
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Flush and close; closing twice is harmless."""
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = None

    def _commit(self, fd: int) -> None:
        """Hook run after each data write (the WAV header patch)."""

    def __enter__(self) -> _PcmFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class WavWriter(_PcmFile):
    """PCM16 WAV writer whose file is valid up to the last flush even after ``kill -9``.

    Args:
        path: file to create (truncated if it exists).
        sample_rate: samples per second per channel.
        channels: 1 (mono) or 2 (stereo, interleaved; see :func:`interleave`).
        flush_interval: seconds of audio buffered before an automatic flush.
        fsync: also ``fsync`` at each flush (survives power loss; costs a disk write).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        channels: int = 1,
        *,
        flush_interval: float = 1.0,
        fsync: bool = False,
    ) -> None:
        super().__init__(path, sample_rate, channels, flush_interval, fsync, HEADER_SIZE)

    def _commit(self, fd: int) -> None:
        header = wav_header(self.sample_rate, self.channels, self._flushed_bytes)
        _pwrite_all(fd, header, 0)

    def __enter__(self) -> WavWriter:
        return self


class RawWriter(_PcmFile):
    """Headerless little-endian PCM16 writer (the seed's ``call.raw``), same flush policy."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int = 8000,
        channels: int = 1,
        *,
        flush_interval: float = 1.0,
        fsync: bool = False,
    ) -> None:
        super().__init__(path, sample_rate, channels, flush_interval, fsync, 0)

    def __enter__(self) -> RawWriter:
        return self


__all__ = ["HEADER_SIZE", "RawWriter", "WavError", "WavWriter", "interleave", "wav_header"]
