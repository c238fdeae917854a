"""Command-line option parsing shared by every subcommand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..model import SEVERITIES


def severity_option(value: str | None) -> str | None:
    """Typer callback for --min-severity / --fail-on: a known level, lower-cased."""
    if value is None:
        return None
    v = value.lower()
    if v == "informational":
        v = "info"
    if v not in SEVERITIES:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(SEVERITIES)}")
    return v


def when(value: str | None) -> int | None:
    """--since / --until: RFC 3339 or an age before now, as nanoseconds; a bad value is a usage error."""
    if value is None:
        return None
    from ..pipeline.filters import parse_when  # imported when used: start-up stays small

    try:
        return parse_when(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# options `hunt` and `watch` share, declared once: the same flag, meaning and help in both
Rules = Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules: a directory or file (repeatable).")]
NoBuiltin = Annotated[bool, typer.Option("--no-builtin", help="Use only the rules given with --rules.")]
MinSeverity = Annotated[str, typer.Option("--min-severity", help="Report alerts at or above this level.", callback=severity_option)]
Store = Annotated[
    Path | None, typer.Option("--store", help="Also keep the alerts in this SQLite store, for execguard alerts (docs/sinks.md).")
]
Sinks = Annotated[
    list[str] | None,
    typer.Option("--sink", help="Also send the alerts to store:PATH, file:PATH, webhook:URL, syslog+udp|tcp://HOST:PORT (repeatable)."),
]
JoinWindow = Annotated[
    float, typer.Option("--join-window", min=0.0, help="Seconds from an exec record to the runtime exec it caused (docs/node.md).")
]
JoinSkew = Annotated[float, typer.Option("--join-skew", min=0.0, help="Seconds the sources' clocks may disagree by (docs/node.md).")]
