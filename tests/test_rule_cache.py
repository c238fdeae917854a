"""The compiled-rule cache: the same rules and alerts as compiling, and a changed rule file is never read stale."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from execguard.engine.fields import FieldView
from execguard.engine.load import load_rules
from execguard.engine.match import Engine
from execguard.model import Event
from execguard.pipeline import rules as rule_cache
from execguard.pipeline.prefilter import literals_for
from execguard.sim.simulate import write as simulate
from execguard.sinks.alert_json import alert_dict
from execguard.sources.reader import Reader


def rule(title: str, command: str = "whoami") -> str:
    return (
        f"title: {title}\n"
        "id: 5f1f7f0a-1c55-4b7e-9a35-2f6a0c1d9e02\n"
        "name: cache-test\n"
        "status: experimental\n"
        "logsource: {product: kubernetes, service: audit}\n"
        "detection:\n"
        f"  sel: {{command.text|contains: {command}}}\n"
        "  condition: sel\n"
        "level: high\n"
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "execguard"


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("rules-*.pickle")) if cache.is_dir() else []


def alerts(loaded: list[object], files: list[str]) -> list[str]:
    engine = Engine(loaded)  # type: ignore[arg-type]
    reader = Reader(literals=literals_for(engine.actions()))
    return [json.dumps(alert_dict(a)) for a in engine.run(reader.read(files))]


def test_cached_rules_give_the_same_alerts(cache: Path, tmp_path: Path) -> None:
    simulate(tmp_path / "sim", events=300, seed=2)
    files = [str(p) for p in sorted((tmp_path / "sim").iterdir()) if p.name != "labels.jsonl"]
    first = rule_cache.load([])
    assert len(entries(cache)) == 1
    cached = rule_cache.load([])
    assert cached is not first and [r.rule_id for r in cached] == [r.rule_id for r in first]
    for a, b in zip(first, cached, strict=True):
        assert (a.title, a.severity, a.tags, a.reason, a.actions, a.fields_used, a.path) == (
            b.title, b.severity, b.tags, b.reason, b.actions, b.fields_used, b.path
        )
    want = alerts(load_rules([]), files)
    assert len(want) > 50
    assert alerts(cached, files) == want


def test_a_changed_rule_file_is_compiled_again(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(rule("first title"))
    assert [r.title for r in rule_cache.load([str(path)], builtin=False)] == ["first title"]
    assert [r.title for r in rule_cache.load([str(path)], builtin=False)] == ["first title"]  # from the cache
    st = path.stat()
    path.write_text(rule("other title"))  # the same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert [r.title for r in rule_cache.load([str(path)], builtin=False)] == ["other title"]
    path.write_text(rule("other title", command="id; uname -a"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime, another size
    (mine,) = rule_cache.load([str(path)], builtin=False)
    assert mine.matcher(FieldView(Event(command=["id;", "uname", "-a"]))) and not mine.matcher(FieldView(Event(command=["whoami"])))
    assert len(entries(cache)) == 3


def test_unusable_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache directory cannot be created
    assert len(rule_cache.load([])) == len(load_rules([]))
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    rule_cache.load([])
    (entry,) = entries(cache / "execguard")
    entry.write_bytes(b"not a pickle")  # cut short or damaged: compiled again, and the entry rewritten
    assert len(rule_cache.load([])) == len(load_rules([]))
    (entry,) = entries(cache / "execguard")
    assert entry.read_bytes() != b"not a pickle"
    entry.chmod(0o666)  # writable by others: never trusted
    assert rule_cache._read(entry) is None


def test_a_bad_rule_is_refused_and_not_cached(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(rule("bad").replace("command.text", "no.such.field"))
    with pytest.raises(rule_cache.RuleError):
        rule_cache.load([str(path)], builtin=False)
    assert entries(cache) == []


def cells(fn: object) -> Iterator[object]:
    """Every closure cell of a matcher and of the matchers it holds."""
    for cell in getattr(fn, "__closure__", None) or ():
        yield cell
        content = cell.cell_contents
        for sub in content if isinstance(content, (list, tuple)) else (content,):
            yield from cells(sub)


def test_cached_regexes_are_compiled_on_first_use(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(rule("regex").replace("command.text|contains: whoami", "command.text|re: 'who[a-z]mi'"))
    rule_cache.load([str(path)], builtin=False)  # compiled and stored
    (mine,) = rule_cache.load([str(path)], builtin=False)  # from the cache
    lazy = [c for c in cells(mine.matcher) if isinstance(c.cell_contents, rule_cache._LazyMethod)]
    assert [c.cell_contents.pattern for c in lazy] == ["who[a-z]mi"]
    assert not mine.matcher(FieldView(Event(command=["id"])))
    assert mine.matcher(FieldView(Event(command=["whoami"])))
    assert not mine.matcher(FieldView(Event(command=["who2mi"])))
    # once called, the matcher's cell holds the compiled pattern's own method: no wrapper left on the hot path
    (compiled,) = [c.cell_contents for c in lazy]
    assert compiled.__self__ == re.compile("who[a-z]mi") and compiled.__name__ == "search"
    assert not any(isinstance(c.cell_contents, rule_cache._LazyMethod) for c in cells(mine.matcher))
