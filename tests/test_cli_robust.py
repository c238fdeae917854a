"""The CLI at its edges: every --help, one-line errors with exit 2, unwritable outputs, Ctrl-C, closed pipes, markup in data."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from execguard.cli import app

EXE = Path(sys.executable).parent / "execguard"
ROOT = get_command(app)


def runner() -> CliRunner:
    try:  # click 8.1 (typer < 0.2x) mixes stderr into the output unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def exec_event(i: int) -> dict[str, Any]:
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"a-{i}", "stage": "ResponseStarted", "verb": "create",
        "requestURI": f"/api/v1/namespaces/prod/pods/web-{i}/exec?command=sh&command=-c&command=id&container=app&stdin=true&tty=true",
        "user": {"username": "alice"}, "sourceIPs": ["10.1.2.3"], "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "prod", "name": f"web-{i}"},
        "responseStatus": {"code": 101}, "stageTimestamp": "2024-05-01T10:00:00.000000Z",
    }  # fmt: skip


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "audit.jsonl"
    p.write_text("".join(json.dumps(exec_event(i)) + "\n" for i in range(5)))
    return p


def run(*args: str, input: bytes | None = None) -> Any:
    return runner().invoke(app, list(args), input=input)


def one_error(stderr: str) -> str:
    """The single stderr line of a failed command (no traceback, no usage block)."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def _commands(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    for name, sub in getattr(cmd, "commands", {}).items():
        out += _commands(sub, [*path, name])
    return out


