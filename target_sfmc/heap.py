"""Cycle-collector tuning for processes that keep many rows alive (the target, the emulator)."""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def rare_garbage_collection() -> Iterator[None]:
    """Run the cycle collector rarely inside the block.

    A load keeps thousands of rows alive until SFMC confirms them (and the emulator keeps
    a job's rows until it applies them); with the default thresholds the collector walks them
    again and again, a fifth of the CPU per record. Rows, records and requests never form
    reference cycles, so collecting less often keeps memory the same.

    Yields:
        Nothing; the previous thresholds are back after the block.
    """
    thresholds = gc.get_threshold()
    gc.freeze()  # what exists before the block (modules, settings) is never garbage
    gc.set_threshold(50_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
