"""``callwatch sim …``: the call simulator's commands.

- ``sim load`` runs N concurrent supervised calls against a local server (``--data-dir``) or a
  remote one (``--server-url --sip-host --sip-port --agents-json``), shows a live view and
  prints a table of what it measured; it exits 1 when a call failed to be set up or supervised.
- ``sim provision`` writes the load agents into a server's store and prints the tenant file
  ``sim load --agents-json`` takes (run it on the server's host before a remote run).

The server needs high REST rate limits for a load run: start it with
``CALLWATCH_API__RATE_LIMITS='{"Light":100000,"Medium":100000,"Heavy":100000,"Auth":100000}'``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from callwatch.sim.load import (
    RATE_LIMITS_ENV,
    LoadConfig,
    LoadProgress,
    LoadReport,
    LoadSetupError,
    RemoteServer,
    run_load,
)
from callwatch.sim.load_host import raise_fd_limit
from callwatch.sim.load_meter import Percentiles
from callwatch.sim.load_tenant import (
    DB_FILE,
    FIRST_AGENT_NUMBER,
    MAX_AGENTS,
    TenantError,
    provision_load_tenant,
)
from callwatch.store.sqlite import SqliteStore

__all__ = ["LoadDisplay", "report_table", "sim"]

sim = typer.Typer(
    help="Simulated calls: load generation against a callwatch server.", no_args_is_help=True
)

FDS_PER_CALL = 12
"""File descriptors one call needs in the generator (SIP listeners, RTP sockets, margins)."""
MAX_FAILURES_SHOWN = 20
_T = TypeVar("_T")


class Codec(StrEnum):
    """Codecs the simulated parties can talk."""

    PCMU = "PCMU"
    G722 = "G722"
    OPUS = "OPUS"
    OPUS16 = "OPUS16"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def _p50_p99(p: Percentiles) -> str:
    if not p.count:
        return "n/a"
    return f"{_ms(p.p50)} / {_ms(p.p99)} ms (max {_ms(p.max)}, n={p.count:,})"


class LoadDisplay:
    """The live view of a run: calls up, the steady phase's clock, and the running figures."""

    def __init__(self, console: Console, *, calls: int, duration: float) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<12}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]:>10}"),
            TextColumn("{task.fields[info]}"),
            console=console,
        )
        self._calls = self._progress.add_task("calls up", total=calls, count="", info="")
        self._clock = self._progress.add_task("provisioning", total=duration, count="", info="")

    def __enter__(self) -> LoadDisplay:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, p: LoadProgress) -> None:
        """Show ``p`` (the run's progress callback)."""
        self._progress.update(
            self._calls,
            completed=p.calls_up,
            count=f"{p.calls_up}/{p.calls}",
            info=f"{p.calls_supervised} supervised, {p.calls_failed} failed",
        )
        self._progress.update(
            self._clock,
            description=p.phase,
            completed=min(p.steady_elapsed, p.duration),
            count=f"{min(p.steady_elapsed, p.duration):.1f}/{p.duration:g} s",
            info=f"{p.packets_sent:,} sent, {p.packets_received:,} recv, "
            f"loss {_pct(p.loss_percent)} / sup. {_pct(p.fork_loss_percent)}",
        )


def report_table(report: LoadReport) -> Table:
    """The final figures of a run as a rich table."""
    media = report.media
    table = Table(
        title=f"callwatch sim load: {report.calls} calls × {report.duration:g} s, {report.codec}",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("calls set up", f"{report.calls_set_up} / {report.calls}"),
        ("calls supervised", f"{report.calls_supervised} / {report.calls}"),
        ("packets sent / received", f"{media.packets_sent:,} / {media.direct_received:,}"),
        ("loss, other party", _pct(media.direct_loss_percent)),
        ("loss, supervisor (since joined)", _pct(media.fork_loss_percent)),
        ("jitter p50 / p99, other party", _p50_p99(media.direct_jitter_ms)),
        ("jitter p50 / p99, supervisor", _p50_p99(media.fork_jitter_ms)),
        ("fork latency p50 / p99", _p50_p99(media.fork_latency_ms)),
        ("call set-up p50 / p99", _p50_p99(report.setup_ms)),
        ("supervise → 201 p50 / p99", _p50_p99(report.supervise_ms)),
        ("server CPU (% of a core)", _pct(report.server_cpu_percent)),
        ("generator CPU (% of a core)", _pct(report.generator_cpu_percent)),
        (f"host CPU (% of all {os.cpu_count() or 1} cores)", _pct(report.host_cpu_percent)),
        ("429 responses", str(report.rate_limited)),
        ("misrouted / unstamped packets", f"{media.misrouted} / {media.unstamped}"),
        ("teardown problems", str(report.teardown_problems)),
    ]  # fmt: skip
    for figure, value in rows:
        table.add_row(figure, value)
    return table


