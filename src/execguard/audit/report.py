"""Audit sinks: a rich table grouped by mitigation (plus the RBAC matrix), JSON, and SARIF 2.1.0."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..model import severity_rank
from .engine import MITIGATIONS, Check, Finding, catalogue
from .rbac import CAPABILITIES, Grant

STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_json(findings: list[Finding]) -> bytes:
    return orjson.dumps([f.to_dict() for f in findings], option=orjson.OPT_INDENT_2) + b"\n"


def _uri(path: str, base: Path | None) -> str:
    if base is not None:
        try:
            return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def to_sarif(findings: list[Finding], base: Path | None = None, checks: tuple[Check, ...] | None = None) -> bytes:
    checks = checks or catalogue()
    index = {c.id: i for i, c in enumerate(checks)}
    rules = [
        {
            "id": c.id,
            "name": c.id.replace("-", ""),
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": c.description or c.title},
            "help": {"text": c.remediation},
            "defaultConfiguration": {"level": SARIF_LEVEL[c.severity]},
            "properties": {
                "severity": c.severity,
                "mitigation": c.mitigation,
                "mitigation_name": MITIGATIONS[c.mitigation],
                "tags": ["T1609", c.mitigation],
            },
        }
        for c in checks
    ]
    results = []
    for f in findings:
        loc: dict[str, Any] = {"logicalLocations": [{"name": f.target, "kind": "resource"}]}
        if f.file and not f.file.startswith("kube-api:"):
            phys: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file, base)}}
            if base is not None:
                phys["artifactLocation"]["uriBaseId"] = "SRCROOT"
            if f.line:
                phys["region"] = {"startLine": f.line}
            loc["physicalLocation"] = phys
        result: dict[str, Any] = {
            "ruleId": f.id,
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.title}: {f.evidence}"},
            "locations": [loc],
            "properties": {"severity": f.severity, "mitigation": f.mitigation, "target": f.target, "remediation": f.remediation},
        }
        if f.id in index:
            result["ruleIndex"] = index[f.id]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "execguard-audit",
                "version": __version__,
                "informationUri": "https://attack.mitre.org/techniques/T1609/",
                "rules": rules,
            }
        },
        "results": results,
    }
    if base is not None:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": base.resolve().as_uri() + "/"}}
    return orjson.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, option=orjson.OPT_INDENT_2) + b"\n"


def print_table(findings: list[Finding], grants: list[Grant], console: Console, show_info: bool = True) -> None:
    if grants:
        caps = list(CAPABILITIES)
        t = Table(title="Who can run T1609 capabilities (subject × capability → scopes)")
        t.add_column("subject", overflow="fold")
        for c in caps:
            t.add_column(c, overflow="fold")
        rows: dict[str, dict[str, list[str]]] = {}
        for g in grants:
            scope = "cluster" if g.scope == "cluster" else g.scope.split(":", 1)[1]
            if g.resource_names:
                scope += f" ({','.join(sorted(g.resource_names))})"
            rows.setdefault(g.subject, {}).setdefault(g.capability, []).append(scope)
        for subject in sorted(rows):
            t.add_row(subject, *("\n".join(rows[subject].get(c, [])) for c in caps))
        console.print(t)
    by_mit: dict[str, list[Finding]] = {}
    for f in findings:
        if show_info or f.severity != "info":
            by_mit.setdefault(f.mitigation, []).append(f)
    for mit in sorted(by_mit):
        t = Table(title=f"{mit} {MITIGATIONS.get(mit, '')}", title_justify="left")
        for col in ("severity", "id", "target", "evidence"):
            t.add_column(col, overflow="fold")
        for f in sorted(by_mit[mit], key=lambda f: (-severity_rank(f.severity), f.id, f.target)):
            t.add_row(f"[{STYLE[f.severity]}]{f.severity}[/]", f.id, f.target, f.evidence)
        console.print(t)
    if not findings:
        console.print("no findings")
