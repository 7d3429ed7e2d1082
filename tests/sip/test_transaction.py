"""Transaction state machines on their own (RFC 3261 §17, RFC 6026), with explicit time."""

from __future__ import annotations

import pytest

from callwatch.sip.errors import LocalProtocolError
from callwatch.sip.events import (
    Address,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransportError,
)
from callwatch.sip.message import Request, Response, make_response, parse_message
from callwatch.sip.transaction import (
    INVITE_CLIENT_TRANSITIONS,
    INVITE_SERVER_TRANSITIONS,
    NON_INVITE_CLIENT_TRANSITIONS,
    NON_INVITE_SERVER_TRANSITIONS,
    Effects,
    Input,
    TimerConfig,
    Transaction,
    TransactionState,
    client_key,
    response_key,
    server_key,
)
from callwatch.sip.transaction_client import InviteClientTransaction, NonInviteClientTransaction
from callwatch.sip.transaction_server import InviteServerTransaction, NonInviteServerTransaction
from tests.sip.helpers import A_HOST, B_HOST, SIP_PORT, make_request

UDP_PEER = Address("UDP", B_HOST, SIP_PORT)
TCP_PEER = Address("TCP", B_HOST, SIP_PORT, connection=3)
CONFIG = TimerConfig()
S = TransactionState


def with_via(request: Request, branch: str = "z9hG4bKtest", transport: str = "UDP") -> Request:
    request.headers.prepend("Via", f"SIP/2.0/{transport} {A_HOST}:{SIP_PORT};branch={branch}")
    request.headers.add("Route", "<sip:proxy.example.com;lr>")
    return request


def reply(request: Request, status: int, tag: str | None = "uas") -> Response:
    return make_response(request, status, to_tag=tag)


def run_timers(tx: Transaction, until: float) -> list[tuple[float, Effects]]:
    """Fire the transaction's timers one deadline at a time up to ``until``."""
    fired = []
    while (deadline := tx.next_deadline) is not None and deadline <= until:
        fired.append((deadline, tx.handle_timer(deadline)))
    return fired


def send_times(fired: list[tuple[float, Effects]]) -> list[float]:
    return [t for t, effects in fired for _ in effects.sends]


def invite_client(peer: Address = UDP_PEER) -> tuple[InviteClientTransaction, Effects]:
    request = with_via(make_request("INVITE"), transport=peer.transport)
    tx = InviteClientTransaction(client_key("z9hG4bKtest", "INVITE"), request, peer, config=CONFIG)
    return tx, tx.start(0.0)


def invite_server(peer: Address = UDP_PEER) -> InviteServerTransaction:
    request = with_via(make_request("INVITE"), transport=peer.transport)
    tx = InviteServerTransaction(server_key(request), request, peer, config=CONFIG)
    tx.start(0.0)
    return tx


