"""Sigma correlation (event_count, value_count) over the stream: bursts of denied container commands, fan-out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from execguard.engine.correlate import Correlator
from execguard.engine.fields import flat_fields
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.engine.rule import RuleError
from execguard.model import Event, RuleMatch
from execguard.sinks.alert_json import alert_dict
from rules_builder import builtin_rules, deny, exec_event, hunt, kubelet_event, write_jsonl

BURST = "k8s-exec-denied-burst"
MALLORY = "system:serviceaccount:shop:web"


def denied_exec(minute: float, user: str = MALLORY, pod: str = "db-0", **kw: Any) -> dict[str, Any]:
    m, s = divmod(int(minute * 60), 60)
    time = f"2026-03-01T10:{m:02d}:{s:02d}.000000Z"
    return deny(exec_event("payments", pod, ["id"], user=user, time=time, **kw))


def burst_alerts(alerts: list[Any]) -> list[Any]:
    return [a for a in alerts if a.lead.rule_id == BURST]


def run(tmp_path: Path, events: list[dict[str, Any]], min_severity: str = "info") -> list[Any]:
    return hunt([write_jsonl(tmp_path / "audit.log", events)], min_severity=min_severity)


def test_five_denied_in_ten_minutes_is_one_alert(tmp_path: Path) -> None:
    events = [denied_exec(i, pod=f"p{i}") for i in range(5)]
    alerts = run(tmp_path, events)
    [burst] = burst_alerts(alerts)
    assert len(alerts) == 6  # five low k8s-exec-denied alerts and the burst
    assert burst.severity == "medium"
    assert burst.event.target.pod == "p4"  # the event that completed the burst
    reason = burst.lead.reason
    assert reason.startswith(f"{MALLORY} (service_account) was denied container commands 5 times within 10m")
    assert "2026-03-01T10:00:00" in reason
    assert "S0683 Peirates" in alert_dict(burst)["procedures"]


def test_mixed_denied_actions_count_together(tmp_path: Path) -> None:
    events = [denied_exec(0), denied_exec(1), deny(kubelet_event("node-1", "runningpods/", user=MALLORY, time="2026-03-01T10:02:00Z")),
              denied_exec(3), deny(exec_event("payments", "x", [], subresource="attach", user=MALLORY, time="2026-03-01T10:04:00Z"))]
    assert len(burst_alerts(run(tmp_path, events))) == 1


def test_four_denied_is_not_a_burst(tmp_path: Path) -> None:
    assert burst_alerts(run(tmp_path, [denied_exec(i) for i in range(4)])) == []


def test_spread_out_denials_are_not_a_burst(tmp_path: Path) -> None:
    # one every three minutes: any five span twelve minutes
    assert burst_alerts(run(tmp_path, [denied_exec(i * 3) for i in range(8)])) == []


def test_group_by_user(tmp_path: Path) -> None:
    events = [denied_exec(i, user=f"user{i % 2}@example.com") for i in range(8)]  # four each
    assert burst_alerts(run(tmp_path, events)) == []


def test_allowed_execs_do_not_count(tmp_path: Path) -> None:
    allowed = [exec_event("payments", "db-0", ["id"], user=MALLORY, time=f"2026-03-01T10:0{i}:30Z") for i in range(5)]
    assert burst_alerts(run(tmp_path, [denied_exec(0), *allowed, denied_exec(6)])) == []


def test_later_stages_of_one_request_count_once(tmp_path: Path) -> None:
    events = []
    for i in range(3):
        ev = denied_exec(i, audit_id=f"bbbbbbbb-0000-4000-8000-00000000000{i}")
        events += [dict(ev, stage="ResponseStarted"), ev]
    alerts = run(tmp_path, events)
    assert burst_alerts(alerts) == []
    assert len(alerts) == 3  # and the per-event alerts fold stages as before


def test_ten_denied_is_two_bursts(tmp_path: Path) -> None:
    assert len(burst_alerts(run(tmp_path, [denied_exec(i / 2) for i in range(10)]))) == 2


def test_burst_survives_the_severity_floor(tmp_path: Path) -> None:
    alerts = run(tmp_path, [denied_exec(i) for i in range(5)], min_severity="medium")
    assert [a.lead.rule_id for a in alerts] == [BURST]


def test_out_of_order_times_use_the_window(tmp_path: Path) -> None:
    events = [denied_exec(m) for m in (4, 0, 3, 1, 2)]
    assert len(burst_alerts(run(tmp_path, events))) == 1


def test_windows_read_the_time_the_sort_reads(tmp_path: Path) -> None:
    """One parse of an event's time for the whole hunt (clock.py): a stamp in another zone, or with a 60th second
    (rolled over, as the sort places it), counts in the window where the sort puts it."""
    stamps = ["2026-03-01T10:00:00.000000Z", "2026-03-01T11:01:00.000000+01:00", "2026-03-01T10:01:60.000000Z",
              "2026-03-01T05:03:00.000000-05:00", "2026-03-01T10:09:59.500000Z"]
    events = [deny(exec_event("payments", f"p{i}", ["id"], user=MALLORY, time=t)) for i, t in enumerate(stamps)]
    [burst] = burst_alerts(run(tmp_path, events))
    assert burst.event.time == stamps[-1]
    assert "5 times within 10m (since 2026-03-01T10:00:00+00:00)" in burst.lead.reason
    # ten minutes and a half from the first: the fifth falls out of the window
    late = [*events[:4], deny(exec_event("payments", "p4", ["id"], user=MALLORY, time="2026-03-01T10:10:00.500000Z"))]
    assert burst_alerts(run(tmp_path, late)) == []


def test_memory_is_bounded() -> None:
    rules = builtin_rules()
    corr = Correlator(rules, max_groups=3)
    for i in range(100):
        ev = Event(time=f"2026-03-01T10:00:{i % 60:02d}Z", action="exec", outcome="denied", event_id=str(i))
        ev.actor.user = f"u{i}"
        hits = [RuleMatch("k8s-exec-denied", "t", "low", [], "r")]
        assert list(corr.feed(ev, flat_fields(ev), hits)) == []
    assert all(len(groups) <= 3 for groups in corr._groups.values())


def _corr_rule(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.yml"
    path.write_text(
        "title: t\nname: my-corr\nid: 11111111-2222-4333-8444-555555555555\nreason: '{count}'\n"
        "level: high\ntags: [attack.execution, attack.t1609]\n" + body,
        encoding="utf-8",
    )
    return path


def test_user_correlation_rule_loads_and_fires(tmp_path: Path) -> None:
    path = _corr_rule(
        tmp_path,
        "correlation:\n  type: event_count\n  rules: [k8s-exec-api]\n  group-by: [target.pod]\n  timespan: 1h\n  condition:\n    gt: 2\n",
    )
    rules = load_rules([str(path)])
    [mine] = [r for r in rules if r.rule_id == "my-corr"]
    assert mine.actions == {"exec", "attach"}
    engine = Engine(rules)
    events = [Event(time=f"2026-03-01T10:0{i}:00Z", action="exec", verb="get", outcome="allowed", event_id=str(i)) for i in range(3)]
    alerts = list(engine.run(events))
    assert [a.lead.rule_id for a in alerts] == ["k8s-exec-api", "k8s-exec-api", "k8s-exec-api", "my-corr"]
    assert alerts[-1].lead.reason == "3"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # temporal is supported now (issue 9); value_sum cannot be summed from the fields events have
        ("correlation:\n  type: value_sum\n  rules: [k8s-exec-api]\n  group-by: [actor.user]\n  timespan: 1h\n"
         "  condition:\n    field: code\n    gte: 3\n", "not supported"),
        ("correlation:\n  type: temporal\n  rules: [k8s-exec-api]\n  group-by: [actor.user]\n  timespan: 1h\n", "at least two rules"),
        ("correlation:\n  type: temporal\n  rules: [k8s-exec-api, k8s-exec-denied]\n  group-by: [actor.user]\n  timespan: 1h\n"
         "  condition:\n    gte: 1\n", "other than gte: 2"),
        ("correlation:\n  type: temporal_ordered\n  rules: [k8s-exec-api, k8s-exec-denied]\n  group-by: [who]\n  timespan: 1h\n"
         "  aliases:\n    who:\n      k8s-exec-api: actor.user\n      k8s-portforward: actor.user\n", "does not reference"),
        ("correlation:\n  type: temporal\n  rules: [k8s-exec-api, my-corr]\n  group-by: [actor.user]\n  timespan: 1h\n", "itself"),
        ("correlation:\n  type: value_count\n  rules: [k8s-exec-api]\n  group-by: [actor.user]\n  timespan: 1h\n"
         "  condition:\n    field: target.podname\n    gte: 3\n", "unknown fields"),
        ("correlation:\n  type: event_count\n  rules: [k8s-exec-api]\n  timespan: 1h\n  condition:\n    lt: 3\n", "cannot be decided"),
        ("correlation:\n  type: event_count\n  rules: [no-such-rule]\n  timespan: 1h\n  condition:\n    gte: 3\n", "unknown rule"),
        ("correlation:\n  type: event_count\n  rules: [k8s-exec-api]\n  group-by: [user.name]\n  timespan: 1h\n"
         "  condition:\n    gte: 3\n", "unknown fields"),
    ],
)
def test_unsupported_correlations_are_refused(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        load_rules([str(_corr_rule(tmp_path, body))])


VALUE_COUNT = (
    "correlation:\n  type: value_count\n  rules: [k8s-exec-api]\n  group-by: [actor.user]\n  timespan: 10m\n"
    "  condition:\n    field: target.pod\n    gte: 3\n"
)


def allowed_exec(minute: float, pod: str, user: str = "alice", i: int = 0) -> Event:
    m, sec = divmod(int(minute * 60), 60)
    ev = Event(time=f"2026-03-01T10:{m:02d}:{sec:02d}Z", action="exec", verb="create", outcome="allowed", event_id=f"{pod}-{minute}-{i}")
    ev.actor.user, ev.target.namespace, ev.target.pod = user, "shop", pod
    return ev


def fanout(tmp_path: Path, events: list[Event]) -> list[Any]:
    rules = load_rules([str(_corr_rule(tmp_path, VALUE_COUNT))])
    return [a for a in Engine(rules).run(events) if a.lead.rule_id == "my-corr"]


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    # ten execs into the same two pods: no fan-out; the third distinct pod completes it
    events = [allowed_exec(i * 0.5, f"web-{i % 2}", i=i) for i in range(10)] + [allowed_exec(6, "db-0")]
    [alert] = fanout(tmp_path, events)
    assert alert.event.target.pod == "db-0"


def test_value_count_window_and_groups(tmp_path: Path) -> None:
    spread = [allowed_exec(0, "a"), allowed_exec(8, "b"), allowed_exec(16, "c")]  # never 3 inside 10 minutes
    users = [allowed_exec(1, "a", user="u1"), allowed_exec(2, "b", user="u2"), allowed_exec(3, "c", user="u3")]
    assert fanout(tmp_path, spread + users) == []
    again = [allowed_exec(i, f"p{i}") for i in range(6)]  # six pods: two alerts, each needs three fresh values
    assert len(fanout(tmp_path, again)) == 2


def test_value_count_reason_lists_the_values(tmp_path: Path) -> None:
    path = _corr_rule(tmp_path, VALUE_COUNT)
    path.write_text(path.read_text().replace("reason: '{count}'", "reason: '{count} pods: {values}'"))
    rules = load_rules([str(path)])
    [alert] = [a for a in Engine(rules).run([allowed_exec(i, f"p{i}") for i in range(3)]) if a.lead.rule_id == "my-corr"]
    assert alert.lead.reason == "3 pods: p0, p1, p2"


MULTI = """\
title: Denied exec by anyone
name: multi-denied
id: 0e4b6f0a-1d5c-4a4e-9b7e-3c1f2a9d8e01
status: experimental
logsource:
  product: kubernetes
  service: audit
