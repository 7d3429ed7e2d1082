"""The command line: admin provisioning, the demo tenant JSON, and `serve` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from callwatch.cli import app

runner = CliRunner()


def _json(args: list[str]) -> dict[str, object]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_admin_creates_account_extension_device_app(tmp_path: Path) -> None:
    dd = ["--data-dir", str(tmp_path)]
    account = _json(
        ["admin", "create-account", "--name", "Acme", "--main-number", "+14155550123", *dd]
    )
    ext = _json(
        [
            "admin",
            "create-extension",
            "--account-id",
            str(account["id"]),
            "--number",
            "201",
            "--first-name",
            "Ann",
            "--password",
            "pw-123456",
            *dd,
        ]
    )
    assert ext["extension_number"] == "201" and isinstance(ext["jwt"], str)
    device = _json(["admin", "create-device", "--extension-id", str(ext["id"]), *dd])
    assert device["authorization_id"] == device["id"]
    created = _json(["admin", "create-app", "--name", "my app", *dd])
    assert created["client_id"] and created["client_secret"]


def test_admin_refuses_bad_input_clearly(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "admin",
            "create-extension",
            "--account-id",
            "1",
            "--number",
            "201",
            "--first-name",
            "X",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "account 1 does not exist" in result.output


def test_demo_tenant_json_is_stable(tmp_path: Path) -> None:
    first = _json(["demo-tenant", "--json", "--data-dir", str(tmp_path)])
    second = _json(["demo-tenant", "--json", "--data-dir", str(tmp_path)])
    assert first == second
    numbers = {e["extension_number"] for e in first["extensions"]}  # type: ignore[attr-defined]
    assert {"101", "102", "108", "109"} <= numbers
    for key in ("server_url", "client_id", "client_secret", "sip_domain", "trunk"):
        assert key in first


def test_serve_writes_ports_and_answers(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callwatch.cli",
            "serve",
            "--demo-tenant",
            "--data-dir",
            str(tmp_path),
            "--http-port",
            "0",
            "--sip-port",
            "0",
            "--sip-tls-port",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ports_file = tmp_path / "ports.json"
        deadline = time.monotonic() + 30
        while not ports_file.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "serve did not write ports.json"
            time.sleep(0.05)
        ports = json.loads(ports_file.read_text())
        assert set(ports) == {"http", "sip", "sip_tls"}
        assert all(isinstance(v, int) and v > 0 for v in ports.values())
        tenant = _json(["demo-tenant", "--json", "--data-dir", str(tmp_path)])
        assert tenant["server_url"] == f"http://127.0.0.1:{ports['http']}"
        assert tenant["sip"] == {
            "host": "127.0.0.1",
            "udp": ports["sip"],
            "tcp": ports["sip"],
            "tls": ports["sip_tls"],
        }
        response = httpx.get(f"{tenant['server_url']}/restapi/v1.0/account/~/extension")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["errors"][0]["errorCode"].startswith("OAU-")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0
    assert not (tmp_path / "ports.json").exists()
