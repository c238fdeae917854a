"""`python -m execguard` and the `execguard` script: the same command line."""

import gc


def main() -> None:
    """The program, its start-up run without the cyclic collector.

    Importing the command line (typer, click, the commands) allocates objects by the hundred thousand and makes no
    cycles to free, yet ran ~38 young collections, 15-20 ms of a one-line hunt's start-up (benchmarks/RESULTS.md).
    What the imports made is then frozen (``gc.freeze``: later collections never traverse it) and the collector
    turned back on before any command runs; a hunt then sets its own pace (pipeline/collector.py).
    """
    gc.disable()
    try:
        from execguard.cli import program
    finally:
        gc.freeze()
        gc.enable()
    program()


if __name__ == "__main__":  # not when a spawned process (the webhook's receiver) imports it again
    main()
