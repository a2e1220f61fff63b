"""The fast path: records that skip the SDK's generic per-record work.

This package is the only code that touches singer-sdk's private, per-record internals; no
other module names a private SDK attribute. An SDK upgrade means re-reading this package
(``tests/unit/test_sdk_contract.py`` fails when the SDK code copied here changes).

- :mod:`.target`: the per-record step of the SDK (one copy, for streams without stream maps),
  the steps every record ends with, and where a stream's lane is switched on and off.
- :mod:`.sink`: the sink side: validation and date parsing in one step, and a stream's lane.
- :mod:`.reader`: reads Singer lines, hands a laned stream's RECORD to its lane undecoded,
  and names the line of any bad message.
- :mod:`.lanes`: a lane decodes, checks and maps a flat record's JSON text in one pass.
- :mod:`.segment_lane`: the lane of Segment-format streams: decode and check a message's
  routed fields, then route them with the general path's rules.
- :mod:`.rows`: the row type lanes build in one call.
"""
