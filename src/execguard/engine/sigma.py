"""Compile Sigma rules (parsed by pySigma) into Python matchers over the flat event fields.

pySigma does the parsing and modifier handling (contains, all, re, cidr, ...); this module is
a small backend whose "query" is a closure. Unsupported constructs fail at load time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from ..model import FIELDS
from .checks import PLACEHOLDER, field_line, line_of, read_problem, reason_problem, sigma_problem, unknown_field
from .gates import Gate, rule_gate
from .literals import fold, required

if TYPE_CHECKING:
    from .correlate import Correlation

try:  # pySigma >= 2 checks |re values with RE2, whose C++ logging writes its own lines to stderr. The matchers
    # here run Python's re, so check with that: the same dialect, and nothing on stderr but our one error line.
    from sigma.policy import SigmaPolicy
    from sigma.policy.regex_engine import PythonRegexEngine

    _POLICY: SigmaPolicy | None = SigmaPolicy(regex_engine=PythonRegexEngine())
except ImportError:  # pragma: no cover - older pySigma
    _POLICY = None

Fields = dict[str, Any]
Matcher = Callable[[Fields], bool]

LEVELS = {"informational": "info", "info": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
KEYWORD_FIELDS = ("command.text", "request_uri", "actor.user_agent")
PROCEDURES = {
    "s0601": "S0601 Hildegard",
    "s0599": "S0599 Kinsing",
    "s0683": "S0683 Peirates",
    "s0623": "S0623 Siloscape",
    "g0139": "G0139 TeamTNT",
}


class RuleError(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


@dataclass
class Rule:
    rule_id: str  # the Sigma `name`, or its id
    sigma_id: str
    title: str
    severity: str
    tags: list[str]
    description: str
    reason: str
    matcher: Matcher
    actions: set[str] | None  # actions the rule can fire on; None = any
    path: str = ""
    fields_used: set[str] = field(default_factory=set)
    correlation: Correlation | None = None  # set for Sigma correlation rules (engine/correlate.py)

    def explain(self, fields: Fields) -> str:
        return _render(self.reason or self.title, fields)


def _where(fields: Fields) -> str:
    """Where a command ran, in whatever terms the source knows (pod, container, node)."""
    ns, pod, ctr = fields.get("target.namespace"), fields.get("target.pod"), fields.get("target.container")
    parts = []
    if pod:
        parts.append(f"{ns}/{pod}" if ns else str(pod))
    elif ns:
        parts.append(f"namespace {ns}")
    if ctr:
        parts.append(f"container {ctr}")
    elif fields.get("target.container_id"):
        parts.append(f"container {str(fields['target.container_id'])[:12]}")
    origin = fields.get("command.origin")
    if origin and origin != "container":
        parts.append(f"[{origin}]")  # a hook or probe command, not the entrypoint
    if fields.get("target.node") and not pod:
        parts.append(f"node {fields['target.node']}")
    return " ".join(parts) or "an unnamed target"


def _who(fields: Fields) -> str:
    user = fields.get("actor.user")
    who = str(user) if user else "an unidentified caller"
    ips = fields.get("actor.source_ip")
    return f"{who} from {ips[0]}" if ips else who


# placeholders computed from several fields, so reasons read well for every source
_DERIVED = {"where": _where, "who": _who}
_DEFAULTS = {"command.line": "(no command recorded)", "command.text": "(no command recorded)", "command": "(no command recorded)"}


def _render(template: str, fields: Fields) -> str:
    """Fill {field} placeholders; {field|text} gives the text to show when the field is empty."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = _DERIVED[name](fields) if name in _DERIVED else fields.get(name)
        if fields_empty(value):
            return default if default is not None else _DEFAULTS.get(name, "?")
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        # command.text is the argv line, then the decoded payloads on lines of their own
        text = str(value).replace("\n", " || decoded: ")
        return text if len(text) <= 300 else text[:300] + "…"

    return PLACEHOLDER.sub(sub, template)


# ---- values -------------------------------------------------------------------------------
def _values(fields: Fields, name: str) -> list[Any]:
    value = fields.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _lowered(fields: Fields, name: str) -> list[str]:
    """The field's values as lower-case strings, computed once per event and field."""
    key = name + "\0lower"
    cached = fields.get(key)
    if cached is None:
        cached = [(v if isinstance(v, str) else _scalar(v)).lower() for v in _values(fields, name)]
        fields[key] = cached
    return cached