def _failures_table(report: LoadReport) -> Table:
    table = Table(title=f"{len(report.failures)} failed calls")
    for column in ("call", "agent", "stage", "reason"):
        table.add_column(column)
    for failure in report.failures[:MAX_FAILURES_SHOWN]:
        table.add_row(str(failure.call), failure.agent, failure.stage, failure.reason)
    return table


def _run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` on uvloop where it is installed (the generator's packet rate needs it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    result: _T = uvloop.run(main)
    return result


def _config(
    *,
    data_dir: Path | None,
    server_url: str | None,
    sip_host: str | None,
    sip_port: int | None,
    agents_json: Path | None,
    **common: Any,
) -> LoadConfig:
    remote_args = (server_url, sip_host, sip_port, agents_json)
    if data_dir is not None:
        if any(arg is not None for arg in remote_args):
            raise typer.BadParameter("--data-dir is for a local server; drop the remote options")
        return LoadConfig(data_dir=data_dir, **common)
    if server_url is None or sip_host is None or sip_port is None or agents_json is None:
        raise typer.BadParameter(
            "give --data-dir (local server) or all of --server-url, --sip-host, --sip-port "
            "and --agents-json (remote server)"
        )
    remote = RemoteServer(
        server_url=server_url, sip_host=sip_host, sip_port=sip_port, tenant_file=agents_json
    )
    return LoadConfig(remote=remote, **common)


@sim.command(
    "load",
    epilog=f"For a load run the server needs high REST rate limits: start it with "
    f"{RATE_LIMITS_ENV}",
)
def load_cmd(
    calls: Annotated[
        int, typer.Option("--calls", "-n", min=1, max=MAX_AGENTS, help="concurrent calls")
    ] = 10,
    duration: Annotated[
        float, typer.Option(min=0.1, help="seconds every call is up at once")
    ] = 10.0,
    codec: Annotated[Codec, typer.Option(case_sensitive=False, help="the parties' codec")] = (
        Codec.PCMU
    ),
    ramp: Annotated[float, typer.Option(min=0.1, help="calls started per second")] = 20.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="a local server's data directory (ports.json, store)")
    ] = None,
    server_url: Annotated[str | None, typer.Option(help="remote server's REST URL")] = None,
    sip_host: Annotated[str | None, typer.Option(help="remote server's SIP host")] = None,
    sip_port: Annotated[int | None, typer.Option(help="remote server's SIP UDP port")] = None,
    agents_json: Annotated[
        Path | None, typer.Option(help="tenant file from `callwatch sim provision` (remote)")
    ] = None,
    host: Annotated[
        str, typer.Option(help="address of the generator's sockets (and of a local server)")
    ] = "127.0.0.1",
    report_json: Annotated[Path | None, typer.Option(help="also write the report here")] = None,
    live: Annotated[bool, typer.Option(help="show the live progress view")] = True,
    supervise: Annotated[
        bool,
        typer.Option(
            help="supervise every call from the generator; --no-supervise leaves that to a "
            "`callwatch monitor` of the Load group's supervisor"
        ),
    ] = True,
) -> None:
    """Run N concurrent supervised calls with 20 ms RTP and report loss, jitter, fork latency
    and CPU. Exits 1 if any call failed to be set up (or supervised)."""
    config = _config(
        data_dir=data_dir, server_url=server_url, sip_host=sip_host, sip_port=sip_port,
        agents_json=agents_json, calls=calls, duration=duration, codec=codec.value, ramp=ramp,
        host=host, supervise=supervise,
    )  # fmt: skip
    raise_fd_limit(calls * FDS_PER_CALL + 256)
    out, err = Console(), Console(stderr=True)
    try:
        if live:
            with LoadDisplay(err, calls=calls, duration=duration) as display:
                report = _run(run_load(config, display.update))
        else:
            report = _run(run_load(config))
    except LoadSetupError as exc:
        err.print(f"[bold red]load run not started:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    out.print(report_table(report))
    if report.failures:
        out.print(_failures_table(report))
    for note in report.notes:
        out.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if report_json is not None:
        report_json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if not report.ok:
        raise typer.Exit(1)


@sim.command("provision")
def provision_cmd(
    data_dir: Annotated[Path, typer.Option(help="the server's data directory")],
    agents: Annotated[
        int, typer.Option(min=1, max=MAX_AGENTS, help="load agents to provision")
    ] = 10,
    first_number: Annotated[
        int, typer.Option(help="extension number of the first agent")
    ] = FIRST_AGENT_NUMBER,
) -> None:
    """Provision (idempotently) load agents, the supervisor and the "Load" monitoring group;
    print the tenant file a remote `sim load --agents-json` takes (secrets included)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(data_dir / DB_FILE)
    try:
        tenant = provision_load_tenant(store, agents=agents, first_number=first_number)
    except TenantError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()
    typer.echo(json.dumps(tenant.to_json(), indent=2))
