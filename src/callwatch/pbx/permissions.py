"""Who may monitor whom: the call-monitoring-group rule (ringcentral-api.md §2.7, seed
"Call Monitoring Groups").

Theory of operation: a supervisor may monitor an agent iff at least one call-monitoring group
has the supervisor as a member with the ``Monitoring`` permission and the agent as a member
with the ``Monitored`` permission. Groups are only a way of pairing the two; nothing else
(admin rights, extension numbers, sites) matters here.

Pure functions over plain data: they take the membership records of **one account** — callers
filter by account first (``store.monitoring.memberships_in_account``), so groups of other
tenants can never grant anything — and need no store, clock or I/O. Whether supervising one's
own call is allowed is a policy of the caller, not of this rule: a member holding both
permissions in one group "may monitor" itself here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol

MONITORING = "Monitoring"
"""The permission that lets a member monitor others (same word as the REST API)."""
MONITORED = "Monitored"
"""The permission that lets a member be monitored (same word as the REST API)."""


class Membership(Protocol):
    """One extension's permissions in one group (e.g. ``store.repo.MonitoringMember``)."""

    @property
    def group_id(self) -> str: ...

    @property
    def extension_id(self) -> int: ...

    @property
    def permissions(self) -> Collection[str]: ...


def supervising_groups(supervisor_ext_id: int, memberships: Iterable[Membership]) -> set[str]:
    """Ids of the groups in which ``supervisor_ext_id`` holds ``Monitoring``."""
    return {
        m.group_id
        for m in memberships
        if m.extension_id == supervisor_ext_id and MONITORING in m.permissions
    }


def monitorable_agents(supervisor_ext_id: int, memberships: Iterable[Membership]) -> set[int]:
    """Extension ids the supervisor may monitor.

    Args:
        supervisor_ext_id: the would-be supervisor's extension id.
        memberships: every membership record of the supervisor's account (may be consumed
            once; any iterable works).

    Returns:
        The ids of all ``Monitored`` members of the groups where the supervisor holds
        ``Monitoring``; empty if there are none.
    """
    records = list(memberships)
    groups = supervising_groups(supervisor_ext_id, records)
    return {m.extension_id for m in records if m.group_id in groups and MONITORED in m.permissions}


def may_monitor(
    supervisor_ext_id: int, agent_ext_id: int, memberships: Iterable[Membership]
) -> bool:
    """True iff some group has the supervisor with ``Monitoring`` and the agent with
    ``Monitored``.

    Args:
        supervisor_ext_id: the extension that wants to listen in.
        agent_ext_id: the extension whose call it wants to hear.
        memberships: every membership record of the supervisor's account; the caller has
            already checked that the agent belongs to that account.
    """
    return agent_ext_id in monitorable_agents(supervisor_ext_id, memberships)
