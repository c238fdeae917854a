"""The HTML report of the simulate corpus, opened in a real headless chromium: what it shows is what the JSONL holds.

Every expected number is counted here from the alerts JSONL that hunt wrote, never written down.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from browser_util import browser_or_skip, filter_to, open_report, table_count, wait_until
from execguard.cli import app
from execguard.model import display
from execguard.report.data import target_label
from execguard.times import time_ns

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "img" / "report.png"


def cli(*args: str) -> None:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, (r.stdout, r.stderr)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from browser_or_skip()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], Path]:
    """The simulate corpus hunted to JSONL, its alerts, and the report built from them (with audit findings)."""
    d = tmp_path_factory.mktemp("report")
    cli("simulate", "--scenario", "all", "--seed", "1", "--out", str(d / "sim"))
    cli("hunt", str(d / "sim"), "-o", "jsonl", "--out", str(d / "alerts.jsonl"), "-q")
    alerts = [json.loads(line) for line in (d / "alerts.jsonl").read_text().splitlines()]
    findings = audit_findings(d)
    cli("report", str(d / "alerts.jsonl"), "--audit", str(findings), "--out", str(d / "report.html"), "-q")
    return d, alerts, d / "report.html"


def audit_findings(d: Path) -> Path:
    """Real findings of `execguard audit` over the RBAC test dumps, plus one naming an identity of the corpus."""
    cli("audit", "--from", str(ROOT / "tests" / "data" / "audit" / "rbac"), "-o", "json", "--out", str(d / "audit.json"))
    findings = json.loads((d / "audit.json").read_text())
    template = next(f for f in findings if (f.get("facts") or {}).get("subject_kind"))
    findings.append({
        **template, "id": "EG-RBAC-010", "target": "ServiceAccount ci/gitlab-runner @ cluster",
        "facts": {**template["facts"], "subject_kind": "ServiceAccount", "subject_name": "gitlab-runner", "subject_namespace": "ci"},
    })  # fmt: skip
    path = d / "findings.json"
    path.write_text(json.dumps(findings))
    return path


def test_report_of_the_simulate_corpus(browser: Any, corpus: tuple[Path, list[dict[str, Any]], Path]) -> None:
    d, alerts, report = corpus
    opened = open_report(browser, report)
    page = opened.page
    assert opened.console == []
    assert opened.failed == []
    assert set(opened.requests) == {report.resolve().as_uri()}, "the report fetched something"

    # summary
    assert page.eval_on_selector("#count-total", "e => +e.dataset.count") == len(alerts)
    by_sev = Counter(a["severity"] for a in alerts)
    for sev in ("critical", "high", "medium", "low", "info"):
        assert page.eval_on_selector(f'#summary [data-sev="{sev}"]', "e => +e.dataset.count") == by_sev[sev]

    # timeline: every alert with a time is in one dot's count, in the rows of the most active actors
    timed = sum(1 for a in alerts if time_ns(a["time"]) is not None)
    assert page.eval_on_selector("#timeline", "e => +e.dataset.points") == timed
    plotted = page.evaluate("() => document.getElementById('timeline').data.reduce((n, t) => n + t.customdata.reduce((a, b) => a + b), 0)")
    assert plotted == timed
    actors = Counter(actor(a) for a in alerts)
    assert page.eval_on_selector("#timeline", "e => +e.dataset.rows") == min(len(actors), 30) + (len(actors) > 30)
    ticks = page.eval_on_selector_all("#timeline .ytick text", "es => es.map(e => e.textContent)")
    assert any(actors.most_common(1)[0][0][:37] in t for t in ticks)
    # zoom: the first half of the range holds the alerts of the first half
    times = sorted(t for a in alerts if (t := time_ns(a["time"])) is not None)
    mid = (times[0] + times[-1]) // 2 // 1_000_000
    page.evaluate("([a, b]) => Plotly.relayout('timeline', {'xaxis.range[0]': a, 'xaxis.range[1]': b})", [times[0] // 1_000_000, mid])
    wait_until(page, "(n) => +document.getElementById('timeline').dataset.points !== n", timed)
    assert page.eval_on_selector("#timeline", "e => +e.dataset.points") == sum(1 for t in times if t // 1_000_000 <= mid)

    # per target: the same alerts, in rows of namespace/pod or container
    page.click("#timeline-reset")
    page.select_option("#timeline-by", "target")
    targets = Counter(target_label(a["target"]) for a in alerts)
    rows_expected = min(len(targets), 30) + (len(targets) > 30)
    assert page.eval_on_selector("#timeline", "e => [+e.dataset.points, +e.dataset.rows]") == [timed, rows_expected]
    page.select_option("#timeline-by", "actor")

    # counts by rule, namespace, actor and source format: the rows shown are the most frequent, with their counts
    expect = {
        "rule": Counter(a["rule_id"] for a in alerts),
        "namespace": Counter(a["target"]["namespace"] or "(none)" for a in alerts),
        "actor": actors,
        "format": Counter(a["source"]["format"] for a in alerts),
    }
    for name, counts in expect.items():
        shown = page.eval_on_selector_all(f"#counts-{name} tbody tr", "rs => rs.map(r => [r.dataset.key, +r.dataset.count])")
        assert len(shown) == min(15, len(counts))
        assert all(counts[k] == n for k, n in shown), name
        assert sorted((n for _, n in shown), reverse=True) == sorted(counts.values(), reverse=True)[: len(shown)]

    # ATT&CK procedures
    procs = Counter(p for a in alerts for p in a["procedures"])
    shown = page.eval_on_selector_all("#attack-procedures tbody tr", "rs => rs.map(r => [r.dataset.key, +r.dataset.count])")
    assert dict(shown) == dict(procs)

    # who exec'd into what: the busiest actor's busiest namespace
    top_actor = actors.most_common(1)[0][0]
    cell = Counter(a["target"]["namespace"] or "(none)" for a in alerts if actor(a) == top_actor).most_common(1)[0]
    header = page.eval_on_selector_all("#matrix-table thead th", "ths => ths.map(t => t.title || t.textContent)")
    first_row = page.eval_on_selector_all("#matrix-table tbody tr:first-child td", "tds => tds.map(t => t.textContent)")
    column = header.index(cell[0]) - 1
    assert int(first_row[column].replace(",", "")) == cell[1]

    # exposure: the finding about ci/gitlab-runner shows its alerts
    sa = "system:serviceaccount:ci:gitlab-runner"
    assert page.eval_on_selector("#sec-exposure", "e => !e.hidden")
    rows = page.eval_on_selector_all("#exposure-table tbody tr", "rs => rs.map(r => [r.dataset.id, +r.dataset.alerts, r.textContent])")
    assert [n for _i, n, text in rows if sa in text] == [sum(1 for a in alerts if a["actor"]["user"] == sa)]

    # story: the busiest actor's alerts in time order, 200 at a time
    assert page.eval_on_selector("#story", "e => +e.dataset.count") == actors[top_actor]
    assert page.eval_on_selector_all("#story > li", "ls => ls.length") == min(200, actors[top_actor])
    if actors[top_actor] > 200:
        page.click("#story-more")
        assert page.eval_on_selector_all("#story > li", "ls => ls.length") == min(400, actors[top_actor])
    second = actors.most_common(2)[1][0]
    page.select_option("#story-actor", label=f"{second} ({actors[second]})")
    assert page.eval_on_selector("#story", "e => +e.dataset.count") == actors[second]

    # the table: all alerts, a page of 100; filters narrow it to the right count
    assert table_count(page) == len(alerts)
    assert page.eval_on_selector_all("#alerts tbody tr", "rs => rs.length") == min(100, len(alerts))
    ns = Counter(a["target"]["namespace"] for a in alerts if a["target"]["namespace"]).most_common(2)[1][0]
    assert filter_to(page, f"ns:{ns}") == sum(1 for a in alerts if a["target"]["namespace"] == ns)
    rule = sorted({r["rule_id"] for a in alerts for r in a["rules"]})[0]
    assert filter_to(page, f"rule:{rule}") == sum(1 for a in alerts if any(r["rule_id"] == rule for r in a["rules"]))
    both = sum(1 for a in alerts if a["target"]["namespace"] == ns and a["severity"] in ("high", "critical"))
    assert filter_to(page, f"ns:{ns} sev:high") + filter_to(page, f"ns:{ns} sev:critical") == both
    word = "base64"
    assert filter_to(page, word) == sum(1 for a in alerts if word in searchable(a))
    assert filter_to(page, "") == len(alerts)

    # sorting: severity descending, then time descending
    page.click('#alerts th[data-col="sev"]')
    sevs = page.eval_on_selector_all("#alerts tbody tr td:nth-child(2)", "ts => ts.map(t => t.textContent)")
    assert sevs[0] == max(by_sev, key=lambda s: ["info", "low", "medium", "high", "critical"].index(s))
    assert sevs == sorted(sevs, key=lambda s: -["info", "low", "medium", "high", "critical"].index(s))
    page.click('#alerts th[data-col="t"]')
    page.click('#alerts th[data-col="t"]')
    first = page.eval_on_selector("#alerts tbody tr td:first-child", "t => t.textContent")
    assert time_ns(first) // 1_000_000 == times[-1] // 1_000_000

    # a row opens with its full argv, reasons and source
    page.click("#alerts tbody tr:first-child")
    argv = page.eval_on_selector_all("#alerts tr.detail ol.argv li", "ls => ls.map(l => l.textContent)")
    row = int(page.eval_on_selector("#alerts tbody tr:first-child", "r => r.dataset.row"))
    ts = [time_ns(a["time"]) for a in alerts]
    order = sorted(range(len(alerts)), key=lambda i: (ts[i] is None, ts[i] or 0, i))  # the report's row order
    assert argv == [display(x) for x in alerts[order[row]]["command"]]

    page.click('#alerts th[data-col="t"]')  # back to time order and the whole range for the picture
    page.click("#timeline-reset")
    assert page.eval_on_selector("#timeline", "e => +e.dataset.points") == timed
    page.evaluate("() => window.scrollTo(0, 0)")
    shot = SCREENSHOT if os.environ.get("EXECGUARD_UPDATE_SCREENSHOT") == "1" else d / "report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.close()


def actor(a: dict[str, Any]) -> str:
    user, imp = a["actor"]["user"], a["actor"]["impersonated_user"]
    return f"{user} as {imp}" if user and imp else user or imp or "(no identity)"


def searchable(a: dict[str, Any]) -> str:
    """The text a bare word in the filter is looked for in (lower case)."""
    t = a["target"]
    parts = [a["rule_id"], a["title"], actor(a), t["namespace"], t["pod"], t["container"], target_label(t), a["command_display"],
             a["source"]["file"], *a["reasons"]]  # fmt: skip
    return "\n".join(p or "" for p in parts).lower()


def test_report_of_no_alerts(browser: Any, tmp_path: Path) -> None:
    (tmp_path / "none.jsonl").write_text("")
    cli("report", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "none.html"), "-q")
    opened = open_report(browser, tmp_path / "none.html")
    assert opened.console == []
    assert table_count(opened.page) == 0
    assert opened.page.inner_text("#timeline") == "No alert has a time."
    assert opened.page.inner_text("#page-info") == "no alert matches"
    opened.page.close()
