"""Convert execguard's Sigma rules to a target's queries, one rule at a time, each a query or a skip with a reason."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import prune, raw
from .targets import TARGETS, Target, backend, backend_class

# Logsources whose records are Kubernetes audit events (or, for container_command, may be).
AUDIT_LOGSOURCES = {("kubernetes", "audit", None), (None, None, "container_command")}


class ExportError(Exception):
    """A problem with the request itself (unknown target or format, missing backends)."""


@dataclass
class Exported:
    rule_id: str
    title: str
    level: str
    path: str
    query: Any = None  # the backend's query (a string, or a dict/list for structured formats)
    skipped: str = ""  # why the rule is not exported; empty when it is
    notes: list[str] = field(default_factory=list)  # what the exported query does not cover

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule_id": self.rule_id, "title": self.title, "level": self.level}
        if self.skipped:
            out["skipped"] = self.skipped
        else:
            out["query"] = self.query
        if self.notes:
            out["notes"] = self.notes
        return out


def target(name: str) -> Target:
    if name not in TARGETS:
        raise ExportError(f"unknown target {name!r}; targets: {', '.join(sorted(TARGETS))}")
    return TARGETS[name]


def check_backends(t: Target) -> None:
    try:
        backend_class(t)
    except ImportError as exc:
        raise ExportError(f"target {t.name} needs the pySigma backends: pip install 'execguard[export]' ({exc})") from None


def rule_files(extra: Iterable[str], builtin: bool) -> list[tuple[str, Path]]:
    """(name shown, path) of every rule file: the built-in ones first, then each --rules file or directory."""
    out: list[tuple[str, Path]] = []
    if builtin:
        root = Path(str(resources.files("execguard") / "rules"))
        out += [(f"builtin:{p.relative_to(root)}", p) for p in _yaml_under(root)]
    for d in extra:
        p = Path(d)
        out += [(str(f), f) for f in (_yaml_under(p) if p.is_dir() else [p])]
    return out


def _yaml_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def export(target_name: str, extra: Iterable[str] = (), builtin: bool = True, fmt: str = "default") -> tuple[list[Exported], Any]:
    """Every rule converted for the target: (per-rule results, the backend's whole output in `fmt`)."""
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    t = target(target_name)
    if fmt not in t.formats:
        raise ExportError(f"target {t.name} has no format {fmt!r}; formats: {', '.join(t.formats)}")
    check_backends(t)
    dicts: list[dict[str, Any]] = []
    origin: dict[str, str] = {}
    by_name: dict[str, dict[str, Any]] = {}
    for shown, path in rule_files(extra, builtin):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                origin[str(doc.get("name") or doc.get("id"))] = shown
                by_name[str(doc.get("name") or doc.get("id"))] = doc
                dicts.append(doc)
    feed_only = _feed_only(dicts)
    # one collection: correlation rules name rules of other files
    try:  # (from_dicts resolves the references between rules too)
        collection = SigmaCollection.from_dicts(dicts)
    except SigmaError as exc:  # the engine's own load accepted them; pySigma may still refuse one
        raise ExportError(f"pySigma cannot read the rules: {_reason(exc)}") from None
    results = []
    queries: list[Any] = []
    finisher = None
    for rule in collection.rules:
        key = str(rule.name or rule.id)
        result, finisher_used = _convert(t, rule, fmt, origin.get(key, ""), feed_only, by_name.get(key))
        results.append(result)
        if not result.skipped:
            queries.append(result.query)
            finisher = finisher_used
    if finisher is None:
        finisher = backend(t)
        finisher.init_processing_pipeline(fmt)
    output = finisher.finalize(queries, fmt) if fmt != "default" else queries
    return results, output


def _convert(t: Target, rule: Any, fmt: str, path: str, feed_only: set[str], doc: dict[str, Any] | None) -> tuple[Exported, Any]:
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError

    rule_id = rule.name or str(rule.id)
    level = rule.level.name.lower() if rule.level is not None else ""
    out = Exported(rule_id=rule_id, title=rule.title, level=level, path=path)
    conv = backend(t)
    rule = copy.deepcopy(rule)  # the pipeline rewrites the rule; a correlation converts its rules again
    try:
        if isinstance(rule, SigmaCorrelationRule):
            why = _correlation_skip(t, rule)
            if why:
                out.skipped = why
                return out, None
            conv.init_processing_pipeline(fmt)
            for ref in rule.rules or []:
                if isinstance(ref.rule, SigmaCorrelationRule):
                    out.skipped = f"a correlation of the correlation {ref.reference}: not exported"
                    return out, None
            for ref in rule.rules or []:
                why = _logsource_skip(ref.rule)
                if why:
                    out.skipped = f"its rule {ref.reference}: {why}"
                    return out, None
                conv.convert_rule(ref.rule, fmt)
            queries = conv.convert_correlation_rule(rule, fmt)
        else:
            why = _logsource_skip(rule)
            if why:
                out.skipped = why
                return out, None
            if rule_id in feed_only:
                out.skipped = "execguard does not alert on it alone: it only feeds correlations that say generate: false"
                return out, None
            out.notes = list(_notes(rule))
            # pySigma leaves out a correlation's rules (and does not finalize them) unless it says generate: true;
            # execguard alerts on them alone too
            rule._output = True
            rule._backreferences = []
            queries = conv.convert_rule(rule, fmt)
    except SigmaError as exc:
        narrowed = _narrowed(t, doc, fmt) if doc is not None and not isinstance(rule, SigmaCorrelationRule) else None
        if narrowed is None:
            out.skipped = _reason(exc)
            out.notes = []
            return out, None
        queries, out.notes, conv = narrowed
    except OSError as exc:  # a backend format that fetches data (Elastic siem_rule: MITRE ATT&CK from GitHub)
        raise ExportError(f"format {fmt} of {t.name} could not be made here: {exc}") from None
    except NotImplementedError as exc:
        out.skipped = f"the {t.name} backend cannot convert this: {exc or 'not implemented'}"
        out.notes = []
        return out, None
    except Exception as exc:  # a backend's own failure on one rule: named, and the other rules go on
        out.skipped = f"the {t.name} backend failed: {type(exc).__name__}: {_reason(exc)}"
        out.notes = []
        return out, None
    if not queries:
        out.skipped = f"the {t.name} backend produced no query"
        out.notes = []
        return out, None
    out.query = queries[0] if len(queries) == 1 else queries
    return out, conv


def _narrowed(t: Target, doc: dict[str, Any], fmt: str) -> tuple[list[Any], list[str], Any] | None:
    """The rule without its OR alternatives the target cannot say (prune.py): (queries, notes, backend), or None."""
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    detection = doc.get("detection")
    if not isinstance(detection, dict) or not isinstance(detection.get("condition"), str):
        return None
    names = [n for n in detection if n != "condition"]
    bad: dict[str, str] = {}
    for name in names:  # which detections the target can say on their own
        probe = {**doc, "detection": {name: detection[name], "condition": name}}
        try:
            backend(t).convert_rule(SigmaRule.from_dict(probe), fmt)
        except SigmaError as exc:
            bad[name] = _reason(exc)
    try:
        tree = prune.prune(prune.parse(detection["condition"], names), set(bad)) if bad else None
    except prune.ConditionError:
        return None
    if tree is None:
        return None
    kept = prune.identifiers(tree)
    narrow = {**doc, "detection": {**{n: detection[n] for n in names if n in kept}, "condition": prune.text(tree)}}
    rule = SigmaRule.from_dict(narrow)
    conv = backend(t)
    try:
        queries = conv.convert_rule(rule, fmt)
    except SigmaError:
        return None
    dropped = [f"not searched: detection {n}: {bad[n]}" for n in names if n in bad]
    return queries, [*dropped, *_notes(rule)], conv


def _feed_only(dicts: list[dict[str, Any]]) -> set[str]:
    """Rules every correlation naming them says `generate: false` about (as engine/correlate.py reads it)."""
    said: dict[str, bool] = {}
    for doc in dicts:
        corr = doc.get("correlation")
        if isinstance(corr, dict):
            for ref in corr.get("rules") or []:
                said[str(ref)] = said.get(str(ref), False) or corr.get("generate") is not False
    return {ref for ref, generate in said.items() if not generate}


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # pySigma appends the rule's location; the rule is already named
    return text.split(" in rule ")[0].strip()


def _logsource_skip(rule: Any) -> str:
    ls = rule.logsource
    if (ls.product, ls.service, ls.category) in AUDIT_LOGSOURCES:
        return ""
    if ls.product == "docker":
        return "Docker Engine events (docker events, dockerd log) are not Kubernetes audit events"
    return f"logsource {ls.product or '-'}/{ls.service or '-'}/{ls.category or '-'} is not the Kubernetes audit log"


def _correlation_skip(t: Target, rule: Any) -> str:
    ours = set(raw.PLAIN) | set(raw.RAW)
    for name in rule.group_by or []:
        if rule.aliases and name in {a.alias for a in rule.aliases}:
            fields = [f for a in rule.aliases if a.alias == name for f in a.mapping.values()]
        else:
            fields = [name]
        for f in fields:
            mapped = raw.PLAIN.get(f, f)
            if f not in ours:
                return f"group-by field {f}: {raw.DERIVED_WHY.get(f, 'not a field of the Kubernetes audit event')}"
            if mapped in t.missing:
                return f"group-by field {f}: {t.missing[mapped]}"
    return ""


def _notes(rule: Any) -> Iterator[str]:
    actions = [str(v) for item in _items(rule.detection) if item.field == "action" for v in item.value]
    dropped = [a for a in raw.dropped_actions(actions) if a in raw.ACTION_WHY]
    if dropped and len(dropped) < len(set(actions)):
        yield "not searched: " + "; ".join(f"{a} ({raw.ACTION_WHY[a]})" for a in sorted(set(dropped)))
    if any(item.field in raw.COMMAND_FIELDS for item in _items(rule.detection)):
        yield "command text is searched in the URL-encoded requestURI (kubectl's command= parameters), not in request bodies"


def _items(detection: Any) -> Iterator[Any]:
    for d in detection.detections.values():
        yield from _walk(d)


def _walk(d: Any) -> Iterator[Any]:
    for item in d.detection_items:
        if hasattr(item, "detection_items"):
            yield from _walk(item)
        else:
            yield item
