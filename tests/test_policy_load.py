"""Policy files: a valid one loads into the model; every mistake is reported as FILE:LINE: message."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execguard.policy import PolicyError, load_policy, parse_policy
from execguard.policy.model import Scope

DOCS = Path(__file__).parent.parent / "docs"
HEAD = "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
ENTRY = "  - {action: suppress, reason: r, match: {pods: [x]}}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yml")
    return info.value.lines()


def one(text: str) -> str:
    got = problems(text)
    assert len(got) == 1, got
    return got[0]


def test_full_entry_loads() -> None:
    policy = parse_policy(
        HEAD
        + """\
  - name: ci-smoke
    action: allow
    reason: CI runs smoke tests in staging
    expires: 2027-01-31
    match:
      rules: [k8s-exec-*]
      users: ["system:serviceaccount:ci:*"]
      groups: [ci-runners]
      serviceAccounts: [ci/deployer]
      namespaces: [staging, "qa-*"]
      pods: ["web-*"]
      containers: [app]
      images: ["registry.example/*"]
      commands: ["/smoke/run.sh *"]
      commandRegex: ['^curl -fsS http://localhost:\\d+/healthz$']
      sourceIPs: [10.0.0.0/8, 2001:db8::/32, 192.0.2.7]
  - action: severity
    severity: HIGH
    reason: any exec into payments matters more
    match: {namespaces: payments}
