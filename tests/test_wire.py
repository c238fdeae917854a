"""What workers hand back (pipeline/wire.py): every event of every source, with its hits, comes back equal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from execguard.cli.hunt import sample_dir
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.engine.rule import Rule
from execguard.model import Event, RbacChange, RuleMatch
from execguard.pipeline import wire
from execguard.sim.simulate import write as simulate
from execguard.sources.reader import Reader


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Event, list[RuleMatch]]]:
    """Every event (no prefilter) of the simulate corpus in every format and of the bundled samples, with its hits."""
    out = tmp_path_factory.mktemp("wire")
    simulate(out / "sim", events=600, seed=3, node_formats=True)
    engine = Engine(load_rules([], builtin=True))
    paths = [str(p) for p in sorted((out / "sim").iterdir()) if p.name != "labels.jsonl"]
    paths += [str(p) for p in sorted(sample_dir().iterdir()) if p.suffix != ".md"]
    paths.append(str(Path(__file__).parent / "data" / "falco"))  # Falco's audit traces: RBAC writes among them
    got = [(e, engine.hits(e)) for e in Reader().read(paths)]
    return got


def test_every_event_comes_back_equal(events: list[tuple[Event, list[RuleMatch]]]) -> None:
    # the corpus holds what the codec must carry: RBAC writes, node processes, hits with reasons
    assert any(e.rbac is not None for e, _ in events)
    assert any(e.process is not None for e, _ in events)
    assert sum(1 for _, h in events if h) > 100
    buf = io.BytesIO()
    out = wire.Writer(buf)
    for i, (event, hits) in enumerate(events):
        out.event(event, hits)
        if i % 97 == 0:
            out.warning(event.source.file, event.source.line, f"note {i}")
    out.flush()
    buf.seek(0)
    back = list(wire.read(buf))
    assert [(r[1], r[2]) for r in back if r[0] == "e"] == events
    notes = [r for r in back if r[0] == "w"]
    assert len(notes) == len(range(0, len(events), 97)) and notes[0][3] == "note 0"
    # warnings stay where they were among the events
    assert back.index(notes[1]) == 97 + 1 + 1


def test_coded_hits_come_back_as_the_engines_hits(events: list[tuple[Event, list[RuleMatch]]]) -> None:
    """A worker's coded hits (Engine.coded_hits): each rendered hit back as the same RuleMatch, a hit of a rule that
    only feeds correlations as the Rule itself (its reason is never shown)."""
    engine = Engine(load_rules([], builtin=True))
    buf = io.BytesIO()
    out = wire.Writer(buf)
    for event, _ in events:
        out.coded(event, engine.coded_hits(event))
    out.flush()
    buf.seek(0)
    back = list(wire.read(buf, engine.from_wire))
    assert [r[1] for r in back] == [e for e, _ in events]
    silent = 0
    for (_, hits), (_, _, got, _) in zip(events, back, strict=True):
        assert [h.rule_id for h in got] == [h.rule_id for h in hits]
        for h, g in zip(hits, got, strict=True):
            if h.rule_id in engine.silent:
                assert isinstance(g, Rule) and h.reason == ""
                silent += 1
            else:
                assert g == h
    assert silent > 10


def test_reasons_left_to_the_parent_read_as_the_workers(events: list[tuple[Event, list[RuleMatch]]]) -> None:
    """Hits sent without reasons (a later audit stage, Engine.coded_hits(explain=False)) get them in the parent's
    ``decide`` when their alert comes out: the same text as a worker renders, every alert and correlation equal."""
    rules = load_rules([], builtin=True)
    worker, eager, lazy = Engine(rules), Engine(rules), Engine(rules)
    full, bare = io.BytesIO(), io.BytesIO()
    a, b = wire.Writer(full), wire.Writer(bare)
    for event, hits in events:
        a.event(event, hits)
        b.coded(event, worker.coded_hits(event, explain=False))
    a.flush()
    b.flush()
    full.seek(0)
    bare.seek(0)
    want, got = [], []
    for x, y in zip(wire.read(full), wire.read(bare, lazy.from_wire), strict=True):
        assert all(isinstance(h, Rule) for h in y[2])  # nothing rendered on the worker's side
        want.append((eager.decide(x[1], x[2], c := []), c))
        got.append((lazy.decide(y[1], y[2], d := []), d))
    assert got == want
    assert sum(1 for alert, _ in got if alert is not None) > 100
    assert any(alert is not None and alert.event.rbac is not None for alert, _ in got)


class Odd(dict[str, str]):  # a dict subclass: marshal refuses it, pickle keeps it
    pass


def test_a_value_marshal_cannot_write_goes_as_a_pickle() -> None:
    event = Event(action="rbac", rbac=RbacChange(kind="Role", name="r", labels=Odd(team="a")), raw="x:1")
    buf = io.BytesIO()
    out = wire.Writer(buf)
    out.event(event, [RuleMatch("r1", "t", "low", ["T1609"], "why")])
    out.flush()
    buf.seek(0)
    (rec,) = list(wire.read(buf))
    assert rec[1] == event and rec[1].rbac is not None and type(rec[1].rbac.labels) is Odd
    assert rec[2] == [RuleMatch("r1", "t", "low", ["T1609"], "why")]


def test_a_batch_cut_short_ends_the_records(tmp_path: Path) -> None:
    """A worker killed while writing leaves a partial batch: the whole batches before it are read."""
    buf = io.BytesIO()
    out = wire.Writer(buf)
    for i in range(wire.BATCH + 3):
        out.warning("f", i + 1, "m")
    out.flush()
    data = buf.getvalue()
    got = list(wire.read(io.BytesIO(data[:-5])))
    assert len(got) == wire.BATCH and got[-1] == ("w", "f", wire.BATCH, "m")


def test_the_joins_spilled_runs_come_back_in_time_order(events: list[tuple[Event, list[RuleMatch]]]) -> None:
    """The join's TimeSpill writes runs past its limit: records come back equal, in (time, seq) order, each
    alert's event still the record's own event where it was."""
    from execguard.model import Alert, SourceRef
    from execguard.pipeline.join import TimeSpill

    spill = TimeSpill(limit=50)
    want = []
    for seq, (event, hits) in enumerate(events[:400]):
        alert = Alert(event, hits) if hits else None
        if alert is not None and seq % 5 == 0:  # the fields the join and policy fill in, and an alert of another event
            alert.also_seen = [SourceRef("docker-events", "x.jsonl", seq)]
            alert.covers = [events[seq + 1][0]]
            alert.suppressed = "entry: why"
        if alert is not None and seq % 7 == 0:
            alert = Alert(events[seq + 2][0], hits)
        t = (seq * 7919) % 1000  # not in input order
        spill.add(t, seq, (event, alert))
        want.append((t, seq, (event, alert)))
    assert spill.runs  # it wrote to disk
    got = list(spill.drain())
    assert got == sorted(want, key=lambda r: (r[0], r[1]))
    for _, seq, (event, alert) in got:
        if alert is not None:
            assert (alert.event is event) == (seq % 7 != 0)
