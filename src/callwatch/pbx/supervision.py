"""Supervise requests: every spelling of the body, and every check made before an INVITE is sent.

The permission rule lives here and only here: the caller's extension must be ``Monitoring`` in a
call-monitoring group in which the agent is ``Monitored``, both in the caller's account, and the
supervisor's device must belong to the caller and be Online. Every refusal is a
:class:`~callwatch.pbx.errors.PbxError` carrying the RingCentral error code and HTTP status the API
answers with; none of them sends anything to the device.

Error codes (RingCentral documents none for supervise; ours, listed in the README):

=========  ======  ==========================================================================
code       status  meaning
=========  ======  ==========================================================================
CMN-101    400     bad ``mode``, missing device or agent selector, both selectors given
CMN-102    404     unknown session, party, agent extension or device
SUP-101    403     the caller may not monitor this agent (monitoring groups)
SUP-102    403     the device belongs to another extension
SUP-103    409     the device is not registered (Offline)
SUP-104    409     the call is already supervised (by another supervisor, or this target)
SUP-105    409     party-level supervise of a call with more than two parties
SUP-106    409     the call (or party) is not answered yet
SUP-107    409     the supervisor's device declined the INVITE
SUP-108    409     the supervisor's device did not answer in time
=========  ======  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from callwatch.pbx import sessions as ts
from callwatch.pbx.control import Caller
from callwatch.pbx.errors import InvalidParameter, NotFound, PbxError
from callwatch.pbx.permissions import may_monitor
from callwatch.store.repo import Device, Extension, Store

MODES = ("Listen",)
"""Modes exposed today; Whisper, Barge and Takeover would be added here (see media forks)."""
MEDIA_SDP = {"sendonly": "sendonly", "sendrecv": "sendrecv"}


class SupervisionRefused(PbxError):
    """A supervise request that the platform refuses (403/409 with an SUP- code)."""

    def __init__(self, code: str, status: int, message: str, *, parameter: str | None = None):
        super().__init__(message, parameter=parameter)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class SuperviseRequest:
    """A supervise body with the spellings normalised."""

    mode: str
    device_id: str
    agent_extension_id: str | None
    agent_extension_number: str | None
    auto_answer: bool
    direction: str
    """``sendrecv`` or ``sendonly`` (from ``mediaSDP``)."""


def parse_request(body: Mapping[str, object]) -> SuperviseRequest:
    """Read a supervise body, accepting ``supervisorDeviceId``/``deviceId``,
    ``agentExtensionNumber``/``agentExtensionId``/``extensionNumber``, ``autoAnswer`` and
    ``mediaSDP``.

    Raises:
        InvalidParameter: a field is missing, of the wrong type, or not allowed.
    """
    mode = _text(body, "mode")
    if mode not in MODES:
        raise InvalidParameter(f"Parameter [mode] value is invalid: {mode!r}", parameter="mode")
    device = _text(body, "supervisorDeviceId", required=False) or _text(
        body, "deviceId", required=False
    )
    if not device:
        raise InvalidParameter("Parameter [supervisorDeviceId] is required",
                               parameter="supervisorDeviceId")  # fmt: skip
    number = _text(body, "agentExtensionNumber", required=False) or _text(
        body, "extensionNumber", required=False
    )
    ext_id = _text(body, "agentExtensionId", required=False)
    auto = body.get("autoAnswer", True)
    if not isinstance(auto, bool):
        raise InvalidParameter("Parameter [autoAnswer] must be a boolean", parameter="autoAnswer")
    media = _text(body, "mediaSDP", required=False) or "sendRecv"
    if media.lower() not in MEDIA_SDP:
        raise InvalidParameter(f"Parameter [mediaSDP] value is invalid: {media!r}",
                               parameter="mediaSDP")  # fmt: skip
    return SuperviseRequest(mode, device, ext_id, number, auto, MEDIA_SDP[media.lower()])


def _text(body: Mapping[str, object], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidParameter(f"Parameter [{name}] is required", parameter=name)
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidParameter(f"Parameter [{name}] must be a string", parameter=name)
    return value


@dataclass(frozen=True, slots=True)
class Approved:
    """A supervise request that passed every check."""

    supervisor: Extension
    agent: Extension
    device: Device
    monitored: tuple[str, ...]
    """Party ids to listen to, agent's first."""


