"""SIP dialogs: identity, route set, CSeq and in-dialog requests (RFC 3261 §12).

Theory of operation
-------------------
A :class:`Dialog` is the state two user agents share between an INVITE (or SUBSCRIBE, REFER)
and the BYE: the dialog id (Call-ID, local tag, remote tag), the local and remote parties, the
remote target (the peer's Contact), the route set (Record-Route, reversed on the UAC side), the
local and remote CSeq numbers and the secure flag (§12.1). It is built from the UAC's view with
:meth:`Dialog.from_uac` (our request plus a 1xx-with-tag or 2xx response) or the UAS's view with
:meth:`Dialog.from_uas` (the request plus the tag we put in To).

A dialog builds in-dialog requests (§12.2.1.1) — Request-URI from the remote target, Route from
the route set (loose or strict routing), the next local CSeq, From/To with tags, Call-ID,
Max-Forwards — and leaves the Via to the stack. It checks incoming in-dialog requests
(§12.2.2): a CSeq lower than the last one is rejected with status hint 500, and a target
refresh request (INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER) replaces the remote target.
Matching uses Call-ID and tags only (:class:`DialogId`), never the Request-URI.

State machine (:data:`DIALOG_TRANSITIONS`; RFC 3261 §12.1, §13.2.2.4, §12.2.1.2, §15)::

    EARLY ──2xx──► CONFIRMED ──BYE received / final to our BYE / 481, 408──► TERMINATED
      └──non-2xx final to the initial INVITE, BYE, 481, 408──────────────────────┘

Building a request in TERMINATED raises :class:`LocalProtocolError`; receiving one raises
:class:`RemoteProtocolError` with status hint 481. A failed re-INVITE leaves the dialog as it
was (§14.1). Header names are written canonically (``Call-ID``, ``CSeq``, ``Max-Forwards``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from callwatch.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError
from callwatch.sip.headers import CSeq, Headers, canonical_name
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.uri import NameAddr, SipUri

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
"""Requests whose Contact replaces the remote target (RFC 3261 §12.2, RFC 3311, 6665, 3515)."""
MAX_FORWARDS = "70"
"""RFC 3261 §8.1.1.6."""
_CALL_ENDING = frozenset({408, 481})  # RFC 3261 §12.2.1.2
_AUTH_CHALLENGES = frozenset({401, 407})


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus local and remote tag (RFC 3261 §12).

    The Call-ID compares case-sensitively (§20.8); tags are tokens, which compare
    case-insensitively (§7.3.1), so they are stored lower-case here. The Request-URI plays no
    part: in-dialog requests may carry any Request-URI.
    """

    call_id: str
    local_tag: str
    remote_tag: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "local_tag", self.local_tag.lower())
        object.__setattr__(self, "remote_tag", self.remote_tag.lower())

    @classmethod
    def of_request(cls, request: Request) -> DialogId | None:
        """The id of the dialog a received request belongs to (To tag is ours), or None when
        it is out of dialog (no To tag)."""
        local, remote = request.to.tag, request.from_.tag
        if local is None or remote is None:
            return None
        return cls(request.call_id, local, remote)

    @classmethod
    def of_response(cls, response: Response) -> DialogId | None:
        """The id of the dialog a received response belongs to (From tag is ours), or None
        when the response has no To tag (a 100 Trying)."""
        local, remote = response.from_.tag, response.to.tag
        if local is None or remote is None:
            return None
        return cls(response.call_id, local, remote)


class DialogState(Enum):
    """RFC 3261 §12: a dialog is early until a 2xx confirms it."""

    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class DialogInput(Enum):
    """What moves a dialog."""

    PROVISIONAL = "1xx to the initial INVITE"
    SUCCESS = "2xx to the initial INVITE"
    FAILURE = "non-2xx final to the initial INVITE"
    GONE = "481 or 408 to an in-dialog request"
    BYE = "BYE received, or final response to our BYE"


_D = DialogState
DIALOG_TRANSITIONS: Mapping[tuple[DialogState, DialogInput], DialogState] = {
    (_D.EARLY, DialogInput.PROVISIONAL): _D.EARLY,
    (_D.EARLY, DialogInput.SUCCESS): _D.CONFIRMED,
    (_D.EARLY, DialogInput.FAILURE): _D.TERMINATED,
    (_D.EARLY, DialogInput.GONE): _D.TERMINATED,
    (_D.EARLY, DialogInput.BYE): _D.TERMINATED,
    (_D.CONFIRMED, DialogInput.PROVISIONAL): _D.CONFIRMED,
    (_D.CONFIRMED, DialogInput.SUCCESS): _D.CONFIRMED,
    (_D.CONFIRMED, DialogInput.FAILURE): _D.CONFIRMED,
    (_D.CONFIRMED, DialogInput.GONE): _D.TERMINATED,
    (_D.CONFIRMED, DialogInput.BYE): _D.TERMINATED,
}
"""(state, input) → state; TERMINATED has no way out."""


