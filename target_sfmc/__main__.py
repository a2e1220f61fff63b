"""Run the target: ``python -m target_sfmc --config config.json`` (also ``target-sfmc``)."""

import gc


def main() -> None:
    """Import the target with the cycle collector off, then run its command line.

    Importing singer-sdk and its dependencies creates hundreds of thousands of objects that
    live as long as the process; collecting cycles among them while they are created is
    wasted work (a sizeable share of a short run's start-up).
    """
    gc.disable()
    try:
        from target_sfmc.target import TargetSfmc  # noqa: PLC0415 - imported with collection off
    finally:
        gc.enable()
    TargetSfmc.cli()


if __name__ == "__main__":
    main()
