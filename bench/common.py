"""What every benchmark reports: rows of (figure, value, unit) with the machine's core count."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the benchmark table."""

    figure: str
    value: float
    unit: str
    note: str = ""

    @property
    def cores(self) -> int:
        """Cores of the machine the figure was measured on."""
        return os.cpu_count() or 1
