"""Secrets never survive redaction; ordinary commands are left alone."""

from __future__ import annotations

import pytest

from execguard import redact
from execguard.redact import MASK

SECRET = "S3cr3tValue42"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

TEXTS = [
    f"curl -H 'Authorization: Bearer {SECRET}' https://api",
    f"curl -H Authorization:%20Bearer%20{SECRET}",
    f"Authorization: {SECRET}",
    f"wget --header=Authorization:{SECRET} x",
    f"kubectl --token={SECRET} get pods",
    f"kubectl --token {SECRET} get pods",
    f"mysql -uroot -p{SECRET} db",
    f"sh -c 'mysqldump -p{SECRET} --all-databases'",
    f"sshpass -p {SECRET} ssh root@h",
    f"PASSWORD={SECRET} ./run",
    f"DB_PASSWORD={SECRET} MYSQL_ROOT_PASSWORD={SECRET} ./run",
    f"export AWS_SECRET_ACCESS_KEY={SECRET}",
    f"git clone https://bob:{SECRET}@github.com/x/y",
    f'{{"password": "{SECRET}", "user": "bob"}}',
    f"app --db-password {SECRET}",
    f"/api/v1/namespaces/d/pods/p/exec?command=mysql&command=-p{SECRET}&container=c",
    f"/api/v1/namespaces/d/pods/p/exec?command=app&command=--password&command={SECRET}",
    f"/api/v1/namespaces/d/pods/p/exec?command=sh&command=-c&command=PASSWORD%3D{SECRET}+app",
    f"/api/v1/nodes/n/proxy/run/ns/p/c?cmd=mysql+-p{SECRET}",
    f"/api/v1/namespaces/d/pods/p/exec?command=curl&command=-H&command=Authorization%3A+Bearer+{SECRET}",
    f"https://h/x?token={SECRET}&a=1",
]
TOKENS = [JWT, "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "github_pat_11ABCDEFG0123456789_abcdefghij"]


@pytest.mark.parametrize("value", TEXTS)
def test_secret_masked(value: str) -> None:
    out = redact.text(value)
    assert SECRET not in out
    assert MASK in out
    assert redact.text(out) == out


@pytest.mark.parametrize("token", TOKENS)
def test_token_formats(token: str) -> None:
    out = redact.text(f"echo {token} | sh")
    assert token not in out and MASK in out


@pytest.mark.parametrize(
    "value",
    [
        "find / -perm -4000 -print",
        "mkdir -p /tmp/x",
        "ls -la --password-file=/etc/x",
        "cat /etc/passwd",
        "kubectl get secrets -n kube-system",
        "ps -ef",
    ],
)
def test_ordinary_commands_untouched(value: str) -> None:
    assert redact.text(value) == value


def test_argv() -> None:
    assert redact.argv(["mysql", "-uroot", f"-p{SECRET}"]) == ["mysql", "-uroot", f"-p{MASK}"]
    assert redact.argv(["app", "--password", SECRET, "--x"]) == ["app", "--password", MASK, "--x"]
    assert redact.argv(["sshpass", "-p", SECRET, "ssh"]) == ["sshpass", "-p", MASK, "ssh"]
    assert redact.argv(["find", "/", "-perm", "-4000"]) == ["find", "/", "-perm", "-4000"]
    assert redact.argv(["env", f"GITHUB_TOKEN={SECRET}"]) == ["env", f"GITHUB_TOKEN={MASK}"]
    assert redact.argv([]) == []
