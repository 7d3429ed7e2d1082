"""Dialogs (RFC 3261 §12) built from messages, without a stack."""

from __future__ import annotations

import pytest

from callwatch.sip.dialog import Dialog, DialogId, DialogState, make_dialog_response
from callwatch.sip.errors import LocalProtocolError, RemoteProtocolError
from callwatch.sip.message import Request, Response, make_response, parse_message
from callwatch.sip.uri import SipUri
from tests.sip.helpers import make_request

UAS_CONTACT = SipUri.parse("sip:bob@192.0.2.2:5070;transport=udp")
RECORD_ROUTES = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")


def invite_via_proxies(**kwargs: object) -> Request:
    extra = [("Record-Route", value) for value in RECORD_ROUTES]
    return make_request("INVITE", extra=extra, **kwargs)  # type: ignore[arg-type]


def answered(status: int = 200, *, tag: str = "b-tag") -> tuple[Request, Response]:
    request = invite_via_proxies()
    return request, make_dialog_response(request, status, local_tag=tag, contact=UAS_CONTACT)


class TestDialogCreation:
    """RFC 3261 §12.1.1 (UAS) and §12.1.2 (UAC)."""

    def test_uac_from_2xx(self) -> None:
        request, response = answered()
        dialog = Dialog.from_uac(request, response)
        assert dialog.id == DialogId("call-1@192.0.2.1", "a-tag", "b-tag")
        assert dialog.state is DialogState.CONFIRMED
        assert dialog.remote_target == UAS_CONTACT
        assert [str(r.uri) for r in dialog.route_set] == [
            "sip:p2.example.com;lr",
            "sip:p1.example.com;lr",
        ]
        assert dialog.local_cseq == 1 and dialog.remote_cseq is None
        assert dialog.local_uri == SipUri.parse("sip:alice@example.com")
        assert dialog.remote_uri == SipUri.parse("sip:bob@example.com")
        assert not dialog.secure
        assert dialog.local_target == SipUri.parse("sip:alice@192.0.2.1:5060")

    def test_uac_early_dialog_confirmed_by_2xx(self) -> None:
        request, ringing = answered(180)
        dialog = Dialog.from_uac(request, ringing)
        assert dialog.state is DialogState.EARLY
        _, ok = answered(200)
        ok.headers.remove("Record-Route")
        ok.headers.add("Record-Route", "<sip:only.example.com;lr>")
        dialog.receive_response(ok)
        assert dialog.state is DialogState.CONFIRMED
        assert [str(r.uri) for r in dialog.route_set] == ["sip:only.example.com;lr"]

    def test_uac_early_dialog_ended_by_failure(self) -> None:
        request, ringing = answered(180)
        dialog = Dialog.from_uac(request, ringing)
        dialog.receive_response(make_response(request, 486, to_tag="b-tag"))
        assert dialog.state is DialogState.TERMINATED

    def test_2xx_from_another_fork_is_refused(self) -> None:
        request, ringing = answered(180)
        dialog = Dialog.from_uac(request, ringing)
        with pytest.raises(LocalProtocolError, match="another fork"):
            dialog.receive_response(make_response(request, 200, to_tag="other"))

    def test_uas(self) -> None:
        request = invite_via_proxies(uri="sips:bob@example.com")
        dialog = Dialog.from_uas(request, "b-tag", local_target=UAS_CONTACT)
        assert dialog.id == DialogId("call-1@192.0.2.1", "b-tag", "a-tag")
        assert [str(r.uri) for r in dialog.route_set] == [
            "sip:p1.example.com;lr",
            "sip:p2.example.com;lr",
        ]
        assert dialog.remote_cseq == 1 and dialog.local_cseq is None
        assert dialog.remote_target == SipUri.parse("sip:alice@192.0.2.1:5060")
        assert dialog.secure

    def test_uas_early_then_confirmed_by_our_2xx(self) -> None:
        request = invite_via_proxies()
        dialog = Dialog.from_uas(request, "b-tag", early=True)
        assert dialog.state is DialogState.EARLY
        dialog.send_response(
            make_dialog_response(request, 200, local_tag="b-tag", contact=UAS_CONTACT)
        )
        assert dialog.state is DialogState.CONFIRMED

    def test_creation_errors(self) -> None:
        request, _ = answered()
        with pytest.raises(LocalProtocolError):
            Dialog.from_uac(request, make_response(request, 100))
        with pytest.raises(RemoteProtocolError, match="To tag"):
            Dialog.from_uac(request, make_response(request, 200))
        with pytest.raises(RemoteProtocolError, match="Contact"):
            Dialog.from_uac(request, make_response(request, 200, to_tag="x"))
        with pytest.raises(RemoteProtocolError, match="From tag"):
            Dialog.from_uas(make_request("INVITE", from_tag=None), "b-tag")
        with pytest.raises(RemoteProtocolError, match="Contact"):
            Dialog.from_uas(make_request("INVITE", contact=None), "b-tag")

    def test_make_dialog_response_copies_record_route_in_order(self) -> None:
        _, response = answered()
        assert response.headers.get_all("Record-Route") == list(RECORD_ROUTES)
        assert response.to.tag == "b-tag"
        assert response.contacts[0].uri == UAS_CONTACT


