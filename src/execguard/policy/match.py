"""Match policy entries against alerts: globs and regexes compiled once, CIDRs through ipaddress.

Semantics (docs/policy.md): an entry's scope is tested against the alert's event; its `rules`
against each rule hit. Per hit, the first active severity entry in file order sets the level and
the first active allow/suppress entry hides the hit. An alert whose hits are all hidden is
suppressed, credited to the entry that hid its lead hit; otherwise it goes on with the rest.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import translate

from ..model import Alert, Event, RuleMatch
from .model import HIDING, Entry, Policy, Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SA_PREFIX = "system:serviceaccount:"


def check_glob(pattern: str) -> None:
    """fnmatch takes any text; catch the mistakes it would silently read literally."""
    if not pattern:
        raise ValueError("empty pattern")
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1 + (pattern[i + 1 : i + 2] == "!")
            j += pattern[j : j + 1] == "]"  # a leading ] is literal inside a class
            j = pattern.find("]", j)
            if j < 0:
                raise ValueError(f"glob {pattern!r} has an unclosed '['")
            i = j
        i += 1


def compile_globs(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regex for a list of globs; `*` matches any text, `/` and `:` included."""
    for p in patterns:
        check_glob(p)
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


def compile_regex(pattern: str) -> re.Pattern[str]:
    if not pattern:
        raise ValueError("empty regular expression")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regular expression {pattern!r}: {exc}") from None


def compile_cidr(text: str) -> Network:
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"{text!r} has host bits set; did you mean {fixed}?") from None
        raise ValueError(f"{text!r} is not an IP address or CIDR") from None


def check_service_account(text: str) -> None:
    check_glob(text)
    if text.count("/") != 1 or text.startswith("/") or text.endswith("/"):
        raise ValueError(f"service account {text!r}: write NAMESPACE/NAME (globs allowed), e.g. ci/deployer")


def check_label(text: str) -> None:
    key, eq, _ = text.partition("=")
    if not eq or not key:
        raise ValueError(f"label {text!r}: write KEY=VALUE (globs allowed), e.g. app=web or team=*")
    check_glob(text)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 for a 10.0.0.0/8 entry
    return ip


def _all_inside(ips: list[str], nets: list[Network]) -> bool:
    """Every source IP inside the networks: the audit log lists X-Forwarded-For first, and a client
    writes that header itself, so one forged allowed address must not be enough to match."""
    if not ips:
        return False
    for text in ips:
        ip = _address(text)
        if ip is None or not any(ip in n for n in nets):
            return False
    return True


def _service_account(user: str | None) -> str | None:
    if not user or not user.startswith(SA_PREFIX):
        return None
    ns, _, name = user[len(SA_PREFIX) :].partition(":")
    return f"{ns}/{name}"


Test = Callable[[Event], bool]


def _one(glob: re.Pattern[str], get: Callable[[Event], str | None]) -> Test:
    def test(ev: Event) -> bool:
        value = get(ev)
        return value is not None and glob.match(value) is not None

    return test


class ScopeMatcher:
    """An entry's scope compiled: ``event`` checks everything but the rules, ``rule`` the rule id."""

    def __init__(self, scope: Scope) -> None:
        self.rules = compile_globs(scope.rules) if scope.rules else None
        tests: list[Test] = []
        if scope.users:
            tests.append(_one(compile_globs(scope.users), lambda ev: ev.actor.user))
        if scope.groups:
            groups = compile_globs(scope.groups)
            tests.append(lambda ev: any(groups.match(g) for g in ev.actor.groups))
        if scope.service_accounts:
            tests.append(_one(compile_globs(scope.service_accounts), lambda ev: _service_account(ev.actor.user)))
        if scope.namespaces:
            tests.append(_one(compile_globs(scope.namespaces), lambda ev: ev.target.namespace))
        if scope.pods:
            tests.append(_one(compile_globs(scope.pods), lambda ev: ev.target.pod))
        if scope.containers:
            tests.append(_one(compile_globs(scope.containers), lambda ev: ev.target.container))
        if scope.images:
            tests.append(_one(compile_globs(scope.images), lambda ev: ev.target.image))
        if scope.commands:
            tests.append(_one(compile_globs(scope.commands), lambda ev: " ".join(ev.command)))
        if scope.command_regex:
            regexes = [compile_regex(r) for r in scope.command_regex]
            tests.append(lambda ev: any(r.search(" ".join(ev.command)) for r in regexes))
        if scope.source_ips:
            nets = [compile_cidr(c) for c in scope.source_ips]
            tests.append(lambda ev: _all_inside(ev.actor.source_ip, nets))
        self.tests = tests
        self.labels = compile_globs(scope.labels) if scope.labels else None

    def event(self, ev: Event, labels: dict[str, str] | None = None) -> bool:
        """Labels come beside the event (guard knows them; logged events do not): none given never matches a labels key."""
        if self.labels is not None:
            if not labels:
                return False
            glob = self.labels
            if not any(glob.match(f"{k}={v}") for k, v in labels.items()):
                return False
        return all(t(ev) for t in self.tests)

    def rule(self, rule_id: str) -> bool:
        return self.rules is None or self.rules.match(rule_id) is not None


