"""Layer 1, sans-IO: Kafka primitive types, headers, messages and version negotiation.

Rules: bytes in, values out; no asyncio, sockets or clocks. Every decoding error is a
:class:`~aioproducer.errors.ProtocolError`, never an ``IndexError`` or ``struct.error``, and no
length read from the wire allocates more than the bytes that are actually there.
"""
