"""`execguard report` and `hunt -o html` without a browser: inputs, bad lines, the store, the data blob."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import display
from execguard.report.data import COLUMNS
from execguard.report.render import json_for_script

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def blob(path: Path) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', path.read_text(encoding="utf-8"), re.S)
    assert m is not None
    return json.loads(m.group(1))


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with their string columns looked up."""
    s = data["strings"]
    text = {"t", "sev", "line"}
    return [{c: v if c in text else s[v] for c, v in zip(data["columns"], r, strict=True)} for r in data["rows"]]


def hunt_samples(tmp_path: Path) -> Path:
    out = tmp_path / "alerts.jsonl"
    assert run("hunt", "--samples", "-o", "jsonl", "--out", str(out), "-q")[0] == 0
    return out


def test_report_holds_every_alert_of_the_jsonl(tmp_path: Path) -> None:
    alerts = hunt_samples(tmp_path)
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    code, _out, err = run("report", str(alerts), "--out", str(tmp_path / "r.html"))
    assert code == 0, err
    assert f"{len(lines)} alerts" in err
    data = blob(tmp_path / "r.html")
    assert data["columns"] == list(COLUMNS)
    got = rows(data)
    assert len(got) == len(lines)
    # the same alerts: rule, file:line and argv of each
    want = sorted((d["rule_id"], display(d["source"]["file"]), d["source"]["line"], [display(a) for a in d["command"]]) for d in lines)
    assert sorted((r["rule"], r["file"], r["line"], json.loads(r["argv"]) if r["argv"] else []) for r in got) == want
    times = [r["t"] for r in got if r["t"] is not None]
    assert times == sorted(times)


def test_hunt_output_html_equals_report_of_its_jsonl(tmp_path: Path) -> None:
    alerts = hunt_samples(tmp_path)
    assert run("hunt", "--samples", "-o", "html", "--out", str(tmp_path / "h.html"), "-q")[0] == 0
    assert run("report", str(alerts), "--out", str(tmp_path / "r.html"), "-q")[0] == 0
    assert blob(tmp_path / "h.html")["rows"] == blob(tmp_path / "r.html")["rows"]
    assert (tmp_path / "h.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_bad_lines_are_named_and_the_rest_kept(tmp_path: Path) -> None:
    alerts = hunt_samples(tmp_path)
    good = alerts.read_text().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([good[0], "{not json", '{"some": "object"}', *good[1:], '{"rule_id": "x", "sev'])[:-1] + "\n")
    code, _out, err = run("report", str(mixed), str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "r.html"))
    assert code == 2  # the missing file; the report is written from the rest
    assert f"{mixed}:2: not JSON" in err
    assert f"{mixed}:3: not an execguard alert" in err
    assert "missing.jsonl: No such file or directory" in err
    assert "Traceback" not in err
    assert len(blob(tmp_path / "r.html")["rows"]) == len(good)


def test_store_input_and_usage_errors(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    assert run("hunt", "--samples", "-o", "jsonl", "--out", str(tmp_path / "a.jsonl"), "--store", str(db), "-q")[0] == 0
    n = len((tmp_path / "a.jsonl").read_text().splitlines())
    assert run("report", "--store", str(db), "--out", str(tmp_path / "s.html"), "-q")[0] == 0
    assert len(blob(tmp_path / "s.html")["rows"]) == n
    code, _, err = run("report", "--out", str(tmp_path / "x.html"))
    assert code == 2 and "give at least one alert file" in err
    code, _, err = run("report", "--store", str(tmp_path / "nope.db"), "--out", str(tmp_path / "x.html"))
    assert code == 2 and "nope.db" in err and "Traceback" not in err
    (tmp_path / "bad.json").write_text('{"not": "findings"}')
    code, _, err = run("report", str(tmp_path / "a.jsonl"), "--audit", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.html"))
    assert code == 2 and "bad.json: not execguard audit findings" in err
    code, _, err = run("report", str(tmp_path / "a.jsonl"), "--out", str(tmp_path / "no-such-dir" / "x.html"))
    assert code == 2 and "cannot write" in err


def test_json_for_script_cannot_end_the_script() -> None:
    text = json_for_script({"a": "</script><!-- \u2028\u2029 & >"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == {"a": "</script><!-- \u2028\u2029 & >"}