class TestRequestsWithinADialog:
    """RFC 3261 §12.2.1.1 (UAC behaviour) and §13.2.2.4 (ACK)."""

    def test_bye(self) -> None:
        request, response = answered()
        dialog = Dialog.from_uac(request, response)
        bye = dialog.create_request("BYE", headers=[("x-custom", "1"), ("call-info", "<x>")])
        assert bye.uri == UAS_CONTACT
        assert bye.headers.get_all("Route") == [
            "<sip:p2.example.com;lr>",
            "<sip:p1.example.com;lr>",
        ]
        assert bye.cseq.seq == 2 and bye.cseq.method == "BYE"
        assert bye.from_.tag == "a-tag" and bye.to.tag == "b-tag"
        assert bye.from_.display_name == "Alice"
        assert bye.call_id == request.call_id
        assert "contact" not in bye.headers
        names = [name for name, _ in bye.headers]
        assert names == [
            "Route",
            "Route",
            "Max-Forwards",
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "X-Custom",
            "Call-Info",
        ]
        assert "via" not in bye.headers
        assert dialog.create_request("INFO").cseq.seq == 3

    def test_reinvite_carries_our_contact_and_body(self) -> None:
        request, response = answered()
        dialog = Dialog.from_uac(request, response)
        reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
        assert reinvite.contacts[0].uri == dialog.local_target
        assert reinvite.headers.get("Content-Type") == "application/sdp"
        assert reinvite.serialize().endswith(b"Content-Length: 5\r\n\r\nv=0\r\n")

    def test_ack_keeps_the_invite_cseq_number(self) -> None:
        request, response = answered()
        dialog = Dialog.from_uac(request, response)
        dialog.create_request("INFO")
        ack = dialog.create_ack(request.cseq.seq)
        assert ack.method == "ACK" and ack.cseq.seq == 1 and ack.cseq.method == "ACK"
        assert ack.uri == UAS_CONTACT and dialog.local_cseq == 2

    def test_uas_first_request_starts_a_local_cseq(self) -> None:
        dialog = Dialog.from_uas(invite_via_proxies(cseq=40), "b-tag")
        bye = dialog.create_request("BYE")
        assert bye.cseq.seq == 1
        assert bye.uri == SipUri.parse("sip:alice@192.0.2.1:5060")
        assert bye.from_.tag == "b-tag" and bye.to.tag == "a-tag"
        assert bye.headers.get_all("Route") == list(RECORD_ROUTES)

    def test_strict_router_goes_in_the_request_uri(self) -> None:
        request = make_request("INVITE", extra=[("Record-Route", "<sip:strict.example.com>")])
        dialog = Dialog.from_uas(request, "b-tag")
        bye = dialog.create_request("BYE")
        assert bye.uri == SipUri.parse("sip:strict.example.com")
        assert bye.headers.get_all("Route") == ["<sip:alice@192.0.2.1:5060>"]

    def test_ack_and_cancel_are_not_built_by_create_request(self) -> None:
        dialog = Dialog.from_uac(*answered())
        for method in ("ACK", "CANCEL"):
            with pytest.raises(LocalProtocolError):
                dialog.create_request(method)

    def test_terminated_dialog_builds_nothing(self) -> None:
        request, response = answered()
        dialog = Dialog.from_uac(request, response)
        bye = dialog.create_request("BYE")
        dialog.receive_response(make_response(bye, 401, to_tag="b-tag"))
        assert dialog.state is DialogState.CONFIRMED  # a challenged BYE is sent again
        dialog.receive_response(make_response(bye, 200, to_tag="b-tag"))
        assert dialog.state is DialogState.TERMINATED
        with pytest.raises(LocalProtocolError, match="Terminated"):
            dialog.create_request("BYE")


