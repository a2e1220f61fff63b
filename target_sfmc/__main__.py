"""Run the target: ``python -m target_sfmc --config config.json``."""

from target_sfmc.target import TargetSfmc

TargetSfmc.cli()