@dataclass(slots=True)
class Verdict:
    alert: Alert  # severities re-rated; the hits left, or all of them when suppressed
    suppressed_by: Entry | None = None
    hidden: list[tuple[RuleMatch, Entry]] = field(default_factory=list)  # hits hidden from an alert that still fires
    rerated: bool = False  # a severity entry changed some hit's level


Candidate = tuple[int, Entry, ScopeMatcher]  # position in the policy, the entry, its compiled scope


class PolicyMatcher:
    """A loaded policy ready to apply; entries expired at ``now`` are left out."""

    def __init__(self, policy: Policy, now: datetime | None = None) -> None:
        self.policy = policy
        self.now = now or datetime.now(UTC)
        active = [(i, e, ScopeMatcher(e.scope)) for i, e in enumerate(policy.entries) if not e.expired(self.now)]
        self.severity = [c for c in active if c[1].action == "severity"]
        self.hiding = [c for c in active if c[1].action in HIDING]
        self.probes = [c for c in active if c[1].action == "probe"]
        # rule id -> the entries whose `rules` admit it; rule ids are few, so the cache stays small
        self._by_rule: dict[str, tuple[list[Candidate], list[Candidate]]] = {}

    def expected(self, ev: Event) -> bool:
        """A `probe` entry's scope matches this node exec: the join does not call it a bypass (docs/node.md)."""
        return any(c[2].event(ev) for c in self.probes)

    def _candidates(self, rule_id: str) -> tuple[list[Candidate], list[Candidate]]:
        found = self._by_rule.get(rule_id)
        if found is None:
            found = ([c for c in self.severity if c[2].rule(rule_id)], [c for c in self.hiding if c[2].rule(rule_id)])
            self._by_rule[rule_id] = found
        return found

    def apply(self, alert: Alert) -> Verdict:
        if not self.severity and not self.hiding:
            return Verdict(alert)
        ev = alert.event
        in_scope: dict[int, bool] = {}  # entry position -> its scope matched this event; tested at most once

        def scoped(c: Candidate) -> bool:
            known = in_scope.get(c[0])
            if known is None:
                known = in_scope[c[0]] = c[2].event(ev)
            return known

        matches: list[RuleMatch] = []
        hidden: list[tuple[RuleMatch, Entry]] = []
        kept: list[RuleMatch] = []
        rerated = False
        for m in alert.matches:
            severity, hiding = self._candidates(m.rule_id)
            entry = next((c[1] for c in severity if scoped(c)), None)
            if entry is not None and entry.severity and entry.severity != m.severity:
                why = f"{m.reason} [policy {entry.name}: {m.severity} -> {entry.severity}]"
                m = replace(m, severity=entry.severity, reason=why)
                rerated = True
            matches.append(m)
            by = next((c[1] for c in hiding if scoped(c)), None)
            if by is None:
                kept.append(m)
            else:
                hidden.append((m, by))
        if not hidden:
            return Verdict(replace(alert, matches=matches), rerated=rerated)
        if kept:
            return Verdict(replace(alert, matches=kept), None, hidden, rerated)
        whole = replace(alert, matches=matches)
        lead = whole.lead
        return Verdict(whole, next(e for m, e in hidden if m is lead), hidden, rerated)
