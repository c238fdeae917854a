"""`python -m execguard`: the same command line as the `execguard` script."""

from execguard.cli import app

app(prog_name="execguard")
