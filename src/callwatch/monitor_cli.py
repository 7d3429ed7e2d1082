"""``callwatch monitor``: supervise, record and transcribe the calls of the agents you may monitor.

Credentials come the way RingCentral's samples take them: ``RC_SERVER_URL``, ``RC_CLIENT_ID``,
``RC_CLIENT_SECRET`` and ``RC_JWT`` from the environment or a ``.env`` file; options override.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

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
from callwatch.client.softphone import DEFAULT_CODECS
from callwatch.sip.offer_answer import (
    G722,
    OPUS,
    OPUS_16000,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecSpec,
)

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


CODEC_NAMES = {
    "OPUS": OPUS,
    "OPUS16": OPUS_16000,
    "G722": G722,
    "PCMU": PCMU,
    "PCMA": PCMA,
}
"""``--codec`` values: Opus 48 kHz (PT 111), RingCentral's Opus 16 kHz (PT 109), G.722, G.711."""


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
    partials: Annotated[
        bool, typer.Option(help="show partial hypotheses while a speaker talks")
    ] = False,
    codec: Annotated[
        list[str] | None,
        typer.Option(help=f"accept only these codecs, best first ({', '.join(CODEC_NAMES)})"),
    ] = None,
    webhook: Annotated[
        bool, typer.Option(help="notifications by WebHook instead of the WebSocket gateway")
    ] = False,
    webhook_listen: Annotated[
        str, typer.Option(help="HOST:PORT the WebHook receiver listens on (port 0: any)")
    ] = "127.0.0.1:0",
    webhook_address: Annotated[
        str | None, typer.Option(help="URL the server delivers to (default: the receiver's)")
    ] = None,
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
    try:
        codecs = codec_specs(codec) if codec else DEFAULT_CODECS
        host, port = _listen_address(webhook_listen)
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    config = MonitorConfig(
        record_dir=record_dir,
        dual_channel=not session_level,
        transport=transport.upper(),
        transcribe=transcribe,
        partials=partials,
        codecs=codecs,
        delivery="webhook" if webhook else "websocket",
        webhook_host=host,
        webhook_port=port,
        webhook_address=webhook_address,
    )
    asyncio.run(_run(server_url, client_id, client_secret, jwt, config))


def codec_specs(names: list[str]) -> tuple[CodecSpec, ...]:
    """The softphone's codec list for ``--codec`` values (telephone-event always added).

    Raises:
        ValueError: an unknown name.
    """
    unknown = [n for n in names if n.upper() not in CODEC_NAMES]
    if unknown:
        raise ValueError(f"unknown codec {unknown[0]!r}: use {', '.join(CODEC_NAMES)}")
    return (*(CODEC_NAMES[n.upper()] for n in names), TELEPHONE_EVENT)


def _listen_address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--webhook-listen wants HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


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
        printer = asyncio.create_task(_print(app, live=config.partials))
        try:
            await app.run(stop)
        finally:
            try:  # events() ends once run() has: the printer shows the drained last lines
                await asyncio.wait_for(printer, PRINTER_GRACE)
            except (TimeoutError, asyncio.CancelledError):
                printer.cancel()


PRINTER_GRACE = 2.0
"""Seconds the live view gets to print what a stopped monitor emitted last."""


async def _print(app: Monitor, *, live: bool) -> None:
    """Print every event; with ``live``, partial lines stay in a region below the log, one per
    speaker, replaced as they change and removed when their final line is printed."""
    if not live:
        async for event in app.events():
            console.print(render(event))
        return
    partial: dict[tuple[str, str], str] = {}
    with Live(Text(""), console=console, auto_refresh=False, transient=True) as view:
        async for event in app.events():
            if isinstance(event, Line):
                key = (event.session_id, event.role)
                if not event.segment.final:
                    partial[key] = render(event)
                else:
                    partial.pop(key, None)
                    console.print(render(event))
            else:
                console.print(render(event))
            view.update(Text.from_markup("\n".join(partial.values())), refresh=True)
