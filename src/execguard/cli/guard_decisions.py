"""`execguard guard decisions`: query the decisions and approvals guard copied into the alert store (docs/guard.md)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ..model import display
from .options import when
from .util import error, fail, silence_stdout


class Output(str, Enum):
    table = "table"
    jsonl = "jsonl"


class Kind(str, Enum):
    decision = "decision"
    approval = "approval"
    policy = "policy"
    unparseable = "unparseable"
    unjudged = "unjudged"


class Verdict(str, Enum):
    allow = "allow"
    deny = "deny"
    warn = "warn"
    audit = "audit"
    approved = "approved"


def _check_when(value: str | None) -> str | None:
    when(value)
    return value


def _cell(value: Any, width: int) -> str:
    text = display(str(value)) if value not in (None, "", []) else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _line(d: dict[str, Any]) -> str:
    kind = d.get("kind")
    time = _cell(d.get("time"), 24)
    if kind == "approval":
        what = f"for {_cell(d.get('namespace') or 'all namespaces', 30)} until {d.get('until')}: {_cell(d.get('reason'), 60)}"
        return f"{time:24}  {'APPROVAL':8}  {_cell(d.get('user'), 24):24}  {what} (id {d.get('id')}, by {d.get('by') or '-'})"
    if kind != "decision":
        return f"{time:24}  {str(kind).upper():8}  {_cell(d.get('user'), 24):24}  {_cell(d.get('file') or d.get('uri'), 60)}"
    from ..sinks.decisions import verdict

    where = (d.get("namespace") and f"{d.get('namespace')}/{d.get('pod') or '-'}") or d.get("container")
    why = (d.get("approval") and f"approval {d['approval']}") or d.get("entry") or ", ".join((d.get("rules") or [])[:2])
    return (
        f"{time:24}  {str(verdict(d)).upper():8}  {_cell(d.get('user'), 24):24}  {_cell(where, 28):28}  "
        f"{_cell(d.get('command_display'), 48):48}  {_cell(why, 60)}"
    )


def decisions_command(
    store: Annotated[Path, typer.Option("--store", help="The alert store guard copies its record into (guard ... --store).")] = Path(
        "execguard.db"
    ),
    since: Annotated[str | None, typer.Option("--since", help="At or after: RFC 3339 or an age (2h).", callback=_check_when)] = None,
    until: Annotated[str | None, typer.Option("--until", help="At or before: RFC 3339 or an age.", callback=_check_when)] = None,
    kind: Annotated[list[Kind] | None, typer.Option("--kind", help="decision, approval, policy, ... (repeatable) [all].")] = None,
    decision: Annotated[list[Verdict] | None, typer.Option("--decision", help="allow, deny, warn, audit, approved (repeatable).")] = None,
    user: Annotated[list[str] | None, typer.Option("--user", help="This user (repeatable).")] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", help="This namespace (repeatable).")] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="Decisions a rule id was behind (repeatable).")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or jsonl (the records as written).")] = Output.table,
    limit: Annotated[int, typer.Option("--limit", min=0, help="The newest N records; 0 = all.")] = 0,
) -> None:
    """Query guard's decisions and break-glass approvals in the alert store, oldest first."""
    import sqlite3

    from ..sinks.decisions import DecisionQuery, open_store, records
    from ..sinks.store import StoreError

    if not store.exists():
        fail(f"{store}: no such store")
    query = DecisionQuery(
        when(since), when(until), [k.value for k in kind or []], [v.value for v in decision or []], user or [], namespace or [],
        rule or [], limit,
    )  # fmt: skip
    try:
        db = open_store(store)
    except StoreError as exc:
        fail(exc)
    try:
        for d in records(db, query):
            if output is Output.jsonl:
                sys.stdout.write(orjson.dumps(d).decode() + "\n")
            else:
                sys.stdout.write(_line(d) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(0) from None
    except sqlite3.Error as exc:
        error(f"{store}: {exc}")
        raise typer.Exit(2) from None
    finally:
        db.close()
