"""Who takes part in a load run, and where the server is.

Theory of operation
-------------------
A load run needs an OAuth app, a supervisor (extension 101 of the demo tenant, its JWT and its
``OtherPhone`` device, which the generator registers and which answers every monitoring
INVITE), and N agents, each an extension with one device of its own, all *Monitored* in a
call-monitoring group where the supervisor is *Monitoring*: a :class:`LoadTenant`.

- Against a local server (``--data-dir``), :func:`provision_load_tenant` writes it into the
  server's SQLite store — the demo tenant, agents ``2001…`` with a device "Load Phone" each,
  and the group "Load" — idempotently: every piece is looked up by its natural key first. The
  server may be running: the store is in WAL mode and the server reads extensions, devices and
  groups from it on every call. :func:`local_target` adds the ports from ``ports.json``.
- Against a remote server, the tenant comes from a JSON file as
  :meth:`LoadTenant.to_json` writes it (``callwatch sim provision --data-dir DIR`` prints one on
  the server's host); :func:`remote_target` pairs it with the addresses given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from callwatch.ids import IdGenerator
from callwatch.sim.agents import SipServer
from callwatch.store.provisioning import (
    create_device,
    create_extension,
    create_monitoring_group,
    provision_demo_tenant,
)
from callwatch.store.repo import MONITORED, MONITORING, Extension, Store
from callwatch.store.sqlite import SqliteStore

__all__ = [
    "AGENT_DEVICE_NAME",
    "DEFAULT_SIP_DOMAIN",
    "FIRST_AGENT_NUMBER",
    "LOAD_GROUP_NAME",
    "LoadAgent",
    "LoadDevice",
    "LoadTarget",
    "LoadTenant",
    "TenantError",
    "local_target",
    "provision_load_tenant",
    "read_ports",
    "remote_target",
]

FIRST_AGENT_NUMBER = 2001
"""Extension number of the first load agent."""
AGENT_DEVICE_NAME = "Load Phone"
"""Name of each load agent's device (type ``OtherPhone``)."""
LOAD_GROUP_NAME = "Load"
"""The call-monitoring group of the load agents and the supervisor."""
SUPERVISOR_NUMBER = "101"
"""The demo tenant's supervisor."""
DEFAULT_SIP_DOMAIN = "sip.callwatch.local"
"""SIP domain of a demo account created here (an existing account keeps its own)."""
DB_FILE = "callwatch.db"
PORTS_FILE = "ports.json"
MAX_AGENTS = 10_000
"""Most agents one load tenant holds."""


