"""The hunt command end to end: exit codes, outputs, --fail-on, --min-severity, --out, stdin, secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from execguard.cli import app, sample_dir
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.sinks.table import TableSink
from execguard.sources.reader import Reader

EXE = Path(sys.executable).parent / "execguard"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SECRETS = {
    "mysql": ["mysql", "-uroot", "-pMysqlS3cret1"],
    "flag": ["app", "--password", "FlagS3cret22"],
    "env": ["env", "PASSWORD=EnvS3cret333", "DB_PASSWORD=EnvS3cret444", "app"],
    "bearer": ["curl", "-H", "Authorization: Bearer BearerS3cret55", "http://x"],
    "header": ["curl", "-H", "Authorization: HdrS3cret666", "http://x"],
    "jwt": ["kubectl", f"--token={JWT}", "get", "pods"],
    "aws": ["sh", "-c", "echo AKIAIOSFODNN7EXAMPLE"],
    "github": ["git", "clone", "https://ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8@github.com/x/y"],
    "url": ["curl", "https://bob:UrlS3cret777@example.com/"],
}
LEAKS = ["MysqlS3cret1", "FlagS3cret22", "EnvS3cret333", "EnvS3cret444", "BearerS3cret55", "HdrS3cret666", JWT, "AKIAIOSFODNN7EXAMPLE",
         "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "UrlS3cret777"]  # fmt: skip


def exec_event(i: int, argv: list[str], user: str = "alice", code: int = 101) -> dict[str, Any]:
    from urllib.parse import quote_plus

    q = "&".join(f"command={quote_plus(a)}" for a in argv)
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"audit-{i}",
        "stage": "ResponseStarted",
        "verb": "create",
        "requestURI": f"/api/v1/namespaces/prod/pods/web-{i}/exec?{q}&container=app&stdin=true&tty=true",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.1.2.3"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "prod", "name": f"web-{i}"},
        "responseStatus": {"code": code},
        "stageTimestamp": "2024-05-01T10:00:00.000000Z",
    }


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "audit.log"
    p.write_text("\n".join(json.dumps(exec_event(i, argv)) for i, argv in enumerate(SECRETS.values())) + "\n")
    return p


def hunt(runner: CliRunner, *args: str, input: bytes | None = None) -> Any:
    return runner.invoke(app, ["hunt", *args], input=input, catch_exceptions=False)


def test_jsonl_fields(runner: CliRunner, log: Path) -> None:
    res = hunt(runner, "-o", "jsonl", str(log))
    assert res.exit_code == 0, res.stderr
    alerts = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(alerts) == len(SECRETS)
    a = alerts[0]
    for key in ("rule_id", "title", "severity", "technique", "time", "action", "command", "outcome", "event_id", "reasons"):
        assert key in a
    assert a["severity"] in ("info", "low", "medium", "high", "critical")
    assert a["technique"] == "T1609"
    assert a["source"] == {"format": "k8s-audit", "file": str(log), "line": 1}
    assert {"user", "groups", "source_ip", "user_agent"} <= set(a["actor"])
    assert {"namespace", "pod", "container", "container_id", "image"} <= set(a["target"])
    assert a["target"]["pod"] == "web-0" and a["actor"]["user"] == "alice"
    assert a["command"] == ["mysql", "-uroot", "-p[REDACTED]"]
    assert [x["source"]["line"] for x in alerts] == list(range(1, len(SECRETS) + 1))
    assert "alerts:" in res.stderr and "records parsed" in res.stderr


@pytest.mark.parametrize("fmt", ["table", "jsonl", "ocsf"])
def test_no_secret_in_any_output(runner: CliRunner, log: Path, fmt: str, tmp_path: Path) -> None:
    res = hunt(runner, "-o", fmt, str(log))
    assert res.exit_code == 0
    assert "[REDACTED]" in res.stdout
    out_file = tmp_path / f"out.{fmt}"
    assert hunt(runner, "-o", fmt, "--out", str(out_file), str(log)).exit_code == 0
    written = out_file.read_text()
    for secret in LEAKS:
        assert secret not in res.stdout, secret
        assert secret not in res.stderr, secret
        assert secret not in written, secret


def test_ocsf_detection_finding(runner: CliRunner, log: Path) -> None:
    res = hunt(runner, "-o", "ocsf", str(log))
    findings = [json.loads(x) for x in res.stdout.splitlines()]
    assert findings
    for f in findings:
        assert f["class_uid"] == 2004 and f["category_uid"] == 2 and f["type_uid"] == 200401 and f["activity_id"] == 1
        assert f["severity_id"] in (1, 2, 3, 4, 5) and isinstance(f["time"], int)
        assert f["metadata"]["version"] and f["metadata"]["product"]["name"] == "execguard"
        assert f["finding_info"]["uid"] and f["finding_info"]["title"]
        assert f["attacks"][0]["technique"]["uid"] == "T1609"
        assert f["status_id"] == 1 and f["message"]


def test_fail_on_and_min_severity(runner: CliRunner, log: Path) -> None:
    sev = {json.loads(x)["severity"] for x in hunt(runner, "-o", "jsonl", str(log)).stdout.splitlines()}
    order = ["info", "low", "medium", "high", "critical"]
    worst = max(sev, key=order.index)
    assert hunt(runner, "-q", "-o", "jsonl", "--fail-on", worst, str(log)).exit_code == 1
    above = order[order.index(worst) + 1 :] if worst != "critical" else []
    for level in above:
        assert hunt(runner, "-q", "-o", "jsonl", "--fail-on", level, str(log)).exit_code == 0
        res = hunt(runner, "-q", "-o", "jsonl", "--min-severity", level, str(log))
        assert res.stdout == ""
    assert hunt(runner, "--fail-on", "bogus", str(log)).exit_code == 2


def test_usage_and_missing_path(runner: CliRunner, log: Path) -> None:
    assert hunt(runner).exit_code == 2
    # a missing path among others: the others are hunted, the missing one named, exit 2 at the end
    for args in ([str(log), "/no/such/file"], ["/no/such/file", str(log)]):
        res = hunt(runner, "-o", "jsonl", *args)
        assert res.exit_code == 2
        assert len(res.stdout.splitlines()) == len(SECRETS)
        assert "/no/such/file: no such file or directory" in res.stderr and "1 input unreadable" in res.stderr


def test_unopenable_input_among_others(runner: CliRunner, log: Path, tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    (d / "dangling.log").symlink_to(tmp_path / "gone")
    res = hunt(runner, "-o", "jsonl", str(d), str(log))
    assert res.exit_code == 2  # unreadable input: exit 2 at the end
    assert len(res.stdout.splitlines()) == len(SECRETS)  # the rest was hunted
    assert "dangling.log" in res.stderr and "1 input unreadable" in res.stderr


def test_stdin(runner: CliRunner, log: Path) -> None:
    res = hunt(runner, "-o", "jsonl", "-", input=log.read_bytes())
    assert res.exit_code == 0
    assert json.loads(res.stdout.splitlines()[0])["source"]["file"] == "<stdin>"


def test_subprocess_stdin_gzip_and_exit_codes(log: Path, tmp_path: Path) -> None:
    import gzip

    data = gzip.compress(log.read_bytes()) + b""
    p = subprocess.run([str(EXE), "hunt", "-o", "jsonl", "--fail-on", "low", "-"], input=data, capture_output=True, check=False)
    assert p.returncode == 1, p.stderr
    assert len(p.stdout.splitlines()) == len(SECRETS)
    assert b"Traceback" not in p.stderr
    # lines holding a prefilter literal are parsed and reported; --no-prefilter validates every line
    # (a JSON line first: input with no JSON near its start is named as of unknown format, not read)
    first = b'{"kind": "Event"}\n'
    p = subprocess.run([str(EXE), "hunt", "-"], input=first + b"garbage /exec\n\x00\xff/exec\nplain\n", capture_output=True, check=False)
    assert p.returncode == 0
    assert b"<stdin>:2" in p.stderr and b"<stdin>:3" in p.stderr and b"2 bad records skipped" in p.stderr
    assert b"No alerts." in p.stdout
    data = first + b"garbage\n\x00\xff\nplain"
    p = subprocess.run([str(EXE), "hunt", "--no-prefilter", "-"], input=data, capture_output=True, check=False)
    assert p.returncode == 0
    assert b"<stdin>:4" in p.stderr and b"3 bad records skipped" in p.stderr


def test_subprocess_table_is_readable_at_80_columns(log: Path) -> None:
    p = subprocess.run([str(EXE), "hunt", str(log)], capture_output=True, check=False, env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"})
    out = p.stdout.decode()
    assert p.returncode == 0
    assert "mysql -uroot -p[REDACTED]" in out  # the full argv on one line
    assert max(len(x) for x in out.splitlines()) <= 80
    assert "\x1b[" not in out  # no colours into a pipe


def alerts_of(path: Path) -> list[Any]:
    return list(Engine(load_rules()).run(Reader().read([str(path)])))


@pytest.mark.parametrize("width", [60, 80, 120, 159, 160, 200])
def test_table_render_widths(log: Path, width: int) -> None:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    sink = TableSink(console)
    alerts = alerts_of(log)
    for a in alerts:
        sink.write(a)
    sink.close()
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(x) for x in lines) <= width
    if width < 160:
        # one block per alert: its command and its source on a line of their own
        assert sum(1 for x in lines if x.startswith("source ")) == len(alerts)
        flat = " ".join(text.split())  # lines wrap at spaces
        assert "what exec [create/101 allowed]: env PASSWORD=[REDACTED] DB_PASSWORD=[REDACTED] app where prod/web-2[app]" in flat
        assert f"{log}:1" in "".join(text.split())
    else:
        assert "┃ severity" in text and "┃ who" in text
        # no column squeezed to a few characters: every header word fits in its column
        assert "┃ source" in text and "┃ why" in text


def test_table_does_not_interpret_markup_or_escapes(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_text(json.dumps(exec_event(1, ["echo", "[/bold]", "[red]x", "\x1b]0;pwned\x07"])) + "\n")
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    sink = TableSink(console)
    for a in alerts_of(p):
        sink.write(a)
    sink.close()
    text = console.export_text()
    assert "[/bold] [red]x \\x1b]0;pwned\\x07" in text


def test_samples(runner: CliRunner) -> None:
    d = sample_dir()
    if not d.is_dir() or not [f for f in d.rglob("*") if f.is_file() and not f.name.endswith(".md")]:
        pytest.skip("no bundled samples yet")
    res = hunt(runner, "-o", "jsonl", "--samples")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.strip(), "the samples should raise alerts"
    assert "Traceback" not in res.stderr
