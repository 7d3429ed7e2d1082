"""Supervisor forks: mix-tick cost per output codec, supervised calls per core, fork latency.

(a) mix tick: the pure :class:`~callwatch.media.mixfork.MixFork` core with two sources, one
    packet queued per source per tick through the sources' hot path, then one tick (drain,
    jitter buffer, decode, resample, saturating mix, encode, restamp, a real loopback
    ``sendto``); best mean of several rounds, per output codec, from two PCMU parties and from
    two parties already in the output codec.
(b) capacity: the relay (``MediaEngine``, uvloop) in its own process pinned to core 1, the
    ``bench.relay_load`` generator on core 0. One supervised call = two bridged legs × 50
    packets/s in, each packet forwarded to the other leg *and* forked zero-copy to the
    supervisor's stream for that party: 100 packets/s in, 200 out. Calls are added in steps; a
    step passes when every forwarded and every forked packet arrived (received = 2 × sent) at
    ≤ 80 % relay CPU, with the same retry and noise rules as ``bench.relay``.
(c) latency: at :data:`LATENCY_CALLS` supervised calls, a blocking receiver splits what arrives
    into forwarded packets (the generator's SSRCs) and forked ones (the forks' own SSRCs) and
    reports one-way latency for each; the generator sending to itself is the direct baseline.
    The VM is shared: CPU other processes used meanwhile is reported, and a noisy attempt is
    repeated once (the quieter one counts).
(d) mixing: :data:`MIX_CALLS` calls supervised by a device that took one stream, i.e. one
    two-party PCMU mix per call (sent to a socket nobody reads: a mix never falls silent, and
    the sink must); relay CPU per call compared with the zero-copy steps, and loss of the
    call's own forwarded packets.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import resource
import socket
import struct
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from bench import relay_load
from bench.common import Row
from bench.relay import (
    LOAD_CPU,
    RELAY_CPU,
    SEND_TIME,
    WARMUP,
    RelayProcess,
    Step,
    _foreign_ticks,
    _noise_ticks,
    _spawn,
    measure,
)
from bench.relay_server import HOST, pin
from callwatch.media.aio import MediaEngine
from callwatch.media.codecs.registry import codec_for
from callwatch.media.mixfork import FRAME
from callwatch.media.relay import Relay

PORT_MIN, PORT_MAX = 20000, 39999
STEPS = (100, 300, 500, 700, 900, 1100, 1300)
LATENCY_CALLS = 300
MIX_CALLS = 200
CPU_LIMIT = 0.80
ROUNDS, TICKS = 7, 300
OUTPUTS = [("PCMU", 8000, None, 0), ("G722", 8000, None, 9), ("OPUS", 48000, 2, 111),
           ("OPUS", 16000, None, 109)]  # fmt: skip


# -- (a) the mix tick ---------------------------------------------------------------------------


def _payloads(fmt: tuple[str, int, int | None], count: int) -> list[bytes]:
    info = codec_for(*fmt)
    rate, n = info.sample_rate, info.frame_samples
    t = np.arange(count * n) / rate
    wave = 5000 * np.sin(2 * np.pi * 220 * t) + 2500 * np.sin(2 * np.pi * 660 * t + 1)
    pcm = np.round(wave * (0.7 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.int16)
    encoder = info.new_encoder()
    return [encoder.encode(pcm[i * n : (i + 1) * n]) for i in range(count)]


def tick_cost(source: tuple[str, int, int | None], output: tuple[str, int, int | None, int]
              ) -> float:  # fmt: skip
    """Best mean µs per 20 ms tick of a two-source mix (source hot path included)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    step = codec_for(*source).timestamp_step
    payloads = _payloads(source, TICKS)
    header = struct.Struct("!BBHII")
    try:
        best = float("inf")
        for _ in range(ROUNDS):
            relay = Relay(rng=random.Random(1))
            legs = [relay.add_stream(port=p, rtp_send=out.sendto, remote=sink.getsockname(),
                                     now=0.0) for p in (1, 2, 3)]  # fmt: skip
            sources = {legs[0].stream_id: {96: source}, legs[1].stream_id: {96: source}}
            mix = relay.add_mix(legs[2].stream_id, sources, output, now=0.0)
            feeds = list(mix.inputs.values())
            packets = [[header.pack(0x80, 96, i, i * step, ssrc) + payloads[i]
                        for i in range(TICKS)] for ssrc in (1, 2)]  # fmt: skip
            start = time.perf_counter()
            for i in range(TICKS):
                arrival = i * FRAME + 0.005
                feeds[0].forward(packets[0][i], arrival)
                feeds[1].forward(packets[1][i], arrival)
                mix.tick((i + 1) * FRAME)
            best = min(best, (time.perf_counter() - start) / TICKS * 1e6)
        return best
    finally:
        sink.close()
        out.close()


