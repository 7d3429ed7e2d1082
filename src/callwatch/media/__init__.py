"""Media plane: RTP/RTCP packets, SRTP, the relay (ports, latching, forwarding, forks), codecs.

Public names are imported from the submodules (``callwatch.media.relay``, ``.control`` …);
this package re-exports nothing so that parallel work on its modules never collides here.
"""