detection:
  sel:
    action: exec
    outcome: denied
  condition: sel
level: low
---
title: Three denied execs by one actor
name: multi-denied-burst
id: 0e4b6f0a-1d5c-4a4e-9b7e-3c1f2a9d8e02
status: experimental
correlation:
  type: event_count
  rules:
    - multi-denied
  group-by:
    - actor.user
  timespan: 10m
  condition:
    gte: 3
level: medium
"""


def test_one_file_holds_a_rule_and_its_correlation(tmp_path: Path) -> None:
    # a multi-document rule file, read through pySigma's SigmaCollection: both documents are rules
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "multi.yml").write_text(MULTI)
    rules = load_rules([str(tmp_path / "rules")], builtin=False)
    assert [r.rule_id for r in rules] == ["multi-denied", "multi-denied-burst"]
    assert rules[1].correlation is not None and rules[1].correlation.generate  # absent generate: alerts
    alerts = hunt([write_jsonl(tmp_path / "audit.log", [denied_exec(i, pod=f"p{i}") for i in range(3)])], rules=rules)
    assert [a.lead.rule_id for a in alerts] == ["multi-denied"] * 3 + ["multi-denied-burst"]


def test_a_file_with_no_rule_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.yml").write_text("# nothing here\n")
    with pytest.raises(RuleError, match=r"empty\.yml: no rule in this file"):
        load_rules([str(tmp_path / "empty.yml")], builtin=False)