class TestIncomingRequests:
    """RFC 3261 §12.2.2 (UAS behaviour)."""

    def uas(self) -> Dialog:
        return Dialog.from_uas(invite_via_proxies(cseq=10), "b-tag")

    def in_dialog(self, method: str, cseq: int, **kwargs: object) -> Request:
        return make_request(method, cseq=cseq, to_tag="b-tag", **kwargs)  # type: ignore[arg-type]

    def test_lower_cseq_is_rejected_with_500(self) -> None:
        dialog = self.uas()
        dialog.receive_request(self.in_dialog("INFO", 11))
        assert dialog.remote_cseq == 11
        with pytest.raises(RemoteProtocolError) as caught:
            dialog.receive_request(self.in_dialog("INFO", 5))
        assert caught.value.status_hint == 500
        dialog.receive_request(self.in_dialog("ACK", 10))  # the ACK reuses the INVITE's number

    def test_target_refresh(self) -> None:
        dialog = self.uas()
        dialog.receive_request(self.in_dialog("INFO", 11, contact="<sip:moved@10.0.0.9>"))
        assert dialog.remote_target == SipUri.parse("sip:alice@192.0.2.1:5060")
        dialog.receive_request(self.in_dialog("INVITE", 12, contact="<sip:moved@10.0.0.9>"))
        assert dialog.remote_target == SipUri.parse("sip:moved@10.0.0.9")
        dialog.receive_request(self.in_dialog("UPDATE", 13, contact="<sip:again@10.0.0.8>"))
        assert dialog.remote_target == SipUri.parse("sip:again@10.0.0.8")

    def test_uac_target_refresh_from_a_2xx(self) -> None:
        request, response = answered()
        dialog = Dialog.from_uac(request, response)
        reinvite = dialog.create_request("INVITE")
        ok = make_response(reinvite, 200, headers=[("Contact", "<sip:new@10.1.1.1>")])
        dialog.receive_response(ok)
        assert dialog.remote_target == SipUri.parse("sip:new@10.1.1.1")
        assert dialog.state is DialogState.CONFIRMED

    def test_bye_terminates_and_later_requests_get_481(self) -> None:
        dialog = self.uas()
        dialog.receive_request(self.in_dialog("BYE", 11))
        assert dialog.state is DialogState.TERMINATED
        with pytest.raises(RemoteProtocolError) as caught:
            dialog.receive_request(self.in_dialog("INFO", 12))
        assert caught.value.status_hint == 481

    def test_481_ends_the_dialog(self) -> None:
        dialog = Dialog.from_uac(*answered())
        info = dialog.create_request("INFO")
        dialog.receive_response(make_response(info, 481, to_tag="b-tag"))
        assert dialog.state is DialogState.TERMINATED

    def test_request_of_another_dialog_is_refused(self) -> None:
        with pytest.raises(LocalProtocolError):
            self.uas().receive_request(make_request("INFO", cseq=11, to_tag="other"))


class TestMatching:
    """RFC 3261 §12: Call-ID and tags, never the Request-URI."""

    def test_request_uri_and_header_spelling_do_not_matter(self) -> None:
        dialog = Dialog.from_uas(invite_via_proxies(), "B-Tag")
        wire = (
            b"BYE sip:unrelated@203.0.113.50 SIP/2.0\r\n"
            b"v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
            b"from: <sip:alice@example.com>;tag=A-TAG\r\n"
            b"to: <sip:bob@example.com>;tag=b-tag\r\n"
            b"call-id: call-1@192.0.2.1\r\n"
            b"cseq: 2 BYE\r\n\r\n"
        )
        bye = parse_message(wire)
        assert isinstance(bye, Request)
        assert DialogId.of_request(bye) == dialog.id
        assert dialog.matches(bye)

    def test_call_id_is_case_sensitive(self) -> None:
        assert DialogId("abc", "x", "y") != DialogId("ABC", "x", "y")
        assert DialogId("abc", "X", "Y") == DialogId("abc", "x", "y")

    def test_out_of_dialog_requests_have_no_id(self) -> None:
        assert DialogId.of_request(make_request("INVITE")) is None
        assert DialogId.of_response(make_response(make_request("INVITE"), 100)) is None
