"""Tests for callwatch.pbx.location: bindings, expiry, limits and RFC 5626 flows (pure)."""

from __future__ import annotations

import pytest

from callwatch.pbx.location import Binding, LocationService
from callwatch.sip.events import Address
from callwatch.sip.uri import NameAddr

T0 = 1000.0
DEVICE = "60727004"
OTHER = "60727005"
INSTANCE = "<urn:uuid:18f135d2-5f55-4203-b018-50c5a38fd547>"
UDP = Address("UDP", "192.0.2.10", 5060)
TLS_7 = Address("TLS", "192.0.2.10", 53712, connection=7)
TLS_8 = Address("TLS", "192.0.2.10", 53713, connection=8)
WSS_9 = Address("WSS", "198.51.100.4", 443, connection=9)


def binding(
    contact: str = "<sip:16505550100@192.0.2.10:5060>",
    *,
    device: str = DEVICE,
    source: Address = UDP,
    expires_at: float = T0 + 3600,
    instance: str | None = None,
    reg_id: str | None = None,
    cseq: int = 1,
) -> Binding:
    return Binding(
        device_id=device,
        contact=NameAddr.parse(contact),
        source=source,
        expires_at=expires_at,
        call_id="907a70c3-1012-4037-b64c-e4228c38fb29",
        cseq=cseq,
        instance=instance,
        reg_id=reg_id,
    )


def contacts(location: LocationService, device: str = DEVICE, now: float = T0) -> list[str]:
    return [str(b.contact.uri) for b in location.bindings(device, now)]


