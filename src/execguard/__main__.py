"""`python -m execguard`: the same command line as the `execguard` script."""

from execguard.cli import program

if __name__ == "__main__":  # not when a spawned process (the webhook's receiver) imports it again
    program()
