"""The decision memo and the lazy field view change no alert, only how often rules run."""

from __future__ import annotations

from pathlib import Path

import pytest

from execguard.engine import memo
from execguard.engine.fields import FIELDS, FieldView
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Event
from execguard.sim.simulate import write as simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader


def test_memo_changes_no_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    simulate(tmp_path, events=1500, seed=3)
    (tmp_path / "labels.jsonl").unlink()

    def run() -> tuple[list[dict[str, object]], int]:
        engine = Engine(load_rules([], builtin=True))
        alerts = [alert_dict(a) for a in engine.run(Reader().read([str(tmp_path)]))]
        repeats = sum(g.memo.hits for d in engine._deciders.values() for g in d.groups)
        return alerts, repeats

    remembered, repeats = run()
    monkeypatch.setattr(memo.Memo, "get", lambda self, event: (None, None))  # decide every event afresh
    fresh, none = run()
    assert remembered == fresh and len(fresh) > 100
    assert repeats > 0 and none == 0  # the memo was used, and then it was not


def test_memo_keeps_bool_and_missing_apart(tmp_path: Path) -> None:
    """Keys hold the values rules read: a changed flag or argv is decided again, not taken from the memo."""
    rules = [r for r in load_rules([], builtin=True) if r.rule_id == "k8s-exec-interactive-shell"]
    decider = memo.Decider(rules)
    base = {"action": "exec", "outcome": "allowed", "command": ["sh"], "stdin": True}
    cases = [({**base, "tty": True}, True), ({**base, "tty": False}, False), ({**base, "tty": True, "command": ["ls"]}, False)]
    for _ in range(2):  # the second round is answered from the memo
        for kwargs, want in cases:
            event = Event(**kwargs)  # type: ignore[arg-type]
            assert bool(decider.matches(event, FieldView(event))) is want


def test_field_view_is_lazy_and_complete() -> None:
    event = Event(action="exec", command=["sh", "-c", "echo aGVsbG8gd29ybGQgZnJvbSBiYXNlNjQ= | base64 -d"])
    view = FieldView(event)
    assert view.values == {}
    assert "hello world from base64" in view.get("command.text")
    assert set(view.values) == {"command.text", "command.line", "command.decoded"}
    assert tuple(view.flat()) == FIELDS and view.get("no.such.field", "x") == "x"
