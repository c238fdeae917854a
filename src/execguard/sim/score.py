"""``execguard score``: join hunt alerts to simulate's or emulate's labels and measure precision and recall.

Alerts (``execguard hunt -o jsonl``) are joined to simulate's labels by (file, line): the alert's ``source.file`` is
matched to the label's relative path (as a path suffix, else by base name) and ``source.line`` to the record's first
line. Only label files some alert came from are scored (``--all-files`` scores all): hunting one file of a simulation
scores that file, and the output says which were scored and which left out. emulate's labels (one per Docker API
action, no file) join by exec ID, else by container ID or name (a create) or the nearest action on that container
within a few seconds.
Recall is counted per *attack event*: the records of one request (audit stages, docker exec_create/start/die,
the debug-log lines of one exec) share an ``event_id``, and the engine rightly alerts once per request, so an
event is caught when any of its records raised an alert. Precision is counted per alert.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model import severity_rank


class LabelError(ValueError):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"label {number}: {message}")
        self.number, self.message = number, message


@dataclass
class Tally:
    alerts: int = 0  # alerts joined to a label
    true_alerts: int = 0  # of which on a malicious record
    events: int = 0  # malicious events
    caught: int = 0  # malicious events with an alert

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.events if self.events else None


@dataclass
class Result:
    min_severity: str
    labels: int = 0
    malicious_records: int = 0
    alerts: int = 0
    unjoined: int = 0
    total: Tally = field(default_factory=Tally)
    by_scenario: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_procedure: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_format: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_rule: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    missed: list[dict[str, Any]] = field(default_factory=list)
    false_alarms: list[dict[str, Any]] = field(default_factory=list)
    worst: dict[tuple[str, str], str] = field(default_factory=dict)  # (scenario, format) -> most severe alert on its attack
    scored: list[str] = field(default_factory=list)  # label files (or emulate's alert sources) scored
    left_out: list[str] = field(default_factory=list)  # label files no alert came from (not hunted, it seems)
    covered: int = 0  # labelled records reached through an alert's `covers` (the join: processes an exec ran)
    covered_malicious: int = 0
    identities: int = 0  # of the covered records, those given the identity of who asked


def read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
                if isinstance(obj, dict):
                    yield obj


def _fmt_of(name: str) -> str:
    from .writers import ALL_FILE_NAMES

    for fmt, fname in ALL_FILE_NAMES.items():
        if Path(name).name == fname:
            return fmt
    return Path(name).name


WINDOW = 5.0  # seconds: an alert with no exec ID joins the nearest label of its container this close in time


def _seconds(time: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(time).replace("Z", "+00:00")).timestamp() if time else None
    except ValueError:
        return None


def _tally(res: Result, lab: dict[str, Any], fmt: str | None) -> list[Tally]:
    out = [res.total, res.by_scenario[str(lab.get("scenario"))]]
    if fmt is not None:
        out.append(res.by_format[fmt])
    if lab.get("procedure"):
        out.append(res.by_procedure[str(lab["procedure"])])
    return out


def _count_alert(res: Result, alert: dict[str, Any], lab: dict[str, Any], fmt: str, where: str) -> None:
    malicious = bool(lab.get("malicious"))
    for t in _tally(res, lab, fmt):
        t.alerts += 1
        t.true_alerts += malicious
    for r in alert.get("rules") or [{"rule_id": alert.get("rule_id")}]:
        rt = res.by_rule[str(r.get("rule_id"))]
        rt.alerts += 1
        rt.true_alerts += malicious
    if not malicious:
        res.false_alarms.append({"where": where, "severity": alert.get("severity"), "rule_id": alert.get("rule_id"),
                                 "step": lab.get("step"), "command": " ".join(alert.get("command") or []), **_file_line(where)})


def _file_line(where: str) -> dict[str, Any]:
    rel, _, line = where.rpartition(":")
    return {"file": rel, "line": int(line)} if line.isdigit() else {}


def _count_event(res: Result, first: dict[str, Any], found: list[dict[str, Any]], fmt: str | None, where: str,
                 records: int = 1, group: str = "") -> None:
    """One attack event: caught when any alert joined to one of its records. ``fmt`` None: no per-format tally."""
    for t in _tally(res, first, fmt):
        t.events += 1
        t.caught += bool(found)
    for rid in {str(r.get("rule_id")) for a in found for r in (a.get("rules") or [])}:
        res.by_rule[rid].caught += 1
    if found:
        key = (str(first.get("scenario")), group or str(fmt))
        best = max((str(a.get("severity")) for a in found), key=severity_rank)
        if key not in res.worst or severity_rank(best) > severity_rank(res.worst[key]):
            res.worst[key] = best
    else:
        res.missed.append({"where": where, "scenario": first.get("scenario"), "step": first.get("step"), "records": records,
                           **_file_line(where)})


def _alert_path(alert: dict[str, Any]) -> tuple[str, Any]:
    src = alert.get("source") or {}
    return str(src.get("file") or alert.get("source.file") or ""), src.get("line") if src else alert.get("source.line")


def score(labels: Iterable[dict[str, Any]], alerts: Iterable[dict[str, Any]], min_severity: str = "info",
          all_files: bool = False) -> Result:
    """Join alerts to labels: simulate's by (file, line), emulate's by exec ID, container or time."""
    res = Result(min_severity)
    file_labels: list[dict[str, Any]] = []
    daemon_labels: list[dict[str, Any]] = []
    for n, lab in enumerate(labels, 1):
        if "file" in lab and "line" in lab:
            file_labels.append(lab)
        elif lab.get("exec_id") or lab.get("container"):
            daemon_labels.append(lab)
        else:
            raise LabelError(n, "neither file and line (simulate) nor exec_id or container (emulate)")
    every = list(alerts)
    floor = severity_rank(min_severity)
    kept = [a for a in every if severity_rank(str(a.get("severity", "info"))) >= floor]
    res.alerts = len(kept)
    joined = 0
    if file_labels:
        joined += _score_files(res, file_labels, every, kept, all_files)
    if daemon_labels:
        joined += _score_daemon(res, daemon_labels, every, kept)
    res.unjoined = res.alerts - joined
    return res


def _score_files(res: Result, labels: list[dict[str, Any]], every: list[dict[str, Any]], kept: list[dict[str, Any]],
                 all_files: bool) -> int:
    files = sorted({str(lab["file"]) for lab in labels})
    by_base: dict[str, list[str]] = defaultdict(list)
    for rel in files:
        by_base[Path(rel).name].append(rel)
    cache: dict[str, str | None] = {}

    def resolve(path: str) -> str | None:
        if path not in cache:
            norm = path.replace("\\", "/")
            exact = [rel for rel in files if norm == rel or norm.endswith("/" + rel)]
            cands = exact or by_base.get(Path(norm).name, [])
            cache[path] = cands[0] if len(cands) == 1 or exact else None
        return cache[path]

    # the files hunted, as far as the alerts tell (any severity): labels of the others would all count as missed
    hunted = {r for a in every if (r := resolve(_alert_path(a)[0])) is not None}
    scored = set(files) if all_files else hunted
    res.scored += [f"{rel} ({_fmt_of(rel)})" for rel in files if rel in scored]
    res.left_out += [rel for rel in files if rel not in scored]
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    events: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for lab in labels:
        rel = str(lab["file"])
        if rel not in scored:
            continue
        res.labels += 1
        by_key[(rel, int(lab["line"]))] = lab
        if lab.get("malicious"):
            res.malicious_records += 1
            events[(rel, str(lab.get("event_id") or f"line:{lab['line']}"))].append(lab)
    hit: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    joined = 0
    for alert in kept:
        path, line = _alert_path(alert)
        found_rel = resolve(path)
        if found_rel is None or line is None or (found_rel, int(line)) not in by_key:
            continue
        joined += 1
        hit[(found_rel, int(line))].append(alert)
        _count_alert(res, alert, by_key[(found_rel, int(line))], _fmt_of(found_rel), f"{found_rel}:{int(line)}")
        for cover in alert.get("covers") or []:  # the join: what the exec ran counts as caught by this one alert
            src = cover.get("source") or {}
            crel = resolve(str(src.get("file") or ""))
            if crel is None or src.get("line") is None or (crel, int(src["line"])) not in by_key:
                continue
            hit[(crel, int(src["line"]))].append(alert)
            res.covered += 1
            res.covered_malicious += bool(by_key[(crel, int(src["line"]))].get("malicious"))
            res.identities += bool((cover.get("actor") or {}).get("user"))
    for (rel, _eid), recs in sorted(events.items(), key=lambda kv: (kv[0][0], kv[1][0]["line"])):
        found = [a for r in recs for a in hit.get((rel, int(r["line"])), [])]
        _count_event(res, recs[0], found, _fmt_of(rel), f"{rel}:{int(recs[0]['line'])}", records=len(recs), group=rel)
    return joined


def _score_daemon(res: Result, labels: list[dict[str, Any]], every: list[dict[str, Any]], kept: list[dict[str, Any]]) -> int:
    """emulate's labels: one per API action, joined by exec ID, else by container (ID or name) and time."""
    by_exec = {str(lab["exec_id"]): i for i, lab in enumerate(labels) if lab.get("exec_id")}
    by_ctr: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        for ref in (lab.get("container"), lab.get("container_name")):
            if ref:
                by_ctr[str(ref)].append(i)
    times = [_seconds(lab.get("time")) for lab in labels]

    def join(alert: dict[str, Any]) -> int | None:
        eid = alert.get("event_id")
        if eid:
            return by_exec.get(str(eid))  # another exec on the same container is not one of ours
        tgt = alert.get("target") or {}
        cands = sorted({i for ref in (tgt.get("container_id"), tgt.get("container")) if ref for i in by_ctr.get(str(ref), [])})
        creates = [i for i in cands if not labels[i].get("exec_id")]
        if alert.get("action") == "create" and creates:
            return creates[0]
        when = _seconds(alert.get("time"))
        near = [(abs(when - t), i) for i in cands if when is not None and (t := times[i]) is not None and abs(when - t) <= WINDOW]
        return min(near)[1] if near else None

    ours = [a for a in every if join(a) is not None]  # any severity: which sources saw the emulation at all
    formats = sorted({f for a in ours for f in _formats(a)})
    sources = sorted({f"{r.get('file') or ''} ({r.get('format')})" for a in ours for r in (a.get("sources") or [a.get("source") or {}])})
    res.scored += [f"{len(labels)} emulate labels against {s}" for s in sources] or [f"{len(labels)} emulate labels (no alert joined)"]
    res.labels += len(labels)
    res.malicious_records += sum(bool(lab.get("malicious")) for lab in labels)
    hit: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for alert in kept:
        j = join(alert)
        if j is None:
            continue
        hit[j].append(alert)
        fmt = str((alert.get("source") or {}).get("format") or "?")
        _count_alert(res, alert, labels[j], fmt, _daemon_where(labels[j]))
    for i, lab in enumerate(labels):
        if not lab.get("malicious"):
            continue
        found = hit.get(i, [])
        one = formats[0] if len(formats) == 1 else None
        _count_event(res, lab, found, one, _daemon_where(lab), group=", ".join(formats))
        for fmt in formats if one is None else []:  # each source read should see each action: recall per format
            t = res.by_format[fmt]
            t.events += 1
            t.caught += any(fmt in _formats(a) for a in found)
    return sum(len(v) for v in hit.values())


