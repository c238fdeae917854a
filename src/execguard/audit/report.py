"""Audit sinks: a rich table grouped by mitigation (plus the RBAC matrix), JSON, and SARIF 2.1.0."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..model import severity_rank
from .collect.rbac import CAPABILITIES, Grant
from .engine import MITIGATIONS, Check, Finding, catalogue

STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# GitHub code scanning reads rule properties: "security-severity" (a string score, >9.0 critical, 7.0-8.9 high,
# 4.0-6.9 medium, 0.1-3.9 low; only for rules tagged "security"), "problem.severity" (error/warning/recommendation)
# and "precision". info checks are inventories, not vulnerabilities: no security-severity.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}
PROBLEM_SEVERITY = {"critical": "error", "high": "error", "medium": "warning", "low": "recommendation", "info": "recommendation"}
SRCROOT = "%SRCROOT%"
# Relative artifact URIs are read by GitHub relative to the repository root; in GitHub Actions that is the checkout.
SOURCE_ROOT_ENV = "GITHUB_WORKSPACE"
TECHNIQUE_URI = "https://attack.mitre.org/techniques/T1609/"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def to_json(findings: list[Finding]) -> bytes:
    return orjson.dumps([f.to_dict() for f in findings], option=orjson.OPT_INDENT_2) + b"\n"


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def source_root(base: Path | None, root: Path | None = None) -> Path | None:
    """Directory relative SARIF URIs are written against: ``root`` if given, else $GITHUB_WORKSPACE (the
    repository checkout in GitHub Actions) when it holds ``base``, else the ``--from`` directory itself."""
    if root is not None:
        return root.resolve()
    env = os.environ.get(SOURCE_ROOT_ENV)
    if env and (base is None or _under(base.resolve(), Path(env).resolve())):
        return Path(env).resolve()
    return base.resolve() if base is not None else None


def artifact_location(path: str, root: Path | None) -> dict[str, str]:
    """A file as a SARIF artifactLocation: a percent-encoded path relative to ``root`` (uriBaseId %SRCROOT%)
    when the file is under it, else an absolute file:// URI (never a bare absolute or ``..`` path)."""
    resolved = Path(path).resolve()
    if root is not None and _under(resolved, root):
        return {"uri": quote(resolved.relative_to(root).as_posix(), safe="/"), "uriBaseId": SRCROOT}
    return {"uri": resolved.as_uri()}


def _dir_uri(path: Path) -> str:
    uri = path.as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _generic(template: str) -> str:
    """A check's evidence/remediation template shown without facts: ``{subject}`` reads as ``‹subject›``."""
    return _PLACEHOLDER.sub(lambda m: f"‹{m.group(1)}›", template)


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _help(c: Check) -> dict[str, str]:
    remediation = _generic(c.remediation)
    mitigation = f"{c.mitigation} {MITIGATIONS[c.mitigation]}"
    mitigation_uri = f"https://attack.mitre.org/mitigations/{c.mitigation}/"
    text = f"{c.title}\n\n"
    markdown = f"**{_md(c.title)}**\n\n"
    if c.description:
        text += f"{c.description}\n\n"
        markdown += f"{_md(c.description)}\n\n"
    text += f"Remediation: {remediation}\n\nMITRE ATT&CK T1609 Container Administration Command; mitigation {mitigation}."
    markdown += (
        f"**Remediation:** {_md(remediation)}\n\n"
        f"MITRE ATT&CK [T1609 Container Administration Command]({TECHNIQUE_URI}); "
        f"mitigation [{mitigation}]({mitigation_uri})."
    )
    return {"text": text, "markdown": markdown}


def _rule(c: Check) -> dict[str, Any]:
    props: dict[str, Any] = {
        "severity": c.severity,
        "mitigation": c.mitigation,
        "mitigation_name": MITIGATIONS[c.mitigation],
        "tags": ["security", "T1609", c.mitigation],
        "precision": "high",
        "problem.severity": PROBLEM_SEVERITY[c.severity],
    }
    if c.severity in SECURITY_SEVERITY:
        props["security-severity"] = SECURITY_SEVERITY[c.severity]
    return {
        "id": c.id,
        "name": c.id.replace("-", ""),
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": c.description or c.title},
        "help": _help(c),
        "helpUri": TECHNIQUE_URI,
        "defaultConfiguration": {"level": SARIF_LEVEL[c.severity]},
        "properties": props,
    }


