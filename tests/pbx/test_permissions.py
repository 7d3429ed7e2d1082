"""The call-monitoring permission rule: examples and a property against a brute-force oracle."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from callwatch.pbx.permissions import (
    MONITORED,
    MONITORING,
    may_monitor,
    monitorable_agents,
    supervising_groups,
)
from callwatch.store.repo import MonitoringMember


@dataclass(frozen=True)
class Row:
    """A membership-like record that is not the store's class (duck typing is enough)."""

    group_id: str
    extension_id: int
    permissions: tuple[str, ...]


def _m(group_id: str, extension_id: int, *permissions: str) -> MonitoringMember:
    return MonitoringMember(
        group_id=group_id, extension_id=extension_id, permissions=frozenset(permissions)
    )


SUPPORT = [
    _m("support", 101, MONITORING),
    _m("support", 108, MONITORED),
    _m("support", 102, MONITORED),
    _m("sales", 103, MONITORING, MONITORED),
    _m("sales", 104, MONITORED),
    _m("sales", 108, MONITORING),
]


class TestExamples:
    def test_supervisor_sees_monitored_members_of_own_groups(self) -> None:
        assert monitorable_agents(101, SUPPORT) == {108, 102}
        assert may_monitor(101, 108, SUPPORT)
        assert not may_monitor(101, 104, SUPPORT)

    def test_no_group_no_rights(self) -> None:
        assert monitorable_agents(109, SUPPORT) == set()
        assert not may_monitor(109, 108, SUPPORT)
        assert not may_monitor(101, 108, [])

    def test_monitored_only_member_may_not_monitor(self) -> None:
        assert monitorable_agents(102, SUPPORT) == set()

    def test_roles_do_not_leak_across_groups(self) -> None:
        # 108 is Monitoring in "sales" but only Monitored in "support": it may monitor the
        # Monitored members of "sales" (103, 104), not 102 from "support".
        assert monitorable_agents(108, SUPPORT) == {103, 104}

    def test_member_with_both_permissions(self) -> None:
        assert monitorable_agents(103, SUPPORT) == {103, 104}

    def test_any_iterable_of_membership_like_records(self) -> None:
        rows = (Row("g", 1, (MONITORING,)), Row("g", 2, (MONITORED,)))
        assert may_monitor(1, 2, iter(rows))
        assert monitorable_agents(1, (r for r in rows)) == {2}
        assert supervising_groups(1, rows) == {"g"}


PERMISSION_SETS = st.sets(st.sampled_from([MONITORING, MONITORED])).map(frozenset)
MEMBERSHIPS = st.lists(
    st.builds(
        MonitoringMember,
        group_id=st.sampled_from(["a", "b", "c"]),
        extension_id=st.integers(1, 6),
        permissions=PERMISSION_SETS,
    ),
    max_size=20,
)


def _oracle(supervisor: int, agent: int, memberships: list[MonitoringMember]) -> bool:
    """Brute force: try every group, every pair of records in it."""
    groups = {m.group_id for m in memberships}
    return any(
        s.group_id == g == a.group_id
        and s.extension_id == supervisor
        and MONITORING in s.permissions
        and a.extension_id == agent
        and MONITORED in a.permissions
        for g in groups
        for s in memberships
        for a in memberships
    )


@given(MEMBERSHIPS, st.integers(1, 6), st.integers(1, 6))
def test_may_monitor_matches_oracle(
    memberships: list[MonitoringMember], supervisor: int, agent: int
) -> None:
    assert may_monitor(supervisor, agent, memberships) == _oracle(supervisor, agent, memberships)


@given(MEMBERSHIPS, st.integers(1, 6))
def test_monitorable_agents_matches_oracle(
    memberships: list[MonitoringMember], supervisor: int
) -> None:
    expected = {a for a in range(1, 7) if _oracle(supervisor, a, memberships)}
    assert monitorable_agents(supervisor, memberships) == expected


@given(MEMBERSHIPS, st.integers(1, 6), st.integers(1, 6))
def test_order_does_not_matter(
    memberships: list[MonitoringMember], supervisor: int, agent: int
) -> None:
    assert may_monitor(supervisor, agent, memberships) == may_monitor(
        supervisor, agent, list(reversed(memberships))
    )
