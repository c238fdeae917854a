"""The small, separate logic that evaluates the declarative check catalogue (checks.yml) against facts.

Collectors turn inputs into ``Item``s (a kind, a target and flat facts). A check names the item kind it applies
to and a ``when`` mapping of fact → expected value; all must hold. Expected values are a literal (equality) or a
one-key operator mapping: ``in``, ``not_in``, ``ne``, ``set`` (true: fact is not None/empty), ``gte``, ``contains``.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ..model import SEVERITIES, severity_rank
from .facts import FACTS

MITIGATIONS = {
    "M1018": "User Account Management",
    "M1026": "Privileged Account Management",
    "M1035": "Limit Access to Resource Over Network",
    "M1038": "Execution Prevention",
    "M1042": "Disable or Remove Feature or Program",
    "M1047": "Audit",
}
REQUIRED = ("id", "title", "kind", "mitigation", "severity", "evidence", "remediation")


@dataclass(slots=True)
class Item:
    kind: str
    target: str
    facts: dict[str, Any]
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    kind: str
    mitigation: str
    severity: str
    evidence: str
    remediation: str
    when: dict[str, Any]
    description: str = ""


@dataclass(slots=True)
class Finding:
    id: str
    title: str
    severity: str
    mitigation: str
    target: str
    evidence: str
    remediation: str
    file: str | None = None
    line: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "mitigation": self.mitigation,
            "mitigation_name": MITIGATIONS.get(self.mitigation, ""),
            "target": self.target,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "file": self.file,
            "line": self.line,
            "facts": self.facts,
        }


class CatalogueError(ValueError):
    pass


def parse_catalogue(entries: Any, facts: dict[str, frozenset[str]] | None = None) -> list[Check]:
    """Checks from parsed YAML; with ``facts`` (item kind -> the facts it carries), every kind and fact a check
    names must be in it."""
    if not isinstance(entries, list):
        raise CatalogueError("catalogue must be a list of checks")
    checks: list[Check] = []
    seen: set[str] = set()
    for e in entries:
        missing = [k for k in REQUIRED if k not in e]
        if missing:
            raise CatalogueError(f"{e.get('id', '?')}: missing {', '.join(missing)}")
        if e["severity"] not in SEVERITIES or e["mitigation"] not in MITIGATIONS or e["id"] in seen:
            raise CatalogueError(f"{e['id']}: bad severity/mitigation or duplicate id")
        seen.add(e["id"])
        if facts is not None:
            _check_facts(e, facts)
        checks.append(Check(**{k: e[k] for k in REQUIRED}, when=e.get("when") or {}, description=e.get("description", "")))
    return checks


def _check_facts(e: dict[str, Any], facts: dict[str, frozenset[str]]) -> None:
    """The check's kind is one a collector builds and every fact it names (``when:``, templates) is one that kind
    carries: a misspelt fact would otherwise never match (or render as '?')."""
    kind = e["kind"]
    known = facts.get(kind)
    if known is None:
        raise CatalogueError(f"{e['id']}: unknown item kind {kind!r}{_hint(kind, facts)}")
    when = e.get("when") or {}
    if not isinstance(when, dict):
        raise CatalogueError(f"{e['id']}: when must be a mapping of fact to expected value")
    named = [("when", str(k)) for k in when]
    for part in ("evidence", "remediation"):
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(str(e[part])) if f]
        except ValueError as exc:
            raise CatalogueError(f"{e['id']}: {part}: bad template ({exc})") from None
        named += [(part, re.split(r"[.\[]", f, maxsplit=1)[0]) for f in fields]
    for part, fact in named:
        if fact not in known:
            raise CatalogueError(f"{e['id']}: {part} names fact {fact!r}, which a {kind} item never has{_hint(fact, known)}")


def _hint(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@lru_cache(maxsize=1)
def catalogue() -> tuple[Check, ...]:
    text = (resources.files("execguard.audit") / "checks.yml").read_text(encoding="utf-8")
    return tuple(parse_catalogue(yaml.safe_load(text), FACTS))


def _holds(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict) and len(expected) == 1:
        ((op, arg),) = expected.items()
        if op == "in":
            return actual in arg
        if op == "not_in":
            return actual not in arg
        if op == "ne":
            return actual != arg
        if op == "set":
            return (actual not in (None, "", [], {})) is bool(arg)
        if op == "gte":
            return actual is not None and actual >= arg
        if op == "contains":
            return isinstance(actual, list | tuple | set | str) and arg in actual
        raise CatalogueError(f"unknown operator {op!r}")
    return bool(actual == expected)


class _Facts(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _show(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return ", ".join(str(_show(x)) for x in v) or "-"
    return "-" if v is None or v == "" else v


def _render(template: str, facts: dict[str, Any]) -> str:
    return template.format_map(_Facts({k: _show(v) for k, v in facts.items()}))


def evaluate(items: list[Item], checks: tuple[Check, ...] | list[Check] | None = None) -> list[Finding]:
    checks = catalogue() if checks is None else checks
    by_kind: dict[str, list[Check]] = {}
    for c in checks:
        by_kind.setdefault(c.kind, []).append(c)
    findings: list[Finding] = []
    for item in items:
        for c in by_kind.get(item.kind, []):
            if all(_holds(item.facts.get(k), v) for k, v in c.when.items()):
                findings.append(
                    Finding(
                        c.id,
                        c.title,
                        c.severity,
                        c.mitigation,
                        item.target,
                        _render(c.evidence, item.facts),
                        _render(c.remediation, item.facts),
                        item.file,
                        item.line,
                        item.facts,
                    )
                )
    findings.sort(key=lambda f: (-severity_rank(f.severity), f.id, f.target))
    return findings