def _formats(alert: dict[str, Any]) -> list[str]:
    """Every source format behind an alert: one Docker exec seen in events and the debug log is one alert with two."""
    refs = alert.get("sources") or [alert.get("source") or {}]
    return [str((r or {}).get("format") or "?") for r in refs]


def _daemon_where(lab: dict[str, Any]) -> str:
    if lab.get("exec_id"):
        return f"exec {str(lab['exec_id'])[:12]} in {lab.get('container_name') or str(lab.get('container'))[:12]}"
    return f"container {lab.get('container_name') or str(lab.get('container'))[:12]}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _table(title: str, key: str, rows: dict[str, Tally]) -> list[str]:
    out = [f"### {title}", "", f"| {key} | alerts | on attack records | precision | attack events | caught | recall |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for name in sorted(rows):
        t = rows[name]
        out.append(f"| {name} | {t.alerts} | {t.true_alerts} | {_pct(t.precision)} | {t.events} | {t.caught} | {_pct(t.recall)} |")
    return [*out, ""]


def markdown(res: Result, commands: list[str] | None = None) -> str:
    t = res.total
    lines = ["# execguard scorecard", ""]
    if commands:
        lines += ["Regenerate with:", "", "```sh", *commands, "```", ""]
    lines += [
        f"Alerts at or above **{res.min_severity}**: {res.alerts} ({res.unjoined} not joined to a label). "
        f"Labelled records: {res.labels}, of which {res.malicious_records} malicious in {t.events} attack events.",
        "",
        f"**Precision {_pct(t.precision)}** ({t.true_alerts}/{t.alerts} alerts on attack records), "
        f"**recall {_pct(t.recall)}** ({t.caught}/{t.events} attack events alerted).",
        "",
        f"Scored against: {'; '.join(res.scored) or 'nothing'}.",
        "",
        *([f"The join (docs/node.md): {res.covered} labelled records reached through the `covers` of an incident or bypass "
           f"alert ({res.covered_malicious} malicious), {res.identities} of them given the identity of who asked for the exec.", ""]
          if res.covered else []),
        *_table("Per scenario", "scenario", res.by_scenario),
        *_table("Per procedure", "procedure", res.by_procedure),
        *_table("Per format", "format", res.by_format),
    ]
    lines += ["### Per rule", "", "| rule | alerts | on attack records | precision | attack events caught |", "|---|---:|---:|---:|---:|"]
    for rid in sorted(res.by_rule):
        r = res.by_rule[rid]
        lines.append(f"| {rid} | {r.alerts} | {r.true_alerts} | {_pct(r.precision)} | {r.caught} |")
    lines += ["", "### Most severe alert per attack and file", "", "| scenario | file | severity |", "|---|---|---|"]
    for (scen, rel), sev in sorted(res.worst.items()):
        lines.append(f"| {scen} | {rel} | {sev} |")
    lines += ["", f"### Missed attack events ({len(res.missed)})", ""]
    if res.missed:
        lines += ["| where | scenario | step | records |", "|---|---|---|---:|"]
        lines += [f"| {m['where']} | {m['scenario']} | {m['step']} | {m['records']} |" for m in res.missed]
    else:
        lines.append("None.")
    if res.left_out:
        lines += ["", f"Left out, no alert came from them (not hunted? `--all-files` scores them): {', '.join(res.left_out)}."]
    lines += ["", f"### False alarms ({len(res.false_alarms)})", ""]
    if res.false_alarms:
        lines += ["| where | severity | rule | benign step | command |", "|---|---|---|---|---|"]
        for f in res.false_alarms:
            cmd = f["command"].replace("|", "\\|").replace("\n", " ")
            cmd = cmd if len(cmd) <= 80 else cmd[:79] + "…"
            lines.append(f"| {f['where']} | {f['severity']} | {f['rule_id']} | {f['step']} | `{cmd}` |")
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
