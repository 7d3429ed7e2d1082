"""Shipped test speech: short customer-service conversations as a pair of scripts with timing.

Each conversation lives in its own directory next to this module: one 16 kHz mono s16 WAV per
turn and ``conversation.json`` with the exact text of every turn and its start offset::

    {"name": "billing", "sample_rate": 16000, "tail": 0.6,
     "turns": [{"speaker": "agent", "text": "...", "wav": "01-agent.wav", "start": 0.5}, ...]}

:func:`load_conversation` places every turn on a shared timeline, one track per speaker (the
other speaker's turns are silence on it), so a conversation can be fed to a transcriber as two
party streams exactly as a supervised call delivers them. The audio was made with espeak-ng
(see :mod:`callwatch.sim.speech.synthesise`); numbers are spelled as words in the texts.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

Speaker = Literal["customer", "agent"]
"""Who says a turn."""
SPEAKERS: tuple[Speaker, ...] = ("customer", "agent")
SAMPLE_RATE = 16000
"""Rate of every shipped WAV and of the tracks :func:`load_conversation` builds."""
MAX_TURNS = 200
"""Refuse conversation files with more turns than this (they are meant to be short)."""

PcmArray = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Turn:
    """One sentence of one speaker, placed on the conversation's timeline."""

    speaker: Speaker
    """``"customer"`` or ``"agent"``."""
    text: str
    """Exactly what the synthesiser was asked to say."""
    wav: str
    """File name of the turn's audio inside the conversation's directory."""
    start: float
    """Offset of the turn's first sample from the start of the conversation, seconds."""
    duration: float
    """Length of the turn's audio, seconds."""

    @property
    def end(self) -> float:
        """Offset of the turn's last sample, seconds."""
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Conversation:
    """A loaded conversation: texts, turn timing and one 16 kHz int16 track per speaker."""

    name: str
    turns: tuple[Turn, ...]
    tracks: Mapping[Speaker, PcmArray]
    """Per-speaker PCM on the shared timeline; all tracks have the same length."""
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        """Length of the timeline, seconds."""
        return len(next(iter(self.tracks.values()))) / self.sample_rate

    def pcm(self, speaker: Speaker) -> PcmArray:
        """The speaker's track (read-only view)."""
        return self.tracks[speaker]

    def speaker_turns(self, speaker: Speaker) -> tuple[Turn, ...]:
        """The speaker's turns in order."""
        return tuple(turn for turn in self.turns if turn.speaker == speaker)

    def full_text(self, speaker: Speaker | None = None) -> str:
        """All texts of ``speaker`` (or of both, in timeline order) joined by spaces."""
        turns = self.turns if speaker is None else self.speaker_turns(speaker)
        return " ".join(turn.text for turn in turns)


def _root() -> Traversable:
    return resources.files(__name__)


def conversations() -> list[str]:
    """Names of the shipped conversations, sorted."""
    return sorted(
        entry.name
        for entry in _root().iterdir()
        if entry.is_dir() and entry.joinpath("conversation.json").is_file()
    )


def _read_wav(entry: Traversable) -> PcmArray:
    with entry.open("rb") as raw, wave.open(raw, "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"{entry.name}: expected 16 kHz mono s16")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def _parse_turn(item: object, clip: PcmArray) -> Turn:
    if not isinstance(item, dict):
        raise ValueError("a turn must be a JSON object")
    speaker = item.get("speaker")
    if speaker not in SPEAKERS:
        raise ValueError(f"unknown speaker {speaker!r}")
    return Turn(
        speaker=cast(Speaker, speaker),
        text=str(item["text"]),
        wav=str(item["wav"]),
        start=float(item["start"]),
        duration=len(clip) / SAMPLE_RATE,
    )


def load_conversation(name: str) -> Conversation:
    """Load a shipped conversation and lay its turns out on one track per speaker.

    Args:
        name: one of :func:`conversations`.

    Raises:
        KeyError: no conversation of that name is shipped.
        ValueError: the files are malformed (not 16 kHz mono s16, unknown speaker, ...).
    """
    folder = _root().joinpath(name)
    if name not in conversations():
        raise KeyError(f"no shipped conversation {name!r}; have {conversations()}")
    document = json.loads(folder.joinpath("conversation.json").read_text(encoding="utf-8"))
    items = document["turns"]
    if not isinstance(items, list) or not 0 < len(items) <= MAX_TURNS:
        raise ValueError(f"{name}: turns must be a list of 1 to {MAX_TURNS} entries")
    clips = [_read_wav(folder.joinpath(str(item["wav"]))) for item in items]
    turns = tuple(_parse_turn(item, clip) for item, clip in zip(items, clips, strict=True))
    tail = float(document.get("tail", 0.0))
    length = round((max(turn.end for turn in turns) + tail) * SAMPLE_RATE)
    tracks = {speaker: np.zeros(length, dtype=np.int16) for speaker in SPEAKERS}
    for turn, clip in zip(turns, clips, strict=True):
        offset = round(turn.start * SAMPLE_RATE)
        tracks[turn.speaker][offset : offset + len(clip)] = clip
    for track in tracks.values():
        track.setflags(write=False)
    return Conversation(name=name, turns=turns, tracks=tracks)


__all__ = [
    "SAMPLE_RATE",
    "SPEAKERS",
    "Conversation",
    "Speaker",
    "Turn",
    "conversations",
    "load_conversation",
]
