"""Sharing the RTP port range with other processes: every free pair is tried before a 503."""

from __future__ import annotations

import random
import socket

import pytest

from callwatch.media.aio import MediaEngine
from callwatch.media.ports import PortsExhausted
from tests.media.loopback import HOST

HELD_PAIRS = 100
"""More pairs than any fixed number of attempts would have skipped (it used to be 64)."""


async def test_a_long_run_of_ports_held_elsewhere_is_skipped() -> None:
    base = random.randrange(30000, 38000, 2)
    held: list[socket.socket] = []
    try:
        for port in range(base, base + 2 * HELD_PAIRS):  # another server's calls
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(sock)
            try:
                sock.bind((HOST, port))
            except OSError:
                pytest.skip(f"port {port} already taken on this host")
        free = base + 2 * HELD_PAIRS
        engine = MediaEngine(host=HOST, port_min=base, port_max=free + 1)
        await engine.start()
        try:
            endpoint = await engine.create_stream()
            assert endpoint.port == free
            with pytest.raises(PortsExhausted):  # and then the range really is full
                await engine.create_stream()
        finally:
            await engine.stop()
    finally:
        for sock in held:
            sock.close()
