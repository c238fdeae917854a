"""Alerts (the JSON of sinks/alert_json.py) folded into the one compact data blob the HTML report renders.

Strings repeat from alert to alert (actors, pods, rules, reasons, commands), so every row is a list of small
integers into one string table: 100 000 alerts stay a few tens of MB instead of the 150 MB of their JSON lines.
Every string from log content goes through ``model.display`` here (bidi, zero-width and control characters
shown as escapes); the page then puts it in the DOM as text only, never as markup.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

import orjson

from ..model import display as _display
from ..model import severity_rank
from ..times import time_ns

# the columns of a row, in order; the page reads them by these names
COLUMNS = (
    "t",  # epoch milliseconds or null
    "sev",  # 0 info .. 4 critical
    "rule", "title", "actor", "ns", "pod", "container", "target", "action",
    "cmd",  # the argv as one line, hidden characters escaped
    "argv",  # the argv as a JSON list (each element escaped)
    "reasons",  # the string ids of its reasons, comma-separated (a reason line recurs across alerts)
    "file", "line", "fmt", "outcome",
    "procs",  # ATT&CK procedures (software/group), one per line
    "rules",  # every rule that fired, one per line
    "groups",  # the actor's groups, one per line
    "ctx",  # JSON object of the non-empty context fields that repeat (user agent, source IP, image, node, tty ...)
    "extra",  # JSON object of the non-empty fields nearly unique per alert (event id, request URI, process, rbac ...)
)  # fmt: skip
# actors, pods, rules and reasons repeat from alert to alert; escaping is a pure function of the text
display = lru_cache(maxsize=65536)(_display)
NO_ACTOR = "(no identity)"
NO_TARGET = "(no target)"

# shown in the row detail when present; the rest of the alert is in the columns above
_EXTRA_ACTOR = ("source_ip", "user_agent", "impersonated_user", "kind", "credential_pod")
_EXTRA_TARGET = ("cluster", "container_id", "image", "node", "kind")
_CTX_TOP = ("verb", "command_origin", "tty", "stdin", "privileged", "run_as_user", "code")
_EXTRA_TOP = ("event_id", "request_uri", "command_body_conflict", "suppressed", "rbac", "process", "throttled")


def shown(value: Any) -> Any:
    """``value`` with every string in it made safe to show (model.display), keys included."""
    if isinstance(value, str):
        return display(value)
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, dict):
        return {display(str(k)): shown(v) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    return display(value) if isinstance(value, str) else "" if value is None else display(str(value))


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {} or value is False


def actor_label(actor: dict[str, Any]) -> str:
    user = actor.get("user") or ""
    imp = actor.get("impersonated_user") or ""
    if user and imp:
        return f"{user} as {imp}"
    return user or imp or NO_ACTOR


def target_label(target: dict[str, Any]) -> str:
    ns, pod, container, node = (target.get(k) or "" for k in ("namespace", "pod", "container", "node"))
    if pod:
        return f"{ns}/{pod}" if ns else pod
    if container:
        return f"container {container}" + (f" on {node}" if node else "")
    if ns:
        return f"{ns}/"
    return f"node {node}" if node else NO_TARGET


def _ctx(d: dict[str, Any]) -> dict[str, Any]:
    """The context fields as they are in the alert (``shown`` is applied once per distinct value by the Collector)."""
    actor = d.get("actor") or {}
    target = d.get("target") or {}
    out: dict[str, Any] = {}
    for key in _CTX_TOP:
        if not _empty(d.get(key)):
            out[key] = d[key]
    for key in _EXTRA_ACTOR:
        if not _empty(actor.get(key)):
            out[f"actor.{key}"] = actor[key]
    for key in _EXTRA_TARGET:
        if not _empty(target.get(key)):
            out[f"target.{key}"] = target[key]
    return out


def _extra(d: dict[str, Any]) -> dict[str, Any]:
    out = {key: d[key] for key in _EXTRA_TOP if not _empty(d.get(key))}
    sources = d.get("sources") or []
    if len(sources) > 1:  # the first is the alert's own source, already a column
        out["also_seen"] = [f"{s.get('format') or '?'} {s.get('file') or '?'}:{s.get('line') or '?'}" for s in sources[1:]]
    return shown(out)


class Collector:
    """Takes alert dicts one at a time (hunt's sink, a JSONL file, the store) and builds the report's data."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"": 0}
        self.strings: list[str] = [""]
        self.rows: list[list[Any]] = []
        self.users: Counter[str] = Counter()  # exact actor user -> alerts (for the audit join)
        self.groups: Counter[str] = Counter()
        self.user_worst: dict[str, int] = {}
        self.group_worst: dict[str, int] = {}
        self._ctx_ids: dict[bytes, int] = {}  # the raw JSON of a context -> its string id, escaped once

    def _context(self, d: dict[str, Any]) -> int:
        ctx = _ctx(d)
        if not ctx:
            return 0
        raw = orjson.dumps(ctx)
        i = self._ctx_ids.get(raw)
        if i is None:
            i = self._ctx_ids[raw] = self._s(orjson.dumps(shown(ctx)).decode())
        return i

    def _s(self, value: str) -> int:
        i = self._ids.get(value)
        if i is None:
            i = self._ids[value] = len(self.strings)
            self.strings.append(value)
        return i

    def add(self, d: dict[str, Any]) -> None:
        actor = d.get("actor") or {}
        target = d.get("target") or {}
        source = d.get("source") or {}
        ns = time_ns(d.get("time")) if isinstance(d.get("time"), str) else None
        sev = severity_rank(d.get("severity") or "info")
        rules = d.get("rules") or []
        command = [_text(a) for a in d.get("command") or []]
        line = source.get("line")
        s = self._s
        self.rows.append([
            ns // 1_000_000 if ns is not None else None,
            sev,
            s(_text(d.get("rule_id"))),
            s(_text(d.get("title"))),
            s(display(actor_label(actor))),
            s(_text(target.get("namespace"))),
            s(_text(target.get("pod"))),
            s(_text(target.get("container"))),
            s(display(target_label(target))),
            s(_text(d.get("action"))),
            s(_text(d.get("command_display") or " ".join(command))),
            s(orjson.dumps(command).decode()) if command else 0,
            s(",".join(str(s(_text(r))) for r in d.get("reasons") or [])),
            s(_text(source.get("file"))),
            line if isinstance(line, int) else None,
            s(_text(source.get("format"))),
            s(_text(d.get("outcome"))),
            s("\n".join(_text(p) for p in d.get("procedures") or [])),
            s("\n".join(_text(r.get("rule_id")) for r in rules if isinstance(r, dict))),
            s("\n".join(_text(g) for g in actor.get("groups") or [])),
            self._context(d),
            s(orjson.dumps(extra).decode()) if (extra := _extra(d)) else 0,
        ])  # fmt: skip
        user = actor.get("user")
        if isinstance(user, str) and user:
            self.users[user] += 1
            self.user_worst[user] = max(sev, self.user_worst.get(user, 0))
        for g in actor.get("groups") or []:
            if isinstance(g, str):
                self.groups[g] += 1
                self.group_worst[g] = max(sev, self.group_worst.get(g, 0))

    def __len__(self) -> int:
        return len(self.rows)

    def exposure(self, finding: dict[str, Any]) -> dict[str, Any]:
        """The activity of the principal an audit finding is about (an RBAC subject or a workload's service account)."""
        facts = finding.get("facts") or {}
        kind, name, ns = facts.get("subject_kind"), facts.get("subject_name"), facts.get("subject_namespace")
        if not kind and facts.get("service_account") and facts.get("namespace"):
            kind, name, ns = "ServiceAccount", facts["service_account"], facts["namespace"]
        if kind == "ServiceAccount" and name and ns:
            principal, by, n, worst = f"system:serviceaccount:{ns}:{name}", "actor", self.users, self.user_worst
        elif kind == "User" and name:
            principal, by, n, worst = str(name), "actor", self.users, self.user_worst
        elif kind == "Group" and name:
            principal, by, n, worst = str(name), "group", self.groups, self.group_worst
        else:
            return {}
        count = n.get(principal, 0)
        return {"principal": display(principal), "by": by, "alerts": count, "worst": worst.get(principal, 0) if count else None}

    def blob(self, meta: dict[str, Any], findings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        # time order (alerts without a time last), input order among equals: the story and the table read it so
        order = sorted(range(len(self.rows)), key=lambda i: (self.rows[i][0] is None, self.rows[i][0] or 0, i))
        audit = None
        if findings is not None:
            audit = [{**shown({k: f.get(k) for k in _FINDING_KEYS}), "exposure": self.exposure(f)} for f in findings]
        return {
            "version": 1,
            "meta": shown(meta),
            "columns": list(COLUMNS),
            "strings": self.strings,
            "rows": [self.rows[i] for i in order],
            "audit": audit,
        }


_FINDING_KEYS = ("id", "title", "severity", "mitigation", "mitigation_name", "target", "evidence", "remediation", "file", "line")
