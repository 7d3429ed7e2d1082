"""``callwatch monitor``: supervise, record and transcribe the calls of the agents you may monitor.

Credentials come the way RingCentral's samples take them: ``RC_SERVER_URL``, ``RC_CLIENT_ID``,
``RC_CLIENT_SECRET`` and ``RC_JWT`` from the environment or a ``.env`` file; options override.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv
from rich.console import Console
from rich.markup import escape

from callwatch.client.monitor import (
    CallEvent,
    Finished,
    FirstAudio,
    Line,
    Monitor,
    MonitorConfig,
    MonitorEvent,
    Problem,
    Started,
    Supervising,
)
from callwatch.client.rest import RestClient

console = Console()


def render(event: MonitorEvent) -> str:
    """One line of the live view for ``event``."""
    if isinstance(event, Started):
        return f"[bold]monitoring[/] agents {', '.join(event.agents)} on device {event.device_id}"
    if isinstance(event, CallEvent):
        return f"[dim]{event.session_id} agent {event.agent}: {event.status} (#{event.sequence})[/]"
    if isinstance(event, Supervising):
        return (
            f"[green]supervising[/] {event.session_id} (agent {event.agent}, "
            f"{len(set(event.parties))} streams, {event.request_seconds * 1000:.0f} ms)"
        )
    if isinstance(event, FirstAudio):
        return f"[green]audio[/] {event.session_id} after {event.seconds * 1000:.0f} ms"
    if isinstance(event, Line):
        mark = "" if event.segment.final else "…"
        return f"  [cyan]{event.role:>8}[/] {escape(event.segment.text)}{mark}"
    if isinstance(event, Finished):
        return f"[bold]recorded[/] {event.wav} and {event.transcript}"
    assert isinstance(event, Problem)
    return f"[red]problem[/] {event.message}"


def monitor(
    server_url: Annotated[str | None, typer.Option(envvar="RC_SERVER_URL")] = None,
    client_id: Annotated[str | None, typer.Option(envvar="RC_CLIENT_ID")] = None,
    client_secret: Annotated[str | None, typer.Option(envvar="RC_CLIENT_SECRET")] = None,
    jwt: Annotated[str | None, typer.Option(envvar="RC_JWT")] = None,
    record_dir: Annotated[Path, typer.Option(help="where <session>.wav/.jsonl go")] = Path(
        "recordings"
    ),
    session_level: Annotated[bool, typer.Option(help="one session-level supervise")] = False,
    transport: Annotated[str, typer.Option(help="softphone SIP transport")] = "UDP",
    transcribe: Annotated[bool, typer.Option(help="live offline transcription")] = True,
    env_file: Annotated[Path, typer.Option(help=".env file read first")] = Path(".env"),
) -> None:
    """Supervise every answered call of the agents you may monitor; record and transcribe."""
    if env_file.exists():
        load_dotenv(env_file, override=False)
    server_url = server_url or os.environ.get("RC_SERVER_URL")
    client_id = client_id or os.environ.get("RC_CLIENT_ID")
    client_secret = client_secret or os.environ.get("RC_CLIENT_SECRET")
    jwt = jwt or os.environ.get("RC_JWT")
    if not (server_url and client_id and jwt):
        console.print("[red]set RC_SERVER_URL, RC_CLIENT_ID, RC_CLIENT_SECRET and RC_JWT[/]")
        raise typer.Exit(2)
    config = MonitorConfig(
        record_dir=record_dir,
        dual_channel=not session_level,
        transport=transport.upper(),
        transcribe=transcribe,
    )
    asyncio.run(_run(server_url, client_id, client_secret, jwt, config))


async def _run(
    url: str, client_id: str, secret: str | None, jwt: str, config: MonitorConfig
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with RestClient(url, client_id, secret) as rest:
        await rest.login_jwt(jwt)
        app = Monitor(rest, config)
        printer = asyncio.create_task(_print(app))
        try:
            await app.run(stop)
        finally:
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer


async def _print(app: Monitor) -> None:
    async for event in app.events():
        console.print(render(event))
