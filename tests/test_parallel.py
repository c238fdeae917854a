"""Workers give exactly a serial hunt's alerts, order, line numbers, warnings and counts."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.pipeline import parallel, units
from execguard.pipeline.prefilter import literals_for
from execguard.sim.simulate import write as simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader

UNIT = 24 << 10  # tiny units so a few hundred kB of input is cut in many places


def denied_exec(i: int, user: str = "mallory") -> dict[str, Any]:
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"deny-{i}",
        "stage": "ResponseComplete", "verb": "create",
        "requestURI": f"/api/v1/namespaces/prod/pods/web-{i}/exec?command=id&container=app",
        "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.9"],
        "objectRef": {"resource": "pods", "namespace": "prod", "name": f"web-{i}", "subresource": "exec"},
        "responseStatus": {"code": 403}, "stageTimestamp": f"2026-11-29T10:00:{i:02d}.000000Z",
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel")
    simulate(root / "sim", fmt="k8s-audit", events=1500, seed=3)
    lines = (root / "sim" / "k8s-audit.jsonl").read_bytes().splitlines(keepends=True)
    # bad lines and a burst of denied execs spread over the whole file, so some sit on unit cuts
    out = [b"\xef\xbb\xbf" + lines[0]]
    for i, line in enumerate(lines[1:], 1):
        out.append(line)
        if i % 97 == 0:
            # bad lines holding a prefilter literal, so that they are parsed and warned about
            out.append(b"not json /exec at all\n" if i % 2 else b'{"truncated": "/exec\n')
        if i % 41 == 0 and i < 41 * 30:
            out.append(json.dumps(denied_exec(i // 41)).encode() + b"\n")
    big = root / "in" / "big.log"
    big.parent.mkdir()
    big.write_bytes(b"".join(out).rstrip(b"\n"))  # no newline after the last line
    (root / "in" / "part.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[:300])))
    data = Path(__file__).parent / "data"
    shutil.copy(data / "docker" / "dockerd-debug.log", root / "in" / "dockerd-debug.log")
    shutil.copy(data / "falco" / "exec_pod.json", root / "in" / "exec_pod.json")
    return root / "in"


def run(
    paths: list[str], workers: bool, max_line: int = 1 << 20
) -> tuple[list[Any], list[tuple[str, int | None, str]], dict[str, Any]]:
    engine = Engine(load_rules([], builtin=True))
    warnings: list[tuple[str, int | None, str]] = []
    reader = Reader(literals=literals_for(engine.actions()), warn=lambda f, n, m: warnings.append((f, n, m)), max_line=max_line)
    if workers:
        planned = units.plan(reader, paths, unit=UNIT)
        assert planned is not None
        assert sum(1 for u in planned if u.start is not None) > 8, "the big file was not cut"
        hunt = parallel.ParallelHunt(reader, engine, planned, jobs=2)
        alerts = [alert_dict(a) for a in hunt.alerts()]
    else:
        alerts = [alert_dict(a) for a in engine.run(reader.read(paths))]
    return alerts, warnings, {**asdict(reader.stats), "by_format": dict(reader.stats.by_format)}


def test_same_as_serial(inputs: Path) -> None:
    paths = [str(inputs)]
    serial = run(paths, workers=False)
    par = run(paths, workers=True)
    assert par[0] == serial[0]
    assert par[1] == serial[1]
    # the most bytes one process held is smaller per worker; every count is the same
    assert {**par[2], "peak_buffer": 0} == {**serial[2], "peak_buffer": 0}
    alerts, warnings, stats = serial
    rules = {a["rule_id"] for a in alerts}
    assert "k8s-exec-denied-burst" in rules  # a correlation across many unit cuts
    assert any(w[0].endswith("big.log") and w[1] and w[1] > 1000 for w in warnings)
    assert stats["bad"] >= 15
    assert {"k8s-audit"} <= set(stats["by_format"])


def test_ranges_end_on_newlines(inputs: Path) -> None:
    path = inputs / "big.log"
    data = path.read_bytes()
    ranges = Reader().ranges(str(path), UNIT)
    assert ranges is not None
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start and data[end - 1 : end] == b"\n"


def test_what_is_never_cut(inputs: Path, tmp_path: Path) -> None:
    reader = Reader()
    assert reader.ranges(str(inputs / "part.jsonl.gz"), 1024) is None  # gzip
    assert reader.ranges(str(inputs / "dockerd-debug.log"), 1024) is None  # a text format with state
    pretty = tmp_path / "pretty.json"
    pretty.write_text("\n".join(json.dumps(denied_exec(i), indent=2) for i in range(50)))
    assert reader.ranges(str(pretty), 1024) is None  # pretty-printed documents
    assert reader.ranges(str(inputs / "exec_pod.json"), 256) is None  # one line: nothing to cut
    assert reader.ranges(str(inputs / "big.log"), 100 << 20) is None  # small
    assert units.plan(reader, ["-"]) is None  # stdin


def test_cli_jobs(inputs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(units, "UNIT", UNIT)
    monkeypatch.setattr(units, "MIN_TOTAL", 0)
    runner = CliRunner()
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}.jsonl"
        res = runner.invoke(app, ["hunt", "-o", "jsonl", "--out", str(out), "-j", jobs, str(inputs)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        outs.append((out.read_bytes(), res.stderr if hasattr(res, "stderr") else res.output))
    assert outs[0][0] == outs[1][0] and outs[0][0].count(b"\n") > 20


def test_over_long_lines(inputs: Path, tmp_path: Path) -> None:
    """Lines over max_line are skipped with a warning naming the same line in both modes."""
    lines = (inputs / "big.log").read_bytes().splitlines(keepends=True)
    for i in range(5, len(lines), 150):
        lines[i] = b'{"requestURI": "/exec' + b"x" * 3000 + b'"}\n'
    path = tmp_path / "long.log"
    path.write_bytes(b"".join(lines))
    serial = run([str(path)], workers=False, max_line=2000)
    par = run([str(path)], workers=True, max_line=2000)
    # over-long lines of a block are reported when the block is framed, before its parsed lines'
    # warnings: the order within a block depends on where blocks end, the set does not
    assert sorted(par[1], key=str) == sorted(serial[1], key=str)
    assert par[0] == serial[0]
    assert sum("longer than" in w[2] for w in serial[1]) >= 8


def test_a_later_stage_that_alerts_is_explained_by_the_parent(tmp_path: Path) -> None:
    """A worker leaves the reasons of a request's later audit stages to the parent (Engine.coded_hits), whose stage
    folding suppresses most of them; one that does alert (here: another container, another key) gets the reason
    a serial hunt gives it."""
    lines = []
    for i in range(400):
        first = denied_exec(i)
        first["stage"] = "ResponseStarted"
        later = denied_exec(i)
        if i % 3 == 0:
            later["requestURI"] = later["requestURI"].replace("container=app", "container=sidecar")
        lines += [json.dumps(first), json.dumps(later)]
    path = tmp_path / "stages.log"
    path.write_text("\n".join(lines) + "\n")
    serial = run([str(path)], workers=False)
    par = run([str(path)], workers=True)
    assert par[0] == serial[0]
    later = [a for a in serial[0] if a["target"]["container"] == "sidecar"]
    assert len(later) == 134 and all(a["reasons"] and "mallory" in a["reasons"][0] for a in later)
