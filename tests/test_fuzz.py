"""Property tests: no input makes the reader, a source, the redactor or the decoder blow up."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from execguard import redact
from execguard.decode import decoded_blobs
from execguard.engine.fields import flat_fields
from execguard.model import SourceRef
from execguard.sources import FORMATS, JSON_SOURCES
from execguard.sources import reader as reader_mod
from execguard.sources.base import NotProcess, SourceError
from execguard.sources.reader import Reader

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# bytes that look like our inputs often enough to get past the first character
FRAGMENTS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b'"',
    b"\n",
    b"\r\n",
    b"\\",
    b"\xef\xbb\xbf",
    b"\x1f\x8b",
    b"\x00",
    b"\xff",
    b'{"kind":"Event","auditID":"a","verb":"get","requestURI":"/api/v1/namespaces/n/pods/p/exec?command=sh"}',
    b'"objectRef":{"resource":"pods","subresource":"exec"}',
    b'"requestURI":',
    b'"items":[',
    b'"kind":"EventList"',
    b'"logEvents":[',
    b'"message":',
    b'"protoPayload":{',
    b'"properties":{"log":',
    b'"category":"kube-audit"',
    b'"Type":"container","Action":"exec_create: sh"',
    b'level=debug msg="Calling POST /v1.41/containers/x/exec"',
    b'form data: {"Cmd":["sh"]}',
    b'{"rule":"r","priority":"Notice","output_fields":{"proc.cmdline":"sh -c id","proc.pname":"runc","evt.type":"execve"}}',
    b'{"Operation":"Process","HostPID":1,"Resource":"/bin/sh -c id","ParentProcessName":"/usr/bin/runc","PID":1}',
    b'type=SYSCALL msg=audit(1795723200.101:7): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 auid=1000 uid=0 comm="sh"',
    b'type=EXECVE msg=audit(1795723200.101:7): argc=3 a0="sh" a1="-c" a2=6964',
    b"a2_len=4 a2[0]=69 a2[1]=64",
    b"type=EOE msg=audit(1795723200.101:7): ",
    b"node=n1 ",
    b"----",
    b"\x1dAUID=\"alice\"",
    b"/exec",
    b"/proxy",
    b"command",
    b"1e999",
    b"-0",
    b"null",
    b"true",
]
bytes_input = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=40).map(b"".join),
)


def run_reader(data: bytes, fmt: str, literals: list[bytes] | None) -> Reader:
    r = Reader(fmt=fmt, literals=literals, max_line=300)
    stdin = sys.stdin
    sys.stdin = type("S", (), {"buffer": io.BytesIO(data)})()  # type: ignore[assignment]
    try:
        for ev in r.read(["-"]):
            assert ev.source.line is None or ev.source.line >= 1
    finally:
        sys.stdin = stdin
    return r


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=bytes_input, prefilter=st.booleans(), gz=st.booleans(), small=st.booleans())
def test_reader_never_raises(monkeypatch: pytest.MonkeyPatch, fmt: str, data: bytes, prefilter: bool, gz: bool, small: bool) -> None:
    monkeypatch.setattr(reader_mod, "BLOCK", 16 if small else 16 << 20)
    monkeypatch.setattr(reader_mod, "HEAD", 16 if small else 64 << 10)
    if gz:
        data = gzip.compress(data)[: len(data) + 10]  # sometimes truncated
    r = run_reader(data, fmt, [b"/exec", b"/proxy", b"exec"] if prefilter else None)
    st_ = r.stats
    assert st_.lines <= data.count(b"\n") + 1 or gz


def test_reader_directory_of_garbage(tmp_path: Path) -> None:
    for i, frag in enumerate(FRAGMENTS):
        (tmp_path / f"{i}.log").write_bytes(frag * 3)
    (tmp_path / "z.gz").write_bytes(gzip.compress(b"".join(FRAGMENTS))[:-7])
    r = Reader()
    list(r.read([str(tmp_path)]))
    assert r.stats.files == len(FRAGMENTS) + 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
KEYS = [
    "kind",
    "auditID",
    "verb",
    "requestURI",
    "objectRef",
    "user",
    "responseStatus",
    "requestObject",
    "items",
    "stage",
    "annotations",
    "sourceIPs",
    "impersonatedUser",
    "message",
    "logEvents",
    "protoPayload",
    "resource",
    "properties",
    "category",
    "records",
    "log",
    "Type",
    "Action",
    "Actor",
    "status",
    "id",
    "from",
    "time",
    "timeNano",
    "logGroup",
    "methodName",
    "resourceName",
    "authenticationInfo",
    "requestMetadata",
    "request",
    "spec",
    "metadata",
    "subresource",
    "name",
    "namespace",
    "code",
    "Attributes",
    "@message",
    "timestamp",
    "containers",
    "command",
    "args",
    # process telemetry: Falco alerts, KubeArmor records
    "output_fields",
    "rule",
    "priority",
    "output",
    "source",
    "proc.cmdline",
    "proc.pname",
    "proc.vpid",
    "evt.type",
    "evt.time",
    "container.id",
    "Operation",
    "Resource",
    "ProcessName",
    "ParentProcessName",
    "HostPID",
    "PID",
    "Timestamp",
]
VALUES = st.one_of(
    json_values,
    st.sampled_from(
        [
            "Event",
            "EventList",
            "pods",
            "exec",
            "nodes",
            "proxy",
            "create",
            "get",
            "patch",
            "kube-audit",
            "container",
            "exec_create: sh -c id",
            "/api/v1/namespaces/n/pods/p/exec?command=sh&tty=1",
            "io.k8s.core.v1.pods.exec.create",
            "core/v1/namespaces/n/pods/p/exec",
            '{"kind":"Event","auditID":"x"}',
            "%zz",
            "http://[::1",
            "?command=%ff",
            "Process",
            "execve",
            "runc",
            "<NA>",
            "host",
            "k8s_audit",
            "1e400",
        ]
    ),
)
shaped = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8),
    lambda children: st.dictionaries(st.sampled_from(KEYS), st.one_of(VALUES, children, st.lists(children, max_size=3)), max_size=8),
    max_leaves=30,
)


@pytest.mark.parametrize("src", JSON_SOURCES, ids=lambda s: s.FORMAT)
@settings(max_examples=300, deadline=None)
@given(obj=st.one_of(shaped, st.dictionaries(st.text(max_size=8), json_values, max_size=6)))
def test_sources_raise_only_source_error(src: Any, obj: dict[str, Any]) -> None:
    try:
        if not src.match(obj):
            return
        for ev in src.events(obj, SourceRef(format=src.FORMAT, file="f", line=1)):
            flat_fields(ev)
    except (SourceError, NotProcess):  # NotProcess: a process-telemetry record that starts no process
        pass


SECRETS = st.text(alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=24)
TEMPLATES = [
    "--password {s}",
    "--password={s}",
    "-p{s}",
    "PASSWORD={s}",
    "DB_PASSWORD={s}",
    "Authorization: Bearer {s}",
    "Authorization: {s}",
    "https://user:{s}@host/x",
    "token={s}",
    "api_key: {s}",
    '"secret": "{s}"',
]
CONTEXTS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@settings(max_examples=400, deadline=None)
@given(value=st.text(max_size=200))
def test_redact_idempotent(value: str) -> None:
    once = redact.text(value)
    assert redact.text(once) == once


@settings(max_examples=300, deadline=None)
@given(secret=SECRETS, template=st.sampled_from(TEMPLATES), before=CONTEXTS, after=CONTEXTS)
def test_redact_never_leaks(secret: str, template: str, before: str, after: str) -> None:
    assume(secret not in before and secret not in after)
    # a secret that is the flag's own name ("password") or the mark ("REDACTED") is still in the output, as those
    assume(secret.lower() not in template.lower() and secret not in "[REDACTED]")
    tool = "mysql " if template.startswith("-p") else ""
    value = f"{before} {tool}{template.format(s=secret)} {after}"
    out = redact.text(value)
    assert secret not in out
    assert len(out) <= len(value) + 40 * value.count(secret)
    assert redact.text(out) == out
    filled = template.format(s=secret)
    # a flag and its value are separate argv elements; a header or URL is one
    args = redact.argv(["mysql" if tool else "app", *(filled.split(" ") if template.startswith("--") else [filled])])
    assert all(secret not in a for a in args)


@settings(max_examples=300, deadline=None)
@given(
    argv=st.lists(
        st.one_of(st.text(max_size=60), st.binary(max_size=60).map(lambda b: __import__("base64").b64encode(b).decode())), max_size=6
    )
)
def test_decode_never_raises(argv: list[str]) -> None:
    assert isinstance(decoded_blobs(argv), str)
