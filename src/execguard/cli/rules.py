"""`execguard rules`: list the rules hunt runs."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

from ..model import severity_rank
from .util import fail, plural


class RulesOutput(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def rules_cmd(
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules directory or file.")] = None,
    output: Annotated[RulesOutput, typer.Option("--output", "-o", help="table, json or yaml.")] = RulesOutput.table,
) -> None:
    """List the rules that hunt runs, with severity, actions and tags."""
    from ..engine.rule import RuleError
    from ..pipeline.rules import load

    try:
        loaded = load(rules or [])
    except RuleError as exc:
        fail(exc)
    if output is not RulesOutput.table:
        import orjson
        import yaml

        data = [
            {"rule_id": r.rule_id, "sigma_id": r.sigma_id, "title": r.title, "severity": r.severity, "tags": r.tags,
             "actions": sorted(r.actions) if r.actions is not None else None, "fields": sorted(r.fields_used), "path": r.path}
            for r in loaded
        ]
        if output is RulesOutput.json:
            sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        else:
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=plural(len(loaded), "rule"))
    for col in ("rule_id", "severity", "title", "actions", "tags"):
        table.add_column(col, overflow="fold")
    for r in sorted(loaded, key=lambda r: (-severity_rank(r.severity), r.rule_id)):
        # Text cells: rule files are data, a title with [brackets] is not markup
        cells = (r.rule_id, r.severity, r.title, ",".join(sorted(r.actions or ["*"])), " ".join(r.tags))
        table.add_row(*(Text(c) for c in cells))
    Console().print(table)

