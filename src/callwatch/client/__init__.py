"""The client side of callwatch: a real SIP user agent with RTP, for tests, the call simulator
and the supervisor softphone. Never imports the server packages (pbx, api, store, app)."""

from callwatch.client.call_model import CallState, CallView, EndReason, SipTrace
from callwatch.client.channel import Final
from callwatch.client.digest import Credentials
from callwatch.client.errors import CallFailed, RegistrationFailed, UaError
from callwatch.client.media_session import MediaSession, OfferRejected
from callwatch.client.negotiation import StreamMedia
from callwatch.client.rtp_session import ReceivedRtp, RtpCounters, RtpSession, UnexpectedDatagram
from callwatch.client.ua import UserAgent
from callwatch.client.ua_call import UaCall

__all__ = [
    "CallFailed",
    "CallState",
    "CallView",
    "Credentials",
    "EndReason",
    "Final",
    "MediaSession",
    "OfferRejected",
    "ReceivedRtp",
    "RegistrationFailed",
    "RtpCounters",
    "RtpSession",
    "SipTrace",
    "StreamMedia",
    "UaCall",
    "UaError",
    "UnexpectedDatagram",
    "UserAgent",
]