def _fragment(value: SigmaString) -> str:
    """A case-folded Sigma string as a regex over lower-case text (wildcards become .* and .)."""
    parts = list(value.s)
    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    head = "" if parts and parts[0] is multi else r"\A"
    tail = "" if parts and parts[-1] is multi else r"\Z"
    while parts and parts[0] is multi:
        parts.pop(0)
    while parts and parts[-1] is multi:
        parts.pop()
    body = "".join(".*" if p is multi else "." if p is single else re.escape(str(p).lower()) for p in parts)
    return head + body + tail


def _cased_pattern(value: SigmaString) -> Callable[[str], bool]:
    parts = value.s
    if all(isinstance(p, str) for p in parts):
        want = "".join(str(p) for p in parts)
        return lambda s: s == want
    regex = "".join(
        ".*" if p is SpecialChars.WILDCARD_MULTI else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(str(p))
        for p in parts
    )
    compiled = re.compile(regex, re.DOTALL)
    return lambda s: compiled.fullmatch(s) is not None


def _folded_matcher(name: str, fragments: list[str]) -> Matcher:
    """One regex for a list of case-insensitive values of one field (Sigma's OR of values)."""
    rx = re.compile("|".join(f"(?:{f})" for f in fragments), re.DOTALL)
    search = rx.search

    def folded(f: Fields) -> bool:
        for s in _lowered(f, name):  # noqa: SIM110 - a loop, not any(): no generator per call
            if search(s) is not None:
                return True
        return False

    return folded


def _regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    flags = 0
    for flag in value.flags:
        if flag is SigmaRegularExpressionFlag.IGNORECASE:
            flags |= re.IGNORECASE
        elif flag is SigmaRegularExpressionFlag.MULTILINE:
            flags |= re.MULTILINE
        elif flag is SigmaRegularExpressionFlag.DOTALL:
            flags |= re.DOTALL
    return re.compile(value.regexp.original if hasattr(value.regexp, "original") else str(value.regexp), flags)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _compare(op: str, a: float, b: float) -> bool:
    return {"LT": a < b, "LTE": a <= b, "GT": a > b, "GTE": a >= b}[op]


def _field_matcher(name: str, value: Any, where: str) -> Matcher:
    if isinstance(value, SigmaExpansion):
        subs = [_field_matcher(name, v, where) for v in value.values]
        return lambda f: any(m(f) for m in subs)
    if isinstance(value, SigmaNull):
        return lambda f: fields_empty(f.get(name))
    if isinstance(value, SigmaExists):
        want = value.exists
        return lambda f: (not fields_empty(f.get(name))) is want
    if isinstance(value, SigmaBool):
        b = value.boolean
        return lambda f: any(v is b for v in _values(f, name))
    if isinstance(value, SigmaNumber):
        n = float(value.number)
        return lambda f: any(_number(v) == n for v in _values(f, name))
    if isinstance(value, SigmaCompareExpression):
        op = value.op.name
        n = float(value.number.number)

        def cmp(f: Fields) -> bool:
            for v in _values(f, name):
                x = _number(v)
                if x is not None and _compare(op, x, n):
                    return True
            return False

        return cmp
    if isinstance(value, SigmaCIDRExpression):
        net = ipaddress.ip_network(value.cidr, strict=False)

        def in_net(f: Fields) -> bool:
            for v in _values(f, name):
                try:
                    if ipaddress.ip_address(str(v)) in net:
                        return True
                except ValueError:
                    continue
            return False

        return in_net
    if isinstance(value, SigmaRegularExpression):
        try:
            rx = _regex(value)
        except re.error as exc:
            raise RuleError(where, f"field {name}: invalid regular expression: {exc}") from None
        search = rx.search
        gate = required(rx.pattern, rx.flags)
        if gate is not None:
            return _gated(name, search, tuple(gate), bool(rx.flags & re.IGNORECASE))

        def regex(f: Fields) -> bool:
            value = f.get(name)
            if value.__class__ is str:  # the common case: one string, no list to build
                return search(value) is not None
            for v in _values(f, name):  # noqa: SIM110 - a loop, not any(): no generator per call
                if not isinstance(v, bool) and search(str(v)) is not None:
                    return True
            return False

        return regex
    if isinstance(value, SigmaCasedString):
        test = _cased_pattern(value)
        return lambda f: any(test(v if isinstance(v, str) else _scalar(v)) for v in _values(f, name))
    if isinstance(value, SigmaString):
        return _folded_matcher(name, [_fragment(value)])
    raise RuleError(where, f"unsupported value {type(value).__name__} for field {name}")