""",
        "p.yml",
    )
    first, second = policy.entries
    assert first.name == "ci-smoke" and first.action == "allow" and first.line == 4
    assert first.expires == date(2027, 1, 31)
    assert first.scope.source_ips == ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7")
    assert first.scope.command_regex == ("^curl -fsS http://localhost:\\d+/healthz$",)
    assert second.name == "#2" and second.severity == "high"
    assert second.scope == Scope(namespaces=("payments",))  # a single value is a one-item list


def test_empty_entries_is_a_policy() -> None:
    assert parse_policy(HEAD).entries == ()
    assert parse_policy(HEAD + "  []\n").entries == ()


def test_shipped_example_loads() -> None:
    policy = load_policy(DOCS / "policy-example.yml")
    assert {e.action for e in policy.entries} == {"allow", "suppress", "severity"}


def test_unknown_key_names_the_nearest() -> None:
    msg = one(HEAD + "  - action: suppress\n    reason: r\n    match:\n      namespace: [x]\n")
    assert msg == "p.yml:7: unknown key 'namespace' in entry 1 match; did you mean 'namespaces'?"
    # the misspelt key is also missing: both said, each on its own line
    assert problems(HEAD + "  - action: suppress\n    reasn: r\n    match: {pods: [x]}\n") == [
        "p.yml:4: entry 1 (#1): missing reason: say why this entry exists (it is shown with what it hides)",
        "p.yml:5: unknown key 'reasn' in entry 1; did you mean 'reason'?",
    ]
    typo = problems(HEAD.replace("apiVersion", "apiversion"))
    assert "p.yml:1: unknown key 'apiversion' in the policy; did you mean 'apiVersion'?" in typo


def test_missing_reason() -> None:
    msg = one(HEAD + "  - name: quiet\n    action: suppress\n    match: {pods: [x]}\n")
    assert msg.startswith("p.yml:4: entry 1 (quiet): missing reason")
    blank = one(HEAD + "  - action: suppress\n    reason: '  '\n    match: {pods: [x]}\n")
    assert blank.startswith("p.yml:5: entry 1 reason must not be empty")


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("pods", "'web-[0-9'", "unclosed '['"),
        ("pods", "''", "item must not be empty"),
        ("sourceIPs", "10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8?"),
        ("sourceIPs", "10.0.0.300", "is not an IP address or CIDR"),
        ("sourceIPs", "example.com", "is not an IP address or CIDR"),
        ("commandRegex", "'curl (http'", "regular expression 'curl (http'"),
        ("serviceAccounts", "deployer", "write NAMESPACE/NAME"),
        ("users", "12345", "must be text; quote '12345'"),
    ],
)
def test_bad_patterns(key: str, value: str, expect: str) -> None:
    msg = one(HEAD + f"  - action: suppress\n    reason: r\n    match:\n      {key}:\n        - {value}\n")
    assert msg.startswith(f"p.yml:8: entry 1 match.{key}"), msg
    assert expect in msg


@pytest.mark.parametrize("value", ["2026-13-01", "'next tuesday'", "2026-02-30", "20261231"])
def test_bad_date(value: str) -> None:
    msg = one(HEAD + f"  - action: suppress\n    reason: r\n    expires: {value}\n    match: {{pods: [x]}}\n")
    assert msg.startswith("p.yml:6: entry 1 expires"), msg


def test_quoted_date_and_time() -> None:
    policy = parse_policy(
        HEAD
        + "  - {action: suppress, reason: r, expires: '2026-12-31', match: {pods: [x]}}\n"
        + "  - {action: suppress, reason: r, expires: 2026-12-31T18:00:00Z, match: {pods: [y]}}\n"
    )
    assert policy.entries[0].expires == date(2026, 12, 31)
    assert policy.entries[1].expires == datetime(2026, 12, 31, 18, tzinfo=UTC)


def test_actions_and_severity() -> None:
    assert "did you mean 'suppress'?" in one(HEAD + "  - {action: supress, reason: r, match: {pods: [x]}}\n")
    assert "needs severity" in one(HEAD + "  - {action: severity, reason: r, match: {pods: [x]}}\n")
    assert "choose one of info, low" in one(HEAD + "  - {action: severity, severity: urgent, reason: r, match: {pods: [x]}}\n")
    assert "severity applies to action: severity only" in one(HEAD + "  - {action: allow, severity: low, reason: r, match: {pods: [x]}}\n")


def test_match_must_narrow() -> None:
    assert "missing match" in one(HEAD + "  - {action: suppress, reason: r}\n")
    assert "match is empty" in one(HEAD + "  - {action: suppress, reason: r, match: {}}\n")
    assert "empty list" in one(HEAD + "  - {action: suppress, reason: r, match: {pods: []}}\n")


def test_header_and_shape() -> None:
    v2 = one("apiVersion: execguard/v2\nkind: Policy\nentries: []\n")
    assert v2 == "p.yml:1: apiVersion 'execguard/v2' is not supported; use execguard/v1"
    assert one("apiVersion: execguard/v1\nentries: []\n") == "p.yml:1: missing kind: Policy"
    assert one("apiVersion: execguard/v1\nkind: Policy\nentries: {a: 1}\n") == "p.yml:3: entries must be a list"
    assert one("- just\n- a list\n").startswith("p.yml:1: the policy must be a mapping")
    assert "empty file" in one("")
    twice = HEAD + ENTRY + "  - {action: suppress, reason: r, match: {pods: x, pods: y}}\n"
    assert one(twice) == "p.yml:5: key 'pods' repeated in entry 2 match (first on line 5)"
    dup = HEAD + ENTRY.replace("{", "{name: a, ", 1) + ENTRY.replace("{", "{name: a, ", 1)
    assert one(dup) == "p.yml:5: entry name 'a' repeated (first on line 4)"


def test_yaml_syntax_error_has_a_line() -> None:
    msg = one(HEAD + "  - action: suppress\n    reason: [unclosed\n    match: {pods: [x]}\n")
    assert msg.startswith("p.yml:") and "invalid YAML" in msg


def test_every_problem_reported_in_line_order() -> None:
    got = problems(HEAD + ENTRY.replace("suppress", "nope") + "  - action: suppress\n    match:\n      sourceIPs: [1.2.3.4/8]\n")
    assert [g.split(":")[1] for g in got] == ["4", "5", "7"]


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing.yml: cannot read"):
        load_policy(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_bytes(HEAD.encode() + b"  - name: \xff\n")
    with pytest.raises(PolicyError, match=r"bad.yml:4: not valid UTF-8"):
        load_policy(bad)


FRAGMENTS = [
    "apiVersion: execguard/v1\n", "kind: Policy\n", "entries:\n", "  - ", "name: a\n", "action: suppress\n",
    "action: severity\n", "severity: high\n", "reason: r\n", "expires: 2026-01-01\n", "expires: [1]\n", "match:\n",
    "    pods: [x]\n", "    sourceIPs: 1.2.3.4/40\n", "      - '[a'\n", "&a [*a]\n", "*a\n", "{", "}", "[", "]", ": ", "- ",
    "!!binary aGk=\n", "!!python/object:os.system x\n", "\t", "\xff", "~\n", "    commandRegex: '('\n", "    users: 12\n",
    "  ", "    ",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_any_text_loads_or_says_where(parts: list[str]) -> None:
    text = "".join(parts)
    try:
        policy = parse_policy(text, "p.yml")
    except PolicyError as exc:
        assert exc.problems and all(line.startswith("p.yml") for line in exc.lines())
        return
    assert all(e.reason and e.scope.given() for e in policy.entries)
