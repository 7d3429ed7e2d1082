"""Our relay beside rtpengine (Debian's userspace daemon, no kernel module) on the same load.

rtpengine runs with one worker thread, pinned to the relay's core; N two-party calls are set up
over its ng control protocol (bencoded dicts over UDP): ``offer`` from leg A and ``answer``
from leg B, both advertising the load generator's one socket, with ``asymmetric`` so rtpengine
sends to that advertised address rather than latching. The load generator and sink of
``bench.relay`` then push the same paced 20 ms PCMU load through rtpengine's ports as through
ours. rtpengine's CPU is its whole process (all threads, ``/proc/<pid>/stat``); its packet
count over the window is the ``statistics`` command's ``relayedpackets_user`` counter.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

from bench import relay_load
from bench.common import Row
from bench.relay import RELAY_CPU, RelayProcess, Step, measure
from bench.relay_server import HOST, pin
from callwatch.media.stats import RelayTotals

LOADS = [300, 700]
"""Calls at which both relays are measured (the relay bench's latency and comparison steps)."""

Bencoded = int | bytes | str | list[Any] | dict[Any, Any]


def bencode(value: Bencoded) -> bytes:
    """Encode ints, byte/text strings, lists and dicts (keys sorted, as bencode requires)."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
    return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value; strings come back as ``str`` (UTF-8, lossy)."""
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError(f"trailing bytes after offset {end}")
    return value


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    kind = data[i : i + 1]
    if kind == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        items, i = [], i + 1
        while data[i : i + 1] != b"e":
            item, i = _decode(data, i)
            items.append(item)
        if kind == b"l":
            return items, i + 1
        return dict(zip(items[::2], items[1::2], strict=True)), i + 1
    colon = data.index(b":", i)
    start = colon + 1
    end = start + int(data[i:colon])
    return data[start:end].decode("utf-8", "replace"), end


def _sdp(port: int) -> str:
    return (f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")  # fmt: skip


def _port(sdp: str) -> int:
    match = re.search(r"^m=audio (\d+) ", sdp, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no audio port in rtpengine's SDP: {sdp!r}")
    return int(match.group(1))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _prepare() -> None:
    """In the child before exec: pin to the relay's core, allow as many sockets as allowed."""
    pin(RELAY_CPU)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class RtpengineProcess:
    """rtpengine in the foreground and an ng control socket to it; a ``bench.relay.Relay``."""

    def __enter__(self) -> RtpengineProcess:
        self._ng = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._ng.bind((HOST, 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            self._addr = probe.getsockname()
        self._cookies = itertools.count()
        self._calls = 0
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ["rtpengine", f"--interface={HOST}", f"--listen-ng={HOST}:{self._addr[1]}",
             "--foreground", "--log-stderr", "--table=-1", "--port-min=40000",
             "--port-max=59999", "--num-threads=1", "--log-level=3"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=_prepare,
        )  # fmt: skip
        deadline = time.monotonic() + 5
        while True:
            try:
                if self.ng({"command": "ping"}, timeout=0.2).get("result") == "pong":
                    return self
            except TimeoutError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                self._log.seek(0)
                raise RuntimeError(f"rtpengine did not start: {self._log.read()[-500:]!r}")

    @property
    def pid(self) -> int:
        return self._proc.pid

    def ng(self, command: dict[str, Bencoded], timeout: float = 2.0) -> dict[str, Any]:
        """One ng request and its reply (matched by cookie)."""
        cookie = b"b%d" % next(self._cookies)
        self._ng.settimeout(timeout)
        self._ng.sendto(cookie + b" " + bencode(command), self._addr)
        while True:
            reply = self._ng.recv(65536)
            head, _, body = reply.partition(b" ")
            if head == cookie:
                result: dict[str, Any] = bdecode(body)
                if result.get("result") == "error":
                    raise RuntimeError(f"rtpengine: {result.get('error-reason')}")
                return result

    def add_calls(self, count: int, me: tuple[str, int]) -> list[tuple[int, int]]:
        """Set up ``count`` calls whose both legs are the generator's socket ``me``."""
        ports = []
        for _ in range(count):
            call_id = f"bench-{self._calls}"
            self._calls += 1
            offer = self.ng({"command": "offer", "call-id": call_id, "from-tag": "a",
                             "sdp": _sdp(me[1]), "flags": ["asymmetric"]})  # fmt: skip
            answer = self.ng({"command": "answer", "call-id": call_id, "from-tag": "a",
                              "to-tag": "b", "sdp": _sdp(me[1]),
                              "flags": ["asymmetric"]})  # fmt: skip
            # B sends to the offer's port (forwarded to A), A to the answer's (to B)
            ports.append((_port(answer["sdp"]), _port(offer["sdp"])))
        return ports

    def call(self, op: str, *args: Any) -> Any:
        if op != "snapshot":
            raise ValueError(f"unknown op {op!r}")
        cpu, taken_at = _cpu_seconds(self.pid), time.monotonic()
        totals = self.ng({"command": "statistics"})["statistics"]["totalstatistics"]
        packets = int(totals["relayedpackets_user"])
        return RelayTotals(self._calls * 2, packets, int(totals["relayedbytes_user"]), packets,
                           0, int(totals["relayedpacketerrors_user"]), 0, 0, 0,
                           taken_at=taken_at, media_cpu=cpu)  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._ng.close()
        self._log.close()


class OurRelay(RelayProcess):
    """``bench.relay``'s relay process, its CPU counted like rtpengine's: the whole process.

    ``bench.relay`` counts the media thread only; that share is kept in ``thread_cpu``.
    """

    thread_cpu: list[float]

    def add_calls(self, count: int, me: tuple[str, int]) -> list[tuple[int, int]]:
        return list(self.call("add_calls", count, me))

    def call(self, op: str, *args: Any) -> Any:
        reply = super().call(op, *args)
        if op == "snapshot":
            self.thread_cpu = [*getattr(self, "thread_cpu", [])[-1:], reply.media_cpu]
            reply = dataclasses.replace(reply, media_cpu=_cpu_seconds(self.pid))
        return reply


def _steps(relay: OurRelay | RtpengineProcess, calls: list[int]) -> list[tuple[Step, float]]:
    """``relay`` under the paced 20 ms load at each of ``calls`` (ascending): each step and,
    for our relay, its media thread's CPU share (0 for rtpengine)."""
    sock = relay_load.make_socket()
    me = sock.getsockname()
    steps = []
    try:
        with relay:
            ports: list[tuple[int, int]] = []
            for count in calls:
                ports += relay.add_calls(count - len(ports), me)
                step = measure(relay, sock, [(HOST, p) for pair in ports for p in pair])
                thread = getattr(relay, "thread_cpu", [0.0, 0.0])
                steps.append((step, (thread[1] - thread[0]) / step.span))
    finally:
        sock.close()
    return steps


def _describe(step: Step) -> str:
    text = f"CPU {step.cpu:.0%}, {step.us_per_packet:.2f} µs/pkt, lost {step.lost}"
    if step.generator_limited:
        text += f", generator delivered {step.offered:.0%} of the load"
    if step.noisy:
        text += f", noisy (other processes {step.noise:.0%}, steal {step.steal:.0%})"
    return text


def run() -> list[Row]:
    """Both relays at each of ``LOADS``; about 30 s."""
    figure = "rtpengine CPU per packet"
    if not shutil.which("rtpengine"):
        return [Row(figure, 0, "µs", "rtpengine not installed")]
    ours = _steps(OurRelay(), LOADS)
    try:
        theirs = _steps(RtpengineProcess(), LOADS)
    except (OSError, RuntimeError) as exc:
        return [Row(figure, 0, "µs", f"rtpengine failed: {exc}")]
    rows = []
    for (mine, thread), (other, _) in zip(ours, theirs, strict=True):
        note = (f"whole-process CPU, 1 core each; ours: {_describe(mine)} (media thread alone "
                f"{thread:.0%}, {thread / mine.cpu * mine.us_per_packet:.2f} µs/pkt); "
                f"rtpengine 1 worker thread: {_describe(other)}")  # fmt: skip
        load = f"{other.calls} calls at 20 ms"
        rows.append(Row(f"{figure}, {load}", other.us_per_packet, "µs", note))
        ratio = mine.us_per_packet / max(other.us_per_packet, 1e-9)
        rows.append(Row(f"CPU per packet ours/rtpengine, {load}", ratio, "×", note))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.figure}: {row.value:,.3f} {row.unit}  ({row.note})")
