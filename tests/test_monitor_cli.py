"""``callwatch monitor``'s command line: credentials and option errors, codec choice, and the
live view's handling of partial lines (the monitor itself runs in tests/integration)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from callwatch import monitor_cli
from callwatch.cli import app
from callwatch.client.asr_segments import Segment
from callwatch.client.monitor import Line, MonitorEvent, Started
from callwatch.sip.offer_answer import OPUS_16000, PCMU, TELEPHONE_EVENT

runner = CliRunner()
NO_ENV = ["--env-file", "/nonexistent"]


@pytest.fixture(autouse=True)
def _no_rc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RC_SERVER_URL", "RC_CLIENT_ID", "RC_CLIENT_SECRET", "RC_JWT"):
        monkeypatch.delenv(name, raising=False)


def test_missing_credentials_exit_2() -> None:
    result = runner.invoke(app, ["monitor", *NO_ENV])
    assert result.exit_code == 2 and "RC_SERVER_URL" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codec", "GSM"], "unknown codec 'GSM'"),
        (["--webhook-listen", "8080"], "HOST:PORT"),
        (["--webhook-listen", "127.0.0.1:99999"], "HOST:PORT"),
    ],
)
def test_bad_options_exit_2_before_connecting(args: list[str], message: str) -> None:
    creds = ["--server-url", "http://127.0.0.1:9", "--client-id", "x", "--jwt", "y"]
    result = runner.invoke(app, ["monitor", *creds, *args, *NO_ENV])
    assert result.exit_code == 2 and message in result.output


def test_codec_names_map_to_specs_in_the_given_order() -> None:
    assert monitor_cli.codec_specs(["pcmu", "OPUS16"]) == (PCMU, OPUS_16000, TELEPHONE_EVENT)


class _Events:
    def __init__(self, events: list[MonitorEvent]) -> None:
        self._events = events

    async def events(self) -> AsyncIterator[MonitorEvent]:
        for event in self._events:
            yield event
            await asyncio.sleep(0)


def _line(text: str, *, final: bool, utterance: int = 0) -> Line:
    segment = Segment(
        party_id="p-1",
        speaker="p-1",
        text=text,
        start=1.0,
        end=2.0,
        final=final,
        latency=0.1,
        utterance=utterance,
        engine="moonshine" if final else "pocketsphinx",
    )
    return Line("s-1", "customer", segment)


async def test_the_live_view_prints_finals_and_keeps_partials_out_of_the_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with (tmp_path / "out.txt").open("w") as out:
        console = Console(file=out, force_terminal=False, width=100)
        monkeypatch.setattr(monitor_cli, "console", console)
        events: list[Any] = [
            Started(("108",), "dev-1"),
            _line("my card was", final=False),
            _line("my card was charged", final=False),
            _line("My card was charged twice.", final=True),
        ]
        await monitor_cli._print(_Events(events), live=True)  # type: ignore[arg-type]
    log = (tmp_path / "out.txt").read_text()
    assert "monitoring" in log and "My card was charged twice." in log
    assert "my card was charged…" not in log  # partials live in the transient region only
