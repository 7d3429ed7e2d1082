"""SRTP/SRTCP for one stream direction (RFC 3711), keyed by SDES (RFC 4568), over pylibsrtp.

Theory of operation
-------------------
SDES gives each side of a leg its own master key: the key in the *offer* protects what the
offerer sends, the key in the *answer* what the answerer sends (RFC 4568 §6.1). So the relay
holds, per leg, one :class:`SrtpContext` ``INBOUND`` (the leg's key, to unprotect what the
phone sends) and one ``OUTBOUND`` (our key for that leg, to protect what we send it).

Every context owns its own libsrtp session, so replay windows and rollover counters are never
shared between streams — even when two streams were given the same key (a forked offer, a
careless peer). Sharing a session would let one stream's packets advance or poison the other's
replay state, and let the same keystream protect two streams' packets with one counter.

On the per-packet path nothing raises: :meth:`SrtpContext.unprotect` returns ``None`` when a
packet fails authentication or the replay check and counts it in :attr:`SrtpContext.failures`.
Only the profile ``AES_CM_128_HMAC_SHA1_80`` (30 bytes of key||salt) is offered.
"""

from __future__ import annotations

import enum
import os

import pylibsrtp

__all__ = [
    "SRTP_KEY_SALT_LENGTH",
    "SRTP_PROFILE",
    "SrtpContext",
    "SrtpDirection",
    "SrtpError",
    "generate_key_salt",
]

SRTP_PROFILE = "AES_CM_128_HMAC_SHA1_80"
"""The SDES crypto-suite name of the one profile we implement (RFC 4568 §6.2.1)."""
SRTP_KEY_SALT_LENGTH = 30
"""16-byte master key followed by a 14-byte master salt (RFC 4568 §6.2.1)."""
REPLAY_WINDOW = 1024
"""Inbound replay window in packets (libsrtp's default is 128; relays see reordering)."""
MAX_SRTP_PACKET = 1500 - 144
"""Largest plaintext pylibsrtp can protect: its buffer is 1500 bytes less the worst trailer."""


class SrtpDirection(enum.Enum):
    """Which way a context works: it either unprotects what a phone sends, or protects."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SrtpError(ValueError):
    """A context was built or used against its contract (bad key, wrong direction)."""


def generate_key_salt() -> bytes:
    """A fresh random master key||salt for :data:`SRTP_PROFILE` (what we put in ``inline:``)."""
    return os.urandom(SRTP_KEY_SALT_LENGTH)


class SrtpContext:
    """One direction of one stream: protect (``OUTBOUND``) or unprotect (``INBOUND``).

    Args:
        key_salt: 30 bytes, master key then master salt.
        direction: which way this context works; the other way's methods raise.
    Raises:
        SrtpError: the key is not 30 bytes.
    """

    __slots__ = ("_outbound", "_session", "direction", "failures", "last_error")

    def __init__(self, key_salt: bytes, direction: SrtpDirection) -> None:
        if len(key_salt) != SRTP_KEY_SALT_LENGTH:
            raise SrtpError(
                f"{SRTP_PROFILE} needs {SRTP_KEY_SALT_LENGTH} bytes of key||salt, "
                f"got {len(key_salt)}"
            )
        self.direction = direction
        self._outbound = direction is SrtpDirection.OUTBOUND
        ssrc_type = (
            pylibsrtp.Policy.SSRC_ANY_OUTBOUND if self._outbound
            else pylibsrtp.Policy.SSRC_ANY_INBOUND
        )  # fmt: skip
        policy = pylibsrtp.Policy(
            key=bytes(key_salt),
            ssrc_type=ssrc_type,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        # A relay forwards what it is given: a duplicate from the far side must be protected
        # again rather than rejected by libsrtp's sender-side replay check.
        policy.allow_repeat_tx = True
        policy.window_size = REPLAY_WINDOW
        self._session = pylibsrtp.Session(policy)
        self.failures = 0
        """Packets that failed authentication, the replay check, or did not fit."""
        self.last_error = ""
        """libsrtp's words for the latest failure (for diagnostics, not per-packet logging)."""

    def protect(self, packet: bytes) -> bytes | None:
        """SRTP-protect an RTP packet; ``None`` (counted) if it cannot be protected."""
        if not self._outbound:
            raise SrtpError("protect() on an inbound SRTP context")
        try:
            return self._session.protect(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            self._fail(exc)
            return None

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        """SRTCP-protect an RTCP compound packet; ``None`` (counted) on failure."""
        if not self._outbound:
            raise SrtpError("protect_rtcp() on an inbound SRTP context")
        try:
            return self._session.protect_rtcp(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            self._fail(exc)
            return None

    def unprotect(self, packet: bytes) -> bytes | None:
        """Authenticate and decrypt an SRTP packet; ``None`` (counted) if it does not verify."""
        if self._outbound:
            raise SrtpError("unprotect() on an outbound SRTP context")
        try:
            return self._session.unprotect(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            self._fail(exc)
            return None

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """Authenticate and decrypt an SRTCP packet; ``None`` (counted) if it does not verify."""
        if self._outbound:
            raise SrtpError("unprotect_rtcp() on an outbound SRTP context")
        try:
            return self._session.unprotect_rtcp(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = str(exc)
        return None