class TestRfc3261Section10_3:
    """Processing REGISTER requests: the bindings the registrar keeps."""

    def test_no_bindings_means_offline(self) -> None:
        location = LocationService()
        assert location.bindings(DEVICE, T0) == []
        assert not location.is_online(DEVICE, T0)
        assert location.online_devices(T0) == set()
        assert location.next_expiry() is None

    def test_binding_makes_device_online_until_it_expires(self) -> None:
        location = LocationService()
        location.update(binding(expires_at=T0 + 60))
        assert location.is_online(DEVICE, T0)
        assert location.is_online(DEVICE, T0 + 59.999)
        assert not location.is_online(DEVICE, T0 + 60)  # expires_at itself is already expired
        assert location.bindings(DEVICE, T0 + 60) == []
        assert location.online_devices(T0) == {DEVICE}
        assert location.online_devices(T0 + 60) == set()

    def test_bindings_are_keyed_by_contact_uri(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>", expires_at=T0 + 60))
        location.update(binding("<sip:b@192.0.2.10>"))
        location.update(binding('"Desk" <sip:a@192.0.2.10>;q=0.5', expires_at=T0 + 600))
        assert contacts(location) == ["sip:b@192.0.2.10", "sip:a@192.0.2.10"]
        refreshed = location.bindings(DEVICE, T0)[-1]
        assert refreshed.expires_at == T0 + 600
        assert refreshed.contact.display_name == "Desk"

    def test_bindings_list_most_recent_registration_last(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>"))
        location.update(binding("<sip:b@192.0.2.10>"))
        location.update(binding("<sip:a@192.0.2.10>", cseq=2))
        assert contacts(location) == ["sip:b@192.0.2.10", "sip:a@192.0.2.10"]

    def test_bindings_of_devices_are_separate(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>"))
        location.update(binding("<sip:a@192.0.2.10>", device=OTHER, expires_at=T0 + 10))
        location.remove_all(OTHER)
        assert contacts(location) == ["sip:a@192.0.2.10"]
        assert location.online_devices(T0) == {DEVICE}

    def test_remove_one_binding(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>"))
        location.update(binding("<sip:b@192.0.2.10>"))
        location.remove(DEVICE, "sip:a@192.0.2.10")
        location.remove(DEVICE, "sip:unknown@192.0.2.10")
        location.remove(OTHER, "sip:a@192.0.2.10")
        assert contacts(location) == ["sip:b@192.0.2.10"]

    def test_removing_the_last_binding_is_not_reported_by_expire(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>"))
        location.remove(DEVICE, "sip:a@192.0.2.10")
        assert not location.is_online(DEVICE, T0)
        assert location.expire(T0) == set()

    def test_remove_all_is_contact_star(self) -> None:
        """RFC 3261 §10.2.2: ``Contact: *`` removes every binding of the address of record."""
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>"))
        location.update(binding("<sip:b@192.0.2.10>"))
        location.remove_all(DEVICE)
        location.remove_all(OTHER)
        assert not location.is_online(DEVICE, T0)
        assert location.next_expiry() is None

    @pytest.mark.parametrize(
        ("expires_at", "now", "remaining"),
        [
            (T0 + 3600, T0, 3600),
            (T0 + 3600, T0 + 0.4, 3600),  # rounds to the nearest second
            (T0 + 3600, T0 + 0.6, 3599),
            (T0 + 1, T0 + 1, 0),
            (T0 + 1, T0 + 500, 0),  # never negative
        ],
    )
    def test_remaining_seconds(self, expires_at: float, now: float, remaining: int) -> None:
        assert binding(expires_at=expires_at).remaining(now) == remaining


class TestExpiry:
    """``expire`` and ``next_expiry``: the registrar's timer."""

    def test_expire_reports_devices_that_went_offline(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>", expires_at=T0 + 60))
        location.update(binding("<sip:b@192.0.2.10>", expires_at=T0 + 120))
        location.update(binding("<sip:c@192.0.2.10>", device=OTHER, expires_at=T0 + 60))
        assert location.expire(T0 + 59) == set()
        assert location.expire(T0 + 60) == {OTHER}
        assert contacts(location, now=T0 + 60) == ["sip:b@192.0.2.10"]
        assert location.expire(T0 + 61) == set()  # reported once
        assert location.expire(T0 + 120) == {DEVICE}
        assert location.expire(T0 + 10_000) == set()

    def test_next_expiry_is_the_earliest_binding(self) -> None:
        location = LocationService()
        location.update(binding("<sip:a@192.0.2.10>", expires_at=T0 + 300))
        location.update(binding("<sip:b@192.0.2.10>", device=OTHER, expires_at=T0 + 60))
        location.update(binding("<sip:c@192.0.2.10>", expires_at=T0 + 120))
        assert location.next_expiry() == T0 + 60
        location.expire(T0 + 60)
        assert location.next_expiry() == T0 + 120
        location.expire(T0 + 300)
        assert location.next_expiry() is None

    def test_refresh_moves_the_expiry(self) -> None:
        location = LocationService()
        location.update(binding(expires_at=T0 + 60))
        location.update(binding(expires_at=T0 + 3660, cseq=2))
        assert location.next_expiry() == T0 + 3660
        assert location.expire(T0 + 61) == set()
        assert location.is_online(DEVICE, T0 + 61)


class TestBindingLimit:
    """``would_exceed``: the per-device binding limit."""

    def test_new_keys_beyond_the_limit(self) -> None:
        location = LocationService(max_bindings_per_device=2)
        location.update(binding("<sip:a@192.0.2.10>"))
        assert not location.would_exceed(DEVICE, ["sip:b@192.0.2.10"], T0)
        location.update(binding("<sip:b@192.0.2.10>"))
        assert location.would_exceed(DEVICE, ["sip:c@192.0.2.10"], T0)
        assert not location.would_exceed(OTHER, ["sip:a@x", "sip:b@x"], T0)
        assert location.would_exceed(OTHER, ["sip:a@x", "sip:b@x", "sip:c@x"], T0)

    def test_refreshing_existing_bindings_never_exceeds(self) -> None:
        location = LocationService(max_bindings_per_device=2)
        location.update(binding("<sip:a@192.0.2.10>"))
        location.update(binding("<sip:b@192.0.2.10>"))
        assert not location.would_exceed(DEVICE, ["sip:a@192.0.2.10", "sip:b@192.0.2.10"], T0)
        assert not location.would_exceed(DEVICE, ["sip:a@192.0.2.10", "sip:a@192.0.2.10"], T0)

    def test_expired_bindings_do_not_count(self) -> None:
        location = LocationService(max_bindings_per_device=1)
        location.update(binding("<sip:a@192.0.2.10>", expires_at=T0 + 60))
        assert location.would_exceed(DEVICE, ["sip:b@192.0.2.10"], T0 + 59)
        assert not location.would_exceed(DEVICE, ["sip:b@192.0.2.10"], T0 + 60)


class TestRfc5626Section6:
    """Outbound: bindings keyed by instance id and reg-id, bound to the flow they came over."""

    def test_instance_and_reg_id_key(self) -> None:
        outbound = binding(instance=INSTANCE, reg_id="1")
        assert outbound.key == f"{INSTANCE};reg-id=1"
        assert binding().key == "sip:16505550100@192.0.2.10:5060"

    def test_same_instance_and_reg_id_from_a_new_address_replaces(self) -> None:
        """RFC 5626 §6: a new flow for the same instance and reg-id replaces the old binding."""
        location = LocationService()
        location.update(
            binding(
                "<sip:u@192.0.2.10:53712;transport=TLS;ob>",
                source=TLS_7,
                instance=INSTANCE,
                reg_id="1",
            )
        )
        location.update(
            binding(
                "<sip:u@192.0.2.99:41000;transport=TLS;ob>",
                source=TLS_8,
                instance=INSTANCE,
                reg_id="1",
                cseq=2,
            )
        )
        [only] = location.bindings(DEVICE, T0)
        assert str(only.contact.uri) == "sip:u@192.0.2.99:41000;transport=TLS;ob"
        assert only.source == TLS_8

    def test_different_reg_ids_are_separate_flows(self) -> None:
        location = LocationService()
        location.update(
            binding("<sip:u@192.0.2.10;ob>", source=TLS_7, instance=INSTANCE, reg_id="1")
        )
        location.update(
            binding("<sip:u@192.0.2.10;ob>", source=TLS_8, instance=INSTANCE, reg_id="2")
        )
        assert [b.reg_id for b in location.bindings(DEVICE, T0)] == ["1", "2"]

    @pytest.mark.parametrize(
        ("contact", "source", "reg_id", "flow_bound"),
        [
            ("<sip:u@192.0.2.10:53712;transport=TLS>", TLS_7, "1", True),  # reg-id over a stream
            ("<sip:u@192.0.2.10:53712;transport=TLS;ob>", TLS_7, None, True),  # ob over a stream
            ("<sip:df7jal23@df7jal23ls0d.invalid;transport=ws>", WSS_9, None, True),  # RFC 7118
            ("<sip:u@192.0.2.10:53712;transport=TLS>", TLS_7, None, False),  # routable contact
            ("<sip:u@192.0.2.10:5060;ob>", UDP, "1", False),  # UDP has no flow to keep
            ("<sip:u@x.invalid>", UDP, None, False),
        ],
    )
    def test_flow_bound(
        self, contact: str, source: Address, reg_id: str | None, flow_bound: bool
    ) -> None:
        instance = INSTANCE if reg_id else None
        assert (
            binding(contact, source=source, instance=instance, reg_id=reg_id).flow_bound
            is flow_bound
        )

    def test_closed_connection_drops_only_its_flow_bound_bindings(self) -> None:
        location = LocationService()
        location.update(
            binding("<sip:u@192.0.2.10;ob>", source=TLS_7, instance=INSTANCE, reg_id="1")
        )
        location.update(binding("<sip:u@192.0.2.10;transport=tls>", source=TLS_7))  # routable
        location.update(
            binding("<sip:u@192.0.2.10;ob>", source=TLS_8, instance=INSTANCE, reg_id="2")
        )
        location.update(binding("<sip:w@h.invalid;transport=ws>", device=OTHER, source=WSS_9))
        assert location.drop_connection(7) == set()  # DEVICE keeps two bindings
        assert [b.key for b in location.bindings(DEVICE, T0)] == [
            "sip:u@192.0.2.10;transport=tls",
            f"{INSTANCE};reg-id=2",
        ]
        assert location.drop_connection(9) == {OTHER}
        assert not location.is_online(OTHER, T0)
        assert location.drop_connection(8) == set()  # the TLS binding is not flow-bound
        assert contacts(location) == ["sip:u@192.0.2.10;transport=tls"]

    def test_closed_connection_with_only_flow_bound_bindings_leaves_device_offline(self) -> None:
        location = LocationService()
        location.update(
            binding("<sip:u@192.0.2.10;ob>", source=TLS_7, instance=INSTANCE, reg_id="1")
        )
        location.update(binding("<sip:u@192.0.2.11;ob>", source=TLS_7))
        assert location.drop_connection(7) == {DEVICE}
        assert not location.is_online(DEVICE, T0)
        assert location.next_expiry() is None
        assert location.drop_connection(7) == set()
        assert location.drop_connection(123) == set()
