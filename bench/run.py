"""``make bench``: run every benchmark, print one table, write it as JSON under bench/results/."""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import Row

BENCHMARKS = [
    "bench.sip_parse",
    "bench.register_udp",
    "bench.codecs",
    "bench.relay",
    "bench.rtpengine",
    "bench.fork",
    "bench.supervise",
    "bench.notifications",
    "bench.load",
    "bench.transcribe",
    "bench.transcribe_call",
    "bench.monitor_capacity",
]
RESULTS = Path(__file__).parent / "results"


def main(names: list[str]) -> int:
    """Run the named benchmark modules (all by default); return the exit status."""
    rows: list[Row] = []
    console = Console()
    for name in names or BENCHMARKS:
        console.print(f"[dim]running {name}…[/]")
        module = importlib.import_module(name)
        rows.extend(module.run())
    table = Table(
        title=f"callwatch benchmarks ({os.cpu_count()} cores, {platform.python_version()})"
    )
    for column in ("figure", "value", "unit", "cores", "note"):
        table.add_column(column, justify="right" if column in ("value", "cores") else "left")
    for row in rows:
        table.add_row(row.figure, f"{row.value:,.1f}", row.unit, str(row.cores), row.note)
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    payload = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": [
            {"figure": r.figure, "value": r.value, "unit": r.unit, "note": r.note} for r in rows
        ],
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
