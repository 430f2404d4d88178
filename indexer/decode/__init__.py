"""Decoding: raw Lake JSON -> rows for the tracked contracts.

``lake`` holds the msgspec views of the Lake JSON (only the fields we read),
``nep297`` the ``EVENT_JSON:`` log parser, ``dip4`` and ``workshop`` the protocol
decoders, and ``block`` ties them together per block.
"""
