"""The demo's closing summary, as a rich table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from callwatch.demo import DemoResult


def render_summary(console: Console, result: DemoResult) -> None:
    """Print one row per call: duration, codec, packets, loss, time to first audio, WER."""
    table = Table(title="callwatch demo")
    for column in (
        "agent",
        "session",
        "codec",
        "duration",
        "packets sent (cust/agent)",
        "loss",
        "supervise→audio",
        "WER customer",
        "WER agent",
    ):
        table.add_column(column)
    for call in result.calls:
        first = f"{call.first_audio * 1000:.0f} ms" if call.first_audio is not None else "-"
        loss = max(call.loss("customer"), call.loss("agent"))
        table.add_row(
            call.agent,
            call.session_id or "-",
            call.codec,
            f"{call.duration:.1f} s",
            f"{call.sent.get('customer', 0)}/{call.sent.get('agent', 0)}",
            f"{loss:.1%}",
            first,
            f"{call.wer('customer'):.0%}",
            f"{call.wer('agent'):.0%}",
        )
    console.print(table)
    for call in result.calls:
        console.print(f"recording  {call.wav}\ntranscript {call.transcript}")
