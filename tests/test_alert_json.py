"""The alert JSON shortcuts of issue 10 give what the plain path gives: bytes, escaping, and reasons rendered late."""

from __future__ import annotations

import sys
from dataclasses import replace

import orjson
import pytest

from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Alert, Process, RuleMatch, SourceRef, display
from execguard.sinks import alert_json as alert_json_module
from execguard.sinks.alert_json import alert_dict, alert_json
from execguard.sources import k8s_audit
from execguard.sources.reader import Reader
from sinks_helpers import sample_alerts
from webhook_util import exec_event


def test_alert_json_is_the_dict_as_json() -> None:
    """alert_json hands orjson the source and target dataclasses: the same bytes as alert_dict's objects."""
    alerts = sample_alerts()
    first = alerts[0]
    odd = replace(
        first,
        matches=[
            RuleMatch("a", "A", "low", ["T1609"], "cut at 300 characters…"),
            RuleMatch("b", "B", "critical", ["T1609", "S0683 Peirates"], "bidi \u202e inside, a tab\there"),
            RuleMatch("c", "C", "critical", [], "a second critical: the first one leads"),
        ],
        also_seen=[SourceRef("dockerd-log", "dockerd.log", 7)],
        suppressed="entry: a reason",
    )
    for alert in [*alerts, odd]:
        assert alert_json(alert) == orjson.dumps(alert_dict(alert))
    d = alert_dict(odd)
    assert d["rule_id"] == "b" and d["severity"] == "critical"  # the first of the most severe, as Alert.lead
    assert d["reasons"] == [  # most severe first, ties in their order
        "bidi \\u202e inside, a tab\\x09here",
        "a second critical: the first one leads",
        "cut at 300 characters…",  # printable non-ASCII is left as it is
    ]


def test_alerts_of_the_same_rules_share_their_rule_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """alert_json keeps the lead, procedures, rules and reason order per set of matches: a second alert of the same
    rules (other reasons, same severities) and alerts past the cache's bound still give alert_dict's bytes."""
    monkeypatch.setattr(alert_json_module, "RULED_MAX", 3)
    alert_json_module._RULED.clear()
    base = sample_alerts()[0]
    low, high = RuleMatch("a", "A", "low", ["T1609", "S0683 Peirates"], "first"), RuleMatch("b", "B", "high", [], "second")
    variants = [
        [low, high],
        [replace(low, reason="first again\twith a tab"), replace(high, reason="second again")],
        [high, low],
        [replace(low, severity="critical"), high],  # re-rated (a policy): another key, another lead
        [replace(low, tags=["T1609"]), high],
        [low],
        [replace(low, reason="only one, another reason")],
    ]
    alerts = [replace(base, matches=m) for m in variants] * 2
    for alert in alerts:
        assert alert_json(alert) == orjson.dumps(alert_dict(alert))
    assert len(alert_json_module._RULED) <= 3
    assert orjson.loads(alert_json(alerts[1]))["reasons"] == ["second again", "first again\\x09with a tab"]
    # the optional parts go through alert_dict's own path
    for odd in (
        replace(base, suppressed="e: r"),
        replace(base, covers=[base.event]),
        replace(base, event=replace(base.event, process=Process(pid=7, exe="/bin/sh"))),
    ):
        assert alert_json(odd) == orjson.dumps(alert_dict(odd))


def test_printable_text_needs_no_escaping() -> None:
    """alert_json skips model.display for text str.isprintable accepts: display must leave every such character."""
    escaped = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isprintable() and display(c) != c]
    assert escaped == []


def test_match_renders_the_reasons_hits_would() -> None:
    """Engine.match renders reasons only for the alerts it keeps: the alerts equal decide() over hits()."""
    rules = load_rules([])
    events = list(Reader().read(_sample_files()))
    lazy, eager = Engine(rules), Engine(rules)
    got = [alert_dict(a) for a in lazy.run(events)]
    want: list[dict] = []
    for event in events:
        correlated: list[Alert] = []
        alert = eager.decide(event, eager.hits(event), correlated)
        want.extend(alert_dict(a) for a in ([alert] if alert else []) + correlated)
    assert got == want and len(got) > 10
    assert lazy.suppressed == eager.suppressed > 0  # later audit stages folded alike


def test_hits_of_rules_that_only_feed_chains_carry_no_reason() -> None:
    """hits() leaves the reason of a generate-false chain step empty (no alert shows it); the others have theirs."""
    engine = Engine(load_rules([]))
    ref = SourceRef(k8s_audit.FORMAT, "audit.log", 1)
    hits = [h for e in k8s_audit.from_audit_event(exec_event("e1"), ref) for h in engine.hits(e)]
    silent = [h for h in hits if h.rule_id in engine.silent]
    assert silent and all(h.reason == "" for h in silent)
    assert any(h.rule_id not in engine.silent for h in hits)
    assert all(h.reason for h in hits if h.rule_id not in engine.silent)


def _sample_files() -> list[str]:
    from execguard.cli import sample_dir

    return [str(p) for p in sorted(sample_dir().iterdir()) if p.suffix != ".md"]