def _gated(name: str, search: Callable[[str], Any], gate: tuple[str, ...], icase: bool) -> Matcher:
    """A regex that runs only on values holding one of the literals it cannot match without."""

    def gated(f: Fields) -> bool:
        raws = _texts(f, name)
        for text, raw in zip(_folded(f, name) if icase else raws, raws, strict=True):
            for lit in gate:
                if lit in text:
                    if search(raw) is not None:
                        return True
                    break
        return False

    return gated


def _texts(fields: Fields, name: str) -> list[str]:
    """The field's non-boolean values as strings, computed once per event and field."""
    key = name + "\0text"
    cached = fields.get(key)
    if cached is None:
        cached = [v if isinstance(v, str) else str(v) for v in _values(fields, name) if not isinstance(v, bool)]
        fields[key] = cached
    return cached


def _folded(fields: Fields, name: str) -> list[str]:
    """_texts case-folded for IGNORECASE literal tests, once per event and field."""
    key = name + "\0fold"
    cached = fields.get(key)
    if cached is None:
        cached = [fold(t) for t in _texts(fields, name)]
        fields[key] = cached
    return cached


def _gate_rule(gate: Gate, inner: Matcher) -> Matcher:
    """Run the rule only on events whose field holds one of the literals it cannot match without."""
    name, found = gate
    lits = tuple(sorted(found, key=len, reverse=True))

    def gated(f: Fields) -> bool:
        key = name + "\0gate"
        texts = f.get(key)
        if texts is None:
            texts = f[key] = [fold(s) for s in _lowered(f, name)]
        for text in texts:
            for lit in lits:
                if lit in text:
                    return inner(f)
        return False

    return gated


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def fields_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _merge_or(node: ConditionOR, used: set[str]) -> Matcher | None:
    """`field|contains: [a, b, c]` parses to an OR of one field: match it with one regex."""
    args = [a for a in node.args if isinstance(a, ConditionFieldEqualsValueExpression)]
    if not args or len(args) != len(node.args):
        return None
    names = {a.field for a in args}
    values = [a.value for a in args]
    strings = [v for v in values if isinstance(v, SigmaString) and not isinstance(v, SigmaCasedString)]
    if len(names) != 1 or len(strings) != len(values):
        return None
    name = names.pop()
    used.add(name)
    return _folded_matcher(name, [_fragment(v) for v in strings])


def _compile(node: Any, where: str, used: set[str]) -> Matcher:
    if isinstance(node, ConditionAND):
        return _all([_compile(a, where, used) for a in node.args])
    if isinstance(node, ConditionOR):
        merged = _merge_or(node, used)
        if merged is not None:
            return merged
        return _any([_compile(a, where, used) for a in node.args])
    if isinstance(node, ConditionNOT):
        sub = _compile(node.args[0], where, used)
        return lambda f: not sub(f)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        used.add(node.field)
        return _field_matcher(node.field, node.value, where)
    if isinstance(node, ConditionValueExpression):
        subs = [_field_matcher(k, node.value, where) for k in KEYWORD_FIELDS]
        return lambda f: any(m(f) for m in subs)
    raise RuleError(where, f"unsupported condition {type(node).__name__}")


# Rules run on every candidate event: plain closures for two or three operands avoid building
# a generator per call, which was most of the matching time.
def _all(subs: list[Matcher]) -> Matcher:
    if len(subs) == 1:
        return subs[0]
    if len(subs) == 2:
        a, b = subs
        return lambda f: a(f) and b(f)
    if len(subs) == 3:
        a, b, c = subs
        return lambda f: a(f) and b(f) and c(f)

    def every(f: Fields) -> bool:
        for m in subs:  # noqa: SIM110 - a loop, not any(): no generator per call
            if not m(f):
                return False
        return True

    return every


def _any(subs: list[Matcher]) -> Matcher:
    if len(subs) == 1:
        return subs[0]
    if len(subs) == 2:
        a, b = subs
        return lambda f: a(f) or b(f)
    if len(subs) == 3:
        a, b, c = subs
        return lambda f: a(f) or b(f) or c(f)

    def some(f: Fields) -> bool:
        for m in subs:  # noqa: SIM110 - a loop, not any(): no generator per call
            if m(f):
                return True
        return False

    return some