def _tick_rows() -> list[Row]:
    rows = []
    for output in OUTPUTS:
        name = "/".join(str(x) for x in output[:3] if x is not None)
        pcmu = tick_cost(("PCMU", 8000, None), output)
        note = f"2 PCMU parties → {name}; ≈ {0.02 / (pcmu * 1e-6) * CPU_LIMIT:,.0f} such mixes "
        note += "per core at 80 % (mixing alone)"
        rows.append(Row(f"mix tick, 2 PCMU sources → {name}", pcmu, "µs", note))
        if output[0] != "PCMU":
            same = tick_cost(output[:3], output)
            rows.append(Row(f"mix tick, 2 {name} sources → {name}", same, "µs",
                            "both parties already in the output codec"))  # fmt: skip
    return rows


# -- (b), (c) the relay process -------------------------------------------------------------------


def serve(conn: Connection, port_min: int, port_max: int, cpu: int | None) -> None:
    """Relay process entry point (ops: ``add_supervised``, ``snapshot``, ``stop``)."""
    pin(cpu)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_main(conn, port_min, port_max))


async def _main(conn: Connection, port_min: int, port_max: int) -> None:
    engine = MediaEngine(host=HOST, port_min=port_min, port_max=port_max)
    await engine.start()
    try:
        while True:
            op, *args = await asyncio.to_thread(conn.recv)
            if op == "stop":
                break
            conn.send(await _handle(engine, op, args))
    finally:
        await engine.stop()


async def _handle(engine: MediaEngine, op: str, args: list[Any]) -> Any:
    if op in ("add_supervised", "add_mixed"):
        count, remote, device = args
        ports = []
        for _ in range(count):
            a = await engine.create_stream(remote=tuple(remote), label="customer")
            b = await engine.create_stream(remote=tuple(remote), label="agent")
            await engine.pair(a.stream_id, b.stream_id)
            if op == "add_mixed":
                sup = await engine.create_stream(remote=tuple(device), rtcp_mux=True)
                pcmu = {0: ("PCMU", 8000, None)}
                await engine.mix(sup.stream_id, {a.stream_id: pcmu, b.stream_id: pcmu},
                                 output=("PCMU", 8000, None, 0))  # fmt: skip
            for party in (a, b) if op == "add_supervised" else ():
                sup = await engine.create_stream(remote=tuple(remote), rtcp_mux=True)
                await engine.add_fork(party.stream_id, sup.stream_id)
            ports.append((a.port, b.port))
        return ports
    if op == "snapshot":
        return await engine.totals()
    raise ValueError(f"unknown op {op!r}")


class ForkRelayProcess(RelayProcess):
    """``bench.relay``'s relay process, serving supervised calls."""

    def __enter__(self) -> ForkRelayProcess:
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(
            target=serve, args=(child, PORT_MIN, PORT_MAX, RELAY_CPU), daemon=True
        )
        self._proc.start()
        return self


def _lost(step: Step) -> int:
    """Forwarded + forked packets that never arrived (each sent packet should arrive twice)."""
    return 2 * step.sent - step.received


def _passed(step: Step) -> bool:
    return _lost(step) == 0 and step.cpu <= CPU_LIMIT and not step.generator_limited


def _capacity(relay: ForkRelayProcess, sock: socket.socket, me: tuple[str, int]) -> list[Step]:
    ports: list[tuple[int, int]] = []
    steps: list[Step] = []
    for calls in STEPS:
        ports += relay.call("add_supervised", calls - len(ports), me, me)
        targets = [(HOST, port) for pair in ports for port in pair]
        step = measure(relay, sock, targets)
        if not _passed(step) or step.noisy:  # one more try: this VM is shared
            retry = measure(relay, sock, targets)
            step = min(step, retry, key=lambda s: (s.noisy, not _passed(s), s.cpu))
        steps.append(step)
        if not _passed(step):
            break
    return steps


def _receive_split(sock: socket.socket, until: float, legs: int, cpu: int | None,
                   conn: Connection) -> None:  # fmt: skip
    """Blocking receiver: latency in µs of forwarded (SSRC < ``legs``) and forked packets."""
    pin(cpu)
    sock.settimeout(0.3)
    buf = bytearray(2048)
    unpack = struct.Struct("!Iq").unpack_from  # SSRC at 8, the generator's stamp at 12
    now_ns = time.monotonic_ns
    forwarded, forked = array("d"), array("d")
    while True:
        try:
            sock.recv_into(buf)
        except TimeoutError:
            if time.monotonic() >= until:
                break
            continue
        ssrc, stamp = unpack(buf, 8)
        (forwarded if ssrc < legs else forked).append((now_ns() - stamp) / 1000)
    conn.send((forwarded, forked))


Samples = np.ndarray[Any, Any]