class _Lines:
    """Lines of the input files, read once, for region columns."""

    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}

    def get(self, path: str, line: int) -> str | None:
        if path not in self._files:
            try:
                self._files[path] = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                self._files[path] = None
        lines = self._files[path]
        return lines[line - 1] if lines is not None and 0 < line <= len(lines) else None


def _region(f: Finding, lines: _Lines) -> dict[str, int]:
    """GitHub wants a region on every physical location: the finding's line (line 1 when the finding is about
    the file as a whole), spanning that whole line when the file can be read."""
    line = f.line if f.line and f.line > 0 else 1
    region = {"startLine": line, "endLine": line}
    text = lines.get(f.file, line) if f.file else None
    if text is not None:
        region.update(startColumn=1, endColumn=len(text) + 1)
    return region


def _identity(f: Finding, root: Path | None, base: Path | None) -> str:
    """What makes a finding the same finding across runs: rule, target (input paths inside it made relative to
    the source root, so --from spelled relative or absolute gives the same identity) and artifact."""
    target = f.target
    if base is not None and root is not None:
        rel = base.resolve().relative_to(root).as_posix() if _under(base.resolve(), root) else base.resolve().as_posix()
        for spelling in sorted({str(base), str(base.resolve()), os.path.abspath(base)}, key=len, reverse=True):
            if spelling not in (".", ""):
                target = target.replace(spelling, rel)
    uri = artifact_location(f.file, root)["uri"] if f.file and not f.file.startswith("kube-api:") else (f.file or "")
    return "\0".join((f.id, target, uri))


def to_sarif(findings: list[Finding], base: Path | None = None, checks: tuple[Check, ...] | None = None, root: Path | None = None) -> bytes:
    """SARIF 2.1.0 (validated against the OASIS schema in the tests) shaped for GitHub code scanning.

    ``base`` is the ``--from`` directory; relative artifact URIs are written against ``source_root(base, root)``.
    Every result carries ``partialFingerprints.primaryLocationLineHash`` derived from the finding's identity
    (rule, target, artifact) plus an occurrence number, so alerts stay matched across runs even for findings
    whose file is not in the repository or that have no file at all (live cluster, daemon and port probes)."""
    checks = checks or catalogue()
    index = {c.id: i for i, c in enumerate(checks)}
    src = source_root(base, root)
    lines = _Lines()
    seen: dict[str, int] = {}
    results = []
    for f in findings:
        loc: dict[str, Any] = {"logicalLocations": [{"name": f.target, "kind": "resource"}]}
        if f.file and not f.file.startswith("kube-api:"):
            loc["physicalLocation"] = {"artifactLocation": artifact_location(f.file, src), "region": _region(f, lines)}
        identity = _identity(f, src, base)
        digest = hashlib.sha256(identity.encode()).hexdigest()
        seen[digest] = seen.get(digest, 0) + 1
        result: dict[str, Any] = {
            "ruleId": f.id,
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.title}: {f.evidence}"},
            "locations": [loc],
            "partialFingerprints": {"primaryLocationLineHash": f"{digest[:16]}:{seen[digest]}", "execguard/v1": f"{digest}:{seen[digest]}"},
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
                "semanticVersion": __version__,
                "informationUri": TECHNIQUE_URI,
                "rules": [_rule(c) for c in checks],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if src is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": _dir_uri(src)}}
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
            # Text cells: names and evidence come from the cluster and files, never markup
            t.add_row(Text(subject), *(Text("\n".join(rows[subject].get(c, []))) for c in caps))
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
            t.add_row(Text(f.severity, style=STYLE[f.severity]), Text(f.id), Text(f.target), Text(f.evidence))
        console.print(t)
    if not findings:
        console.print("no findings")
