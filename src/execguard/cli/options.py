"""Command-line option parsing shared by every subcommand."""

from __future__ import annotations

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