class TenantError(ValueError):
    """The server's data directory or a tenant file cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadDevice:
    """A device's id and SIP credentials."""

    id: str
    sip_username: str
    sip_password: str
    authorization_id: str

    def to_json(self) -> dict[str, str]:
        """The device as the demo tenant's JSON spells it (what :class:`SimAgent` takes)."""
        return {
            "id": self.id,
            "sip_username": self.sip_username,
            "sip_password": self.sip_password,
            "authorization_id": self.authorization_id,
        }

    @classmethod
    def from_json(cls, raw: object, where: str) -> LoadDevice:
        """Parse :meth:`to_json`'s shape.

        Raises:
            TenantError: a field is missing or not a string.
        """
        obj = _object(raw, where)
        return cls(
            id=_text(obj, "id", where),
            sip_username=_text(obj, "sip_username", where),
            sip_password=_text(obj, "sip_password", where),
            authorization_id=_text(obj, "authorization_id", where),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadAgent:
    """One agent: the extension customers call and the device that answers."""

    extension_number: str
    extension_id: str
    device: LoadDevice

    def to_json(self) -> dict[str, object]:
        """JSON for a tenant file."""
        return {
            "extension_number": self.extension_number,
            "extension_id": self.extension_id,
            "device": self.device.to_json(),
        }

    @classmethod
    def from_json(cls, raw: object, where: str) -> LoadAgent:
        """Parse :meth:`to_json`'s shape (raises :class:`TenantError`)."""
        obj = _object(raw, where)
        return cls(
            extension_number=_text(obj, "extension_number", where),
            extension_id=_text(obj, "extension_id", where),
            device=LoadDevice.from_json(obj.get("device"), f"{where}.device"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTenant:
    """The app, the supervisor and the agents of a load run."""

    client_id: str
    client_secret: str
    sip_domain: str
    supervisor_number: str
    supervisor_jwt: str
    supervisor_device: LoadDevice
    """The device the generator registers to receive every monitoring INVITE."""
    agents: tuple[LoadAgent, ...]

    def to_json(self) -> dict[str, object]:
        """The tenant file of a remote run."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "sip_domain": self.sip_domain,
            "supervisor": {
                "extension_number": self.supervisor_number,
                "jwt": self.supervisor_jwt,
                "device": self.supervisor_device.to_json(),
            },
            "agents": [agent.to_json() for agent in self.agents],
        }

    @classmethod
    def from_json(cls, raw: object) -> LoadTenant:
        """Parse a tenant file.

        Raises:
            TenantError: a field is missing or of the wrong type, or there are too many agents.
        """
        obj = _object(raw, "tenant")
        supervisor = _object(obj.get("supervisor"), "supervisor")
        agents = obj.get("agents")
        if not isinstance(agents, list) or len(agents) > MAX_AGENTS:
            raise TenantError(f"agents: expected a list of at most {MAX_AGENTS} agents")
        return cls(
            client_id=_text(obj, "client_id", "tenant"),
            client_secret=_text(obj, "client_secret", "tenant"),
            sip_domain=_text(obj, "sip_domain", "tenant"),
            supervisor_number=_text(supervisor, "extension_number", "supervisor"),
            supervisor_jwt=_text(supervisor, "jwt", "supervisor"),
            supervisor_device=LoadDevice.from_json(supervisor.get("device"), "supervisor.device"),
            agents=tuple(LoadAgent.from_json(a, f"agents[{i}]") for i, a in enumerate(agents)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTarget:
    """The server a run loads and the tenant it uses there."""

    server_url: str
    sip: SipServer
    tenant: LoadTenant
    server_pid: int | None = None
    """The server's process on this host, when it is local (for its CPU time)."""


def _object(raw: object, where: str) -> dict[str, object]:
    if not isinstance(raw, dict):
        raise TenantError(f"{where}: expected an object")
    return {str(key): value for key, value in raw.items()}


def _text(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise TenantError(f"{where}.{key}: expected a string")
    return str(value)


# -- local servers ------------------------------------------------------------------------------


def read_ports(data_dir: Path) -> dict[str, int]:
    """The ports a server running on ``data_dir`` wrote (``http``, ``sip``, ``sip_tls``).

    Raises:
        TenantError: no ``ports.json`` (the server is not running there) or a bad one.
    """
    path = data_dir / PORTS_FILE
    try:
        raw = json.loads(path.read_text())
        return {name: int(raw[name]) for name in ("http", "sip", "sip_tls")}
    except FileNotFoundError:
        raise TenantError(
            f"no {path}: is `callwatch serve --data-dir {data_dir}` running?"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise TenantError(f"{path} is not a ports file: {exc}") from None


def local_target(
    data_dir: Path, *, agents: int, host: str = "127.0.0.1", server_pid: int | None = None
) -> LoadTarget:
    """Provision ``agents`` load agents into the server running on ``data_dir`` and say where
    it listens (blocking: SQLite writes).

    Raises:
        TenantError: the server is not running there.
    """
    ports = read_ports(data_dir)
    store = SqliteStore(data_dir / DB_FILE)
    try:
        tenant = provision_load_tenant(store, agents=agents)
    finally:
        store.close()
    url_host = f"[{host}]" if ":" in host else host
    return LoadTarget(
        server_url=f"http://{url_host}:{ports['http']}",
        sip=SipServer(host, ports["sip"], ports["sip_tls"], domain=tenant.sip_domain),
        tenant=tenant,
        server_pid=server_pid,
    )


def remote_target(server_url: str, sip_host: str, sip_port: int, tenant_file: Path) -> LoadTarget:
    """A remote server and the tenant file provisioned for it.

    Raises:
        TenantError: the file is missing, not JSON, or not a tenant file.
    """
    try:
        raw = json.loads(tenant_file.read_text())
    except (OSError, ValueError) as exc:
        raise TenantError(f"cannot read {tenant_file}: {exc}") from None
    tenant = LoadTenant.from_json(raw)
    return LoadTarget(
        server_url=server_url.rstrip("/"),
        sip=SipServer(sip_host, sip_port, domain=tenant.sip_domain),
        tenant=tenant,
    )


def provision_load_tenant(
    store: Store,
    *,
    agents: int,
    first_number: int = FIRST_AGENT_NUMBER,
    ids: IdGenerator | None = None,
) -> LoadTenant:
    """Create (idempotently) the demo tenant, ``agents`` load agents from ``first_number`` on
    and the group "Load" where the supervisor monitors them; return the tenant.

    Raises:
        TenantError: too many agents, or numbers beyond 8 digits.
    """
    if not 0 <= agents <= MAX_AGENTS or first_number + agents > 10**8:
        raise TenantError(f"cannot provision {agents} agents from {first_number}")
    ids = ids or IdGenerator()
    demo = provision_demo_tenant(store, sip_domain=DEFAULT_SIP_DOMAIN, ids=ids)
    supervisor = demo.user(SUPERVISOR_NUMBER)
    device = next(d for d in supervisor.devices if d.type == "OtherPhone")
    account_id = demo.account.id
    made = [_ensure_agent(store, ids, account_id, str(first_number + i)) for i in range(agents)]
    _ensure_group(store, ids, account_id, supervisor.extension, [ext for ext, _ in made])
    return LoadTenant(
        client_id=demo.client_id,
        client_secret=demo.client_secret,
        sip_domain=demo.account.sip_domain,
        supervisor_number=SUPERVISOR_NUMBER,
        supervisor_jwt=supervisor.jwt,
        supervisor_device=_device(device.id, device.sip_username, device.sip_password),
        agents=tuple(agent for _, agent in made),
    )


def _device(device_id: str, username: str, password: str) -> LoadDevice:
    return LoadDevice(
        id=device_id, sip_username=username, sip_password=password, authorization_id=device_id
    )


def _ensure_agent(
    store: Store, ids: IdGenerator, account_id: int, number: str
) -> tuple[Extension, LoadAgent]:
    ext = store.extensions.find_by_number(account_id, number)
    if ext is None:
        ext = create_extension(
            store, ids=ids, account_id=account_id, number=number, first_name="Load",
            last_name=f"Agent {number}",
        )  # fmt: skip
    device = next(
        (d for d in store.devices.list_for_extension(ext.id) if d.name == AGENT_DEVICE_NAME),
        None,
    ) or create_device(store, ids=ids, extension=ext, type="OtherPhone", name=AGENT_DEVICE_NAME)
    agent = LoadAgent(
        extension_number=number,
        extension_id=str(ext.id),
        device=_device(device.id, device.sip_username, device.sip_password),
    )
    return ext, agent


def _ensure_group(
    store: Store,
    ids: IdGenerator,
    account_id: int,
    supervisor: Extension,
    agents: Sequence[Extension],
) -> None:
    group = store.monitoring.find_by_name(account_id, LOAD_GROUP_NAME)
    if group is None:
        group = create_monitoring_group(store, ids=ids, account_id=account_id, name=LOAD_GROUP_NAME)
    current = {m.extension_id: m.permissions for m in store.monitoring.list_members(group.id)}
    wanted = {supervisor.id: frozenset({MONITORING})}
    wanted |= {ext.id: frozenset({MONITORED}) for ext in agents}
    changes = [(ext_id, perms) for ext_id, perms in wanted.items() if current.get(ext_id) != perms]
    if changes:
        store.monitoring.bulk_assign(group.id, added=changes)