def _latency(relay: ForkRelayProcess, sock: socket.socket, targets: list[tuple[str, int]]
             ) -> tuple[Samples, Samples, float]:  # fmt: skip
    """(forwarded, forked) latencies in µs and the CPU other processes used, in cores."""
    receiver, rx = _spawn(_receive_split, sock, time.monotonic() + SEND_TIME, len(targets),
                          LOAD_CPU)  # fmt: skip
    sender, tx = _spawn(relay_load.send_paced, sock, targets, SEND_TIME, LOAD_CPU)
    ours = {os.getpid(), receiver.pid or 0, sender.pid or 0, relay.pid}
    before, start = _foreign_ticks(ours), time.monotonic()
    tx.recv()
    noise = _noise_ticks(before, _foreign_ticks(ours))
    noise /= os.sysconf("SC_CLK_TCK") * (time.monotonic() - start)
    forwarded, forked = rx.recv()
    sender.join()
    receiver.join()
    skip = int(len(forwarded) * WARMUP / SEND_TIME)  # the start-up transient
    return np.asarray(forwarded[skip:]), np.asarray(forked[skip:]), noise


def _percentiles(samples: Samples) -> tuple[float, float]:
    p50, p99 = np.percentile(samples, [50, 99]) / 1000 if len(samples) else (np.nan, np.nan)
    return float(p50), float(p99)


def _relay_rows() -> list[Row]:
    sock = relay_load.make_socket()
    me = sock.getsockname()
    device = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    device.bind((HOST, 0))
    try:
        direct = measure(None, sock, [me] * 2 * LATENCY_CALLS, latency=True)
        with ForkRelayProcess() as relay:
            ports = relay.call("add_supervised", LATENCY_CALLS, me, me)
            targets = [(HOST, p) for pair in ports for p in pair]
            latency = _latency(relay, sock, targets)
            if latency[2] > 0.10:
                latency = min(latency, _latency(relay, sock, targets), key=lambda r: r[2])
            steps = _capacity(relay, sock, me)
        with ForkRelayProcess() as relay:
            ports = relay.call("add_mixed", MIX_CALLS, me, device.getsockname())
            mixed = measure(relay, sock, [(HOST, p) for pair in ports for p in pair])
    finally:
        sock.close()
        device.close()
    return _latency_rows(direct, *latency) + _capacity_rows(steps) + _mix_rows(mixed, steps)


def _latency_rows(direct: Step, forwarded: Samples, forked: Samples, noise: float) -> list[Row]:
    d50, d99 = direct.percentiles_ms()
    f50, f99 = _percentiles(forwarded)
    k50, k99 = _percentiles(forked)
    note = (
        f"one-way at {LATENCY_CALLS} supervised calls (30k pps in, 60k out), sink blocked "
        f"in recv; forked p50/p99 {k50:.3f}/{k99:.3f} ms ({len(forked):,} pkts), forwarded "
        f"{f50:.3f}/{f99:.3f} ms, direct {d50:.3f}/{d99:.3f} ms; other processes used "
        f"{noise:.0%} of a core meanwhile"
    )
    return [
        Row("fork latency p50 (added over direct)", k50 - d50, "ms", note),
        Row("fork latency p99 (added over direct)", k99 - d99, "ms", note),
        Row("fork p99 minus forward p99 (what the fork itself adds)", k99 - f99, "ms",
            "the fork's copy leaves right after the call's own packet"),
    ]  # fmt: skip


def _mix_rows(mixed: Step, steps: list[Step]) -> list[Row]:
    per_call = mixed.cpu / MIX_CALLS * 100
    compare = "".join(
        f"; with 2 zero-copy forks instead, {s.cpu / s.calls * 100:.3f} at {s.calls} calls"
        for s in steps[:2]
    )
    note = (f"{MIX_CALLS} calls, each a 2-party PCMU → PCMU mix (one stream to the device): "
            f"relay CPU {mixed.cpu:.0%}, call packets lost {mixed.lost}{compare}; "
            f"other processes {mixed.noise:.0%}")  # fmt: skip
    return [Row("relay CPU per call supervised through a mix", per_call, "% of a core/call", note)]


def _step_text(step: Step) -> str:
    text = f"{step.calls}: {step.cpu:.0%} CPU {step.us_per_packet:.1f} µs/pkt in"
    if _lost(step):
        text += f" lost {_lost(step)}"
    if step.generator_limited:
        text += f" (generator delivered {step.offered:.0%})"
    if step.noise + step.steal > 0.10:
        text += f" (noisy: others {step.noise:.0%}, steal {step.steal:.0%})"
    return text


def _capacity_rows(steps: list[Step]) -> list[Row]:
    passed = [s for s in steps if _passed(s)]
    trail = ", ".join(_step_text(s) for s in steps)
    if steps and steps[-1].generator_limited and _lost(steps[-1]) == 0:
        trail += " — stopped: the load generator could not keep its schedule"
    return [Row(f"supervised calls per core (2 zero-copy forks each), no loss, ≤ {CPU_LIMIT:.0%}",
                passed[-1].calls if passed else 0, "calls", trail)]  # fmt: skip


def run() -> list[Row]:
    """Every measurement; about a minute."""
    started = time.monotonic()
    rows = _tick_rows() + _relay_rows()
    rows.append(Row("fork benchmark wall time", time.monotonic() - started, "s"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.figure}: {row.value:,.3f} {row.unit}  ({row.note})")
