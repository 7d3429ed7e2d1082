"""The load generator: its measuring core without sockets, tenant provisioning, and whole runs
against ``callwatch serve`` in its own process (the library and the ``callwatch sim`` CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.server import ServerProcess
from typer.testing import CliRunner

from callwatch.ids import IdGenerator
from callwatch.sim.load import LoadConfig, LoadProgress, run_load
from callwatch.sim.load_host import CpuSample, CpuUse, find_server_pid
from callwatch.sim.load_meter import (
    RING,
    MeterBoard,
    Percentiles,
    SampleBuffer,
    Speaker,
    Stamp,
    StampedPayloads,
    read_stamp,
    stamp_payload,
    summarize,
)
from callwatch.sim.load_tenant import LOAD_GROUP_NAME, LoadTenant, provision_load_tenant
from callwatch.sim_cli import sim
from callwatch.store.repo import MONITORED, MONITORING
from callwatch.store.sqlite import SqliteStore

LOAD_LIMITS = '{"Light": 100000, "Medium": 100000, "Heavy": 100000, "Auth": 100000}'
PTIME = 0.02


# -- the measuring core (pure) -------------------------------------------------------------------


class TestStamps:
    def test_round_trip_keeps_the_frame_head(self) -> None:
        frame = bytes(range(160))
        stamped = stamp_payload(frame, Stamp(7, Speaker.AGENT, 123_456))
        assert len(stamped) == 160 and stamped[:152] == frame[:152]
        assert read_stamp(stamped) == Stamp(7, Speaker.AGENT, 123_456)

    def test_short_frames_are_padded(self) -> None:
        stamped = stamp_payload(b"\x01", Stamp(0, Speaker.CUSTOMER, 1))
        assert read_stamp(stamped) == Stamp(0, Speaker.CUSTOMER, 1)

    @pytest.mark.parametrize("payload", [b"", bytes(8), bytes(160), b"\xff" * 160])
    def test_unstamped_payloads_read_as_none(self, payload: bytes) -> None:
        assert read_stamp(payload) is None

    def test_stamped_payloads_are_made_on_demand(self) -> None:
        payloads = StampedPayloads(b"\xff" * 160, call=3, speaker=Speaker.CUSTOMER, count=10**9)
        assert len(payloads) == 10**9
        assert read_stamp(payloads[-1]) == Stamp(3, Speaker.CUSTOMER, 10**9 - 1)
        assert [read_stamp(p) for p in payloads[2:4]] == [
            Stamp(3, Speaker.CUSTOMER, 2),
            Stamp(3, Speaker.CUSTOMER, 3),
        ]
        with pytest.raises(IndexError):
            payloads[10**9]


def _payload(call: int, speaker: Speaker, counter: int) -> bytes:
    return stamp_payload(b"\xff" * 160, Stamp(call, speaker, counter))


class TestMeterBoard:
    def test_loss_jitter_and_fork_latency(self) -> None:
        board = MeterBoard(1, ptime=PTIME)
        for n in range(100):
            if n != 50:  # lost on the way to the agent
                board.direct_packet(
                    0, Speaker.CUSTOMER, _payload(0, Speaker.CUSTOMER, n), n * PTIME
                )
            if n >= 20:  # the supervisor joined at packet 20; its copy is 1 ms later
                board.fork_packet(0, _payload(0, Speaker.CUSTOMER, n), n * PTIME + 0.001)
        meter = board.meter(0, Speaker.CUSTOMER)
        meter.sent = 100
        summary = summarize(board, [meter])
        assert summary.direct_loss_percent == pytest.approx(1.0)
        assert summary.fork_loss_percent == 0.0  # 80 expected since it joined, 80 received
        assert summary.fork_received == 80
        assert summary.direct_jitter_ms.p50 == 0.0  # perfectly paced arrivals
        assert summary.fork_latency_ms.count == 79  # packet 50 has no direct arrival
        assert summary.fork_latency_ms.p50 == pytest.approx(1.0)

    def test_fork_before_direct_and_duplicates(self) -> None:
        board = MeterBoard(1)
        board.fork_packet(0, _payload(0, Speaker.AGENT, 5), 1.000)
        board.direct_packet(0, Speaker.AGENT, _payload(0, Speaker.AGENT, 5), 1.002)
        board.direct_packet(0, Speaker.AGENT, _payload(0, Speaker.AGENT, 5), 1.003)
        meter = board.meter(0, Speaker.AGENT)
        assert board.latencies.samples == [pytest.approx(-0.002)]
        assert (meter.direct.received, meter.direct.duplicates) == (1, 1)

    def test_jitter_follows_rfc_3550(self) -> None:
        board = MeterBoard(1)
        arrivals = [0.0, 0.030, 0.040]  # transit changes by 10 ms, then by 10 ms again
        for n, at in enumerate(arrivals):
            board.direct_packet(0, Speaker.CUSTOMER, _payload(0, Speaker.CUSTOMER, n), at)
        expected = 0.010 / 16
        expected += (0.010 - expected) / 16
        assert board.meter(0, Speaker.CUSTOMER).direct.jitter == pytest.approx(expected)

    def test_packets_of_other_calls_are_misrouted(self) -> None:
        board = MeterBoard(2)
        board.direct_packet(0, Speaker.CUSTOMER, _payload(1, Speaker.CUSTOMER, 0), 0.0)
        board.direct_packet(0, Speaker.CUSTOMER, _payload(0, Speaker.AGENT, 0), 0.0)
        board.fork_packet(1, _payload(0, Speaker.AGENT, 0), 0.0)
        board.fork_packet(1, b"\xff" * 160, 0.0)
        assert (board.misrouted, board.unstamped) == (3, 1)

    def test_matching_forgets_after_the_ring(self) -> None:
        board = MeterBoard(1)
        board.direct_packet(0, Speaker.CUSTOMER, _payload(0, Speaker.CUSTOMER, 0), 0.0)
        board.direct_packet(0, Speaker.CUSTOMER, _payload(0, Speaker.CUSTOMER, RING), 1.0)
        board.fork_packet(0, _payload(0, Speaker.CUSTOMER, 0), 2.0)
        assert board.latencies.count == 0


def test_sample_buffer_stays_bounded_and_even() -> None:
    buffer = SampleBuffer(limit=100)
    for n in range(10_000):
        buffer.add(float(n))
    kept = buffer.samples
    assert buffer.count == 10_000 and 50 <= len(kept) < 100
    assert kept[0] < 200 and kept[-1] > 9_700


def test_percentiles_nearest_rank() -> None:
    p = Percentiles.of([float(n) for n in range(1, 101)], scale=2.0)
    assert (p.count, p.p50, p.p99, p.max) == (100, 100.0, 198.0, 200.0)
    assert Percentiles.of([]) == Percentiles(0, None, None, None)


def test_cpu_use_is_percent_of_one_core() -> None:
    use = CpuUse.between(CpuSample(10.0, 5.0, 1.0), CpuSample(12.0, 6.0, 1.5))
    assert (use.server_percent, use.generator_percent) == (50.0, 25.0)
    assert (
        CpuUse.between(CpuSample(0.0, None, 0.0), CpuSample(1.0, None, 0.0)).server_percent is None
    )


# -- provisioning -------------------------------------------------------------------------------


def test_provisioning_is_idempotent_and_round_trips(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "callwatch.db")
    try:
        first = provision_load_tenant(store, agents=3, ids=IdGenerator(1))
        again = provision_load_tenant(store, agents=5, ids=IdGenerator(2))
        account = store.accounts.list_all()[0]
        group = store.monitoring.find_by_name(account.id, LOAD_GROUP_NAME)
        assert group is not None
        members = store.monitoring.list_members(group.id)
    finally:
        store.close()
    assert [a.extension_number for a in again.agents] == ["2001", "2002", "2003", "2004", "2005"]
    assert again.agents[:3] == first.agents
    assert again.supervisor_device == first.supervisor_device
    permissions = sorted(sorted(m.permissions) for m in members)
    assert permissions == [[MONITORED]] * 5 + [[MONITORING]]
    assert LoadTenant.from_json(json.loads(json.dumps(again.to_json()))) == again


# -- whole runs against a server process -----------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(env={"CALLWATCH_API__RATE_LIMITS": LOAD_LIMITS}) as process:
        yield process


async def test_every_call_is_set_up_supervised_and_measured(server: ServerProcess) -> None:
    seen: list[LoadProgress] = []
    config = LoadConfig(calls=3, duration=2.0, data_dir=server.data_dir, progress_interval=0.1)
    report = await run_load(config, seen.append)

    assert report.ok, report.failures
    assert (report.calls_set_up, report.calls_supervised) == (3, 3)
    media = report.media
    assert media.streams == 6 and media.packets_sent >= 6 * 2.0 / PTIME
    assert media.direct_loss_percent is not None and media.direct_loss_percent <= 1.0
    assert media.fork_loss_percent is not None and media.fork_loss_percent <= 1.0
    assert media.fork_latency_ms.count > 0 and media.fork_latency_ms.p99 is not None
    assert media.direct_jitter_ms.count == 6 and media.fork_jitter_ms.count == 6
    assert (media.misrouted, media.unstamped) == (0, 0)
    assert report.setup_ms.count == 3 and report.supervise_ms.count == 3
    assert report.server_cpu_percent is not None and report.server_cpu_percent >= 0
    assert report.generator_cpu_percent > 0
    assert report.host_cpu_percent is not None and report.host_cpu_percent > 0
    assert (report.rate_limited, report.teardown_problems, report.stray_invites) == (0, 0, 0)
    phases = [p.phase for p in seen]
    assert {"steady", "draining", "done"} <= set(phases) and phases[-1] == "done"
    assert seen[-1].calls_supervised == 3
    assert find_server_pid(server.data_dir) == (server.proc.pid if server.proc else None)


def test_cli_smoke(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["load", "--data-dir", str(server.data_dir), "--calls", "2", "--duration", "1"]
    result = CliRunner().invoke(sim, [*args, "--no-live", "--report-json", str(out)])
    assert result.exit_code == 0, result.output
    assert "fork latency p50 / p99" in result.output and "2 / 2" in result.output
    data = json.loads(out.read_text())
    assert data["ok"] is True and data["calls_supervised"] == 2


def test_cli_unsupervised_opus16(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["load", "--data-dir", str(server.data_dir), "--calls", "2", "--duration", "1"]
    args += ["--codec", "opus16", "--no-supervise", "--no-live", "--report-json", str(out)]
    result = CliRunner().invoke(sim, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["ok"] is True and data["calls_set_up"] == 2 and data["calls_supervised"] == 0
    assert data["codec"].upper() == "OPUS16"


def test_cli_refuses_a_half_remote_target() -> None:
    result = CliRunner().invoke(sim, ["load", "--server-url", "http://127.0.0.1:1"])
    assert result.exit_code == 2


async def test_rate_limits_are_reported() -> None:
    # presence and supervise are both Light: 3 requests are fewer than 2 calls need
    limits = '{"Light": 3, "Medium": 100000, "Heavy": 100000, "Auth": 100000}'
    with ServerProcess(env={"CALLWATCH_API__RATE_LIMITS": limits}) as process:
        report = await run_load(LoadConfig(calls=2, duration=0.5, data_dir=process.data_dir))
    assert not report.ok and report.rate_limited >= 1
    assert report.calls_set_up == 2 and report.calls_supervised < 2
    assert all("429" in f.reason for f in report.failures)
    assert {f.stage for f in report.failures} <= {"presence", "supervise"}
    assert any("CALLWATCH_API__RATE_LIMITS" in note for note in report.notes)
