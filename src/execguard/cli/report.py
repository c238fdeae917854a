"""``execguard report``: alerts (JSON lines, the alert store) and audit findings as one HTML file (docs/report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .util import check_output, error, fail, note, plural, warning, write_output


def report_command(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Alert files in JSON lines (hunt -o jsonl, watch --out); - for stdin.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("execguard-report.html"),
    store: Annotated[
        Path | None, typer.Option("--store", help="Also read every alert of this SQLite alert store (watch, hunt --store).")
    ] = None,
    audit: Annotated[
        Path | None,
        typer.Option("--audit", help="Findings of execguard audit -o json, shown beside the alerts of the identities they name."),
    ] = None,
    title: Annotated[str, typer.Option("--title", help="The report's title.")] = "execguard report",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No warnings or summary on stderr.")] = False,
) -> None:
    """Write a self-contained HTML investigation report: timeline, counts, ATT&CK, who exec'd into what, stories, alert table."""
    from ..report import Collector, build
    from ..report.inputs import ReportInputError, findings, jsonl_alerts, store_alerts
    from ..report.render import AssetError, plotly_js

    sources = list(paths or [])
    if not sources and store is None:
        fail("give at least one alert file (hunt -o jsonl), - for stdin, or --store DB")
    check_output(out)
    try:
        plotly_js()
        found = findings(audit) if audit is not None else None
    except (ReportInputError, AssetError) as exc:
        fail(exc)
    warnings = 0

    def warn(message: str) -> None:
        nonlocal warnings
        warnings += 1
        if not quiet and warnings <= 20:
            warning(message)

    collector = Collector()
    failed = False
    readers = [(p, jsonl_alerts(p, warn)) for p in sources]
    if store is not None:
        readers.append((str(store), store_alerts(store)))
    for _name, alerts in readers:
        try:
            for d in alerts:
                collector.add(d)
        except ReportInputError as exc:  # named, and the other inputs still make the report
            error(exc)
            failed = True
    write_output(out, build(collector, title, [name for name, _ in readers], found))
    if not quiet:
        if warnings > 20:
            warning(f"{plural(warnings - 20, 'more warning')} not shown")
        extra = f" and {plural(len(found), 'audit finding')}" if found is not None else ""
        note(f"{out}: {plural(len(collector), 'alert')}{extra}, {plural(warnings, 'bad line')} skipped")
    if failed:
        raise typer.Exit(2)
