"""engine/seen.py: the fixed-size memory of emitted alert keys behaves as the OrderedDict it replaced."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from execguard.engine.seen import SeenKeys


def reference(limit: int, keys: list[tuple[str, ...]]) -> list[bool]:
    """What engine/match.py did before: an OrderedDict of at most ``limit`` keys, oldest out first."""
    seen: OrderedDict[tuple[str, ...], None] = OrderedDict()
    out = []
    for key in keys:
        out.append(key not in seen)
        if key not in seen:
            seen[key] = None
            if len(seen) > limit:
                seen.popitem(last=False)
    return out


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.lists(st.integers(0, 60), max_size=400))
def test_same_answers_as_an_ordered_dict(limit: int, ids: list[int]) -> None:
    keys = [("k8s-audit", f"id-{i}", "", "k8s-exec-shell") for i in ids]
    seen = SeenKeys(limit)
    assert [seen.add(k) for k in keys] == reference(limit, keys)
    assert len(seen) == min(limit, len(set(keys)))


def test_oldest_key_is_forgotten_once_full() -> None:
    seen = SeenKeys(3)
    assert [seen.add(("a", str(i))) for i in range(4)] == [True] * 4
    assert seen.add(("a", "0"))  # pushed out by "3": new again
    assert not seen.add(("a", "3"))
    assert not seen.add(("a", "2"))


def test_long_run_with_wraparound_matches() -> None:
    # many times the limit, keys recurring at distances around it: eviction and the table's runs wrap often
    keys = [("docker-events", f"exec-{(n * 7919) % 2500}", "c", "r") for n in range(20_000)]
    seen = SeenKeys(1000)
    assert [seen.add(k) for k in keys] == reference(1000, keys)


def test_table_is_allocated_whole_on_the_first_key() -> None:
    seen = SeenKeys(200_000)
    assert seen.table_bytes() == 0  # a hunt worker process never adds: nothing allocated
    seen.add(("k8s-audit", "x", "", "r"))
    full = seen.table_bytes()
    assert 8 * 3 * 200_000 <= full <= 8 * 5 * 200_000  # a table of 2-4x the keys and the ring
    for i in range(300_000):
        seen.add(("k8s-audit", str(i), "", "r"))
    assert seen.table_bytes() == full and len(seen) == 200_000