@pytest.mark.parametrize("path,cmd", _commands(ROOT, []), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_every_help_works(path: list[str], cmd: Any) -> None:
    res = run(*path, "--help")
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.stdout and "Traceback" not in res.output
    for param in cmd.params:
        for opt in param.opts:
            if opt.startswith("-"):
                assert opt in res.stdout, (path, opt)


def test_help_brackets_are_literal() -> None:
    assert "ADDR:PORT[/SERVICE]" in run("audit", "--help").stdout


def test_usage_errors_are_one_line() -> None:
    for args in (["hunt", "--bogus"], ["rules", "-o", "xml"], ["hunt", "-j", "-1", "x"], ["nosuch"], ["score"]):
        res = run(*args)
        assert res.exit_code == 2, args
        line = one_error(res.stderr)
        assert "--help" in line


# ---- output paths -------------------------------------------------------------------------------------------

BAD_OUTS = {"missing-dir": "nodir/out", "directory": ".", "under-a-file": "f/out"}


@pytest.mark.parametrize("kind", BAD_OUTS)
@pytest.mark.parametrize("cmd", ["hunt", "hunt-jsonl", "audit", "score", "emulate"])
def test_unwritable_output_is_refused_before_work(tmp_path: Path, log: Path, kind: str, cmd: str) -> None:
    (tmp_path / "f").write_text("x")
    out = str(tmp_path / BAD_OUTS[kind])
    args = {
        "hunt": ["hunt", "--out", out, str(log)],
        "audit": ["audit", "--from", str(tmp_path), "--out", out],
        "score": ["score", str(log), "--labels", str(log), "--markdown", out],
        "emulate": ["emulate", "docker", "--labels", out, "--host", "unix:///nonexistent.sock"],
        "hunt-jsonl": ["hunt", "-o", "jsonl", "--out", out, str(log)],
    }[cmd]
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert one_error(res.stderr).startswith("error: cannot write ")
    assert (tmp_path / "f").read_text() == "x"


@pytest.mark.parametrize("args", [["hunt", "-o", "jsonl"], ["hunt"], ["audit", "-o", "json", "--from"], ["audit", "--from"]])
def test_full_disk_is_one_line_exit_2(tmp_path: Path, log: Path, args: list[str]) -> None:
    src = str(log) if args[0] == "hunt" else str(tmp_path)
    p = subprocess.run([str(EXE), *args, src, "--out", "/dev/full"], capture_output=True, check=False)
    assert p.returncode == 2, p.stderr
    errs = [x for x in p.stderr.decode().splitlines() if x.startswith("error")]
    assert errs == ["error: /dev/full: No space left on device"], p.stderr
    assert b"Traceback" not in p.stderr


def test_score_markdown_on_a_full_disk(tmp_path: Path) -> None:
    labels, alerts = tmp_path / "labels.jsonl", tmp_path / "alerts.jsonl"
    labels.write_text(json.dumps({"file": "a.jsonl", "line": 1, "malicious": True, "scenario": "s", "step": "x"}) + "\n")
    alerts.write_text("")
    res = run("score", str(alerts), "--labels", str(labels), "--markdown", "/dev/full")
    assert res.exit_code == 2
    assert one_error(res.stderr) == "error: /dev/full: No space left on device"
    assert "# execguard scorecard" in res.stdout


def _limit_file_size() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, as a filling disk fails with ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_hunt_keeps_alerts_written_before_the_disk_filled(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    p = subprocess.run([str(EXE), "hunt", "--samples", "-o", "jsonl", "--out", str(out), "-j", "1"], capture_output=True,
                       check=False, preexec_fn=_limit_file_size)  # fmt: skip
    assert p.returncode == 2, p.stderr
    errs = [x for x in p.stderr.decode().splitlines() if x.startswith("error")]
    assert len(errs) == 1 and str(out) in errs[0], p.stderr
    assert b"Traceback" not in p.stderr
    written = out.read_bytes()
    assert len(written) == 8192
    complete = written.split(b"\n")[:-1]
    assert len(complete) >= 3 and all(json.loads(x)["severity"] for x in complete)


# ---- Ctrl-C and closed pipes --------------------------------------------------------------------------------


def _wait_until(ready: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll for a state instead of sleeping a fixed time (a loaded machine is slow); a bound, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)


def _blocked_opening_fifo(pid: int) -> bool:
    """The process sleeps in open(2) of a FIFO that has no writer (the kernel's wait_for_partner)."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner"
    except OSError:
        return False


def test_ctrl_c_exits_130_after_writing_what_was_found(tmp_path: Path, log: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # the second input: opening it waits for a writer that never comes, so the hunt is still running
    proc = subprocess.Popen([str(EXE), "hunt", "-o", "jsonl", "--out", str(out), str(log), str(fifo)], stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    _wait_until(lambda: _blocked_opening_fifo(proc.pid))  # the first file is hunted; the hunt waits on the fifo
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert b"Traceback" not in stderr and b"interrupted: alerts so far are kept" in stderr
    alerts = [json.loads(x) for x in out.read_text().splitlines()]
    assert {a["target"]["pod"] for a in alerts} == {f"web-{i}" for i in range(5)}


CLOSED_PIPE = [
    ["rules"],
    ["rules", "-o", "json"],
    ["rules", "-o", "yaml"],
    ["hunt", "--samples", "-o", "jsonl"],
    ["hunt", "--samples"],
    ["audit", "--from", "TMP", "-o", "json"],
    ["audit", "--from", "TMP"],
    ["score", "ALERTS", "--labels", "LABELS"],
    ["--help"],
    ["--version"],
]


@pytest.mark.parametrize("args", CLOSED_PIPE, ids=" ".join)
def test_closed_pipe_is_quiet(tmp_path: Path, log: Path, args: list[str]) -> None:
    labels, alerts = tmp_path / "labels.jsonl", tmp_path / "alerts.jsonl"
    labels.write_text(json.dumps({"file": "audit.jsonl", "line": 1, "malicious": True, "scenario": "s", "step": "x"}) + "\n")
    alerts.write_text("")
    args = [{"TMP": str(tmp_path), "LABELS": str(labels), "ALERTS": str(alerts)}.get(a, a) for a in args]
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte: every write gets EPIPE
    try:
        p = subprocess.run([str(EXE), *args], stdout=w, stderr=subprocess.PIPE, check=False)
    finally:
        os.close(w)
    assert b"Traceback" not in p.stderr and b"Exception" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr


# ---- data is never markup -----------------------------------------------------------------------------------


def test_markup_in_paths_is_printed_literally(tmp_path: Path, log: Path) -> None:
    res = run("hunt", "[bold red]/y.jsonl")
    assert res.exit_code == 2  # a missing path is named, the others hunted, and the exit status is 2
    assert res.stderr.splitlines()[0] == "warning: [bold red]/y.jsonl: no such file or directory"
    assert "Traceback" not in res.stderr
    d = tmp_path / "a["
    d.mkdir()
    (d / "log.jsonl").write_text(log.read_text() + "not json [/x]\n")
    res = run("hunt", "--no-prefilter", "-o", "jsonl", str(d))
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 5
    assert f"warning: {d}/log.jsonl:6: " in res.stderr


def test_markup_in_audit_data_is_literal(tmp_path: Path) -> None:
    (tmp_path / "crb.yaml").write_text(
        "kind: ClusterRoleBinding\nmetadata: {name: '[bold]b'}\nroleRef: {kind: ClusterRole, name: cluster-admin}\n"
        "subjects: [{kind: User, name: '[red]mallory[/red]'}]\n"
        "---\nkind: ClusterRole\nmetadata: {name: cluster-admin}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n"
    )
    res = run("audit", "--from", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "[red]mallory[/red]" in res.stdout


# ---- audit --from with bad shapes and bad YAML --------------------------------------------------------------

GOOD_BINDING = (
    "kind: ClusterRoleBinding\nmetadata: {name: exec-b}\nroleRef: {kind: ClusterRole, name: exec}\nsubjects: [{kind: User, name: eve}]\n"
    "---\nkind: ClusterRole\nmetadata: {name: exec}\nrules: [{apiGroups: [''], resources: [pods/exec], verbs: [create, get]}]\n"
)
BAD_SHAPES = {
    "rules: 5": ("kind: ClusterRole\nmetadata: {name: r}\nrules: 5\n", "ClusterRole r: rules is a number, expected a list"),
    "aggregationRule: 5": ("kind: ClusterRole\nmetadata: {name: r}\naggregationRule: 5\n", "aggregationRule is a number"),
    "selectors: x": ("kind: ClusterRole\nmetadata: {name: r}\naggregationRule: {clusterRoleSelectors: x}\n",
                     "aggregationRule.clusterRoleSelectors is a string, expected a list"),
    "matchLabels: 5": ("kind: ClusterRole\nmetadata: {name: r}\naggregationRule: {clusterRoleSelectors: [{matchLabels: 5}]}\n",
                       "aggregationRule.clusterRoleSelectors[0].matchLabels is a number"),
    "metadata: 7": ("kind: Pod\nmetadata: 7\nspec: {containers: []}\n", "Pod: metadata is a number, expected a mapping"),
    "labels: 7": ("kind: ClusterRole\nmetadata: {name: r, labels: 7}\n", "metadata.labels is a number"),
    "containers: 5": ("kind: Pod\nmetadata: {name: p}\nspec: {containers: 5}\n", "Pod p: spec.containers is a number"),
    "container: x": ("kind: Pod\nmetadata: {name: p}\nspec: {containers: [x]}\n", "spec.containers[0] is a string"),
    "spec: 5": ("kind: Deployment\nmetadata: {name: d}\nspec: 5\n", "Deployment d: spec is a number"),
    "template: []": ("kind: Deployment\nmetadata: {name: d}\nspec: {template: []}\n", "spec.template is a list"),
    "jobTemplate: 5": ("kind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: 5}\n", "spec.jobTemplate is a number"),
    "roleRef: 5": ("kind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: 5\nsubjects: []\n", "roleRef is a number"),
    "subjects: 5": ("kind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: Role, name: r}\nsubjects: 5\n", "subjects is a number"),
    "subject ns: [5]": ("kind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {kind: ClusterRole, name: exec}\n"
                        "subjects: [{kind: ServiceAccount, name: s, namespace: [5]}]\n", None),
    "ownerReferences: 5": ("kind: Job\nmetadata: {name: j, ownerReferences: 5}\nspec: {}\n", "metadata.ownerReferences is a number"),
    "volumes: 5": ("kind: Pod\nmetadata: {name: p}\nspec: {volumes: 5}\n", "spec.volumes is a number"),
    "securityContext: 5": ("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, securityContext: 5}]}\n",
                           "spec.containers[0].securityContext is a number"),
    "probe exec: 5": ("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, livenessProbe: {exec: 5}}]}\n",
                      "spec.containers[0].livenessProbe.exec is a number"),
    "lifecycle: 5": ("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, lifecycle: 5}]}\n", "lifecycle is a number"),
    "verbs: 5": ("kind: Role\nmetadata: {name: r}\nrules: [{verbs: 5}]\n", "rules[0].verbs is a number"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_SHAPES)
def test_badly_shaped_object_is_a_warning_and_the_audit_goes_on(tmp_path: Path, case: str) -> None:
    text, expected = BAD_SHAPES[case]
    (tmp_path / "good.yaml").write_text(GOOD_BINDING)
    (tmp_path / "bad.yaml").write_text("kind: ServiceAccount\nmetadata: {name: sa}\n---\n" + text)
    res = run("audit", "--from", str(tmp_path), "-o", "json")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    ids = {(f["id"], f["target"]) for f in json.loads(res.stdout)}
    assert any("eve" in target for _, target in ids), ids  # the good binding is still audited
    if expected:
        warnings = [x for x in res.stderr.splitlines() if x.startswith("warning")]
        assert any(f"{tmp_path / 'bad.yaml'}:4: " in w and expected in w for w in warnings), res.stderr


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD_BINDING)
    (tmp_path / "broken.yaml").write_text("kind: Role\nmetadata:\n  name: x\nrules: [\n  {verbs: [get}\n")
    res = run("audit", "--from", str(tmp_path), "-o", "json")
    assert res.exit_code == 0
    [warning] = [x for x in res.stderr.splitlines() if "broken.yaml" in x]
    assert warning.startswith(f"warning: {tmp_path / 'broken.yaml'}:5: not valid YAML: "), warning
    assert any("eve" in f["target"] for f in json.loads(res.stdout))


# ---- item 10: -j, rules -o, --probe, plurals ----------------------------------------------------------------


def test_jobs_capped_at_usable_cpus(log: Path) -> None:
    usable = len(os.sched_getaffinity(0))
    res = run("hunt", "-o", "jsonl", "-j", str(usable + 5), str(log))
    assert res.exit_code == 0
    cpus = "1 usable CPU" if usable == 1 else f"{usable} usable CPUs"
    assert f"note: -j {usable + 5} capped at {cpus}" in res.stderr
    assert "capped" not in run("hunt", "-o", "jsonl", "-j", str(usable), str(log)).stderr
    assert "capped" not in run("hunt", "-q", "-j", "999", str(log)).stderr


def test_rules_output_yaml_matches_json() -> None:
    as_json = json.loads(run("rules", "-o", "json").stdout)
    as_yaml = yaml.safe_load(run("rules", "-o", "yaml").stdout)
    assert as_yaml == as_json and len(as_json) > 10


@pytest.mark.parametrize(
    "spec", ["1.2.3.4:99999", "1.2.3.4:0", "host:port", "1.2.3.4:80/ftp", "a b", "", "[::1", "[::1]x", "localhost/docker", "x" * 300]
)
def test_bad_probe_is_refused(spec: str) -> None:
    res = run("audit", "--probe", spec)
    assert res.exit_code == 2
    assert one_error(res.stderr).startswith("error: --probe ")


def test_probe_says_what_it_probed() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run("audit", "--probe", f"127.0.0.1:{port}/kubelet", "-o", "json")
    assert res.exit_code == 0, res.output
    assert f"note: probing 127.0.0.1:{port} (kubelet)" in res.stderr


def test_counts_have_the_right_plural(log: Path, tmp_path: Path) -> None:
    res = run("hunt", "-o", "jsonl", str(log))
    assert "execguard " in res.stderr and ": 1 file, " in res.stderr
    (tmp_path / "second.jsonl").write_text(log.read_text())
    assert ": 2 files, " in run("hunt", "-o", "jsonl", str(tmp_path)).stderr


def test_fifo_output_without_reader_is_refused_not_waited_on(tmp_path: Path, log: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    res = run("hunt", "-o", "jsonl", "--out", str(fifo), str(log))
    assert res.exit_code == 2
    assert one_error(res.stderr) == f"error: cannot write {fifo}: a FIFO with no reader"


def test_ctrl_c_in_any_command_exits_130(tmp_path: Path) -> None:
    proc = subprocess.Popen([str(EXE), "simulate", "--out", str(tmp_path / "sim"), "--events", "100000000"], stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    _wait_until(lambda: (tmp_path / "sim" / "labels.jsonl").exists())  # simulate is writing
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert stderr == b"interrupted\n"
    assert (tmp_path / "sim" / "labels.jsonl").exists()
