"""Policy matching: every scope dimension both ways, per-hit semantics, first match wins, expiry, re-rating."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execguard.model import SEVERITIES, Actor, Alert, Event, RuleMatch, Target, severity_rank
from execguard.policy import Entry, Policy, PolicyFilter, PolicyMatcher, Scope, parse_policy
from execguard.policy.match import check_glob
from execguard.sinks.alert_json import alert_dict

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def event(**kw: Any) -> Event:
    actor = Actor(
        user=kw.get("user", "system:serviceaccount:ci:deployer"),
        groups=kw.get("groups", ["system:serviceaccounts", "ci-runners"]),
        source_ip=kw.get("source_ip", ["10.1.2.3"]),
    )
    target = Target(
        namespace=kw.get("namespace", "staging"),
        pod=kw.get("pod", "web-7d9f8-abcde"),
        container=kw.get("container", "app"),
        image=kw.get("image", "registry.example.com/shop/web:1.4"),
    )
    return Event(actor=actor, target=target, action="exec", command=kw.get("command", ["sh", "-c", "/smoke/run.sh --fast"]))


def hit(rule_id: str = "k8s-exec-api", severity: str = "low") -> RuleMatch:
    return RuleMatch(rule_id, rule_id, severity, [], f"{rule_id} fired")


def entry(action: str = "suppress", name: str = "e", severity: str | None = None, expires: Any = None, **scope: Any) -> Entry:
    return Entry(name, action, "because", Scope(**{k: tuple(v) for k, v in scope.items()}), severity, expires)


def suppressed(e: Entry, ev: Event, *hits: RuleMatch) -> bool:
    verdict = PolicyMatcher(Policy((e,)), NOW).apply(Alert(ev, list(hits) or [hit()]))
    return verdict.suppressed_by is e


@pytest.mark.parametrize(
    ("scope", "yes", "no"),
    [
        ({"rules": ["k8s-exec-*"]}, {}, None),
        ({"users": ["system:serviceaccount:ci:*"]}, {}, {"user": "alice"}),
        ({"groups": ["ci-*"]}, {}, {"groups": ["system:authenticated"]}),
        ({"service_accounts": ["ci/*"]}, {}, {"user": "system:serviceaccount:prod:deployer"}),
        ({"service_accounts": ["*/deployer"]}, {}, {"user": "deployer"}),  # a plain user is no service account
        ({"namespaces": ["staging", "qa"]}, {"namespace": "qa"}, {"namespace": "prod"}),
        ({"pods": ["web-*"]}, {}, {"pod": "db-0"}),
        ({"containers": ["app"]}, {}, {"container": "sidecar"}),
        ({"images": ["registry.example.com/*"]}, {}, {"image": "docker.io/library/alpine:3"}),
        ({"commands": ["sh -c /smoke/*"]}, {}, {"command": ["sh", "-c", "curl evil | sh; /smoke/run.sh"]}),
        ({"command_regex": [r"/smoke/run\.sh\b"]}, {}, {"command": ["sh", "-c", "/smoke/run.shx"]}),
        ({"source_ips": ["10.0.0.0/8"]}, {}, {"source_ip": ["192.0.2.1"]}),
        ({"source_ips": ["10.1.2.3"]}, {"source_ip": ["10.1.2.3"]}, {"source_ip": ["10.1.2.4"]}),
        # every address must be inside: a forged X-Forwarded-For entry in the range is not enough
        ({"source_ips": ["10.0.0.0/8"]}, {"source_ip": ["10.9.9.9", "10.1.2.3"]}, {"source_ip": ["10.1.2.3", "203.0.113.9"]}),
        ({"source_ips": ["10.0.0.0/8", "192.0.2.0/24"]}, {"source_ip": ["10.9.9.9", "192.0.2.1"]}, {"source_ip": []}),
        ({"source_ips": ["10.0.0.0/8"]}, {"source_ip": ["::ffff:10.9.9.9"]}, {"source_ip": ["not-an-ip"]}),
        ({"source_ips": ["2001:db8::/32"]}, {"source_ip": ["2001:db8::7"]}, {"source_ip": ["2001:db9::7"]}),
    ],
)
def test_each_dimension(scope: dict[str, list[str]], yes: dict[str, Any], no: dict[str, Any] | None) -> None:
    e = entry(**scope)
    assert suppressed(e, event(**yes))
    if no is not None:
        assert not suppressed(e, event(**no))
    else:
        assert not suppressed(e, event(), hit("docker-exec"))


def test_missing_field_never_matches_a_given_dimension() -> None:
    # docker events carry no user, namespace or source IP: an entry naming one cannot match them
    bare = Event(action="exec", command=["id"], target=Target(container="web"))
    for scope in ({"users": ["*"]}, {"namespaces": ["*"]}, {"source_ips": ["0.0.0.0/0"]}, {"pods": ["*"]}, {"images": ["*"]}):
        assert not suppressed(entry(**scope), bare), scope
    assert suppressed(entry(containers=["web"]), bare)
    assert suppressed(entry(commands=["*"]), Event(action="attach"))  # no argv is the empty command line


def test_all_dimensions_must_match() -> None:
    e = entry(namespaces=["staging"], users=["alice"])
    assert not suppressed(e, event())
    assert suppressed(e, event(user="alice"))


def test_globs_are_case_sensitive_and_whole() -> None:
    assert not suppressed(entry(pods=["web"]), event())  # "web" is not "web-7d9f8-abcde"
    assert not suppressed(entry(namespaces=["Staging"]), event())
    assert suppressed(entry(pods=["web-[0-9a-f]*"]), event())


def test_suppress_by_rule_hides_that_hit_only() -> None:
    matcher = PolicyMatcher(Policy((entry(rules=["k8s-exec-api"]),)), NOW)
    shell = hit("cmd-reverse-shell", "critical")
    verdict = matcher.apply(Alert(event(), [hit(), shell]))
    assert verdict.suppressed_by is None
    assert verdict.alert.matches == [shell]
    assert [m.rule_id for m, _ in verdict.hidden] == ["k8s-exec-api"]


def test_whole_alert_credited_to_the_entry_that_hid_its_lead() -> None:
    api, sa = entry(name="api", rules=["k8s-exec-api"]), entry(name="sa", rules=["k8s-exec-service-account"])
    verdict = PolicyMatcher(Policy((api, sa)), NOW).apply(Alert(event(), [hit(), hit("k8s-exec-service-account", "medium")]))
    assert verdict.suppressed_by is sa
    assert len(verdict.alert.matches) == 2  # all hits kept, for --show-suppressed


def test_first_match_wins_in_file_order() -> None:
    first, second = entry(name="first", namespaces=["staging"]), entry("allow", name="second", users=["*"])
    assert PolicyMatcher(Policy((first, second)), NOW).apply(Alert(event(), [hit()])).suppressed_by is first
    assert PolicyMatcher(Policy((second, first)), NOW).apply(Alert(event(), [hit()])).suppressed_by is second
    low, high = entry("severity", "low", "info", rules=["*"]), entry("severity", "high", "high", rules=["*"])
    assert PolicyMatcher(Policy((high, low)), NOW).apply(Alert(event(), [hit()])).alert.severity == "high"


def test_severity_raise_and_lower_for_a_scope() -> None:
    raise_ = entry("severity", "payments", "critical", rules=["k8s-exec-*"], namespaces=["payments"])
    lower = entry("severity", "staging", "info", rules=["k8s-exec-api"], namespaces=["staging"])
    matcher = PolicyMatcher(Policy((raise_, lower)), NOW)
    up = matcher.apply(Alert(event(namespace="payments"), [hit()]))
    assert up.alert.severity == "critical" and up.rerated
    assert "[policy payments: low -> critical]" in up.alert.matches[0].reason
    assert matcher.apply(Alert(event(), [hit()])).alert.severity == "info"
    untouched = matcher.apply(Alert(event(namespace="prod"), [hit()]))
    assert untouched.alert.severity == "low" and not untouched.rerated
    # only the named rule is re-rated: the lead changes to the other hit
    both = matcher.apply(Alert(event(), [hit(), hit("k8s-exec-service-account", "medium")]))
    assert [m.severity for m in both.alert.matches] == ["info", "medium"] and both.alert.lead.rule_id == "k8s-exec-service-account"


def test_severity_applies_before_the_floor() -> None:
    policy = Policy((entry("severity", "up", "high", rules=["k8s-exec-api"]), entry("severity", "down", "info", rules=["docker-exec"])))
    run = PolicyFilter(policy, min_severity="medium", now=NOW)
    raised = run(Alert(event(), [hit()]))
    assert raised is not None and raised.severity == "high"  # low, raised above the medium floor
    assert run(Alert(event(), [hit("docker-exec", "medium")])) is None  # medium, lowered under it
    assert run.rerated == 1


def test_expired_entries_do_not_apply() -> None:
    day = entry(name="day", expires=date(2026, 6, 15), namespaces=["staging"])
    assert suppressed(day, event())  # the date is the last day it applies
    assert not PolicyMatcher(Policy((day,)), datetime(2026, 6, 16, 0, 0, 1, tzinfo=UTC)).apply(Alert(event(), [hit()])).suppressed_by
    instant = entry(name="instant", expires=datetime(2026, 6, 15, 12, 0, tzinfo=UTC), namespaces=["staging"])
    assert not suppressed(instant, event())  # it stopped at exactly NOW
    naive = entry(name="naive", expires=datetime(2026, 6, 15, 13, 0), namespaces=["staging"])  # read as UTC
    assert suppressed(naive, event())
    policy = Policy((day, instant, naive))
    assert [e.name for e in PolicyFilter(policy, now=NOW).expired()] == ["instant"]


def test_filter_counts_and_marks() -> None:
    policy = parse_policy(
        "apiVersion: execguard/v1\nkind: Policy\nentries:\n"
        "  - {name: ci, action: allow, reason: CI smoke tests, match: {serviceAccounts: [ci/*]}}\n"
        "  - {name: api, action: suppress, reason: noisy, match: {rules: [k8s-exec-api]}}\n",
        "p.yml",
    )
    alerts = [Alert(event(), [hit()]), Alert(event(user="alice"), [hit(), hit("cmd-recon", "medium")]), Alert(event(user="bob"), [hit()])]
    hidden = PolicyFilter(policy, now=NOW)
    assert [a.event.actor.user for a in hidden.filter(alerts)] == ["alice"]
    assert hidden.suppressed == {"ci": 1, "api": 1} and hidden.hidden == {"api": 1}
    assert hidden.summary() == "policy p.yml: 2 alerts suppressed (1 by ci, 1 by api); 1 rule hits hidden from alerts still reported"
    shown = list(PolicyFilter(policy, show_suppressed=True, now=NOW).filter(alerts))
    assert [a.suppressed for a in shown] == ["ci: CI smoke tests", None, "api: noisy"]
    assert alert_dict(shown[0])["suppressed"] == "ci: CI smoke tests" and "suppressed" not in alert_dict(shown[1])


def test_bracket_globs() -> None:
    for ok in ("a[]]", "a[!]]b", "[abc]", "x[!a]"):
        check_glob(ok)
    for bad in ("a[", "a[]", "[!]"):
        with pytest.raises(ValueError, match="unclosed"):
            check_glob(bad)


names = st.text(alphabet="abcz-:/*.0123456789", max_size=12)
events = st.builds(
    lambda user, ns, pod, ips, argv: Event(actor=Actor(user=user, source_ip=ips), target=Target(namespace=ns, pod=pod), command=argv),
    st.none() | names,
    st.none() | names,
    st.none() | names,
    st.lists(st.ip_addresses().map(str) | names, max_size=2),
    st.lists(names, max_size=3),
)
matches = st.lists(st.builds(hit, st.sampled_from(["k8s-exec-api", "docker-exec", "cmd-recon"]), st.sampled_from(SEVERITIES)), min_size=1)


@given(st.lists(st.builds(Alert, events, matches), max_size=5), st.sampled_from(SEVERITIES))
def test_empty_policy_changes_nothing(alerts: list[Alert], floor: str) -> None:
    before = [alert_dict(a) for a in alerts]
    run = PolicyFilter(Policy(), min_severity=floor, now=NOW)
    after = [alert_dict(a) for a in run.filter(alerts)]
    assert after == [d for a, d in zip(alerts, before, strict=True) if severity_rank(a.severity) >= severity_rank(floor)]
    assert [alert_dict(a) for a in alerts] == before  # the input alerts are not modified
    assert not run.suppressed and not run.hidden and run.rerated == 0
