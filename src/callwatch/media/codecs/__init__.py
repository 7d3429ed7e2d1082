"""Audio codecs behind one Encoder/Decoder protocol: G.711, G.722, Opus, L16.

Look codecs up from SDP with ``callwatch.media.codecs.registry.codec_for``, or use the concrete
modules directly. PyAV is imported only by ``g722``, ``opus`` and their helper ``_av`` (the
registry imports them when a stream first needs one), so ``base``, ``g711``, ``l16`` and the
registry work without it.
"""
