"""What a load run reads about processes on its host: the local server's pid, CPU times (the
server's, its own, and the whole host's, which shows whether something else competed for the
cores), and the file-descriptor limit a thousand RTP sockets need.

Linux only for the server's and the host's CPU (``/proc``); elsewhere those figures are None.

The server's pid: ``DATA_DIR/serve.pid`` when the server wrote one, else the process whose
command line runs ``serve`` with ``--data-dir`` naming the same directory (both spellings,
``--data-dir DIR`` and ``--data-dir=DIR``).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CpuSample",
    "CpuUse",
    "find_server_pid",
    "host_cpu_ticks",
    "process_cpu_seconds",
    "raise_fd_limit",
    "sample_cpu",
]

PROC = Path("/proc")
PID_FILE = "serve.pid"
MAX_PROCESSES = 100_000
"""Processes looked at when searching /proc for the server."""


def _same_dir(arg: str, data_dir: Path) -> bool:
    try:
        return Path(arg).resolve() == data_dir
    except (OSError, RuntimeError):
        return False


def _runs_server_on(args: Sequence[str], data_dir: Path) -> bool:
    if "serve" not in args:
        return False
    for i, arg in enumerate(args):
        if arg == "--data-dir" and i + 1 < len(args) and _same_dir(args[i + 1], data_dir):
            return True
        if arg.startswith("--data-dir=") and _same_dir(arg.partition("=")[2], data_dir):
            return True
    return False


def _pid_file(data_dir: Path) -> int | None:
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if (PROC / str(pid)).exists() else None


def find_server_pid(data_dir: Path, *, proc: Path = PROC) -> int | None:
    """The pid of ``callwatch serve --data-dir data_dir`` on this host, or None."""
    wanted = data_dir.resolve()
    pid = _pid_file(wanted)
    if pid is not None:
        return pid
    own = os.getpid()
    entries = (p for p in proc.iterdir() if p.name.isdigit() and int(p.name) != own)
    for count, entry in enumerate(entries):
        if count >= MAX_PROCESSES:
            break
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        args = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        if _runs_server_on(args, wanted):
            return int(entry.name)
    return None


def process_cpu_seconds(pid: int, *, proc: Path = PROC) -> float | None:
    """User + system CPU seconds of process ``pid`` (None when it cannot be read)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold blanks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_cpu_ticks(*, proc: Path = PROC) -> tuple[int, int] | None:
    """(busy, total) clock ticks of every core since boot, from ``/proc/stat``."""
    try:
        with (proc / "stat").open() as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    ticks = [int(value) for value in fields[1:9]]  # user … steal; guest is inside user
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU times of the server, of this process and of the host at one instant."""

    wall: float
    """Monotonic seconds."""
    server: float | None
    generator: float
    host: tuple[int, int] | None = None
    """(busy, total) ticks of all cores."""


def sample_cpu(server_pid: int | None) -> CpuSample:
    """CPU times now."""
    server = process_cpu_seconds(server_pid) if server_pid is not None else None
    return CpuSample(time.monotonic(), server, time.process_time(), host_cpu_ticks())


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU used between two samples: the server's and the generator's in % of one core
    (200 % = two cores busy), the host's in % of all its cores (whoever used them)."""

    server_percent: float | None
    generator_percent: float
    host_percent: float | None = None

    @classmethod
    def between(cls, start: CpuSample, end: CpuSample) -> CpuUse:
        """The use from ``start`` to ``end``."""
        wall = max(end.wall - start.wall, 1e-9)
        server = None
        if start.server is not None and end.server is not None:
            server = (end.server - start.server) / wall * 100
        host = None
        if start.host is not None and end.host is not None and end.host[1] > start.host[1]:
            host = (end.host[0] - start.host[0]) / (end.host[1] - start.host[1]) * 100
        return cls(server, (end.generator - start.generator) / wall * 100, host)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (never above the hard
    limit, never lowering it); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
