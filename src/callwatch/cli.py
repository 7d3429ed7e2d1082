"""``callwatch`` command line: parses arguments, calls app.py, holds no logic of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from callwatch.admin_cli import admin
from callwatch.app import CallwatchServer, open_store, provision_demo, read_ports, server_url
from callwatch.config import Settings
from callwatch.demo import Demo, DemoResult
from callwatch.demo_view import render_summary
from callwatch.ids import IdGenerator
from callwatch.monitor_cli import monitor
from callwatch.sim_cli import sim

app = typer.Typer(
    help="callwatch: call supervision, monitoring and live-audio streaming.", no_args_is_help=True
)
app.add_typer(admin, name="admin")
app.add_typer(sim, name="sim")
console = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="database, TLS key, ports.json")]


def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    settings = Settings()
    updates: dict[str, object] = {}
    if data_dir is not None:
        updates["data_dir"] = data_dir
    return settings.model_copy(update=updates | overrides)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address every listener binds")] = None,
    http_port: Annotated[int | None, typer.Option(help="REST port (0 = any free port)")] = None,
    sip_port: Annotated[int | None, typer.Option(help="SIP UDP and TCP port (0 = any)")] = None,
    sip_tls_port: Annotated[int | None, typer.Option(help="SIP TLS port (0 = any)")] = None,
    data_dir: DataDir = None,
    demo_tenant: Annotated[bool, typer.Option(help="provision the demo tenant")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the platform: SIP registrar, REST API."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = _settings(data_dir, **({"host": host} if host else {}))
    if http_port is not None:
        settings.api.port = http_port
    if sip_port is not None:
        settings.sip.port = sip_port
    if sip_tls_port is not None:
        settings.sip.tls_port = sip_tls_port
    _run(_serve(settings, demo_tenant))


async def _serve(settings: Settings, demo_tenant: bool) -> None:
    server = CallwatchServer(settings)
    if demo_tenant:
        provision_demo(server.store, settings, server.ids)
    ports = await server.start()
    url = server_url(settings, ports)
    console.print(f"[bold green]callwatch[/] REST  {url}  (docs: {url}/docs)")
    console.print(
        f"          SIP   udp/tcp {settings.host}:{ports.sip}  tls {settings.host}:{ports.sip_tls}"
        f"  domain {settings.sip.domain}"
    )
    console.print(f"          ports written to {settings.data_dir / 'ports.json'}")
    if demo_tenant:
        console.print(
            f"          demo tenant: callwatch demo-tenant --json --data-dir {settings.data_dir}"
        )
    try:
        await server.wait()
    finally:
        await server.stop()


app.command()(monitor)


@app.command()
def demo(
    calls: Annotated[int, typer.Option(help="concurrent simulated calls", min=1, max=50)] = 1,
    data_dir: DataDir = None,
    codec: Annotated[str, typer.Option(help="PCMU, G722 or OPUS for the calls")] = "PCMU",
    seconds: Annotated[float | None, typer.Option(help="cut each conversation (seconds)")] = None,
) -> None:
    """The whole system on one machine: platform, supervisor app, simulated calls, summary."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = _run_demo(calls, data_dir, codec.upper(), seconds)
    render_summary(console, result)
    if not result.ok:
        console.print("[red]demo failed[/]: " + ("; ".join(result.problems) or "no recording"))
        raise typer.Exit(1)


def _run_demo(calls: int, data_dir: Path | None, codec: str, seconds: float | None) -> DemoResult:
    out: list[DemoResult] = []

    async def main() -> None:
        demo = Demo(
            calls=calls, data_dir=data_dir, codec=codec, report=console.print, seconds=seconds
        )
        out.append(await demo.run())

    _run(main())
    return out[0]


@app.command("demo-tenant")
def demo_tenant_cmd(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (the only format)")] = True,
) -> None:
    """Provision (idempotently) and print the demo tenant: credentials, extensions, devices."""
    settings = _settings(data_dir)
    store = open_store(settings)
    try:
        tenant = provision_demo(store, settings, IdGenerator())
        ports = read_ports(settings.data_dir)
        url = server_url(settings, ports) if ports else settings.api.public_url or ""
        data = tenant.to_json(url)
        if ports:
            data["sip"] = {
                "host": settings.host,
                "udp": ports.sip,
                "tcp": ports.sip,
                "tls": ports.sip_tls,
            }
    finally:
        store.close()
    typer.echo(json.dumps(data, indent=2))


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it is installed, else on the default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main)
        return
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main)


def main() -> None:
    """Entry point of the ``callwatch`` script."""
    app()


if __name__ == "__main__":
    main()
