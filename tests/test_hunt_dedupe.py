"""One alert for one docker exec recorded by docker events and by the dockerd debug log (real capture)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from execguard.cli import app
from execguard.model import Alert, Event, RuleMatch, SourceRef, Target
from execguard.pipeline.dedupe import DockerDedupe, same_exec

DOCKER = Path(__file__).parent / "data" / "docker"
EVENTS = str(DOCKER / "docker-events.jsonl")
LOG = str(DOCKER / "dockerd-debug.log")
PRIV_EXEC = "945571897f1010d91c4881354df2d14827a71e42375743343ca62a552485b21b"  # sh -c 'cat /proc/1/environ; id', privileged


def hunt(*args: str) -> tuple[list[dict[str, Any]], str]:
    res = CliRunner().invoke(app, ["hunt", "-o", "jsonl", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return [json.loads(x) for x in res.stdout.splitlines()], " ".join(res.stderr.split())


def test_one_alert_per_exec_with_both_sources() -> None:
    alerts, err = hunt(EVENTS, LOG)
    alone = hunt(EVENTS)[0], hunt(LOG)[0]
    execs = [a for a in alerts if a["action"] == "exec"]
    ids = [a["event_id"] for a in execs if a["event_id"]]
    assert len(ids) == len(set(ids))  # each exec once
    both = [a for a in alerts if len(a["sources"]) == 2]
    assert len(both) == 8 and f"{len(both)} Docker execs seen in two sources merged" in err
    assert len(alerts) == len(alone[0]) + len(alone[1]) - len(both)
    for a in both:
        assert {s["format"] for s in a["sources"]} == {"docker-events", "dockerd-log"}
        assert a["source"] == a["sources"][0]  # "source" is still one object: old readers keep working
    priv = next(a for a in alerts if a["event_id"] == PRIV_EXEC)
    rules = {r["rule_id"] for r in priv["rules"]}
    # the privileged flag is only in the daemon log, the container id only in the events: the alert has both
    assert {"docker-exec-privileged", "cmd-credential-access"} <= rules
    assert priv["severity"] == "high" and priv["privileged"] is True
    assert priv["target"]["container_id"].startswith("3a08cc405f3c") and priv["target"]["container"] == "web"
    assert priv["command"] == ["sh", "-c", "cat /proc/1/environ; id"]  # argv boundaries from the daemon log
    lines = {s["format"]: s["line"] for s in priv["sources"]}
    assert lines == {"dockerd-log": 494, "docker-events": 22}


def test_order_of_inputs_and_sort_do_not_change_the_merge() -> None:
    first, _ = hunt(EVENTS, LOG)
    again, _ = hunt(LOG, EVENTS)
    assert again == first
    by_input, _ = hunt("--sort", "input", EVENTS, LOG)
    assert sorted(map(json.dumps, by_input)) == sorted(map(json.dumps, first))


def test_one_source_alone_is_untouched() -> None:
    for path in (EVENTS, LOG):
        alerts, err = hunt(path)
        assert alerts and all(a["sources"] == [a["source"]] for a in alerts)
        assert "merged" not in err


def test_a_failed_exec_in_the_log_only_stays_its_own_alert() -> None:
    alerts, _ = hunt(EVENTS, LOG)
    # `docker exec priv sh -c 'ls /host'` failed (container not running): only the daemon log has it
    ls_host = [a for a in alerts if a["command"] == ["sh", "-c", "ls /host"]]
    assert len(ls_host) == 1 and [s["format"] for s in ls_host[0]["sources"]] == ["dockerd-log"]


def exec_alert(fmt: str, when: str, container: str, argv: list[str], exec_id: str | None = None, line: int = 1) -> Alert:
    ev = Event(time=when, source=SourceRef(fmt, f"{fmt}.log", line), action="exec", command=argv, event_id=exec_id)
    ev.target = Target(container=container)
    return Alert(ev, [RuleMatch("docker-exec", "t", "low", [], "r")])


def test_same_exec_needs_the_same_exec_container_command_and_time() -> None:
    a = exec_alert("docker-events", "2026-01-01T00:00:00.000Z", "web", ["id"], "e1")
    assert same_exec(a, exec_alert("dockerd-log", "2026-01-01T00:00:00.001Z", "web", ["id"], "e1"))
    assert not same_exec(a, exec_alert("dockerd-log", "2026-01-01T00:00:00.001Z", "web", ["id"], "e2"))  # other exec
    assert not same_exec(a, exec_alert("docker-events", "2026-01-01T00:00:00.001Z", "web", ["id"]))  # one source
    b = exec_alert("docker-events", "2026-01-01T00:00:00.000Z", "web", ["id"])
    assert same_exec(b, exec_alert("dockerd-log", "2026-01-01T00:00:01.000Z", "web", ["id"]))
    assert not same_exec(b, exec_alert("dockerd-log", "2026-01-01T00:00:01.000Z", "db", ["id"]))  # other container
    assert not same_exec(b, exec_alert("dockerd-log", "2026-01-01T00:00:01.000Z", "web", ["ls"]))  # other command
    assert not same_exec(b, exec_alert("dockerd-log", "2026-01-01T00:00:09.000Z", "web", ["id"]))  # too far apart


def test_dedupe_lets_alerts_go_in_order() -> None:
    d = DockerDedupe()
    fed = [
        exec_alert("docker-events", "2026-01-01T00:00:00Z", "web", ["id"], line=1),
        exec_alert("dockerd-log", "2026-01-01T00:00:00Z", "web", ["id"], line=2),
        exec_alert("dockerd-log", "2026-01-01T00:00:01Z", "web", ["ls"], line=3),
        exec_alert("docker-events", "2026-01-01T00:00:10Z", "web", ["id"], line=4),  # a later, separate exec
    ]
    out = [a for i, x in enumerate(fed) for a, _ in d.feed(x, i)] + [a for a, _ in d.drain()]
    assert [a.event.source.line for a in out] == [2, 3, 4]
    assert d.merged == 1 and [s.line for s in out[0].also_seen] == [1]
    assert Counter(len(a.also_seen) for a in out) == {1: 1, 0: 2}


def test_ocsf_lists_both_records() -> None:
    res = CliRunner().invoke(app, ["hunt", "-q", "-o", "ocsf", EVENTS, LOG], catch_exceptions=False)
    findings = [json.loads(x) for x in res.stdout.splitlines()]
    priv = next(f for f in findings if f["metadata"]["uid"] == PRIV_EXEC)
    data = priv["evidences"][0]["data"]
    assert data["source"] == data["sources"][0] and len(data["sources"]) == 2


def test_without_docker_alerts_the_sort_skips_the_dedupe() -> None:
    """The de-duplication only folds a Docker exec or attach into another Docker one: with none sorted the pipeline
    passes the time-sorted alerts on as they are, as the dedupe would have; with one it still folds."""
    from execguard.engine.load import load_rules
    from execguard.engine.match import Engine
    from execguard.pipeline.stages import Pipeline
    from execguard.sources.reader import Reader

    rules = load_rules([])
    k8s = list(Engine(rules).run(Reader().read([str(Path(__file__).parent.parent / "src/execguard/samples/k8s-incident.jsonl")])))
    docker = list(Engine(rules).run(Reader().read([EVENTS, LOG])))
    assert len(k8s) > 5 and all(a.event.source.format not in ("docker-events", "dockerd-log") for a in k8s)
    runs = []
    for force in (False, True):
        pipe = Pipeline(sort="time")
        for a in k8s:
            assert list(pipe.feed(a)) == []
        assert pipe._docker is False
        pipe._docker = force  # True: through the dedupe, as before
        runs.append([id(a) for a in pipe.drain()])
    assert runs[0] == runs[1] and len(runs[0]) == len(k8s)
    pipe = Pipeline(sort="time")
    for a in [*k8s, *docker]:
        list(pipe.feed(a))
    assert pipe._docker is True
    assert len(list(pipe.drain())) == len(k8s) + len(docker) - pipe.dedupe.merged and pipe.dedupe.merged == 8
