"""``execguard alerts``: query the SQLite alert store that ``hunt --store`` and ``watch`` fill (docs/sinks.md)."""

from __future__ import annotations

import os
import sys
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..model import Alert, display
from ..pipeline.filters import AlertFilter
from .options import severity_option, when
from .util import error, fail, plural, silence_stdout

if TYPE_CHECKING:
    from ..sinks.specs import Sink


class AlertsOutput(str, Enum):
    table = "table"
    jsonl = "jsonl"


class CountBy(str, Enum):
    rule = "rule"
    actor = "actor"
    namespace = "namespace"


def _check_when(value: str | None) -> str | None:
    when(value)  # as a callback, so the error names the option
    return value


def _key(alert: Alert, by: CountBy) -> str:
    if by is CountBy.rule:
        return alert.lead.rule_id
    if by is CountBy.actor:
        return alert.event.actor.user or "(no identity)"
    return alert.event.target.namespace or "(no namespace)"


def alerts_command(
    store: Annotated[Path, typer.Option("--store", help="The alert store (hunt --store, watch).")] = Path("execguard.db"),
    since: Annotated[
        str | None, typer.Option("--since", help="At or after this time: RFC 3339 or an age (30m, 2h, 1d).", callback=_check_when)
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="At or before this time: RFC 3339 or an age (30m, 2h, 1d).", callback=_check_when)
    ] = None,
    min_severity: Annotated[
        str, typer.Option("--severity", "--min-severity", help="This level and above.", callback=severity_option)
    ] = "info",
    rule: Annotated[list[str] | None, typer.Option("--rule", help="Alerts where this rule id fired; a glob, repeatable.")] = None,
    user: Annotated[
        list[str] | None, typer.Option("--user", "--actor", help="This user (or impersonated user); a glob, repeatable.")
    ] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", help="This namespace; a glob, repeatable.")] = None,
    pod: Annotated[list[str] | None, typer.Option("--pod", help="This pod; a glob, repeatable.")] = None,
    output: Annotated[AlertsOutput, typer.Option("--output", "-o", help="table or jsonl.")] = AlertsOutput.table,
    count_by: Annotated[CountBy | None, typer.Option("--count-by", help="Print counts per rule, actor or namespace instead.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Table: show at most N alerts, the most severe; 0 = all.")] = 2000,
) -> None:
    """Query the alert store: time window, severity, rule, actor, namespace and pod, as a table, JSON lines or counts."""
    # imported here: every other command starts without sqlite3 and hashlib
    import sqlite3

    from ..sinks.restore import restore
    from ..sinks.store import Query, StoreError, connect, rows

    query = Query(when(since), when(until), min_severity or "info", namespace or [], pod or [], user or [])
    try:
        db = connect(store, create=False)
    except StoreError as exc:
        fail(exc)
    keep = AlertFilter(query.since, query.until, query.namespaces, query.pods, query.users, rule or [])
    console = Console()
    counts: Counter[str] = Counter()
    if count_by is None:
        sink = _sink(output, console, limit)
    try:
        for _rid, d in rows(db, query):
            alert = restore(d)
            if not keep.keep(alert):
                continue
            if count_by is not None:
                counts[_key(alert, count_by)] += 1
            else:
                sink.write(alert)
        if count_by is None:
            sink.close()
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(0) from None
    except sqlite3.Error as exc:
        error(f"{store}: {exc}")
        raise typer.Exit(2) from None
    finally:
        db.close()
    if count_by is not None:
        _print_counts(counts, count_by, output)


def _sink(output: AlertsOutput, console: Console, limit: int) -> Sink:
    if output is AlertsOutput.jsonl:
        from ..sinks.jsonl import JsonlSink

        return JsonlSink(sys.stdout.buffer)
    from ..sinks.table import TableSink

    plain = not console.is_terminal
    width = console.width if plain and os.environ.get("COLUMNS") else None
    return TableSink(console, limit, plain=plain, width=width)


def _print_counts(counts: Counter[str], by: CountBy, output: AlertsOutput) -> None:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if output is AlertsOutput.jsonl:
        import orjson

        for key, n in ranked:
            sys.stdout.buffer.write(orjson.dumps({by.value: key, "count": n}) + b"\n")
        sys.stdout.flush()
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{plural(sum(counts.values()), 'alert')} by {by.value}")
    table.add_column(by.value, overflow="fold")
    table.add_column("alerts", justify="right")
    for key, n in ranked:
        table.add_row(Text(display(key)), str(n))
    Console().print(table)
