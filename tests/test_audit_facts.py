"""Fact names are validated when the catalogue loads: a check naming a fact no collector builds is refused.

The declared table (audit/facts.py) is kept honest by building every item the collectors make over the
fixtures, a real TCP probe and a real Unix socket, and checking each item's facts against it.
"""

from __future__ import annotations

import copy
import socket
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from execguard.audit.collect import collect_items
from execguard.audit.engine import CatalogueError, Item, catalogue, parse_catalogue
from execguard.audit.facts import FACTS
from execguard.audit.gather.docker_live import socket_items
from execguard.audit.gather.inputs import read_dir
from execguard.audit.gather.probe import probe

DATA = Path(__file__).parent / "data" / "audit"


def _entries() -> list[dict[str, Any]]:
    text = (resources.files("execguard.audit") / "checks.yml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)
    assert isinstance(entries, list)
    return entries


def _first(entries: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(e for e in entries if e["kind"] == kind and e.get("when"))


def test_builtin_catalogue_names_only_declared_facts() -> None:
    checks = catalogue()
    assert {c.kind for c in checks} <= set(FACTS)
    for c in checks:
        assert set(c.when) <= FACTS[c.kind], c.id


def test_typo_in_when_is_refused() -> None:
    entries = copy.deepcopy(_entries())
    check = _first(entries, "kubelet")
    fact = next(iter(check["when"]))
    check["when"][fact[:-1]] = check["when"].pop(fact)  # drop the last letter
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(entries, FACTS)
    message = str(err.value)
    assert check["id"] in message and repr(fact[:-1]) in message and f"did you mean {fact!r}" in message
    assert "\n" not in message


def test_typo_in_a_template_or_kind_is_refused() -> None:
    entries = copy.deepcopy(_entries())
    _first(entries, "rbac_grant")["evidence"] = "{subjct} may exec"
    with pytest.raises(CatalogueError, match=r"evidence names fact 'subjct'.*did you mean 'subject'"):
        parse_catalogue(entries, FACTS)
    entries = copy.deepcopy(_entries())
    _first(entries, "apiserver")["kind"] = "apiservr"
    with pytest.raises(CatalogueError, match=r"unknown item kind 'apiservr'.*did you mean 'apiserver'"):
        parse_catalogue(entries, FACTS)


def test_without_a_fact_table_any_name_is_accepted() -> None:
    entries = copy.deepcopy(_entries())
    _first(entries, "kubelet")["when"] = {"no_such_fact": True}
    assert len(parse_catalogue(entries)) == len(entries)


def _check_items(items: list[Item]) -> set[str]:
    for item in items:
        assert item.kind in FACTS, item.kind
        extra = set(item.facts) - FACTS[item.kind]
        assert not extra, f"{item.kind} {item.target}: undeclared facts {sorted(extra)}"
    return {item.kind for item in items}


def test_collectors_build_only_declared_facts() -> None:
    kinds: set[str] = set()
    dirs = sorted(p for p in DATA.rglob("*") if p.is_dir())
    for d in dirs:
        items, _ = collect_items(read_dir(str(d)))
        kinds |= _check_items(items)
    # the offline fixtures reach every offline item kind
    assert kinds >= {"rbac_grant", "workload_sa", "workload_pod", "exec_probe", "kubelet", "apiserver", "audit_coverage"}
    assert kinds >= {"docker_listener", "docker_daemon", "workload_hostpath"}


def test_live_readers_build_only_declared_facts(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on: the probe still builds its item
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert _check_items(probe(f"127.0.0.1:{port}")) == {"tcp_probe"}
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert _check_items(probe(f"127.0.0.1:{listening.getsockname()[1]}/kubelet")) == {"tcp_probe"}
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(path))
        assert _check_items(socket_items(str(path))) == {"docker_socket"}
