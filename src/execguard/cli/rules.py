"""`execguard rules`: list the rules hunt runs; `execguard rules export`: the rules as a SIEM's queries (docs/export.md)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..model import severity_rank
from .util import Group, fail, note, output_problem, plural

rules_app = typer.Typer(cls=Group, rich_markup_mode=None, help="List the rules that hunt runs, or export them (rules export).")


class RulesOutput(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


@rules_app.callback(invoke_without_command=True)
def rules_cmd(
    ctx: typer.Context,
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules directory or file.")] = None,
    output: Annotated[RulesOutput, typer.Option("--output", "-o", help="table, json or yaml.")] = RulesOutput.table,
) -> None:
    """List the rules that hunt runs, with severity, actions and tags."""
    if ctx.invoked_subcommand is not None:
        return
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



@rules_app.command("export")
def export_cmd(
    target: Annotated[str, typer.Option(
        "--target", "-t", help="splunk, elasticsearch, esql, eql, loki, kusto, kusto-azurediagnostics or sqlite.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=(
        "text (default), json, or one of the target's backend formats "
        "(splunk: savedsearches; elasticsearch, esql: kibana_ndjson; loki: ruler; sqlite: zircolite; ...)."))] = "text",
    out: Annotated[Path | None, typer.Option("--out", help="File to write, or a directory (a file named for the target in it).")] = None,
    rules: Annotated[list[str] | None, typer.Option("--rules", help="Extra Sigma rules directory or file.")] = None,
    no_builtin: Annotated[bool, typer.Option("--no-builtin", help="Export only the --rules rules.")] = False,
) -> None:
    """Convert the rules to a SIEM's queries through pySigma backends; each rule is a query or a skip with the reason."""
    from ..engine.rule import RuleError
    from ..export import render
    from ..export.convert import ExportError, export
    from ..pipeline.rules import load

    try:
        load(rules or [], builtin=not no_builtin)  # a broken rule is named with file and line, as hunt does
    except RuleError as exc:
        fail(exc)
    backend_fmt = "default" if fmt in render.OWN else fmt
    path = render.out_path(out, target, fmt) if out is not None else None
    if path is not None and (problem := output_problem(path)):
        fail(problem)
    try:
        results, output = export(target, rules or [], builtin=not no_builtin, fmt=backend_fmt)
    except ExportError as exc:
        fail(exc)
    if fmt == "text":
        body = render.text(target, results)
    elif fmt == "json":
        body = render.as_json(target, results)
    else:
        body = render.backend_output(output)
        for line in render.skip_lines(results):
            note(line)
    if path is None:
        sys.stdout.write(body)
        sys.stdout.flush()
    else:
        path.write_text(body, encoding="utf-8")
    done = render.exported_count(results)
    note(f"{target}: {plural(len(results), 'rule')}, {done} exported, {len(results) - done} skipped"
          + (f"; wrote {path}" if path is not None else ""))