class TestInviteClient:
    """RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §8.4."""

    def test_timer_a_doubles_without_cap_until_timer_b(self) -> None:
        tx, start = invite_client()
        assert len(start.sends) == 1
        fired = run_timers(tx, 100.0)
        assert send_times(fired) == pytest.approx([0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        last = fired[-1][1]
        assert fired[-1][0] == pytest.approx(32.0)
        assert last.events == [TransactionTimedOut(transaction=tx.key, method="INVITE")]
        assert tx.terminated

    def test_reliable_transport_has_no_timer_a(self) -> None:
        tx, _ = invite_client(TCP_PEER)
        assert tx.next_deadline == pytest.approx(32.0)
        assert send_times(run_timers(tx, 100.0)) == []

    def test_provisional_stops_retransmissions_and_timer_b(self) -> None:
        tx, _ = invite_client()
        effects = tx.receive_response(reply(tx.request, 180), UDP_PEER, 0.2)
        assert isinstance(effects.events[0], ResponseReceived)
        assert tx.state is S.PROCEEDING and tx.next_deadline is None

    def test_non_2xx_is_acked_with_the_invite_branch(self) -> None:
        """§17.1.1.3: the ACK has the INVITE's Request-URI, top Via, Route, CSeq number."""
        tx, _ = invite_client()
        effects = tx.receive_response(reply(tx.request, 486), UDP_PEER, 0.1)
        [ack_out] = effects.sends
        ack = parse_message(ack_out.data)
        assert isinstance(ack, Request) and ack.method == "ACK"
        assert ack.uri == tx.request.uri and ack.top_via.branch == "z9hG4bKtest"
        assert len(ack.vias) == 1 and ack.cseq.seq == 1 and ack.cseq.method == "ACK"
        assert ack.to.tag == "uas" and ack.headers.get("Route") == "<sip:proxy.example.com;lr>"
        assert tx.state is S.COMPLETED
        assert [type(e) for e in effects.events] == [ResponseReceived]

    def test_timer_d_absorbs_retransmissions_then_terminates(self) -> None:
        tx, _ = invite_client()
        tx.receive_response(reply(tx.request, 486), UDP_PEER, 0.1)
        again = tx.receive_response(reply(tx.request, 486), UDP_PEER, 1.0)
        assert again.absorbed and again.events == [] and len(again.sends) == 1
        assert tx.next_deadline == pytest.approx(32.1)
        run_timers(tx, 40.0)
        assert tx.terminated

    def test_timer_d_is_zero_on_reliable_transports(self) -> None:
        tx, _ = invite_client(TCP_PEER)
        tx.receive_response(reply(tx.request, 603), TCP_PEER, 0.1)
        assert tx.terminated

    def test_accepted_passes_every_2xx_up_until_timer_m(self) -> None:
        """RFC 6026 §7.2: each 2xx (forks, retransmissions) reaches the TU to be ACKed."""
        tx, _ = invite_client()
        first = tx.receive_response(reply(tx.request, 200), UDP_PEER, 0.1)
        assert tx.state is S.ACCEPTED and first.sends == []
        fork = tx.receive_response(reply(tx.request, 200, tag="fork2"), UDP_PEER, 0.2)
        assert [type(e) for e in fork.events] == [ResponseReceived]
        late_failure = tx.receive_response(reply(tx.request, 500), UDP_PEER, 0.3)
        assert late_failure.absorbed and late_failure.events == []
        assert tx.next_deadline == pytest.approx(0.1 + 64 * 0.5)
        run_timers(tx, 40.0)
        assert tx.terminated

    def test_cancel_guard_times_out_a_proceeding_invite(self) -> None:
        """§9.1: no final response 64*T1 after the CANCEL: the INVITE transaction ends."""
        tx, _ = invite_client()
        tx.receive_response(reply(tx.request, 180), UDP_PEER, 0.1)
        tx.arm_cancel_guard(1.0)
        [(when, effects)] = run_timers(tx, 100.0)
        assert when == pytest.approx(33.0)
        assert effects.events == [TransactionTimedOut(transaction=tx.key, method="INVITE")]

    def test_cancel_copies_the_invite_identity(self) -> None:
        tx, _ = invite_client()
        cancel = tx.build_cancel()
        assert cancel.method == "CANCEL" and cancel.uri == tx.request.uri
        assert cancel.top_via.branch == "z9hG4bKtest" and cancel.cseq.seq == 1
        assert cancel.headers.get("From") == tx.request.headers.get("From")
        assert cancel.headers.get("To") == tx.request.headers.get("To")

    def test_transport_error(self) -> None:
        tx, _ = invite_client(TCP_PEER)
        effects = tx.transport_error(0.1)
        assert effects.events == [TransportError(transaction=tx.key, destination=TCP_PEER)]
        assert tx.terminated


class TestNonInviteClient:
    """RFC 3261 §17.1.2 (Figure 6)."""

    def make(self, peer: Address = UDP_PEER) -> NonInviteClientTransaction:
        request = with_via(make_request("OPTIONS"), transport=peer.transport)
        key = client_key("z9hG4bKtest", "OPTIONS")
        tx = NonInviteClientTransaction(key, request, peer, config=CONFIG)
        tx.start(0.0)
        return tx

    def test_timer_e_capped_at_t2_then_timer_f(self) -> None:
        tx = self.make()
        fired = run_timers(tx, 100.0)
        expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        assert send_times(fired) == pytest.approx(expected)
        assert fired[-1][1].events == [TransactionTimedOut(transaction=tx.key, method="OPTIONS")]

    def test_timer_k_absorbs_then_terminates(self) -> None:
        tx = self.make()
        tx.receive_response(reply(tx.request, 200), UDP_PEER, 0.1)
        again = tx.receive_response(reply(tx.request, 200), UDP_PEER, 0.2)
        assert again.absorbed and again.events == [] and again.sends == []
        assert tx.next_deadline == pytest.approx(5.1)
        run_timers(tx, 6.0)
        assert tx.terminated

    def test_timer_k_is_zero_on_reliable_transports(self) -> None:
        tx = self.make(TCP_PEER)
        tx.receive_response(reply(tx.request, 404), TCP_PEER, 0.1)
        assert tx.terminated


class TestInviteServer:
    """RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §8.7."""

    def test_100_trying_after_200_ms(self) -> None:
        tx = invite_server()
        assert tx.next_deadline == pytest.approx(0.2)
        [(_, effects)] = run_timers(tx, 1.0)
        assert parse_message(effects.sends[0].data).status == 100  # type: ignore[union-attr]

    def test_tu_answer_cancels_the_100(self) -> None:
        tx = invite_server()
        tx.send_response(reply(tx.request, 180), 0.1)
        assert run_timers(tx, 0.3) == []

    def test_timer_g_capped_at_t2_until_timer_h(self) -> None:
        tx = invite_server()
        tx.send_response(reply(tx.request, 486), 0.0)
        fired = run_timers(tx, 100.0)
        expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        assert send_times(fired) == pytest.approx(expected)
        assert fired[-1][1].events == [TransactionTimedOut(transaction=tx.key, method="INVITE")]

    def test_ack_confirms_then_timer_i(self) -> None:
        tx = invite_server()
        tx.send_response(reply(tx.request, 486), 0.0)
        ack = tx.receive_ack(make_request("ACK"), UDP_PEER, 0.1)
        assert ack.absorbed and tx.state is S.CONFIRMED
        assert tx.next_deadline == pytest.approx(5.1)
        assert tx.receive_ack(make_request("ACK"), UDP_PEER, 0.2).absorbed
        run_timers(tx, 6.0)
        assert tx.terminated

    def test_timer_i_is_zero_on_reliable_transports(self) -> None:
        tx = invite_server(TCP_PEER)
        tx.send_response(reply(tx.request, 486), 0.0)
        tx.receive_ack(make_request("ACK"), TCP_PEER, 0.1)
        assert tx.terminated

    def test_accepted_retransmits_2xx_until_ack_and_passes_the_ack_up(self) -> None:
        tx = invite_server()
        tx.send_response(reply(tx.request, 200), 0.0)
        assert tx.state is S.ACCEPTED
        assert send_times(run_timers(tx, 2.0)) == pytest.approx([0.5, 1.5])
        retransmitted_invite = tx.receive_request(tx.request, UDP_PEER, 2.0)
        assert retransmitted_invite.absorbed and retransmitted_invite.sends == []
        effects = tx.receive_ack(make_request("ACK"), UDP_PEER, 2.1)
        assert [type(e) for e in effects.events] == [RequestReceived]
        assert tx.next_deadline == pytest.approx(32.0)  # only Timer L is left
        assert send_times(run_timers(tx, 40.0)) == [] and tx.terminated

    def test_no_2xx_retransmissions_on_reliable_transports(self) -> None:
        tx = invite_server(TCP_PEER)
        tx.send_response(reply(tx.request, 200), 0.0)
        fired = run_timers(tx, 40.0)
        assert send_times(fired) == []
        assert fired[0][1].events == [TransactionTimedOut(transaction=tx.key, method="INVITE")]

    def test_illegal_tu_responses(self) -> None:
        tx = invite_server()
        tx.send_response(reply(tx.request, 200), 0.0)
        tx.send_response(reply(tx.request, 200), 0.1)  # the TU may re-send the 2xx (RFC 6026)
        with pytest.raises(LocalProtocolError, match="Accepted: 300-699 from TU"):
            tx.send_response(reply(tx.request, 486), 0.2)
        with pytest.raises(LocalProtocolError, match="Accepted: 1xx from TU"):
            tx.send_response(reply(tx.request, 180), 0.2)


class TestNonInviteServer:
    """RFC 3261 §17.2.2 (Figure 8)."""

    def make(self, peer: Address = UDP_PEER) -> NonInviteServerTransaction:
        request = with_via(make_request("OPTIONS"), transport=peer.transport)
        tx = NonInviteServerTransaction(server_key(request), request, peer, config=CONFIG)
        tx.start(0.0)
        return tx

    def test_trying_absorbs_proceeding_and_completed_resend(self) -> None:
        tx = self.make()
        quiet = tx.receive_request(tx.request, UDP_PEER, 0.1)
        assert quiet.absorbed and quiet.sends == []
        tx.send_response(reply(tx.request, 100), 0.2)
        assert len(tx.receive_request(tx.request, UDP_PEER, 0.3).sends) == 1
        tx.send_response(reply(tx.request, 200), 0.4)
        again = tx.receive_request(tx.request, UDP_PEER, 0.5)
        assert parse_message(again.sends[0].data).status == 200  # type: ignore[union-attr]
        with pytest.raises(LocalProtocolError, match="Completed"):
            tx.send_response(reply(tx.request, 500), 0.6)
        assert tx.next_deadline == pytest.approx(0.4 + 32)

    def test_timer_j_is_zero_on_reliable_transports(self) -> None:
        tx = self.make(TCP_PEER)
        tx.send_response(reply(tx.request, 200), 0.1)
        assert tx.terminated


class TestKeys:
    """RFC 3261 §17.1.3 and §17.2.3: matching."""

    def test_ack_maps_to_the_invite_and_cancel_has_its_own_key(self) -> None:
        invite = with_via(make_request("INVITE"))
        ack = with_via(make_request("ACK"))
        cancel = with_via(make_request("CANCEL"))
        assert server_key(ack) == server_key(invite)
        assert server_key(cancel) != server_key(invite)
        assert server_key(cancel, method="INVITE") == server_key(invite)

    def test_sent_by_is_part_of_the_server_key(self) -> None:
        one = with_via(make_request("OPTIONS"))
        two = make_request("OPTIONS")
        two.headers.prepend("Via", "SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKtest")
        assert server_key(one) != server_key(two)

    def test_rfc2543_requests_are_keyed_without_branch(self) -> None:
        invite = make_request("INVITE")
        invite.headers.prepend("Via", f"SIP/2.0/UDP {A_HOST}")
        ack = make_request("ACK", to_tag="uas")
        ack.headers.prepend("Via", f"SIP/2.0/UDP {A_HOST}")
        assert server_key(ack) == server_key(invite)
        assert server_key(invite).startswith("2543|")

    def test_response_key(self) -> None:
        request = with_via(make_request("INVITE"))
        assert response_key(reply(request, 180)) == client_key("z9hG4bKtest", "INVITE")


class TestTables:
    """STYLE.md rule 5: the tables only name states and inputs the figures have."""

    @pytest.mark.parametrize(
        ("table", "states"),
        [
            (INVITE_CLIENT_TRANSITIONS, {S.CALLING, S.PROCEEDING, S.COMPLETED, S.ACCEPTED}),
            (NON_INVITE_CLIENT_TRANSITIONS, {S.TRYING, S.PROCEEDING, S.COMPLETED}),
            (
                INVITE_SERVER_TRANSITIONS,
                {S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.ACCEPTED},
            ),
            (NON_INVITE_SERVER_TRANSITIONS, {S.TRYING, S.PROCEEDING, S.COMPLETED}),
        ],
    )
    def test_terminated_is_final(self, table: dict, states: set) -> None:  # type: ignore[type-arg]
        assert {state for state, _ in table} == states
        assert all(state is not S.TERMINATED for state, _ in table)

    def test_every_state_can_end(self) -> None:
        for table in (INVITE_CLIENT_TRANSITIONS, INVITE_SERVER_TRANSITIONS):
            assert any(step.state is S.TERMINATED for step in table.values())
        assert (S.PROCEEDING, Input.TIMER_B) in INVITE_CLIENT_TRANSITIONS
