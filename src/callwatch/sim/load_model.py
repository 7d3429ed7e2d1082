"""What a load run is asked and what it answers: its configuration, the progress it reports
as it goes, and the final report (see :mod:`callwatch.sim.load` for the run itself)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from callwatch.sim.agents import CODECS
from callwatch.sim.load_meter import MediaSummary, Percentiles
from callwatch.sim.load_tenant import MAX_AGENTS
from callwatch.sip.offer_answer import OPUS_16000, TELEPHONE_EVENT, CodecSpec

__all__ = [
    "LOAD_CODECS",
    "PTIME",
    "RATE_LIMITS_ENV",
    "CallFailure",
    "LoadConfig",
    "LoadProgress",
    "LoadReport",
    "LoadSetupError",
    "ProgressCallback",
    "RemoteServer",
]

RATE_LIMITS_ENV = (
    'CALLWATCH_API__RATE_LIMITS=\'{"Light":100000,"Medium":100000,"Heavy":100000,"Auth":100000}\''
)
"""What the server needs in its environment for a load run (RingCentral's limits are ~50/min)."""
PTIME = 0.02
"""Packet interval the meters assume (seconds); callwatch's user agents negotiate 20 ms."""
LOAD_CODECS: dict[str, tuple[CodecSpec, ...]] = {
    **CODECS,
    "OPUS16": (OPUS_16000, TELEPHONE_EVENT),
}
"""What the parties of a load run may talk: the simulator's codecs, plus RingCentral's
OPUS/16000 (PT 109) as ``OPUS16``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteServer:
    """A server on another host, and the tenant file provisioned there."""

    server_url: str
    """REST base URL, e.g. ``https://callwatch.example.com``."""
    sip_host: str
    sip_port: int
    """SIP over UDP."""
    tenant_file: Path
    """JSON as ``callwatch sim provision`` prints it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadConfig:
    """What to run and against which server (exactly one of ``data_dir`` and ``remote``)."""

    calls: int = 10
    """Concurrent supervised calls."""
    duration: float = 10.0
    """Seconds every call is up at once (the steady phase)."""
    codec: str = "PCMU"
    """The parties' codec: ``PCMU``, ``G722``, ``OPUS`` (48 kHz) or ``OPUS16``; the
    supervisor's device takes the same one, so its forks are zero-copy."""
    ramp: float = 20.0
    """Calls started per second."""
    data_dir: Path | None = None
    """A local server's data directory (``ports.json``, the SQLite store)."""
    remote: RemoteServer | None = None
    host: str = "127.0.0.1"
    """Address of the generator's sockets, and of a local server."""
    server_pid: int | None = None
    """The local server's pid (found from ``data_dir`` when None)."""
    setup_timeout: float = 15.0
    """Seconds one call may take from INVITE to its supervisor's first packets."""
    drain: float = 0.3
    """Seconds for in-flight packets after the talkers stop."""
    progress_interval: float = 0.25
    supervise: bool = True
    """Supervise every call from the generator's own device. False: the calls run
    unsupervised, for a supervisor outside the generator (``callwatch monitor`` logged in as
    the supervisor, whose "Load" group lets it monitor the load agents)."""

    def __post_init__(self) -> None:
        if (self.data_dir is None) == (self.remote is None):
            raise ValueError("give either a local data directory or a remote server")
        if self.duration <= 0 or self.ramp <= 0 or self.setup_timeout <= 0:
            raise ValueError("duration, ramp and setup_timeout must be positive")
        if not 1 <= self.calls <= MAX_AGENTS:
            raise ValueError(f"calls must be between 1 and {MAX_AGENTS}: {self.calls}")
        if self.codec.upper() not in LOAD_CODECS:
            raise ValueError(f"codec must be one of {', '.join(LOAD_CODECS)}: {self.codec!r}")

    @property
    def max_packets(self) -> int:
        """Packets one party may send: more than the longest the run can last."""
        longest = self.calls / self.ramp + self.setup_timeout + self.duration + 60
        return math.ceil(longest / PTIME)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadProgress:
    """Where a run is (handed to the progress callback every ``progress_interval``)."""

    phase: str
    """``provisioning``, ``registering``, ``ramping``, ``steady``, ``draining``,
    ``hanging up`` or ``done``."""
    elapsed: float
    """Seconds since the run started."""
    steady_elapsed: float
    """Seconds into the steady phase (0 before it)."""
    duration: float
    calls: int
    calls_up: int
    calls_supervised: int
    calls_failed: int
    packets_sent: int
    packets_received: int
    """At the other parties and at the supervisor's device."""
    loss_percent: float | None
    """Loss at the other parties so far (packets in flight excluded)."""
    fork_loss_percent: float | None


ProgressCallback = Callable[[LoadProgress], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailure:
    """Why one call was not (fully) supervised."""

    call: int
    agent: str
    """The agent's extension number."""
    stage: str
    """``register``, ``call``, ``presence``, ``supervise``, ``fork`` or ``media``."""
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    """The outcome of a run."""

    calls: int
    calls_set_up: int
    calls_supervised: int
    failures: tuple[CallFailure, ...]
    duration: float
    """Seconds of the steady phase."""
    codec: str
    media: MediaSummary
    setup_ms: Percentiles
    """Customer INVITE → agent confirmed."""
    supervise_ms: Percentiles
    """``POST …/supervise`` → 201 (the device answered)."""
    server_cpu_percent: float | None
    """Server CPU during the steady phase, % of one core (None: not a local server)."""
    generator_cpu_percent: float
    host_cpu_percent: float | None
    """Every core of the host during the steady phase, % of all cores: well above server +
    generator means other processes competed with the run."""
    rate_limited: int
    """REST requests the server refused with 429."""
    teardown_problems: int = 0
    """Hang-ups or unregistrations the server did not confirm in time."""
    stray_invites: int = 0
    """Monitoring INVITEs for sessions no call expected."""
    server_url: str = ""
    notes: tuple[str, ...] = field(default=())
    supervise: bool = True
    """Whether the generator supervised its calls (:attr:`LoadConfig.supervise`)."""
    hung_up_at: float | None = None
    """``time.monotonic()`` (system-wide on Linux) when the customers began hanging up: where
    an outside supervisor's recordings of the calls end."""

    @property
    def ok(self) -> bool:
        """Every call was set up, supervised (when the generator supervises), and stayed up."""
        done = self.calls_supervised if self.supervise else self.calls_set_up
        return not self.failures and done == self.calls

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {**asdict(self), "ok": self.ok}


class LoadSetupError(Exception):
    """The run could not start at all: no server, bad tenant, the supervisor refused."""
