"""The REST client of the supervisor SDK, for any RingCentral-compatible server.

:class:`RestClient` is an :class:`~callwatch.client.api_session.ApiSession` (login, automatic
refresh, typed errors, 429 handling, ``get``/``post``/``put``/``patch``/``delete``) plus typed
methods for what a supervisor app needs: the user's extension and devices, SIP credentials,
call-monitoring groups and the agents they allow supervising, telephony sessions, presence,
supervise and stop supervising (ringcentral-api.md §2.4–2.10). The error classes and the
dataclasses are re-exported here. RingCentral JSON is returned as
plain dicts; SIP credentials and the monitorable agents as dataclasses
(:mod:`callwatch.client.resources`).
"""

from __future__ import annotations

from collections.abc import Sequence

from callwatch.client.api_errors import (
    ApiError,
    AuthError,
    BadRequest,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    NotLoggedIn,
    PermissionError_,
    RateLimited,
    ResponseError,
    ServerError,
)
from callwatch.client.api_session import ApiSession, Params, RetryPolicy
from callwatch.client.auth import Token, WsToken
from callwatch.client.resources import (
    MonitoredAgent,
    SipInfo,
    SipProvision,
    account_path,
    extension_path,
    monitored_agents,
    supervise_body,
)
from callwatch.client.wire import JsonObject, text_field

__all__ = [
    "ApiError",
    "ApiSession",
    "AuthError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "MonitoredAgent",
    "NotFound",
    "NotLoggedIn",
    "Params",
    "PermissionError_",
    "RateLimited",
    "ResponseError",
    "RestClient",
    "RetryPolicy",
    "ServerError",
    "SipInfo",
    "SipProvision",
    "Token",
    "WsToken",
]


class RestClient(ApiSession):
    """RingCentral REST API client; constructor arguments as :class:`ApiSession`."""

    # -- what the supervisor app needs ------------------------------------------------------------

    async def extension(self, extension_id: str | int = "~") -> JsonObject:
        """One extension (default: the user's own)."""
        return await self.get(extension_path(extension_id=extension_id))

    async def extensions(self, params: Params | None = None) -> list[JsonObject]:
        """The account's extensions (``params``: ``type``, ``status``, ``extensionNumber`` …)."""
        return await self.records(account_path("extension"), {"perPage": 1000, **(params or {})})

    async def devices(self, extension_id: str | int = "~") -> list[JsonObject]:
        """The devices of an extension; pick one whose ``status`` is ``Online``."""
        return await self.records(extension_path("device", extension_id=extension_id))

    async def device_sip_info(
        self, device_id: str, *, transport: str = "TLS", region: str | None = None
    ) -> SipInfo:
        """SIP credentials of a device (``GET …/device/{id}/sip-info``) for ``transport``."""
        body = await self.get(account_path("device", device_id, "sip-info"))
        return SipInfo.from_device(body, transport=transport, region=region)

    async def sip_provision(
        self, transports: Sequence[str] = ("TLS",), *, device_id: str | None = None
    ) -> SipProvision:
        """``POST /client-info/sip-provision``: the softphone device and its SIP credentials."""
        body: JsonObject = {"sipInfo": [{"transport": t.upper()} for t in transports]}
        if device_id is not None:
            body["device"] = {"id": device_id}
        return SipProvision.parse(await self.post("/restapi/v1.0/client-info/sip-provision", body))

    async def monitoring_groups(self, member_extension_id: str | None = None) -> list[JsonObject]:
        """Call-monitoring groups (only those with ``member_extension_id`` when given)."""
        params = {} if member_extension_id is None else {"memberExtensionId": member_extension_id}
        return await self.records(account_path("call-monitoring-groups"), params)

    async def group_members(self, group_id: str) -> list[JsonObject]:
        """Members of a group: ``{id (extension id), extensionNumber, permissions[]}``."""
        return await self.records(account_path("call-monitoring-groups", group_id, "members"))

    async def monitorable_agents(self) -> list[MonitoredAgent]:
        """Extensions the user may supervise: ``Monitored`` where the user is ``Monitoring``."""
        own = self.owner_id or text_field(await self.extension(), "id")
        groups = await self.monitoring_groups(member_extension_id=own)
        ids = [text_field(group, "id") for group in groups]
        return monitored_agents(own, [(gid, await self.group_members(gid)) for gid in ids])

    async def session(self, session_id: str) -> JsonObject:
        """A telephony session with all its parties."""
        return await self.get(account_path("telephony/sessions", session_id))

    async def presence(
        self, extension_id: str | int = "~", *, detailed: bool = True, sip_data: bool = True
    ) -> JsonObject:
        """An extension's presence; ``detailed`` adds ``activeCalls[]``, ``sip_data`` their SIP."""
        params = {"detailedTelephonyState": detailed, "sipData": sip_data and detailed}
        return await self.get(extension_path("presence", extension_id=extension_id), params)

    async def supervise(
        self,
        session_id: str,
        *,
        device_id: str,
        agent_extension_id: str | int | None = None,
        agent_extension_number: str | None = None,
        party_id: str | None = None,
        auto_answer: bool = True,
        media_sdp: str | None = None,
    ) -> JsonObject:
        """Start listening (§2.10): the whole call, or one party when ``party_id`` is given.

        Returns:
            The supervisor's new party (``id``, ``status{code:"Answered",reason:"Supervising"}``).

        Raises:
            ValueError: not exactly one agent selector (party level needs the extension id).
            Forbidden: not a Monitoring member for this agent, or the device is another's.
            NotFound: unknown session, party, agent or device (``parameter_name`` says which).
            Conflict: call not answered, already supervised, device offline, >2 parties.
        """
        body = supervise_body(
            device_id=device_id,
            agent_extension_id=agent_extension_id,
            agent_extension_number=agent_extension_number,
            auto_answer=auto_answer,
            media_sdp=media_sdp,
            party_level=party_id is not None,
        )
        parts: tuple[str, ...] = ("telephony/sessions", session_id)
        if party_id is not None:
            parts = (*parts, "parties", party_id)
        return await self.post(account_path(*parts, "supervise"), body)

    async def delete_party(self, session_id: str, party_id: str) -> None:
        """Remove a party — how a supervisor stops listening."""
        await self.delete(account_path("telephony/sessions", session_id, "parties", party_id))
