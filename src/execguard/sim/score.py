"""``execguard score``: join hunt alerts to simulate's labels and measure precision and recall.

Alerts (``execguard hunt -o jsonl``) are joined to labels by (file, line): the alert's ``source.file`` is matched
to the label's relative path (as a path suffix, else by base name) and ``source.line`` to the record's first line.
Recall is counted per *attack event*: the records of one request (audit stages, docker exec_create/start/die,
the debug-log lines of one exec) share an ``event_id``, and the engine rightly alerts once per request, so an
event is caught when any of its records raised an alert. Precision is counted per alert.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from ..cliutil import check_output, fail, write_output
from ..model import SEVERITIES, severity_rank
from ..options import severity_option


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
    worst: dict[tuple[str, str], str] = field(default_factory=dict)  # (scenario, file) -> most severe alert on its attack


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
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
    from .writers import FILE_NAMES

    for fmt, fname in FILE_NAMES.items():
        if Path(name).name == fname:
            return fmt
    return Path(name).name


def score(labels: Iterable[dict[str, Any]], alerts: Iterable[dict[str, Any]], min_severity: str = "info") -> Result:
    res = Result(min_severity)
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    files: set[str] = set()
    events: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for lab in labels:
        res.labels += 1
        rel = str(lab["file"])
        files.add(rel)
        by_key[(rel, int(lab["line"]))] = lab
        if lab.get("malicious"):
            res.malicious_records += 1
            eid = lab.get("event_id") or f"line:{lab['line']}"
            events[(rel, str(eid))].append(lab)
    by_base: dict[str, list[str]] = defaultdict(list)
    for rel in files:
        by_base[Path(rel).name].append(rel)

    def resolve(path: str) -> str | None:
        norm = path.replace("\\", "/")
        for rel in files:
            if norm == rel or norm.endswith("/" + rel):
                return rel
        cands = by_base.get(Path(norm).name, [])
        return cands[0] if len(cands) == 1 else None

    cache: dict[str, str | None] = {}
    hit: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    floor = severity_rank(min_severity)
    for alert in alerts:
        if severity_rank(str(alert.get("severity", "info"))) < floor:
            continue
        res.alerts += 1
        src = alert.get("source") or {}
        path = str(src.get("file") or alert.get("source.file") or "")
        line = src.get("line") if src else alert.get("source.line")
        if path not in cache:
            cache[path] = resolve(path)
        found_rel = cache[path]
        if found_rel is None or line is None or (found_rel, int(line)) not in by_key:
            res.unjoined += 1
            continue
        rel = found_rel
        lab = by_key[(rel, int(line))]
        hit[(rel, int(line))].append(alert)
        malicious = bool(lab.get("malicious"))
        fmt = _fmt_of(rel)
        tallies = [res.total, res.by_scenario[lab["scenario"]], res.by_format[fmt]]
        if lab.get("procedure"):
            tallies.append(res.by_procedure[lab["procedure"]])
        for t in tallies:
            t.alerts += 1
            t.true_alerts += malicious
        for r in alert.get("rules") or [{"rule_id": alert.get("rule_id")}]:
            rt = res.by_rule[str(r.get("rule_id"))]
            rt.alerts += 1
            rt.true_alerts += malicious
        if not malicious:
            res.false_alarms.append({"file": rel, "line": int(line), "severity": alert.get("severity"), "rule_id": alert.get("rule_id"),
                                     "step": lab.get("step"), "command": " ".join(alert.get("command") or [])})
    for (rel, _eid), recs in sorted(events.items(), key=lambda kv: (kv[0][0], kv[1][0]["line"])):
        first = recs[0]
        fmt = _fmt_of(rel)
        tallies = [res.total, res.by_scenario[first["scenario"]], res.by_format[fmt]]
        if first.get("procedure"):
            tallies.append(res.by_procedure[first["procedure"]])
        found = [a for r in recs for a in hit.get((rel, int(r["line"])), [])]
        for t in tallies:
            t.events += 1
            t.caught += bool(found)
        rules_hit = {str(r.get("rule_id")) for a in found for r in (a.get("rules") or [])}
        for rid in rules_hit:
            res.by_rule[rid].caught += 1
        if found:
            key = (first["scenario"], rel)
            best = max((str(a.get("severity")) for a in found), key=severity_rank)
            if key not in res.worst or severity_rank(best) > severity_rank(res.worst[key]):
                res.worst[key] = best
        else:
            res.missed.append({"file": rel, "line": int(first["line"]), "scenario": first["scenario"], "step": first["step"],
                               "records": len(recs)})
    return res


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
        lines += ["| file:line | scenario | step | records |", "|---|---|---|---:|"]
        lines += [f"| {m['file']}:{m['line']} | {m['scenario']} | {m['step']} | {m['records']} |" for m in res.missed]
    else:
        lines.append("None.")
    lines += ["", f"### False alarms ({len(res.false_alarms)})", ""]
    if res.false_alarms:
        lines += ["| file:line | severity | rule | benign step | command |", "|---|---|---|---|---|"]
        for f in res.false_alarms:
            cmd = f["command"].replace("|", "\\|").replace("\n", " ")
            cmd = cmd if len(cmd) <= 80 else cmd[:79] + "…"
            lines.append(f"| {f['file']}:{f['line']} | {f['severity']} | {f['rule_id']} | {f['step']} | `{cmd}` |")
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def score_command(
    alerts: Annotated[Path, typer.Argument(help="Alerts from `execguard hunt -o jsonl`.")],
    labels: Annotated[Path, typer.Option("--labels", help="labels.jsonl written by `execguard simulate`.")],
    min_severity: Annotated[
        str, typer.Option("--min-severity", help=f"Count alerts at or above: {', '.join(SEVERITIES)}.", callback=severity_option)
    ] = "info",
    md: Annotated[Path | None, typer.Option("--markdown", help="Also write the scorecard as Markdown here.")] = None,
) -> None:
    """Precision and recall of hunt's alerts against simulate's labels, per scenario, procedure, format and rule."""
    level = min_severity
    for p in (labels, alerts):
        if not p.exists():
            fail(f"{p}: no such file")
        if p.is_dir():
            fail(f"{p}: is a directory")
    check_output(md)
    try:
        res = score(_read_jsonl(labels), _read_jsonl(alerts), level)
    except KeyError as exc:
        fail(f"{labels}: a label without {exc}")
    except TypeError as exc:
        fail(f"{labels} or {alerts}: a record of the wrong shape ({exc})")
    except ValueError as exc:
        fail(exc)
    text = markdown(res)
    sys.stdout.write(text)
    if md is not None:
        write_output(md, text.encode())
