"""SIPp (Debian sip-tester) registers against a running callwatch over UDP and TCP."""

from __future__ import annotations

import pytest

from tests.integration.conftest import RunningServer, eventually, requires_sipp, run_sipp

pytestmark = [pytest.mark.interop, requires_sipp]


def _agent_device(server: RunningServer) -> dict[str, str]:
    device: dict[str, str] = server.extension("108")["devices"][0]
    return device


def _sipp_args(
    server: RunningServer, device: dict[str, str], transport: str, expires: int | None
) -> list[str]:
    args = [
        "-s",
        device["sip_username"],
        "-au",
        device["authorization_id"],
        "-ap",
        device["sip_password"],
        "-t",
        transport,
    ]
    return args if expires is None else [*args, "-set", "expires", str(expires)]


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_register_then_unregister(server: RunningServer, transport: str) -> None:
    device = _agent_device(server)
    token = await server.token("101")
    target = f"127.0.0.1:{server.ports.sip}"
    assert await server.device_status(device["id"], token) == "Offline"

    code, out = await run_sipp("register.xml", target, *_sipp_args(server, device, transport, 3600))
    assert code == 0, out

    assert await eventually(lambda: _is(server, device, token, "Online"))
    bindings = server.server.registrar.bindings(device["id"])
    assert len(bindings) == 1
    assert bindings[0].source.transport == ("UDP" if transport == "u1" else "TCP")

    code, out = await run_sipp(
        "unregister.xml", target, *_sipp_args(server, device, transport, None)
    )
    assert code == 0, out
    assert await eventually(lambda: _is(server, device, token, "Offline"))


async def test_registration_expires(server: RunningServer) -> None:
    device = _agent_device(server)
    token = await server.token("101")
    code, out = await run_sipp(
        "register.xml", f"127.0.0.1:{server.ports.sip}", *_sipp_args(server, device, "u1", 2)
    )
    assert code == 0, out
    assert await server.device_status(device["id"], token) == "Online"
    assert await eventually(lambda: _is(server, device, token, "Offline"), timeout=6)


async def test_wrong_password_is_refused(server: RunningServer) -> None:
    device = dict(_agent_device(server), sip_password="not-the-password")
    token = await server.token("101")
    code, _ = await run_sipp(
        "register.xml", f"127.0.0.1:{server.ports.sip}", *_sipp_args(server, device, "u1", 3600)
    )
    assert code != 0
    assert server.server.registrar.counters["forbidden"] >= 1
    assert await server.device_status(device["id"], token) == "Offline"


async def _is(server: RunningServer, device: dict[str, str], token: str, status: str) -> bool:
    return await server.device_status(device["id"], token) == status
