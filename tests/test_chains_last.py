"""The cheaper paths of correlation give the answers of the general ones: ``Chains.add_last`` (the last step of
an ordered chain, every allowed exec) against ``Chains.add``'s general loop, at a small group cap and step
bound; the plan per set of hits against feeding correlations one by one."""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from execguard.engine import chains
from execguard.engine.chains import Chains, Done
from execguard.engine.correlate import Correlator
from execguard.engine.rule import Correlation
from execguard.model import Event

# one hit: (rule: 0 = the last step, else an earlier one), group keys, time step in seconds (may go back), event id
Op = tuple[int, list[str], int, str | None]
ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.lists(st.sampled_from(["k0", "k1", "k2", "k3", "k4"]), min_size=1, max_size=3),
        st.integers(-30, 90),
        st.one_of(st.none(), st.sampled_from([f"id{i}" for i in range(12)])),
    ),
    max_size=120,
)


def _answer(done: Done | None) -> Any:
    """What a Done says, by the events of its steps (the two Chains hold Step objects of their own)."""
    if done is None:
        return None
    return [id(s.event) for s in done.earlier], [id(s.event) for s in done.fresh]


@settings(max_examples=300, deadline=None)
@given(ops, st.sampled_from([["a", "b"], ["a", "c", "b"]]), st.integers(1, 3), st.integers(1, 4))
def test_add_last_answers_as_the_general_path(stream: list[Op], refs: list[str], max_groups: int, per_rule: int) -> None:
    corr = Correlation(rules=refs, group_by=["actor.user"], seconds=60.0, timespan="1m", threshold=len(refs), kind="temporal_ordered")
    last = Chains.role(corr, "b")
    assert last.needs_others
    fast, slow = Chains(max_groups), Chains(max_groups)
    when = 1_000.0
    with mock.patch.object(chains, "PER_RULE", per_rule):  # the bound on steps per rule and group, reached often
        for rule, keys, step, eid in stream:
            when += step
            ref = refs[-1] if rule == 0 else refs[rule - 1] if rule <= len(refs) - 1 else refs[0]
            event = Event(time="t", action="exec", event_id=eid)
            found = [(k,) for k in dict.fromkeys(keys)]
            if ref == "b":
                got = fast.add("r", corr, last, ref, event, when, found)
                want = slow._each(slow.groups("r"), corr, last, ref, event, when, found, "")  # the general loop
            else:
                role = Chains.role(corr, ref)
                got = fast.add("r", corr, role, ref, event, when, found)
                want = slow.add("r", corr, role, ref, event, when, found)
            assert _answer(got) == _answer(want)
            assert _state(fast) == _state(slow)


def _state(ch: Chains) -> Any:
    """Every group in LRU order, with its last step's (time, event id)s and by id whether that completed the chain;
    the last steps kept in no group."""
    out = []
    for key, state in ch._groups.get("r", {}).items():
        lasts = state.get("b")
        if isinstance(lasts, chains.Lasts):
            seen = [(when, eid) for when, eid in lasts]
            done = dict(lasts.ids)
        else:
            seen = [(s.when, s.event_id) for s in lasts or ()]
            done = {eid: s.reported for eid, s in lasts.ids.items()} if lasts is not None else {}
        out.append((key, sorted(state), seen, done))
    unpaired = ch._groups["r"].unpaired if "r" in ch._groups else None
    return out, list(unpaired.order) if unpaired else []


def test_add_last_a_later_stage_of_a_completed_step() -> None:
    corr = Correlation(rules=["a", "b"], group_by=["actor.user"], seconds=60.0, timespan="1m", threshold=2, kind="temporal_ordered")
    ch = Chains(10)
    a, b = Event(time="t", event_id="e1"), Event(time="t", event_id="e2")
    assert ch.add("r", corr, Chains.role(corr, "a"), "a", a, 1.0, [("u",)]) is None
    first = ch.add("r", corr, Chains.role(corr, "b"), "b", b, 2.0, [("u",), ("v",)])
    assert first is not None and [s.event for s in first.earlier] == [a] and [s.event for s in first.fresh] == [a]
    again = ch.add("r", corr, Chains.role(corr, "b"), "b", b, 2.0, [("u",), ("v",)])  # its ResponseComplete stage
    assert again is not None and again.earlier == [] and again.fresh == []  # the same answer, nothing new to list


def test_last_steps_alone_keep_no_group() -> None:
    """An allowed exec whose groups hold no earlier step of the chain is not kept in them (nothing could complete):
    a stream of them leaves no group, and their requests are remembered once each, within the timespan and a bound."""
    corr = Correlation(rules=["a", "b"], group_by=["actor.user"], seconds=60.0, timespan="1m", threshold=2, kind="temporal_ordered")
    ch, last = Chains(100), Chains.role(corr, "b")
    for i in range(500):
        assert ch.add("r", corr, last, "b", Event(time="t", event_id=f"e{i}"), float(i), [("u",), ("g1",), ("g2",)]) is None
    groups = ch.groups("r")
    assert len(groups) == 0
    # the requests of the last 60 s (its timespan): none older than the newest minus 60
    assert [eid for _, eid in groups.unpaired.order] == [f"e{i}" for i in range(439, 500)]
    assert groups.unpaired.ids == {f"e{i}" for i in range(439, 500)}
    burst = Chains(10)
    for i in range(50):  # within the timespan, more than the bound
        burst.add("r", corr, last, "b", Event(time="t", event_id=f"e{i}"), 1.0, [("u",)])
    assert len(burst.groups("r").unpaired.order) == 10 and "e49" in burst.groups("r").unpaired.ids


def test_a_later_stage_keeps_the_answer_of_a_group_that_held_nothing() -> None:
    """The first stage of an exec finds its group empty (no chain); an earlier step arrives before the request's
    later stage: that stage is the same request, not a new exec completing the chain. A new exec does complete it."""
    corr = Correlation(rules=["a", "b"], group_by=["actor.user"], seconds=60.0, timespan="1m", threshold=2, kind="temporal_ordered")
    ch = Chains(10)
    step_a, last = Chains.role(corr, "a"), Chains.role(corr, "b")
    b = Event(time="t", event_id="exec-1")
    assert ch.add("r", corr, last, "b", b, 1.0, [("u",)]) is None  # RequestReceived: nothing before it
    a = Event(time="t", event_id="list-1")  # received before the exec, logged after its first stage
    assert ch.add("r", corr, step_a, "a", a, 0.9, [("u",)]) is None
    assert ch.add("r", corr, last, "b", b, 1.0, [("u",)]) is None  # ResponseComplete of the same exec
    later = ch.add("r", corr, last, "b", Event(time="t", event_id="exec-2"), 2.0, [("u",)])
    assert later is not None and [s.event for s in later.earlier] == [a]


def test_plan_feeds_each_chain_once() -> None:
    """A plan names each chain a set of hits feeds once, in the order of the hits and the rules (a correlation
    completed by an event feeding another, ``_cascade``: test_chains.py's denied burst then allowed exec)."""
    from rules_builder import builtin_rules

    corr = Correlator(builtin_rules())
    plan = corr._plan(["k8s-chain-exec-allowed", "k8s-chain-after-node", "k8s-chain-exec-allowed"])
    assert [(r.rule_id, ref) for r, _, _, ref, _, _ in plan] == [
        ("k8s-chain-denied-then-allowed", "k8s-chain-exec-allowed"),
        ("k8s-chain-grant-then-exec", "k8s-chain-exec-allowed"),
        ("k8s-chain-node-credential-pivot", "k8s-chain-after-node"),
    ]
    assert all(groups is not None for *_, groups in plan)  # each an add_last
