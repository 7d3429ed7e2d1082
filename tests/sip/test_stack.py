"""SipStack end to end between two stacks, no sockets: classes named after RFC sections."""

from __future__ import annotations

from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.sip.dialog import Dialog, DialogId, make_dialog_response
from callwatch.sip.errors import LocalProtocolError
from callwatch.sip.events import (
    Address,
    CancelReceived,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
    TransportError,
)
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.stack import SipStack
from callwatch.sip.uri import SipUri
from tests.sip.helpers import (
    A_HOST,
    B_HOST,
    SIP_PORT,
    CountingIds,
    StackPair,
    make_request,
    raw_request,
)

B_CONTACT = SipUri.parse(f"sip:bob@{B_HOST}:{SIP_PORT}")
TRANSPORTS = pytest.mark.parametrize("transport", ["UDP", "TCP"])


T = TypeVar("T")


def only(events: list[SipEvent], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def single_request(pair: StackPair) -> RequestReceived:
    events = pair.take("b")
    assert len(events) == 1 and isinstance(events[0], RequestReceived), events
    return events[0]


def statuses(events: list[SipEvent]) -> list[int]:
    return [e.response.status for e in only(events, ResponseReceived)]


def answer(pair: StackPair, event: RequestReceived, status: int, tag: str = "b-tag") -> None:
    assert event.transaction is not None
    if 100 < status < 300:
        response = make_dialog_response(event.request, status, local_tag=tag, contact=B_CONTACT)
    else:
        response = make_response(event.request, status, to_tag=tag)
    pair.b.send_response(event.transaction, response, pair.now)
    pair.transfer()


def invite(pair: StackPair, **kwargs: object) -> tuple[Request, str]:
    request = make_request("INVITE", **kwargs)  # type: ignore[arg-type]
    key = pair.a.send_request(request, pair.b_address, pair.now)
    pair.transfer()
    return request, key


class TestBasicCall:
    """RFC 3261 §13 and §17: INVITE/200/ACK and INVITE/486/ACK."""

    @TRANSPORTS
    def test_invite_200_ack(self, transport: str) -> None:
        pair = StackPair(transport)
        request, key = invite(pair)
        incoming = single_request(pair)
        assert incoming.request.method == "INVITE" and incoming.transaction
        answer(pair, incoming, 180)
        answer(pair, incoming, 200)
        events = pair.take("a")
        assert statuses(events) == [180, 200]
        assert all(e.transaction == key for e in only(events, ResponseReceived))
        dialog = Dialog.from_uac(request, only(events, ResponseReceived)[-1].response)
        pair.a.send_stateless(dialog.create_ack(request.cseq.seq), pair.b_address)
        pair.transfer()
        ack = single_request(pair)
        assert ack.request.method == "ACK" and ack.transaction is None
        assert ack.request.cseq.seq == request.cseq.seq
        pair.advance(pair.now + 40)
        assert len(pair.sent("a", "INVITE")) == 1
        assert len(pair.sent("b", "SIP/2.0 200")) == 1
        assert pair.take("a") == [] and pair.take("b") == []
        assert pair.a.transaction_count == 0 and pair.b.transaction_count == 0

    @TRANSPORTS
    def test_invite_486_is_acked_by_the_transaction(self, transport: str) -> None:
        pair = StackPair(transport)
        invite(pair)
        answer(pair, single_request(pair), 486)
        assert statuses(pair.take("a")) == [486]
        [ack] = pair.sent("a", "ACK")
        [sent_invite] = pair.sent("a", "INVITE")
        assert ack.message.top_via.branch == sent_invite.message.top_via.branch
        assert ack.message.to.tag == "b-tag"
        assert pair.take("b") == []  # the ACK for a non-2xx is absorbed
        pair.advance(pair.now + 40)
        assert pair.take("a") == [] and pair.take("b") == []
        assert pair.a.transaction_count == 0 and pair.b.transaction_count == 0

    def test_100_trying_after_200_ms_when_the_tu_is_slow(self) -> None:
        pair = StackPair()
        invite(pair)
        incoming = single_request(pair)
        pair.advance(0.1)
        assert pair.sent("b", "SIP/2.0 100") == []
        pair.advance(0.25)
        [trying] = pair.sent("b", "SIP/2.0 100")
        assert trying.time == pytest.approx(0.2)
        assert statuses(pair.take("a")) == [100]
        answer(pair, incoming, 486)
        assert statuses(pair.take("a")) == [486]


class TestRetransmissions:
    """RFC 3261 §17.1.1.2, §17.1.2.2: Timers A, B, E, F, only on unreliable transports."""

    def test_timer_a_doubles_until_timer_b(self) -> None:
        pair = StackPair(loss=[True] * 100)
        _, key = invite(pair)
        while (deadline := pair.next_timer()) is not None:
            pair.advance(deadline)
        times = [w.time for w in pair.sent("a", "INVITE")]
        assert times == pytest.approx([0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        assert pair.a.counters["retransmissions_sent"] == 6
        assert pair.take("a") == [TransactionTimedOut(transaction=key, method="INVITE")]
        assert pair.now == pytest.approx(32.0)

    def test_timer_e_doubles_up_to_t2_until_timer_f(self) -> None:
        pair = StackPair(loss=[True] * 100)
        key = pair.a.send_request(make_request("OPTIONS"), pair.b_address, 0.0)
        pair.transfer()
        while (deadline := pair.next_timer()) is not None:
            pair.advance(deadline)
        times = [w.time for w in pair.sent("a", "OPTIONS")]
        expected = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        assert times == pytest.approx(expected)
        assert pair.take("a") == [TransactionTimedOut(transaction=key, method="OPTIONS")]

    def test_timer_e_is_t2_once_proceeding(self) -> None:
        pair = StackPair()
        pair.a.send_request(make_request("OPTIONS"), pair.b_address, 0.0)
        pair.transfer()
        answer(pair, single_request(pair), 100)
        pair.advance(10.0)
        times = [w.time for w in pair.sent("a", "OPTIONS")]
        assert times == pytest.approx([0, 0.5, 4.5, 8.5])
        assert pair.b.counters["retransmissions_absorbed"] == 3

    def test_no_retransmissions_on_tcp_and_timer_b_still_fires(self) -> None:
        pair = StackPair("TCP", loss=[True])
        _, key = invite(pair)
        assert pair.next_timer() == pytest.approx(32.0)
        pair.advance(pair.next_timer() or 0)
        assert len(pair.sent("a", "INVITE")) == 1
        assert pair.take("a") == [TransactionTimedOut(transaction=key, method="INVITE")]

    def test_lost_2xx_is_retransmitted_until_the_ack(self) -> None:
        pair = StackPair(loss=[False, True])  # the INVITE arrives, the 200 is lost
        request, _ = invite(pair)
        answer(pair, single_request(pair), 200)
        pair.advance(1.0)
        assert [w.time for w in pair.sent("b", "SIP/2.0 200")] == pytest.approx([0, 0.5])
        assert len(pair.sent("a", "INVITE")) == 2  # Timer A fired once; B absorbed it
        [ok] = only(pair.take("a"), ResponseReceived)
        dialog = Dialog.from_uac(request, ok.response)
        pair.a.send_stateless(dialog.create_ack(1), pair.b_address)
        pair.transfer()
        pair.advance(40.0)
        assert len(pair.sent("b", "SIP/2.0 200")) == 2
        assert [type(e) for e in pair.take("b")] == [RequestReceived]
        assert pair.b.counters["retransmissions_absorbed"] == 1

    def test_unacknowledged_2xx_times_out(self) -> None:
        pair = StackPair()
        invite(pair)
        incoming = single_request(pair)
        answer(pair, incoming, 200)
        pair.advance(40.0)
        times = [w.time for w in pair.sent("b", "SIP/2.0 200")]
        expected = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # capped at T2
        assert times == pytest.approx(expected)
        assert pair.take("b") == [TransactionTimedOut(incoming.transaction or "", "INVITE")]
        assert only(pair.take("a"), ResponseReceived)[0].response.status == 200


class TestAbsorbing:
    """RFC 3261 §17.1.1.2 (Timer D), §17.1.2.2 (Timer K), §17.2.1, §17.2.2."""

    def test_timer_d_absorbs_retransmitted_final(self) -> None:
        pair = StackPair(loss=[False, False, True])  # INVITE, 486 delivered; the ACK lost
        invite(pair)
        answer(pair, single_request(pair), 486)
        assert statuses(pair.take("a")) == [486]
        pair.advance(1.0)  # Timer G re-sends the 486, the transaction re-sends the ACK
        assert len(pair.sent("b", "SIP/2.0 486")) == 2
        assert len(pair.sent("a", "ACK")) == 2
        assert pair.take("a") == [] and pair.take("b") == []
        assert pair.a.counters["retransmissions_absorbed"] == 1
        pair.advance(31.0)
        assert pair.a.transaction_count == 1  # Timer D is 32 s on UDP
        pair.advance(33.0)
        assert pair.a.transaction_count == 0

    def test_timer_k_absorbs_retransmitted_final(self) -> None:
        pair = StackPair()
        pair.a.send_request(make_request("OPTIONS"), pair.b_address, 0.0)
        pair.transfer()
        answer(pair, single_request(pair), 200)
        assert statuses(pair.take("a")) == [200]
        pair.inject("a", pair.sent("b", "SIP/2.0 200")[0].data)
        assert pair.take("a") == []
        assert pair.a.counters["retransmissions_absorbed"] == 1
        pair.advance(5.0)
        assert pair.a.transaction_count == 0
        pair.inject("a", pair.sent("b", "SIP/2.0 200")[0].data)
        assert pair.take("a") == [] and pair.a.counters["dropped"] == 1

    def test_retransmitted_request_gets_the_last_response(self) -> None:
        pair = StackPair()
        invite(pair)
        incoming = single_request(pair)
        answer(pair, incoming, 180)
        pair.inject("b", pair.sent("a", "INVITE")[0].data)
        assert pair.take("b") == []
        assert len(pair.sent("b", "SIP/2.0 180")) == 2
        assert pair.b.counters["retransmissions_absorbed"] == 1

    def test_retransmitted_invite_before_an_answer_gets_100(self) -> None:
        pair = StackPair()
        invite(pair)
        single_request(pair)
        pair.inject("b", pair.sent("a", "INVITE")[0].data)
        assert len(pair.sent("b", "SIP/2.0 100")) == 1

    def test_non_invite_retransmission_in_trying_is_absorbed_silently(self) -> None:
        pair = StackPair()
        pair.inject("b", raw_request())
        pair.inject("b", raw_request())
        assert len(pair.take("b")) == 1
        assert [w for w in pair.wire if w.sender == "b"] == []

    def test_second_final_response_is_a_local_error(self) -> None:
        pair = StackPair()
        pair.inject("b", raw_request())
        [incoming] = pair.take("b")
        assert isinstance(incoming, RequestReceived) and incoming.transaction
        answer(pair, incoming, 200)
        with pytest.raises(LocalProtocolError, match="Completed"):
            answer(pair, incoming, 200)
        with pytest.raises(LocalProtocolError, match="no server transaction"):
            pair.b.send_response("nope", make_response(incoming.request, 200), pair.now)


class TestCancel:
    """RFC 3261 §9: CANCEL."""

    def test_cancel_flow(self) -> None:
        pair = StackPair()
        _, key = invite(pair)
        incoming = single_request(pair)
        answer(pair, incoming, 180)
        cancel_key = pair.a.cancel(key, pair.now)
        pair.transfer()
        events = pair.take("b")
        [cancelled] = only(events, CancelReceived)
        assert events == [cancelled] and cancelled.transaction == incoming.transaction
        assert cancelled.source == pair.a_address and cancelled.request.method == "CANCEL"
        answer(pair, incoming, 487)
        events = pair.take("a")
        assert statuses(events) == [180, 200, 487]
        assert only(events, ResponseReceived)[1].transaction == cancel_key
        assert only(events, ResponseReceived)[1].response.cseq.method == "CANCEL"
        [cancel] = pair.sent("a", "CANCEL")
        [sent_invite] = pair.sent("a", "INVITE")
        assert cancel.message.top_via.branch == sent_invite.message.top_via.branch
        assert cancel.message.cseq.seq == sent_invite.message.cseq.seq
        assert len(pair.sent("a", "ACK")) == 1

    def test_cancel_waits_for_a_provisional_response(self) -> None:
        pair = StackPair(loss=[True])  # the INVITE is lost; the retransmission arrives
        _, key = invite(pair)
        cancel_key = pair.a.cancel(key, pair.now)
        assert cancel_key is not None and cancel_key.endswith("|CANCEL")
        assert pair.a.cancel(key, pair.now) == cancel_key
        assert pair.sent("a", "CANCEL") == []
        pair.advance(0.5)
        answer(pair, single_request(pair), 180)
        assert len(pair.sent("a", "CANCEL")) == 1
        assert only(pair.take("b"), CancelReceived)

    def test_cancel_after_final_returns_none(self) -> None:
        pair = StackPair()
        _, key = invite(pair)
        answer(pair, single_request(pair), 486)
        assert pair.a.cancel(key, pair.now) is None

    def test_cancel_with_no_match_gets_481(self) -> None:
        pair = StackPair()
        pair.inject("b", raw_request("CANCEL"))
        assert pair.take("b") == []
        [response] = pair.sent("b", "SIP/2.0 481")
        assert response.message.to.tag

    def test_cancel_of_a_non_invite_transaction_is_refused(self) -> None:
        pair = StackPair()
        key = pair.a.send_request(make_request("OPTIONS"), pair.b_address, 0.0)
        with pytest.raises(LocalProtocolError):
            pair.a.cancel(key, 0.0)


class TestTransport:
    """RFC 3261 §18.2, RFC 3581: received/rport, response routing, keep-alives, garbage."""

    def test_received_and_rport_are_stamped_and_used(self) -> None:
        nat = Address("UDP", "203.0.113.7", 40000)
        pair = StackPair(a_seen_as=nat)
        invite(pair)
        incoming = single_request(pair)
        via = incoming.request.top_via
        assert via.params["received"] == "203.0.113.7" and via.params["rport"] == "40000"
        answer(pair, incoming, 180)
        [ringing] = pair.sent("b", "SIP/2.0 180")
        assert ringing.destination == nat
        assert ringing.message.top_via.params["rport"] == "40000"

    def test_received_only_when_sent_by_differs_and_no_rport(self) -> None:
        pair = StackPair()
        data = raw_request().replace(b";rport", b"")
        pair.inject("b", data)
        [incoming] = pair.take("b")
        assert isinstance(incoming, RequestReceived)
        assert "received" not in incoming.request.top_via.params
        other = Address("UDP", "198.51.100.9", 5062)
        pair.b.receive(raw_request(branch="z9hG4bKother").replace(b";rport", b""), other, 0.0)
        event = pair.b.next_event()
        assert isinstance(event, RequestReceived)
        assert event.request.top_via.params["received"] == "198.51.100.9"
        assert event.transaction is not None
        pair.b.send_response(event.transaction, make_response(event.request, 200), 0.0)
        [out] = pair.b.messages_to_send(0.0)
        assert out.destination == Address("UDP", "198.51.100.9", SIP_PORT)

    def test_tcp_responses_use_the_same_connection(self) -> None:
        source = Address("TCP", A_HOST, 49152, connection=7)
        stack = SipStack(CountingIds("s"))
        stack.receive(raw_request().replace(b"UDP", b"TCP"), source, 0.0)
        event = stack.next_event()
        assert isinstance(event, RequestReceived) and event.transaction
        stack.send_response(event.transaction, make_response(event.request, 200), 0.0)
        [out] = stack.messages_to_send(0.0)
        assert out.destination == source

    def test_keepalive_is_ignored(self) -> None:
        stack = SipStack(CountingIds("s"))
        for data in (b"\r\n\r\n", b"\r\n", b"", b"  \t\r\n"):
            stack.receive(data, Address("UDP", A_HOST, SIP_PORT), 0.0)
        assert stack.next_event() is None and stack.messages_to_send(0.0) == []
        assert stack.counters["keepalives"] == 4 and stack.counters["malformed"] == 0

    def test_malformed_request_gets_400_with_reason(self) -> None:
        stack = SipStack(CountingIds("s"))
        source = Address("UDP", A_HOST, SIP_PORT)
        stack.receive(raw_request().replace(b"CSeq: 7 OPTIONS", b"CSeq: 7 INVITE"), source, 0.0)
        event = stack.next_event()
        assert isinstance(event, MalformedMessage) and event.status_hint == 400
        assert "CSeq method" in event.reason
        [out] = stack.messages_to_send(0.0)
        response = response_of(out.data)
        assert response.status == 400 and "CSeq method" in response.reason
        assert response.to.tag and response.call_id == "raw-call"
        assert out.destination == source
        assert stack.counters["malformed"] == 1 and stack.counters["dropped"] == 0

    def test_unsupported_version_gets_its_status_hint(self) -> None:
        stack = SipStack(CountingIds("s"))
        data = raw_request().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
        stack.receive(data, Address("UDP", A_HOST, SIP_PORT), 0.0)
        [out] = stack.messages_to_send(0.0)
        assert response_of(out.data).status == 505

    def test_garbage_is_dropped_and_counted(self) -> None:
        stack = SipStack(CountingIds("s"))
        stack.receive(b"\x16\x03\x01 hello", Address("UDP", A_HOST, SIP_PORT), 0.0)
        assert isinstance(stack.next_event(), MalformedMessage)
        assert stack.messages_to_send(0.0) == []
        assert stack.counters["dropped"] == 1 and stack.counters["malformed"] == 1

    def test_malformed_ack_and_response_are_not_answered(self) -> None:
        stack = SipStack(CountingIds("s"))
        source = Address("UDP", A_HOST, SIP_PORT)
        stack.receive(raw_request("ACK").replace(b"CSeq: 7 ACK", b"CSeq: x ACK"), source, 0.0)
        stack.receive(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n", source, 0.0)
        assert stack.messages_to_send(0.0) == []
        assert stack.counters["dropped"] == 2

    def test_stray_2xx_to_invite_is_passed_up(self) -> None:
        pair = StackPair()
        invite(pair)
        answer(pair, single_request(pair), 200)
        [ok] = pair.sent("b", "SIP/2.0 200")
        pair.advance(40.0)  # Timer M ends the client transaction
        pair.take("a")
        pair.inject("a", ok.data)
        [stray] = pair.take("a")
        assert isinstance(stray, ResponseReceived) and stray.transaction == ""
        assert pair.a.counters["stray_2xx"] == 1

    def test_response_with_two_vias_is_dropped(self) -> None:
        pair = StackPair()
        pair.a.send_request(make_request("OPTIONS"), pair.b_address, 0.0)
        pair.transfer()
        incoming = single_request(pair)
        response = make_response(incoming.request, 200, to_tag="x")
        response.headers.add("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKextra")
        pair.inject("a", response.serialize())
        assert pair.take("a") == [] and pair.a.counters["dropped"] == 1

    def test_connection_failure_is_reported_per_transaction(self) -> None:
        pair = StackPair("TCP", loss=[True])
        _, key = invite(pair)
        pair.a.connection_failed(pair.b_address, pair.now)
        assert pair.a.next_event() == TransportError(transaction=key, destination=pair.b_address)
        assert pair.a.transaction_count == 0
        pair.a.connection_failed(pair.b_address, pair.now)
        assert pair.a.next_event() == TransportError(transaction=None, destination=pair.b_address)

    def test_send_request_without_local_address_is_a_local_error(self) -> None:
        stack = SipStack(CountingIds("s"))
        with pytest.raises(LocalProtocolError, match="set_local_address"):
            stack.send_request(make_request("OPTIONS"), Address("UDP", B_HOST, SIP_PORT), 0.0)
        with pytest.raises(LocalProtocolError, match="send_stateless"):
            stack.send_request(make_request("ACK"), Address("UDP", B_HOST, SIP_PORT), 0.0)

    def test_send_request_adds_via_max_forwards_and_leaves_the_original_alone(self) -> None:
        pair = StackPair()
        request = make_request("OPTIONS")
        key = pair.a.send_request(request, pair.b_address, 0.0)
        [out] = pair.a.messages_to_send(0.0)
        sent = request_of(out.data)
        via = sent.top_via
        assert (via.transport, via.host, via.port) == ("UDP", A_HOST, SIP_PORT)
        assert "rport" in via.params and key == f"{via.branch}|OPTIONS"
        assert sent.headers.get("Max-Forwards") == "70"
        assert sent.headers.get("User-Agent") == "callwatch"
        assert "via" not in request.headers

    def test_caller_branch_is_kept(self) -> None:
        pair = StackPair()
        request = make_request("OPTIONS")
        request.headers.prepend("Via", f"SIP/2.0/UDP {A_HOST};branch=z9hG4bKmine")
        assert pair.a.send_request(request, pair.b_address, 0.0) == "z9hG4bKmine|OPTIONS"


class TestDialogs:
    """RFC 3261 §12 and §15 through the stack."""

    def establish(self, pair: StackPair) -> tuple[Dialog, Dialog, Request]:
        request, _ = invite(pair)
        incoming = single_request(pair)
        answer(pair, incoming, 200, tag="b-tag")
        uas = Dialog.from_uas(incoming.request, "b-tag", local_target=B_CONTACT)
        [ok] = only(pair.take("a"), ResponseReceived)
        uac = Dialog.from_uac(request, ok.response)
        pair.a.send_stateless(uac.create_ack(request.cseq.seq), pair.b_address)
        pair.transfer()
        [ack] = pair.take("b")
        assert isinstance(ack, RequestReceived) and ack.request.cseq.seq == request.cseq.seq
        uas.receive_request(ack.request)
        return uac, uas, request

    def test_in_dialog_bye_matches_by_call_id_and_tags(self) -> None:
        pair = StackPair()
        uac, uas, _ = self.establish(pair)
        bye = uac.create_request("BYE")
        bye.uri = SipUri.parse("sip:somewhere-else@198.51.100.1")
        value = bye.headers.get("Call-ID") or ""
        bye.headers.remove("Call-ID")
        bye.headers.add("call-id", value)
        pair.a.send_request(bye, pair.b_address, pair.now)
        pair.transfer()
        incoming = single_request(pair)
        assert DialogId.of_request(incoming.request) == uas.id
        assert uas.matches(incoming.request)
        uas.receive_request(incoming.request)
        answer(pair, incoming, 200)
        assert statuses(pair.take("a")) == [200]
        assert uas.state.value == "Terminated"

    def test_uac_bye_without_answer_times_out_quietly(self) -> None:
        pair = StackPair()
        uac, _, _ = self.establish(pair)
        pair.advance(pair.now + 40)  # let the INVITE transactions end
        assert pair.take("a") == [] and pair.take("b") == []
        pair.a.send_request(uac.create_request("BYE"), pair.b_address, pair.now)
        pair.transfer()
        [bye] = pair.take("b")
        assert isinstance(bye, RequestReceived)  # the TU never answers
        pair.advance(pair.now + 64)
        events = pair.take("a")
        assert len(events) == 1 and isinstance(events[0], TransactionTimedOut)
        assert events[0].method == "BYE"
        assert pair.take("b") == []


def request_of(data: bytes) -> Request:
    from callwatch.sip.message import parse_message

    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def response_of(data: bytes) -> Response:
    from callwatch.sip.message import parse_message

    message = parse_message(data)
    assert isinstance(message, Response)
    return message


class TestRobustness:
    """STYLE.md rule 7: whatever arrives, receive() never raises."""

    @settings(max_examples=300, deadline=None)
    @given(data=st.binary(max_size=600), reliable=st.booleans())
    def test_random_bytes_never_raise(self, data: bytes, reliable: bool) -> None:
        stack = SipStack(CountingIds("f"))
        stack.set_local_address("UDP", B_HOST, SIP_PORT)
        source = Address("TCP" if reliable else "UDP", A_HOST, SIP_PORT, 1 if reliable else None)
        stack.receive(data, source, 0.0)
        stack.handle_timer(100.0)
        stack.messages_to_send(100.0)

    @settings(max_examples=300, deadline=None)
    @given(
        position=st.integers(min_value=0, max_value=400),
        junk=st.binary(min_size=1, max_size=8),
        method=st.sampled_from(["INVITE", "OPTIONS", "ACK", "CANCEL", "BYE"]),
    )
    def test_mutated_requests_never_raise(self, position: int, junk: bytes, method: str) -> None:
        stack = SipStack(CountingIds("f"))
        data = raw_request(method)
        mutated = data[:position] + junk + data[position + len(junk) :]
        stack.receive(mutated, Address("UDP", A_HOST, SIP_PORT), 0.0)
        stack.receive(mutated, Address("UDP", A_HOST, SIP_PORT), 0.1)
        stack.handle_timer(100.0)
