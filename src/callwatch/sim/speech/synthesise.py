"""Development tool: regenerate the shipped conversations with espeak-ng and sox.

``python -m callwatch.sim.speech.synthesise [DIR]`` writes, for every script in :data:`SCRIPTS`,
``DIR/<name>/NN-<speaker>.wav`` (one turn each, 16 kHz mono s16) and ``DIR/<name>/conversation.
json`` with the exact texts and each turn's start on the conversation's timeline. The output is
committed; nothing runs this at install or test time, and CI needs neither espeak-ng nor sox.

Each turn is synthesised on its own (``espeak-ng -v VOICE -s WPM -w turn.wav TEXT``), converted
with ``sox -D turn.wav -r 16000 -c 1 -b 16 out.wav gain -n -1 silence 1 0.02 0.1% reverse
silence 1 0.02 0.1% reverse`` (peak at -1 dBFS, espeak's leading and trailing silence
trimmed), then placed after the previous turn with a pause of :data:`PAUSES` seconds (cycled),
rounded to whole 20 ms frames.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from callwatch.sim.speech import Speaker

VOICES: dict[Speaker, tuple[str, int]] = {"agent": ("en-us", 160), "customer": ("en-us+f3", 150)}
"""espeak-ng voice and words per minute per speaker (as in STACK §3)."""
LEAD_IN = 0.5
"""Seconds of silence before the first turn."""
PAUSES = (0.7, 0.9, 0.6, 0.8)
"""Silence between the end of one turn and the start of the next, cycled."""
TAIL = 0.6
"""Seconds of silence after the last turn."""
FRAME = 0.02

SCRIPTS: dict[str, list[tuple[Speaker, str]]] = {
    "billing": [
        ("agent", "Thank you for calling Northwind support, my name is Sarah, how can I help you?"),
        ("customer", "Hi Sarah, I was charged twice for my internet bill this month."),
        ("agent", "I am sorry about that, could I have your account number please?"),
        ("customer", "Sure, it is four five seven two nine one."),
        ("agent", "Thank you, I can see two payments of fifty nine dollars on the third of March."),
        ("customer", "Yes, that is the problem, I only authorized one of them."),
        (
            "agent",
            "I have refunded the duplicate payment, it will reach your card within five days.",
        ),
        ("customer", "Perfect, thank you so much for your help."),
    ],
    "delivery": [
        ("customer", "Hello, I am calling about an order that has not arrived yet."),
        ("agent", "I can help with that, what is the order number?"),
        ("customer", "The order number is eight three one zero two six."),
        ("agent", "It shipped on Monday and it is now at the local depot."),
        ("customer", "Can the driver leave it with my neighbor if I am not home?"),
        ("agent", "Yes, I added a note asking the driver to leave it at number twelve."),
        ("customer", "Thanks, is there any compensation for the delay?"),
        ("agent", "I can offer you a ten percent discount on your next order."),
    ],
    "password": [
        ("agent", "Good morning, you have reached technical support, this is Daniel speaking."),
        ("customer", "Good morning, I cannot sign in to my online banking since yesterday."),
        ("agent", "Let me check, could you confirm your date of birth for security?"),
        ("customer", "It is the fourteenth of July nineteen eighty seven."),
        (
            "agent",
            "Thank you, I will send a reset link to the phone number ending in six two four.",
        ),
        ("customer", "I have received it, should I open it now?"),
        ("agent", "Yes, please choose a new password with at least twelve characters."),
        ("customer", "It worked, thank you Daniel, you have been very helpful."),
    ],
}
"""Customer-service dialogues; numbers are spelled as words so the reference is unambiguous."""


def _synthesise_turn(speaker: Speaker, text: str, out: Path, scratch: Path) -> float:
    """Write one trimmed 16 kHz turn to ``out``; return its duration in seconds."""
    voice, wpm = VOICES[speaker]
    raw = scratch / "raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text], check=True)
    trim = ["silence", "1", "0.02", "0.1%", "reverse"]
    sox = ["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)]
    subprocess.run([*sox, "gain", "-n", "-1", *trim, *trim], check=True)
    with wave.open(str(out), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def _on_frame(seconds: float) -> float:
    return round(round(seconds / FRAME) * FRAME, 2)


def synthesise(name: str, script: list[tuple[Speaker, str]], root: Path) -> None:
    """Synthesise one conversation into ``root/name``."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    turns: list[dict[str, object]] = []
    start = LEAD_IN
    with tempfile.TemporaryDirectory() as scratch:
        for index, (speaker, text) in enumerate(script):
            wav = f"{index + 1:02d}-{speaker}.wav"
            duration = _synthesise_turn(speaker, text, folder / wav, Path(scratch))
            turns.append({"speaker": speaker, "text": text, "wav": wav, "start": start})
            start = _on_frame(start + duration + PAUSES[index % len(PAUSES)])
    document = {"name": name, "sample_rate": 16000, "tail": TAIL, "turns": turns}
    (folder / "conversation.json").write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str]) -> int:
    """Regenerate every script under ``argv[0]`` (default: this package's directory)."""
    root = Path(argv[0]) if argv else Path(__file__).parent
    for name, script in SCRIPTS.items():
        synthesise(name, script, root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
