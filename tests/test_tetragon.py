"""The Tetragon source on real exports (tests/data/tetragon/, see tests/data/README.md) and through hunt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import Event
from execguard.sources.reader import Reader
from execguard.sources.tetragon import container_id, split_args

DATA = Path(__file__).parent / "data" / "tetragon"


def read(*paths: Path, literals: list[bytes] | None = None) -> tuple[list[Event], list[str]]:
    warnings: list[str] = []
    reader = Reader(literals=literals, warn=lambda f, n, m: warnings.append(f"{f}:{n}: {m}"))
    return list(reader.read([str(p) for p in paths])), warnings


def test_exec_lines_of_the_testdata_file() -> None:
    events, warnings = read(DATA / "events.json")
    assert not warnings
    assert [e.action for e in events] == ["process"] * 3
    e = events[0]
    assert e.source.format == "tetragon" and e.source.line == 1
    assert e.command == ["/usr/bin/netserver", "-D"]
    assert e.target.namespace == "default" and e.target.pod == "tiefighter" and e.target.container == "spaceship"
    assert e.target.container_id == "19a02291e106ce6227b684197be232ea57c4e1a5ab2604a12608c325d701c7f4"
    assert e.target.image == "docker.io/tgraf/netperf:latest" and e.target.node == "my-node"
    assert e.process is not None
    assert (e.process.pid, e.process.ppid, e.process.uid, e.process.cwd) == (68790, 68598, 0, "/")
    assert e.process.parent_exe == "/usr/bin/containerd-shim-runc-v2"
    assert e.process.parent_command[:3] == ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io"]
    assert e.process.in_init_tree is None  # this Tetragon did not write it
    assert e.event_id == "Z2tlLW1pY2hpLTIyMDM4LWRlZmF1bHQtcG9vbC00MzczMGZhYi1sOHpyOjEzNjY1ODIyNjI0ODU2OjY4Nzkw"
    # no `time` key in this file: the process start time stands in
    assert e.time == "2022-10-18T03:16:18.273546829Z"


def test_pretty_printed_exec_exit_and_kprobe() -> None:
    events, warnings = read(DATA / "process_exec.json", DATA / "process_exit.json", DATA / "process_kprobe.json")
    assert not warnings
    assert [(e.action, e.verb) for e in events] == [("process", "process_exec"), ("other", "process_exit"), ("other", "process_kprobe")]
    # exec and exit of one process share its Tetragon exec id
    assert events[0].event_id == events[1].event_id
    assert events[0].command == ["/usr/bin/curl", "www.google.com"]


def test_quoted_parent_arguments_and_runc_exec_parent() -> None:
    events, _ = read(DATA / "docs-events.jsonl")
    curl = events[0]
    assert curl.process is not None
    assert curl.process.parent_command == ["/bin/bash", "-c", 'curl https://ebpf.io/applications/#tetragon']
    bash, _ = read(DATA / "privileged-pod-bash.json")
    p = bash[0].process
    assert p is not None and p.exe == "/bin/bash" and p.parent_exe == "/usr/bin/runc"
    assert "exec" in p.parent_command and bash[0].command == ["/bin/bash"]
    assert bash[0].target.container_id == "85f791fd8dfa740a3b1c177e8f68e8fdb4803a7c8fa0e957a5ec38460ce047ef"


@pytest.mark.parametrize(
    ("joined", "argv"),
    [
        ("", []),
        ("-D", ["-D"]),
        ("--port 80 --host 0.0.0.0", ["--port", "80", "--host", "0.0.0.0"]),
        ('-c "curl x | sh"', ["-c", "curl x | sh"]),
        (' "a b" c', ["a b", "c"]),  # Tetragon's join starts with a space when argv[1] is quoted
        ('say "hi"', ["say", '"hi"']),  # quotes without a space inside were part of the argument
        ('-c "echo "x y""', ["-c", 'echo "x y"']),
        ('-c "unterminated x', ["-c", '"unterminated', "x"]),
    ],
)
def test_split_args(joined: str, argv: list[str]) -> None:
    assert split_args(joined) == argv


def test_container_id_scheme_is_dropped() -> None:
    assert container_id("containerd://abc") == "abc"
    assert container_id("docker://abc") == "abc"
    assert container_id("abc") == "abc"
    assert container_id(None) is None


def test_in_init_tree_and_maybe_exec_probe_locations(tmp_path: Path) -> None:
    rec = json.loads((DATA / "events.json").read_text().splitlines()[0])
    rec["process_exec"]["process"]["in_init_tree"] = False
    rec["process_exec"]["process"]["pod"]["container"]["maybe_exec_probe"] = True
    rec["time"] = "2026-12-01T10:00:00Z"
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    events, _ = read(f)
    assert events[0].process is not None and events[0].process.in_init_tree is False
    assert events[0].command_origin == "maybe_exec_probe"
    assert events[0].time == "2026-12-01T10:00:00Z"


def test_bad_record_names_file_and_line(tmp_path: Path) -> None:
    good = (DATA / "events.json").read_text().splitlines()[0]
    f = tmp_path / "t.jsonl"
    f.write_text(good + "\n" + '{"process_exec": {"process": "x"}, "node_name": "n"}\n' + good + "\n")
    events, warnings = read(f)
    assert len(events) == 2
    assert len(warnings) == 1 and f"{f}:2: tetragon:" in warnings[0]


def test_prefilter_keeps_exec_lines() -> None:
    from execguard.engine.match import Engine
    from execguard.pipeline import prefilter
    from execguard.pipeline.rules import load

    lits = prefilter.literals(Engine(load([], builtin=True)))
    events, _ = read(DATA / "events.json", DATA / "docs-events.jsonl", literals=lits)
    assert sum(e.action == "process" for e in events) == 7


def test_hunt_real_samples_alerts_on_nsenter() -> None:
    result = CliRunner().invoke(app, ["hunt", str(DATA), "-o", "jsonl", "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    nsenter = [a for a in alerts if a["source"]["file"].endswith("privileged-pod-nsenter.json")]
    assert len(nsenter) == 1
    a = nsenter[0]
    assert a["action"] == "process" and a["severity"] == "high"
    assert a["command"][:3] == ["/usr/bin/nsenter", "-t", "1"]
    assert a["process"]["parent_exe"] == "/bin/bash" and a["target"]["pod"] == "privileged-pod"
