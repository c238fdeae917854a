"""Load rule files (built-in and given directories) into compiled, checked rules."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from .checks import field_line, line_of, read_problem, reason_problem, sigma_problem, unknown_field
from .compile import compile_rule
from .fields import FIELDS
from .load_correlation import PLACEHOLDERS, compile_correlation, raw_settings, resolve
from .reason import DERIVED
from .rule import Rule, RuleError

try:  # pySigma >= 2 checks |re values with RE2, whose C++ logging writes its own lines to stderr. The matchers
    # here run Python's re, so check with that: the same dialect, and nothing on stderr but our one error line.
    from sigma.policy import SigmaPolicy
    from sigma.policy.regex_engine import PythonRegexEngine

    _POLICY: SigmaPolicy | None = SigmaPolicy(regex_engine=PythonRegexEngine())
except ImportError:  # pragma: no cover - older pySigma
    _POLICY = None


def _rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _parse(text: str) -> SigmaCollection:
    """Every document of a rule file (rules, correlations, ``action: global`` parts merged) as pySigma reads it.

    References between rules are resolved by ``resolve`` over all files at once, by rule name, so a
    correlation may count rules of other files.
    """
    if _POLICY is None:  # pragma: no cover - pySigma before policies checked |re with Python's re already
        return SigmaCollection.from_yaml(text, resolve_references=False)
    return SigmaCollection.from_yaml(text, resolve_references=False, policy=_POLICY)


def _compile(text: str, where: str) -> list[Rule]:
    out = []
    for item in _parse(text):
        if isinstance(item, SigmaCorrelationRule):
            out.append(compile_correlation(item, raw_settings(text, item), where))
        elif isinstance(item, SigmaRule):
            out.append(compile_rule(item, where))
        else:
            raise RuleError(where, f"unsupported Sigma document ({type(item).__name__})")
    if not out:
        raise RuleError(where, "no rule in this file")
    return out


def _at(where: str, line: int | None) -> str:
    return f"{where}:{line}" if line else where


def check_rule(rule: Rule, text: str) -> None:
    """Refuse a rule that names a field no event has or whose reason cannot be rendered."""
    bad = unknown_field(rule.fields_used)
    if bad is not None:
        raise RuleError(_at(rule.path, field_line(text, bad[0])), bad[1])
    names = {*FIELDS, *DERIVED, *(PLACEHOLDERS if rule.correlation is not None else ())}
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
    rules = []
    seen: dict[str, str] = {}
    for where, text in texts:
        try:
            compiled = _compile(text, where)
        except RuleError:
            raise
        except SigmaError as exc:  # also raised while compiling: conditions are parsed lazily
            line, message = sigma_problem(text, exc)
            raise RuleError(_at(where, line), message) from None
        except Exception as exc:  # yaml errors and the like
            line, message = read_problem(exc)
            raise RuleError(_at(where, line), message) from None
        for rule in compiled:
            check_rule(rule, text)
            if rule.rule_id in seen:
                raise RuleError(where, f"rule id {rule.rule_id} already defined in {seen[rule.rule_id]}")
            seen[rule.rule_id] = where
            rules.append(rule)
    resolve(rules)
    return rules
