"""The demo's closing summary: one short block per call, readable in an 80-column terminal."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from callwatch.demo import CallResult, DemoResult


def summary_lines(call: CallResult) -> list[str]:
    """The summary of one call as ``label: value`` lines."""
    first = f"{call.first_audio * 1000:.0f} ms" if call.first_audio is not None else "-"
    return [
        f"call          agent {call.agent}, session {call.session_id or '-'}",
        f"conversation  {call.conversation}, codec {call.codec}, {call.duration:.1f} s",
        f"packets sent  customer {call.sent.get('customer', 0)}, agent {call.sent.get('agent', 0)}",
        f"loss          customer {call.loss('customer'):.1%}, agent {call.loss('agent'):.1%}",
        f"forked/heard  {_pairs(call.forked)} / {_pairs(call.delivered)} packets per party",
        f"fork codec    {_forks(call.forks)}",
        f"supervise→audio {first}",
        f"WER           customer {call.wer('customer'):.0%}, agent {call.wer('agent'):.0%}",
        f"recording     {call.wav}",
        f"transcript    {call.transcript}",
    ]


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(str(n) for n in counts.values()) or "-"


def _forks(forks: dict[str, str]) -> str:
    kinds = set(forks.values())
    if len(kinds) == 1:
        return f"{kinds.pop()} (both parties)"
    return ", ".join(f"{role} {kind}" for role, kind in forks.items()) or "-"


def render_summary(console: Console, result: DemoResult) -> None:
    """Print every call's summary."""
    console.rule("[bold]callwatch demo — summary")
    for call in result.calls:
        for line in summary_lines(call):
            console.print(escape(line))
        console.print()
