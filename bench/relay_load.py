"""The load generator for the relay benchmark: one sender and one receiver process.

Both share one UDP socket ``S`` (inherited through ``fork``): every call leg sends from it to
its relay port, so every stream latches on ``S`` and the relay forwards everything back to
``S``, where the receiver drains it. That keeps the generator to two syscalls per packet, so it
can sit on one core beside nothing else while the relay has the other core to itself.

Each packet is a 172-byte PCMU-sized RTP packet (12-byte header + 160 bytes) with its own
SSRC and sequence per leg, and ``CLOCK_MONOTONIC`` in nanoseconds in payload bytes 0–8: the
receiver computes one-way latency from it (both processes read the same clock).
"""

from __future__ import annotations

import socket
import struct
import time
from array import array
from multiprocessing.connection import Connection

from bench.relay_server import pin

PACKET = 172
PERIOD = 0.020
"""20 ms packetisation: 50 packets per second per leg."""
SLOTS = 80
"""The 20 ms period is cut into 250 µs slots; each leg sends in one of them."""
_STAMP = struct.Struct("!HIIq")  # seq, ts, SSRC, then the stamp at payload offset 0


def make_socket() -> socket.socket:
    """The generator's shared socket, with a receive buffer as large as the system allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with open("/proc/sys/net/core/rmem_max") as f:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(f.read()))
    sock.bind(("127.0.0.1", 0))
    return sock


def _packets(count: int) -> list[bytearray]:
    return [bytearray(b"\x80\x00" + bytes(PACKET - 2)) for _ in range(count)]


def send_paced(
    sock: socket.socket, targets: list[tuple[str, int]], duration: float, cpu: int | None,
    conn: Connection,
) -> None:  # fmt: skip
    """Every target gets one packet per 20 ms for ``duration`` s; reports (sent, worst lag)."""
    pin(cpu)
    bufs = _packets(len(targets))
    slots = [list(range(k, len(targets), SLOTS)) for k in range(SLOTS)]
    seq = [0] * len(targets)
    pack, now_ns, sendto = _STAMP.pack_into, time.monotonic_ns, sock.sendto
    start = time.monotonic()
    end, tick, slot, sent, worst = start + duration, start, 0, 0, 0.0
    while tick < end:
        for i in slots[slot]:
            n = seq[i] = seq[i] + 1
            pack(bufs[i], 2, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, i, now_ns())
            sendto(bufs[i], targets[i])
        sent += len(slots[slot])
        slot = (slot + 1) % SLOTS
        tick += PERIOD / SLOTS
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            worst = max(worst, -delay)
    conn.send((sent, worst, start))


def send_flood(
    sock: socket.socket, targets: list[tuple[str, int]], duration: float, cpu: int | None,
    conn: Connection,
) -> None:  # fmt: skip
    """Round-robin over the targets as fast as one core can; reports (sent, 0)."""
    pin(cpu)
    bufs = _packets(len(targets))
    pack, sendto = _STAMP.pack_into, sock.sendto
    end = time.monotonic() + duration
    sent, n = 0, 0
    while time.monotonic() < end:
        n += 1
        for i, target in enumerate(targets):
            pack(bufs[i], 2, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, i, 0)
            sendto(bufs[i], target)
        sent += len(targets)
    conn.send((sent, 0.0, end - duration))


def receive(
    sock: socket.socket, until: float, latency: bool, cpu: int | None, conn: Connection
) -> None:
    """Drain ``sock`` until monotonic ``until`` and then until 0.3 s of silence, so nothing of
    this step is left for the next one; reports (count, latencies in µs or empty).

    With ``latency`` the receiver blocks in ``recv`` and stamps each packet as it wakes. Without,
    it drains the socket every 0.5 ms and sleeps in between, never blocked *in* ``recv``: then
    the relay's ``sendto`` has no sleeping reader to wake. On loopback that wake-up (an IPI to
    the generator's core) cost the relay ~30 % of its CPU in ``sock_def_readable`` (perf), a
    cost of this test topology that a relay sending out of a NIC to other hosts does not pay.
    """
    pin(cpu)
    if latency:
        _receive_blocking(sock, until, conn)
        return
    sock.setblocking(False)
    buf = bytearray(2048)
    recv_into = sock.recv_into
    count, last, quiet_since = 0, 0, time.monotonic()
    while True:
        try:
            while True:
                recv_into(buf)
                count += 1
        except BlockingIOError:
            pass
        now = time.monotonic()
        if count != last:
            last, quiet_since = count, now
        elif now >= until and now - quiet_since > 0.3:
            break
        time.sleep(0.0005)
    conn.send((count, array("d")))


def _receive_blocking(sock: socket.socket, until: float, conn: Connection) -> None:
    sock.settimeout(0.3)
    buf = bytearray(2048)
    recv_into, now_ns, unpack = sock.recv_into, time.monotonic_ns, struct.Struct("!q").unpack_from
    samples = array("d")
    count = 0
    while True:
        try:
            recv_into(buf)
        except TimeoutError:
            if time.monotonic() >= until:
                break
            continue
        count += 1
        samples.append((now_ns() - unpack(buf, 12)[0]) / 1000)
    conn.send((count, samples))