def approve(
    store: Store,
    *,
    caller: Caller,
    session: ts.TelephonySession,
    request: SuperviseRequest,
    party_id: str | None,
    device_online: bool,
) -> Approved:
    """Check a supervise request against the call, the groups and the device.

    ``party_id`` is given for party-level (dual-channel) supervise. Raises a
    :class:`~callwatch.pbx.errors.PbxError` for every refusal.
    """
    supervisor = store.extensions.get(caller.extension_id)
    if supervisor is None:
        raise NotFound("The caller's extension is not found", parameter="extensionId")
    agent = _agent(store, caller.account_id, request, party_level=party_id is not None)
    callers = [p for p in session.parties if p.role is not ts.PartyRole.SUPERVISOR and p.active]
    if not any(p.extension_id == agent.id for p in callers):
        raise NotFound(f"Extension [{agent.number}] is not a party of this call",
                       parameter="agentExtensionId")  # fmt: skip
    members = store.monitoring.memberships_in_account(caller.account_id)
    if supervisor.id == agent.id or not may_monitor(supervisor.id, agent.id, members):
        raise SupervisionRefused("SUP-101", 403, "The caller is not allowed to monitor this agent")
    device = _device(store, caller, request.device_id, online=device_online)
    monitored = _monitored(session, callers, agent, party_id)
    check_not_supervised(session, supervisor, monitored)
    return Approved(supervisor=supervisor, agent=agent, device=device, monitored=monitored)


def _agent(
    store: Store, account_id: int, request: SuperviseRequest, *, party_level: bool
) -> Extension:
    if request.agent_extension_id is not None:
        agent = (
            store.extensions.get(int(request.agent_extension_id))
            if request.agent_extension_id.isdigit() and len(request.agent_extension_id) < 19
            else None
        )
        parameter = "agentExtensionId"
    elif request.agent_extension_number is not None and not party_level:
        agent = store.extensions.find_by_number(account_id, request.agent_extension_number)
        parameter = "agentExtensionNumber"
    else:
        name = "agentExtensionId" if party_level else "agentExtensionNumber"
        raise InvalidParameter(f"Parameter [{name}] is required", parameter=name)
    if agent is None or agent.account_id != account_id:
        raise NotFound("The agent's extension is not found", parameter=parameter)
    return agent


def _device(store: Store, caller: Caller, device_id: str, *, online: bool) -> Device:
    device = store.devices.get(device_id)
    if device is None or device.account_id != caller.account_id:
        raise NotFound(f"Device [{device_id}] is not found", parameter="supervisorDeviceId")
    if device.extension_id != caller.extension_id:
        raise SupervisionRefused("SUP-102", 403, "The device belongs to another extension",
                                 parameter="supervisorDeviceId")  # fmt: skip
    if not online:
        raise SupervisionRefused("SUP-103", 409, "The supervisor's device is not registered",
                                 parameter="supervisorDeviceId")  # fmt: skip
    return device


def _monitored(
    session: ts.TelephonySession, callers: list[ts.Party], agent: Extension, party_id: str | None
) -> tuple[str, ...]:
    if party_id is not None:
        if len(callers) > 2:
            raise SupervisionRefused("SUP-105", 409, "Party-level supervise needs a call with "
                                     "at most two parties")  # fmt: skip
        party = session.party(party_id)
        if party.role is ts.PartyRole.SUPERVISOR or not party.active:
            raise NotFound(f"Party [{party_id}] is not found", parameter="partyId")
        if party.status is not ts.PartyStatus.ANSWERED:
            raise SupervisionRefused("SUP-106", 409, "The party is not answered")
        return (party_id,)
    if any(p.status is not ts.PartyStatus.ANSWERED and p.status is not ts.PartyStatus.HOLD
           for p in callers):  # fmt: skip
        raise SupervisionRefused("SUP-106", 409, "The call is not answered")
    agent_first = sorted(callers, key=lambda p: p.extension_id != agent.id)
    return tuple(p.id for p in agent_first)


def check_not_supervised(
    session: ts.TelephonySession, supervisor: Extension, monitored: Iterable[str]
) -> None:
    wanted = set(monitored)
    for party in session.parties:
        if party.role is not ts.PartyRole.SUPERVISOR or not party.active:
            continue
        if party.extension_id != supervisor.id:
            raise SupervisionRefused("SUP-104", 409, "The call is supervised by another "
                                     "supervisor")  # fmt: skip
        if wanted & set(party.monitored):
            raise SupervisionRefused("SUP-104", 409, "This supervisor already listens to "
                                     "that party")  # fmt: skip
