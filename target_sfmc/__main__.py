"""Run the target: ``python -m target_sfmc --config config.json`` (also ``target-sfmc``)."""

import gc


def main() -> None:
    """Import the target with the cycle collector off, then run its command line.

    Importing singer-sdk and its dependencies creates hundreds of thousands of objects that
    live as long as the process. Collecting cycles among them is wasted work: not while they
    are created, not during the run (they are frozen out of the collector's reach), and not
    at exit, where the interpreter's last collections would walk every one of them. Nothing
    waits for those collections: what the target writes (STATE, dead letters, the run report)
    is flushed or closed as it is written.
    """
    gc.disable()
    try:
        from target_sfmc.target import TargetSfmc  # noqa: PLC0415 - imported with collection off
    finally:
        gc.freeze()
        gc.enable()
    try:
        TargetSfmc.cli()
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
