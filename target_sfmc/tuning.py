"""Interpreter settings for processes that load rows (the target, the emulator).

Both keep many rows alive and run request threads beside a busy thread.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

# How long a busy thread may hold the interpreter before a waiting one gets it (default 5 ms).
SWITCH_INTERVAL_SECONDS = 0.001


@contextlib.contextmanager
def tuned_for_loading() -> Iterator[None]:
    """Collect garbage rarely and hand the interpreter over quickly inside the block.

    - A load keeps thousands of rows alive until SFMC confirms them (and the emulator keeps
      a job's rows until it applies them); with the default thresholds the cycle collector
      walks them again and again, a large share of the CPU per record. Rows, records and requests
      never form reference cycles, so collecting less often keeps memory the same.
    - A request thread that waits for the interpreter while the reading thread maps records
      starts late; late starts bunch up and can put more requests into one second than the
      rate limit allows. A shorter switch interval keeps that delay to a few milliseconds.

    Yields:
        Nothing; the previous settings are back after the block.
    """
    thresholds = gc.get_threshold()
    switch_interval = sys.getswitchinterval()
    gc.freeze()  # what exists before the block (modules, settings) is never garbage
    gc.set_threshold(50_000, 20, 20)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
