"""With -j workers the join holds what it reads until no node telemetry can come. Dense ranges are scanned for
the literals every node record holds first, so that a log without any lets the join pass alerts on at once
instead of spilling them all until the last range is read (pipeline/parallel.py, ``_clean``)."""

from __future__ import annotations

import json
import os
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.pipeline import parallel, units
from execguard.sim import simulate

runner = CliRunner()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate.write(out, "all", None, 400, 1)
    return out


def hunt(*args: str) -> list[dict[str, Any]]:
    res = runner.invoke(app, ["hunt", "-q", "-o", "jsonl", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def small_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(units, "UNIT", 16 << 10)
    monkeypatch.setattr(units, "MIN_UNIT", 16 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 0)
    monkeypatch.setattr(units.plan, "__defaults__", (16 << 10,))  # the default unit is bound at definition


def test_a_range_is_clean_only_without_node_literals(sim: Path) -> None:
    audit = (sim / "k8s-audit.jsonl").read_bytes()
    tetragon = (sim / "tetragon.jsonl").read_bytes().splitlines(keepends=True)
    path = sim / "mixed.log"
    path.write_bytes(audit + tetragon[0] + audit)
    size, cut = len(audit), len(audit) + len(tetragon[0])
    assert parallel._clean(units.Unit(str(path), 0, size))
    assert not parallel._clean(units.Unit(str(path), 0, cut))
    assert not parallel._clean(units.Unit(str(path), size, cut))
    assert parallel._clean(units.Unit(str(path), cut, cut + size))
    assert not parallel._clean(units.Unit(str(path)))  # a whole file may be any format: never declared clean
    assert not parallel._clean(units.Unit(str(sim / "gone.log"), 0, 10))


def test_node_telemetry_in_a_late_range_is_still_joined(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tetragon records inside one dense file, after many audit-only ranges: -j gives the -j 1 alerts."""
    audit = (sim / "k8s-audit.jsonl").read_bytes()
    path = sim / "late.log"
    path.write_bytes(audit + (sim / "tetragon.jsonl").read_bytes())
    serial = hunt("-j", "1", str(path))
    assert any(a.get("covers") for a in serial)  # processes joined to the records that asked for them
    small_units(monkeypatch)
    assert hunt("-j", "2", str(path)) == serial


def test_the_join_knows_at_once_that_no_node_telemetry_comes(sim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers are held at their first range until the parent has looked: only the scan can have told it."""
    path = str(sim / "k8s-audit.jsonl")
    serial = hunt("-j", "1", path)
    small_units(monkeypatch)
    go = tmp_path / "go"
    work = parallel._work

    def held(index: int, unit: units.Unit) -> Any:
        if os.getpid() != parent:
            while not go.exists():
                time.sleep(0.01)
        return work(index, unit)

    parent = os.getpid()
    monkeypatch.setattr(parallel, "_work", held)
    released: list[bool] = []
    results = parallel.ParallelHunt._results

    def spied(self: parallel.ParallelHunt) -> Any:
        calls.append(len(self.units))
        planned = results(self)
        first = next(planned)
        scanned = len(self.units) - 1  # every range but the parent's first: one dense file
        try:
            deadline = time.monotonic() + 60  # a bound, not a timing: the scan takes milliseconds
            while len(self._clean) < scanned and time.monotonic() < deadline:
                if wait(list(self._live), 1):
                    self._receive(block=False)
            self._learn_node_free(0)  # what the replay does once the first range is through
            released.append(self.node_free)
            assert len(self._done) == 0  # no worker has finished a range yet: only the scan can have told it
        finally:
            go.touch()  # the workers may read
        yield first
        yield from planned

    monkeypatch.setattr(parallel.ParallelHunt, "_results", spied)
    par = hunt("-j", "2", path)
    assert par == serial and len(serial) > 20
    assert released == [True]
    assert calls  # the hunt did use workers


calls: list[int] = []


def test_one_process_asks_the_bytes_before_the_join_spills(sim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-j 1: when what the join holds would first go to disk, the inputs are scanned once; without node
    telemetry nothing more is held, with it the join holds, spills and joins as before. Same alerts either way."""
    from execguard.pipeline import join, nodescan

    audit, tetragon = str(sim / "k8s-audit.jsonl"), str(sim / "tetragon.jsonl")
    before = {paths: hunt("-j", "1", *paths) for paths in ((audit,), (audit, tetragon))}
    asked: list[bool] = []
    spilled: list[int] = []
    clean, write = nodescan.clean_files, join.TimeSpill.add

    def scan(paths: Any) -> bool:
        asked.append(clean(paths))
        return asked[-1]

    def add(self: join.TimeSpill, *args: Any) -> None:
        write(self, *args)
        spilled.append(len(self.runs))

    monkeypatch.setattr(nodescan, "clean_files", scan)
    monkeypatch.setattr(join.TimeSpill, "add", add)
    monkeypatch.setattr(join.TimeSpill.__init__, "__defaults__", (50,))  # a run of 50 held events spills
    assert hunt("-j", "1", audit) == before[(audit,)]
    assert asked == [True] and max(spilled) == 0
    asked.clear()
    spilled.clear()
    joined = hunt("-j", "1", audit, tetragon)
    assert joined == before[(audit, tetragon)] and any(a.get("covers") for a in joined)
    assert asked == [False] and max(spilled) > 1


def test_scan_of_whole_files(sim: Path, tmp_path: Path) -> None:
    from execguard.pipeline.nodescan import clean_files

    audit = sim / "k8s-audit.jsonl"
    assert clean_files([str(audit)]) and clean_files([str(sim / "docker-events.jsonl")])
    assert not clean_files([str(audit), str(sim / "tetragon.jsonl")])
    assert not clean_files([str(sim)])  # a directory: every file under it, Tetragon's among them
    (tmp_path / "gz.log").write_bytes(b"\x1f\x8b" + audit.read_bytes()[:100])
    assert not clean_files([str(tmp_path / "gz.log")]) and not clean_files(["-"])
    auditd = tmp_path / "audit.log"
    auditd.write_text('type=EXECVE msg=audit(1700000000.000:1): argc=1 a0="id"\n')
    assert not clean_files([str(auditd)])
