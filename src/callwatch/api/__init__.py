"""The RingCentral-compatible REST API (FastAPI); build it with :func:`create_app`."""

from callwatch.api.app import create_app
from callwatch.api.deps import DeviceStatusProvider, SipEndpointInfo, SipListeners

__all__ = ["DeviceStatusProvider", "SipEndpointInfo", "SipListeners", "create_app"]
