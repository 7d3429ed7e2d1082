"""Start ``callwatch serve`` in its own process for a benchmark, and measure its CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class ServerProcess:
    """A callwatch server with the demo tenant on free loopback ports, in a child process."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="callwatch-bench-")
        self.data_dir = Path(self._tmp.name)
        self._env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.tenant: dict[str, Any] = {}

    def __enter__(self) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "callwatch.cli",
            "serve",
            "--demo-tenant",
            "--data-dir",
            str(self.data_dir),
            "--http-port",
            "0",
            "--sip-port",
            "0",
            "--sip-tls-port",
            "0",
        ]
        self.proc = subprocess.Popen(
            cmd, env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        ports_file = self.data_dir / "ports.json"
        deadline = time.monotonic() + 30
        while not ports_file.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("callwatch serve did not start")
            time.sleep(0.05)
        self.ports = json.loads(ports_file.read_text())
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "callwatch.cli",
                "demo-tenant",
                "--json",
                "--data-dir",
                str(self.data_dir),
            ],
            check=True,
            capture_output=True,
            env=self._env,
        )
        self.tenant = json.loads(out.stdout)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        self._tmp.cleanup()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
