"""Local Salesforce Marketing Cloud emulator for tests, demos and benchmarks.

Use `SfmcEmulator` in-process, or the ``sfmc-emulator`` command (`target_sfmc.emulator.cli`).
"""

from target_sfmc.emulator.emulator import SfmcEmulator
from target_sfmc.emulator.faults import FaultConfig
from target_sfmc.emulator.schema import DefinitionError

__all__ = ["DefinitionError", "FaultConfig", "SfmcEmulator"]