def _without_tag(party: NameAddr) -> NameAddr:
    return replace(party, params={k: v for k, v in party.params.items() if k != "tag"})


def _routes(values: Iterable[str]) -> tuple[NameAddr, ...]:
    try:
        return tuple(NameAddr.parse(value) for value in values)
    except ParseError as exc:
        raise RemoteProtocolError(f"invalid Record-Route: {exc}") from None


def _contact(message: Request | Response) -> SipUri | None:
    contacts = message.contacts
    return contacts[0].uri if contacts else None


def _initial_input(status: int) -> DialogInput:
    if status < 200:
        return DialogInput.PROVISIONAL
    return DialogInput.SUCCESS if status < 300 else DialogInput.FAILURE


class Dialog:
    """One dialog, from our side (RFC 3261 §12). Build with :meth:`from_uac`/:meth:`from_uas`.

    ``local_party``/``remote_party`` are the From/To values without tags; ``local_target`` is
    our Contact, added to target refresh requests when set. ``initial_cseq`` is the CSeq number
    of the INVITE that created the dialog, sent by us when ``uac`` and by the peer otherwise.
    """

    def __init__(
        self,
        *,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_party: NameAddr,
        remote_party: NameAddr,
        remote_target: SipUri,
        route_set: Sequence[NameAddr] = (),
        local_cseq: int | None = None,
        remote_cseq: int | None = None,
        initial_cseq: int = 0,
        uac: bool = True,
        secure: bool = False,
        local_target: SipUri | None = None,
        state: DialogState = DialogState.CONFIRMED,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_party = _without_tag(local_party)
        self.remote_party = _without_tag(remote_party)
        self.secure = secure
        self.local_target = local_target
        self._remote_target = remote_target
        self._route_set = tuple(route_set)
        self._local_cseq = local_cseq
        self._remote_cseq = remote_cseq
        self._initial_cseq = initial_cseq
        self._uac = uac
        self._state = state

    def __repr__(self) -> str:
        return f"<Dialog {self.call_id} {self.local_tag}/{self.remote_tag} {self._state.value}>"

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog our ``request`` created, as its 1xx (with To tag) or 2xx ``response``
        describes it (RFC 3261 §12.1.2).

        Raises:
            LocalProtocolError: the request has no From tag, or the response cannot create a
                dialog (100 or a final non-2xx).
            RemoteProtocolError: the response has no To tag, a 2xx has no Contact, or a
                Record-Route is malformed.
        """
        if not 101 <= response.status < 300:
            raise LocalProtocolError(f"a {response.status} response does not create a dialog")
        local_tag, remote_tag = request.from_.tag, response.to.tag
        if local_tag is None:
            raise LocalProtocolError("our request has no From tag")
        if remote_tag is None:
            raise RemoteProtocolError("dialog-creating response without a To tag")
        target = _contact(response)
        if target is None and response.status >= 200:
            raise RemoteProtocolError("2xx without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_party=request.from_,
            remote_party=request.to,
            remote_target=target or request.uri,  # a 1xx without Contact: wait for the 2xx
            route_set=tuple(reversed(_routes(response.headers.get_all("record-route")))),
            local_cseq=request.cseq.seq,
            initial_cseq=request.cseq.seq,
            secure=request.uri.scheme == "sips",
            local_target=_contact(request),
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
        )

    @classmethod
    def from_uas(
        cls,
        request: Request,
        local_tag: str,
        *,
        local_target: SipUri | None = None,
        early: bool = False,
    ) -> Dialog:
        """The dialog a received ``request`` creates when we answer with To tag ``local_tag``
        (RFC 3261 §12.1.1); ``early`` when the answer is a 1xx.

        Raises:
            RemoteProtocolError: no From tag, no Contact, or a malformed Record-Route.
        """
        remote_tag = request.from_.tag
        if remote_tag is None:
            raise RemoteProtocolError("dialog-creating request without a From tag")
        target = _contact(request)
        if target is None:
            raise RemoteProtocolError("dialog-creating request without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_party=request.to,
            remote_party=request.from_,
            remote_target=target,
            route_set=_routes(request.headers.get_all("record-route")),
            remote_cseq=request.cseq.seq,
            initial_cseq=request.cseq.seq,
            uac=False,
            secure=request.uri.scheme == "sips",
            local_target=local_target,
            state=DialogState.EARLY if early else DialogState.CONFIRMED,
        )

    @property
    def id(self) -> DialogId:
        """The dialog id, for matching."""
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @property
    def state(self) -> DialogState:
        """Early, Confirmed or Terminated."""
        return self._state

    @property
    def remote_target(self) -> SipUri:
        """Where in-dialog requests go: the peer's latest Contact."""
        return self._remote_target

    @property
    def route_set(self) -> tuple[NameAddr, ...]:
        """Route headers for in-dialog requests, in the order they are sent."""
        return self._route_set

    @property
    def local_cseq(self) -> int | None:
        """The CSeq number of the last request we built (None before the first on a UAS)."""
        return self._local_cseq

    @property
    def remote_cseq(self) -> int | None:
        """The CSeq number of the last request the peer sent."""
        return self._remote_cseq

    @property
    def local_uri(self) -> SipUri:
        """Our address: the From URI of our requests."""
        return self.local_party.uri

    @property
    def remote_uri(self) -> SipUri:
        """The peer's address: the To URI of our requests."""
        return self.remote_party.uri

    def matches(self, message: Request | Response) -> bool:
        """True when a received request or response carries this dialog's id."""
        if isinstance(message, Request):
            return DialogId.of_request(message) == self.id
        return DialogId.of_response(message) == self.id

    def create_request(
        self,
        method: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """Build an in-dialog request with the next local CSeq (RFC 3261 §12.2.1.1).

        Our Contact (``local_target``) is added to target refresh requests unless ``headers``
        carries one. The stack adds the Via.

        Raises:
            LocalProtocolError: the dialog is terminated, or ``method`` is ACK (use
                :meth:`create_ack`) or CANCEL (use ``SipStack.cancel``).
        """
        if method in ("ACK", "CANCEL"):
            raise LocalProtocolError(f"{method} is not built with create_request")
        self._require_alive(method)
        self._local_cseq = (self._local_cseq or 0) + 1
        return self._build(method, self._local_cseq, headers, body, content_type)

    def create_ack(
        self, invite_cseq: int, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """The ACK for a 2xx to the INVITE numbered ``invite_cseq`` (RFC 3261 §13.2.2.4): same
        CSeq number, method ACK; send it with ``SipStack.send_stateless``.

        Raises:
            LocalProtocolError: the dialog is terminated.
        """
        self._require_alive("ACK")
        return self._build("ACK", invite_cseq, (), body, content_type)

    def receive_request(self, request: Request) -> None:
        """Check and apply an in-dialog request the peer sent (RFC 3261 §12.2.2).

        Raises:
            LocalProtocolError: the request belongs to another dialog.
            RemoteProtocolError: status hint 481 when the dialog is terminated, 500 when the
                CSeq is lower than the last one (out of order).
        """
        if not self.matches(request):
            raise LocalProtocolError(f"{request.method} does not belong to {self!r}")
        if self._state is DialogState.TERMINATED:
            raise RemoteProtocolError("dialog is terminated", status_hint=481)
        if request.method not in ("ACK", "CANCEL"):  # these reuse the INVITE's number
            self._check_remote_cseq(request.cseq.seq)
        target = _contact(request) if request.method in TARGET_REFRESH_METHODS else None
        if target is not None:
            self._remote_target = target
        if request.method == "BYE":
            self._move(DialogInput.BYE)

    def receive_response(self, response: Response) -> None:
        """Apply a response to a request we sent in this dialog (or to the one that created it):
        confirmation and route set on the first 2xx (§13.2.2.4), target refresh (§12.2.1.2),
        termination on 481/408 or on the final response to our BYE.

        Raises:
            LocalProtocolError: the response belongs to another dialog (another fork).
        """
        if response.call_id != self.call_id or not self._is_local_tag(response.from_.tag):
            raise LocalProtocolError(f"response does not belong to {self!r}")
        if response.status < 300 and not self._is_remote_tag(response.to.tag):
            raise LocalProtocolError(f"{response.status} from another fork than {self!r}")
        if self._state is DialogState.TERMINATED:
            return
        self._refresh_from_response(response)
        move = self._response_input(response)
        if move is not None:
            self._move(move)

    def send_response(self, response: Response) -> None:
        """Note a response we sent to the request that created the dialog (UAS side): a 2xx
        confirms it, a non-2xx final ends it."""
        if self._state is not DialogState.TERMINATED and self._is_initial(response, uac=False):
            self._move(_initial_input(response.status))

    def terminate(self) -> None:
        """End the dialog (our BYE timed out, the session is gone)."""
        self._state = DialogState.TERMINATED

    def _build(
        self,
        method: str,
        seq: int,
        extra: Iterable[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> Request:
        uri, routes = self._next_hop()
        fields = [(canonical_name(name), value) for name, value in extra]
        headers = Headers([("Route", str(route)) for route in routes])
        headers.add("Max-Forwards", MAX_FORWARDS)
        headers.add("From", str(self.local_party.with_tag(self.local_tag)))
        headers.add("To", str(self.remote_party.with_tag(self.remote_tag)))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", str(CSeq(seq, method)))
        if self._wants_contact(method, fields):
            headers.add("Contact", f"<{self.local_target}>")
        for name, value in fields:
            headers.add(name, value)
        if content_type is not None:
            headers.set("Content-Type", content_type)
        return Request(headers=headers, body=body, method=method, uri=uri)

    def _next_hop(self) -> tuple[SipUri, tuple[NameAddr, ...]]:
        """Request-URI and Route values (RFC 3261 §12.2.1.1): loose routing when the first
        route has ``lr``, otherwise strict routing with the remote target appended."""
        routes = self._route_set
        if not routes or "lr" in routes[0].uri.params:
            return self._remote_target, routes
        first = replace(routes[0].uri.without_params("method"), headers=None)
        return first, (*routes[1:], NameAddr(self._remote_target))

    def _wants_contact(self, method: str, extra: list[tuple[str, str]]) -> bool:
        if self.local_target is None or method not in TARGET_REFRESH_METHODS:
            return False
        return all(name.lower() != "contact" for name, _ in extra)

    def _require_alive(self, method: str) -> None:
        if self._state is DialogState.TERMINATED:
            raise LocalProtocolError(f"cannot send {method} in state {self._state.value}")

    def _check_remote_cseq(self, seq: int) -> None:
        if self._remote_cseq is not None and seq < self._remote_cseq:
            raise RemoteProtocolError(
                f"CSeq {seq} is lower than {self._remote_cseq} (out of order)", status_hint=500
            )
        self._remote_cseq = seq

    def _refresh_from_response(self, response: Response) -> None:
        method, status = response.cseq.method, response.status
        if method not in TARGET_REFRESH_METHODS or not 101 <= status < 300:
            return
        target = _contact(response)
        if target is not None:
            self._remote_target = target
        if self._state is DialogState.EARLY and status >= 200 and self._is_initial(response):
            values = response.headers.get_all("record-route")
            self._route_set = tuple(reversed(_routes(values)))

    def _response_input(self, response: Response) -> DialogInput | None:
        status = response.status
        if status in _CALL_ENDING:
            return DialogInput.GONE
        if response.cseq.method == "BYE" and status >= 200 and status not in _AUTH_CHALLENGES:
            return DialogInput.BYE
        return _initial_input(status) if self._is_initial(response) else None

    def _is_initial(self, response: Response, *, uac: bool = True) -> bool:
        cseq = response.cseq
        initial = cseq.method == "INVITE" and cseq.seq == self._initial_cseq
        return initial and self._uac is uac

    def _is_local_tag(self, tag: str | None) -> bool:
        return tag is not None and tag.lower() == self.local_tag.lower()

    def _is_remote_tag(self, tag: str | None) -> bool:
        return tag is None or tag.lower() == self.remote_tag.lower()

    def _move(self, move: DialogInput) -> None:
        new = DIALOG_TRANSITIONS.get((self._state, move))
        if new is None:
            raise LocalProtocolError(f"dialog in state {self._state.value}: {move.value}")
        self._state = new


def make_dialog_response(
    request: Request,
    status: int,
    *,
    local_tag: str,
    contact: SipUri,
    reason: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A 1xx/2xx that establishes a dialog (RFC 3261 §12.1.1): :func:`make_response` plus our
    To tag, the request's Record-Route values in order, and our Contact."""
    extra = [("Record-Route", value) for value in request.headers.get_all("record-route")]
    extra.append(("Contact", f"<{contact}>"))
    extra.extend((canonical_name(name), value) for name, value in headers)
    return make_response(request, status, reason, to_tag=local_tag, headers=extra, body=body)