def required_actions(node: Any) -> set[str] | None:
    """Actions an event must have for the condition to hold; None when unconstrained."""
    if isinstance(node, ConditionAND):
        found = [r for r in (required_actions(a) for a in node.args) if r is not None]
        if not found:
            return None
        out = found[0]
        for r in found[1:]:
            out = out & r
        return out
    if isinstance(node, ConditionOR):
        subs = [required_actions(a) for a in node.args]
        if any(s is None for s in subs):
            return None
        return set().union(*subs)  # type: ignore[arg-type]
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field == "action":
        value = node.value
        if isinstance(value, SigmaString) and all(isinstance(p, str) for p in value.s):
            return {"".join(value.s).lower()}  # type: ignore[arg-type]
        if isinstance(value, SigmaExpansion):
            return required_actions(ConditionOR(args=[ConditionFieldEqualsValueExpression(field="action", value=v) for v in value.values]))
    return None


def compile_rule(rule: SigmaRule, path: str = "") -> Rule:
    where = path or str(rule.title)
    if rule.detection is None:
        raise RuleError(where, "no detection")
    conditions = rule.detection.parsed_condition
    used: set[str] = set()
    trees = [c.parse() for c in conditions]
    matchers = [_compile(t, where, used) for t in trees]
    gate = rule_gate(trees[0]) if len(trees) == 1 else None
    if gate is not None:
        matchers = [_gate_rule(gate, matchers[0])]
    actions: set[str] | None = set()
    for t in trees:
        req = required_actions(t)
        if req is None or actions is None:
            actions = None
        else:
            actions |= req
    level = LEVELS.get(str(rule.level.name).lower() if rule.level else "", "medium")
    tags = [f"{t.namespace}.{t.name}".lower() for t in rule.tags]
    return Rule(
        rule_id=rule.name or str(rule.id),
        sigma_id=str(rule.id) if rule.id else "",
        title=rule.title,
        severity=level,
        tags=tags,
        description=rule.description or "",
        reason=str(rule.custom_attributes.get("reason", "")),
        matcher=(lambda f: any(m(f) for m in matchers)) if len(matchers) > 1 else matchers[0],
        actions=actions,
        path=path,
        fields_used=used,
    )


def procedure_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        key = tag.split(".", 1)[-1]
        if key == "t1609":
            out.append("T1609")
        elif key in PROCEDURES:
            out.append(PROCEDURES[key])
    return out


def _rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _parse(text: str) -> SigmaRule:
    if _POLICY is None:  # pragma: no cover - pySigma before policies checked |re with Python's re already
        return SigmaRule.from_yaml(text)
    return SigmaRule.from_yaml(text, policy=_POLICY)


def _at(where: str, line: int | None) -> str:
    return f"{where}:{line}" if line else where


def check_rule(rule: Rule, text: str) -> None:
    """Refuse a rule that names a field no event has or whose reason cannot be rendered."""
    from .correlate import PLACEHOLDERS

    bad = unknown_field(rule.fields_used)
    if bad is not None:
        raise RuleError(_at(rule.path, field_line(text, bad[0])), bad[1])
    names = {*FIELDS, *_DERIVED, *(PLACEHOLDERS if rule.correlation is not None else ())}
    problem = reason_problem(rule.reason, names)
    if problem is not None:
        raise RuleError(_at(rule.path, line_of(text, r"^reason[ \t]*:")), problem)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise RuleError(str(path), f"cannot read: {exc.strerror or exc}") from None


def load_rules(extra_dirs: Iterable[str] = (), builtin: bool = True) -> list[Rule]:
    texts: list[tuple[str, str]] = []
    if builtin:
        root = resources.files("execguard") / "rules"
        with resources.as_file(root) as base:
            for p in _rule_files(Path(base)):
                texts.append((f"builtin:{p.relative_to(base)}", _read(p)))
    for d in extra_dirs:
        base = Path(d)
        if base.is_file():
            texts.append((str(base), _read(base)))
            continue
        if not base.is_dir():
            raise RuleError(d, "no such rules directory or file")
        for p in _rule_files(base):
            texts.append((str(p), _read(p)))
    from .correlate import compile_correlation, is_correlation, resolve

    rules = []
    seen: dict[str, str] = {}
    for where, text in texts:
        try:
            parsed = None if is_correlation(text) else _parse(text)
            rule = compile_rule(parsed, where) if parsed is not None else compile_correlation(text, where)
        except RuleError:
            raise
        except SigmaError as exc:  # also raised while compiling: conditions are parsed lazily
            line, message = sigma_problem(text, exc)
            raise RuleError(_at(where, line), message) from None
        except Exception as exc:  # yaml errors and the like
            line, message = read_problem(exc)
            raise RuleError(_at(where, line), message) from None
        check_rule(rule, text)
        if rule.rule_id in seen:
            raise RuleError(where, f"rule id {rule.rule_id} already defined in {seen[rule.rule_id]}")
        seen[rule.rule_id] = where
        rules.append(rule)
    resolve(rules)
    return rules
