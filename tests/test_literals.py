"""engine.literals.required: a regex never matches text that holds none of its required literals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from execguard.engine.literals import fold, required
from execguard.sinks.alert_json import alert_dict

RULES = Path(__file__).parents[1] / "src" / "execguard" / "rules"


def builtin_regexes() -> list[tuple[str, int]]:
    out = []
    for path in sorted(RULES.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for block in (doc.get("detection") or {}).values():
            if not isinstance(block, dict):
                continue
            for key, value in block.items():
                if "|re" in key:
                    flags = (re.I if "|i" in key else 0) | (re.M if "|m" in key else 0)
                    for v in value if isinstance(value, list) else [value]:
                        out.append((v, flags))
    return out


REGEXES = builtin_regexes()


def gate_ok(pattern: str, flags: int, text: str) -> bool:
    """The property: if the regex matches, the text holds a required literal."""
    gate = required(pattern, flags)
    if gate is None or not re.search(pattern, text, flags):
        return True
    hay = fold(text) if flags & re.I else text
    return any(lit in hay for lit in gate)


def test_builtin_rules_mostly_get_gates() -> None:
    gated = [p for p, f in REGEXES if required(p, f)]
    assert len(REGEXES) > 25
    assert len(gated) >= len(REGEXES) - 3, "a rule change lost most gates: check literals.required"


@pytest.mark.parametrize(
    ("pattern", "flags", "want"),
    [
        (r"\b(curl|wget)\b.*\|\s*sh", 0, {"curl", "wget"}),
        (r"xmrig", re.I, {"xmrig"}),
        (r"XMRig", re.I, {"xmrig"}),  # lowered: tested against folded text
        (r"(?i)XMRig", 0, {"xmrig"}),  # inline flag at the start
        (r"a(?i:XMRIG)", 0, None),  # scoped flags: no gate rather than a wrong one
        (r"(curl|)x", 0, None),  # an empty alternative needs nothing
        (r"(curl)?wget", 0, {"wget"}),  # optional part skipped
        (r"(curl)+", 0, {"curl"}),
        (r"[a-z]+", 0, None),
        (r"ab", 0, {"ab"}),
        (r"a", 0, None),  # too short to be worth a test
        (r"(", 0, None),  # not a regex
    ],
)
def test_required(pattern: str, flags: int, want: set[str] | None) -> None:
    got = required(pattern, flags)
    assert (set(got) if got is not None else None) == want


def test_unicode_case_folding() -> None:
    # Python's IGNORECASE matches 'ı' for 'i' and 'ſ' for 's'; the folded text must too
    assert re.search("kinsing", "KıNſıNG", re.I)
    assert gate_ok("kinsing", re.I, "KıNſıNG")
    assert gate_ok("kinsing", re.I, "\u212aINSING")  # KELVIN SIGN lowers to k


pieces = st.sampled_from(
    [
        "curl", "wget", " | ", "sh", "bash", "-c", " ", "/tmp/", "chmod +x ", "xmrig", "XMRIG", "stratum+tcp://",
        "nc -e ", "/dev/tcp/", "base64 -d", "history -c", "rm -rf /var/log/", "apt-get install ", "nmap",
        "kubernetes.default", "ı", "ſ", "K", ";", "&&", "\n", "python -c ", "import socket", "pty.spawn", "tar cf -",
    ]
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(pieces | st.text(max_size=4), max_size=14))
def test_gate_never_hides_a_match(parts: list[str]) -> None:
    text = "".join(parts)
    for pattern, flags in REGEXES:
        assert gate_ok(pattern, flags, text), pattern


def test_gates_change_no_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over simulated telemetry of every format and attack, gated and ungated rules give the same alerts."""
    from execguard.engine import compile as sigma
    from execguard.engine.load import load_rules
    from execguard.engine.match import Engine
    from execguard.sim.simulate import write as simulate
    from execguard.sources.reader import Reader

    simulate(tmp_path, events=1500, seed=7)
    (tmp_path / "labels.jsonl").unlink()

    def alerts() -> list[dict[str, object]]:
        engine = Engine(load_rules([], builtin=True))
        return [alert_dict(a) for a in engine.run(Reader().read([str(tmp_path)]))]

    gated = alerts()
    monkeypatch.setattr(sigma, "rule_gate", lambda node: None)
    monkeypatch.setattr(sigma, "required", lambda pattern, flags=0: None)
    assert alerts() == gated
    assert len(gated) > 50
