"""Transcript segments and their outputs: JSON Lines files and ``rich`` console lines."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from rich.markup import escape

SPEAKER_STYLES = {"customer": "cyan", "agent": "green", "supervisor": "magenta"}
"""``rich`` colours of the well-known speaker labels; others get one from :data:`PALETTE`."""
PALETTE = ("blue", "yellow", "red", "bright_cyan", "bright_green", "bright_magenta")


@dataclass(frozen=True, slots=True)
class Segment:
    """Text of one utterance (or of its beginning, for a partial) of one party."""

    party_id: str
    speaker: str
    """Display label (the party id unless the transcriber was given labels)."""
    text: str
    start: float
    """Audio-clock seconds of the utterance's first voiced frame."""
    end: float
    """Audio-clock seconds of its last voiced frame (of the audio heard so far, if partial)."""
    final: bool
    """True: the accurate engine's text for the whole utterance; False: a partial."""
    latency: float
    """Seconds from the arrival of ``end``'s audio to this segment's emission."""
    utterance: int
    """Per-party utterance number; a final replaces the partials with the same number."""
    engine: str

    def to_json(self) -> dict[str, str | float | bool | int]:
        """The segment as a JSON-ready dict (times rounded to milliseconds)."""
        data = asdict(self)
        for name in ("start", "end", "latency"):
            data[name] = round(data[name], 3)
        return data


class TranscriptWriter:
    """Writes segments to a JSON Lines file, one object per line, flushed after each line.

    Args:
        path: file to write.
        mode: ``"w"`` to start afresh, ``"a"`` to append.
        finals_only: skip partial segments.
    """

    def __init__(
        self, path: str | Path, *, mode: Literal["w", "a"] = "w", finals_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.finals_only = finals_only
        self.lines = 0
        self._file: IO[str] = self.path.open(mode, encoding="utf-8")

    def write(self, segment: Segment) -> None:
        """Append one segment (unless it is a partial and ``finals_only``)."""
        if self.finals_only and not segment.final:
            return
        self._file.write(json.dumps(segment.to_json(), ensure_ascii=False) + "\n")
        self._file.flush()
        self.lines += 1

    async def drain(self, segments: AsyncIterable[Segment]) -> int:
        """Write every segment of ``segments``; returns the lines written in total."""
        async for segment in segments:
            self.write(segment)
        return self.lines

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"


def speaker_style(speaker: str) -> str:
    """Stable ``rich`` colour for a speaker label."""
    return SPEAKER_STYLES.get(speaker) or PALETTE[zlib.crc32(speaker.encode()) % len(PALETTE)]


def format_segment(segment: Segment) -> str:
    """One ``rich`` markup line: ``[00:05.8–00:09.9] customer: text``; partials dim, with …."""
    times = f"[dim]{_clock(segment.start)}–{_clock(segment.end)}[/dim]"
    style = speaker_style(segment.speaker)
    who = f"[bold {style}]{escape(segment.speaker)}[/bold {style}]"
    text = escape(segment.text)
    if not segment.final:
        return f"{times} {who}: [dim italic]{text} …[/dim italic]"
    return f"{times} {who}: {text}"


__all__ = [
    "PALETTE",
    "SPEAKER_STYLES",
    "Segment",
    "TranscriptWriter",
    "format_segment",
    "speaker_style",
]
