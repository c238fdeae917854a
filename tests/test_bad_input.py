"""Bad input never ends the hunt; memory stays flat in the input size."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from execguard.sources import find
from execguard.sources import reader as reader_mod
from execguard.sources.reader import Reader

EXE = Path(sys.executable).parent / "execguard"

EXEC = json.dumps(
    {
        "kind": "Event",
        "auditID": "AID",
        "stage": "ResponseStarted",
        "verb": "get",
        "requestURI": "/api/v1/namespaces/prod/pods/web/exec?command=sh&command=-c&command=id&container=app",
        "user": {"username": "mallory"},
        "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "prod", "name": "web"},
        "responseStatus": {"code": 101},
    }
).encode()
OTHER = json.dumps(
    {
        "kind": "Event",
        "auditID": "x",
        "verb": "list",
        "requestURI": "/api/v1/namespaces/prod/configmaps?limit=500",
        "objectRef": {"resource": "configmaps"},
        "user": {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]},
        "userAgent": "kube-controller-manager/v1.30.0 (linux/amd64) kubernetes/abcdef/system:serviceaccount:kube-system:generic",
        "sourceIPs": ["10.0.0.7"],
    }
).encode()


def test_50mb_ndjson_bounded_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = 1 << 20
    max_line = 64 << 10
    monkeypatch.setattr(reader_mod, "BLOCK", block)
    p = tmp_path / "big.log"
    n = 0
    with p.open("wb") as f:
        chunk = b"\n".join([OTHER] * 999 + [EXEC]) + b"\n"
        while f.tell() < 50_000_000:
            f.write(chunk)
            n += 1000
    size = p.stat().st_size
    r = Reader(literals=[b"/exec"], max_line=max_line)
    find._numpy()  # imported before tracing: the module's own allocations are not the reader's
    tracemalloc.start()
    try:
        events = sum(1 for _ in r.read([str(p)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == n // 1000
    assert r.stats.lines == n and r.stats.bytes == size
    assert r.stats.peak_buffer <= 2 * block + max_line
    # everything the reader allocated at once, not just the buffers it reports (with numpy, its compare
    # output for one block is one more block)
    assert peak < 4 * block + max_line + (1 << 20), peak
    assert peak < size / 10


def test_documents_hold_one_document_and_a_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = 64 << 10
    monkeypatch.setattr(reader_mod, "BLOCK", block)
    doc = json.dumps(json.loads(EXEC), indent=2)
    p = tmp_path / "pretty.json"
    p.write_text((doc + "\n") * 20_000)
    r = Reader()
    assert sum(1 for _ in r.read([str(p)])) == 20_000
    assert r.stats.peak_buffer <= 2 * block + 2 * len(doc)
    assert r.stats.lines == 20_000 * (doc.count("\n") + 1)


CASES = {
    "binary.log": bytes(range(256)) * 40,
    "nul.log": b"\x00" * 5000 + b"/exec\n" + EXEC + b"\n",
    "utf8.log": EXEC.replace(b"mallory", b"mal\xc3\x28ory") + b"\n" + b"\xff\xfe/exec\n",
    "shapes.log": b"\n".join([b'{"kind":"Event","auditID":"a","objectRef":"/exec"}', b"[1,2,3] /exec", b'"/exec"', b"null"]),
    "empty.log": b"",
    "long.log": b'{"x":"' + b"/exec" * 800_000 + b'"}\n' + EXEC + b"\n",
    "trunc.log.gz": gzip.compress(EXEC + b"\n" + (OTHER + b"\n") * 2000)[:-300],
    "pretty-broken.json": json.dumps(json.loads(EXEC), indent=2).encode()[:-40] + b"\n" + json.dumps(json.loads(EXEC), indent=2).encode(),
}
# one audit ID per file: the engine alerts once per audit ID
CASES = {name: data if name.endswith(".gz") else data.replace(b'"AID"', json.dumps(name).encode()) for name, data in CASES.items()}
CASES["trunc.log.gz"] = gzip.compress(EXEC.replace(b'"AID"', b'"gz"') + b"\n" + (OTHER + b"\n") * 2000)[:-300]


def test_cli_survives_every_bad_input(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    for name, data in CASES.items():
        (d / name).write_bytes(data)
    p = subprocess.run([str(EXE), "hunt", "-o", "jsonl", str(d)], capture_output=True, check=False, env={"COLUMNS": "300"})
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    alerts = [json.loads(x) for x in p.stdout.splitlines()]
    files = sorted({Path(a["source"]["file"]).name for a in alerts})
    assert files == ["long.log", "nul.log", "pretty-broken.json", "trunc.log.gz", "utf8.log"]
    for where in ("nul.log:1", "long.log:1", "utf8.log:1", "utf8.log:2", "shapes.log:1", "shapes.log:2", "shapes.log:3",
                  "trunc.log.gz:", "pretty-broken.json:1"):  # fmt: skip
        assert f"{d}/{where}" in err, where
    assert "bad records skipped" in err and "alerts: " in err
    # the alert after the over-long line keeps its exact line number
    assert [a["source"]["line"] for a in alerts if a["source"]["file"].endswith("long.log")] == [2]
