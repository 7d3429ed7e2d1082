"""callwatch: call supervision, monitoring and live-audio streaming with a RingCentral-style API."""

__version__ = "0.1.0"
