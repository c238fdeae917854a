"""Issue 14 part 4: log content is attacker-controlled text. Fed through every field of an alert (and an audit
finding, the input's file name and the title), script, markup, URL schemes and bidi/zero-width characters must
show as text in the browser, and nothing injected may run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from browser_util import browser_or_skip, filter_to, open_report
from execguard.cli import app
from execguard.model import Actor, Alert, Event, Process, RbacChange, RuleMatch, SourceRef, Target, display
from execguard.sinks.alert_json import alert_json

PAYLOADS = (
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=2</script>",
    '"><img src=x onerror="window.__pwned=3">',
    "' onerror='window.__pwned=4' x='",
    "javascript:window.__pwned=5",
    "<svg/onload=window.__pwned=6>",
    "<b>bold</b> &amp; &lt;",
    "\u202egnp.exe\u2066\u200b\u200d",
    "\u2028\u2029<!--",
    "{{ 7*7 }}",
)
HOSTILE = " ".join(PAYLOADS)
HIDDEN = "\u202e\u2066\u200b\u200d\u2028\u2029"


def hostile(field: str) -> str:
    return f"{field} {HOSTILE}"


def alert(i: int) -> Alert:
    h = hostile
    ev = Event(
        time=f"2026-03-02T08:00:0{i}Z",
        source=SourceRef(format=h("format"), file=h("file"), line=7 + i),
        actor=Actor(user=h(f"user{i}"), groups=[h("group")], source_ip=[h("ip")], user_agent=h("agent"),
                    impersonated_user=None, credential_pod=h("credpod")),
        action="exec", verb=h("verb"),
        request_uri=h("uri"),
        target=Target(cluster=h("cluster"), namespace=h("ns"), pod=h("pod"), container=h("container"), container_id=h("cid"),
                      image=h("image"), node=h("node"), kind=h("kind")),
        command=["sh", "-c", h("argv")],
        command_origin=h("origin"),
        outcome="allowed",
        event_id=h("event"),
        rbac=RbacChange(kind="ClusterRoleBinding", name=h("rbac"), subjects=[h("subject")]),
        process=Process(pid=4242, ppid=1, exe=h("exe"), parent_exe=h("parent"), parent_command=[h("pcmd")], exec_id=h("execid")),
    )  # fmt: skip
    rule = RuleMatch(rule_id=h("rule"), title=h("title"), severity="critical", tags=["T1609", h("procedure")], reason=h("reason"))
    return Alert(event=ev, matches=[rule], also_seen=[SourceRef(format=h("fmt2"), file=h("file2"), line=3)])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from browser_or_skip()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    # the input's own name is shown in the header
    alerts = d / ('<img src=x onerror="window.__pwned=7">' + HIDDEN + ".jsonl")
    alerts.write_bytes(b"".join(alert_json(alert(i)) + b"\n" for i in range(3)))
    finding = {
        "id": "EG-RBAC-010", "title": hostile("ftitle"), "severity": "high", "mitigation": "M1018", "mitigation_name": hostile("mname"),
        "target": hostile("ftarget"), "evidence": hostile("evidence"), "remediation": hostile("remediation"),
        "file": hostile("ffile"), "line": 3,
        "facts": {"subject_kind": "User", "subject_name": hostile("user0"), "subject_namespace": None},
    }  # fmt: skip
    (d / "findings.json").write_text(json.dumps([finding]))
    r = CliRunner().invoke(app, ["report", str(alerts), "--audit", str(d / "findings.json"), "--title", hostile("title"),
                                 "--out", str(d / "report.html"), "-q"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    return d / "report.html"


def test_the_file_keeps_the_data_inert(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    # only our four script elements end (data, plotly, report.js, table.js): the data's "</script" is \u003c/script
    assert len(re.findall(r"</script", html, re.IGNORECASE)) == 4
    assert not any(ch in html for ch in HIDDEN)
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m is not None and "<" not in m.group(1) and ">" not in m.group(1) and "&" not in m.group(1)
    assert json.loads(m.group(1))["meta"]["alerts"] == 3


def test_nothing_injected_runs_and_text_shows_literally(browser: Any, report: Path) -> None:
    opened = open_report(browser, report)
    page = opened.page
    shown = display  # what every string from the logs looks like in the report

    def pwned() -> Any:
        return page.evaluate("() => window.__pwned")

    assert pwned() is None
    assert page.title() == shown(hostile("title"))
    assert shown(alert(0).event.source.file) not in page.inner_text("#meta-inputs")  # the input's name, not the alert's file
    assert '<img src=x onerror="window.__pwned=7">' in page.inner_text("#meta-inputs")

    # the table: every cell is the text itself
    row = page.eval_on_selector_all("#alerts tbody tr:first-child td", "tds => tds.map(t => t.textContent)")
    first = alert(0)
    assert row[2] == shown(first.lead.rule_id)
    assert row[3] == shown(first.event.actor.user or "")
    assert row[4] == shown(f"{first.event.target.namespace}/{first.event.target.pod}")
    command = shown(" ".join(first.event.command))
    assert row[5] == (command if len(command) <= 300 else command[:299] + "…")  # the detail has it whole
    assert row[6] == shown(f"{first.event.source.file}:{first.event.source.line}")

    # the detail: full argv, reasons, process, rbac, the other source
    page.click("#alerts tbody tr:first-child")
    argv = page.eval_on_selector_all("#alerts tr.detail ol.argv li", "ls => ls.map(l => l.textContent)")
    assert argv == [shown(a) for a in first.event.command]
    detail = page.inner_text("#alerts tr.detail")
    for part in ("reason", "exe", "parent", "agent", "uri", "event", "image", "procedure", "group", "file2", "subject"):
        assert shown(hostile(part))[: len(part) + 40] in detail, part

    # Plotly's axis labels are the text too (Plotly reads a little HTML in labels: it got entities)
    ticks = page.eval_on_selector_all("#timeline .ytick text", "es => es.map(e => e.textContent)")
    assert any(t.startswith(shown(hostile("user0"))[:37]) for t in ticks), ticks

    # the story, the counts, the matrix and the exposure show the same literal text
    assert shown(first.lead.reason) in page.inner_text("#story")
    assert shown(hostile("ns")) in page.inner_text("#counts-namespace")
    assert shown(hostile("evidence")) in page.inner_text("#exposure-table")
    assert page.eval_on_selector("#exposure-table tbody tr", "r => +r.dataset.alerts") == 1

    # interaction: filters on hostile values, a click on a count row, a hover over a dot
    assert filter_to(page, "<script>window.__pwned=1</script>") == 3
    page.click("#counts-actor tbody tr:first-child")
    assert page.eval_on_selector("#alerts", "e => +e.dataset.count") == 1
    page.locator("#timeline").scroll_into_view_if_needed()
    box = page.locator("#timeline .point").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#timeline .hoverlayer .hovertext")
    hover = page.eval_on_selector("#timeline .hoverlayer", "e => e.textContent")
    assert shown(hostile("user0")) in hover, hover

    # nothing ran, nothing was added: no dialog, no error (a CSP refusal is a console error), no injected element
    assert pwned() is None
    assert opened.dialogs == []
    assert opened.console == []
    assert set(opened.requests) == {report.resolve().as_uri()}
    assert page.eval_on_selector_all("img, iframe, object, embed, [onerror], [onload]", "es => es.length") == 0
    assert page.eval_on_selector_all("script", "es => es.length") == 4
    text = page.inner_text("body")
    assert not any(ch in text for ch in HIDDEN), "a hidden character reached the page as itself"
    assert "\\u202e" in text and "{{ 7*7 }}" in text and "<b>bold</b> &amp; &lt;" in text
    page.close()
