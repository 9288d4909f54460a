"""firmware_bridge: events and audio between edge-sed and microcontroller firmware.

``PROTOCOL.md`` beside this file is the wire protocol (version 1: COBS frames
with a CRC-32, little-endian, EVENT / SCORES / PCM / HEARTBEAT / CONFIG).

Protocol (:mod:`firmware_bridge.protocol`)
    Message dataclasses, ``encode()``, ``FrameEncoder``, and ``FrameDecoder``,
    which counts bad frames in ``DecoderCounters`` instead of raising.
Transports (:mod:`firmware_bridge.transports`)
    ``open_transport()`` for ``serial://`` (pyserial), ``udp://`` and ``tcp://`` URLs.
Sink and source (:mod:`firmware_bridge.sink`, :mod:`firmware_bridge.source`)
    ``BridgeSink`` (``edge-sed listen --sink serial://...``) and ``BridgeSource``
    with ``PcmAssembler`` (``edge-sed listen --source serial://...``).
Firmware side (``c/``, :mod:`firmware_bridge.cbuild`)
    ``edge_sed_bridge.h``/``.c``: C99, no dynamic memory; ``fuzz/`` holds the
    libFuzzer target and a random driver.
Model as C arrays (:mod:`firmware_bridge.c_array`)
    ``write_c_array()`` (``edge-sed bridge c-array``): ``model_data.{h,cc}`` and
    ``model_settings.h`` for TensorFlow Lite Micro.

Needs the ``[serial]`` extra (pyserial, cobs); never imports torch.
"""
