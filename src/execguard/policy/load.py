"""Read and validate a policy file, every problem reported as FILE:LINE: message.

PyYAML's composer gives nodes with marks, so validation walks nodes rather than the plain
values safe_load returns: each error can name the line of the offending key or list item.
All problems are collected before raising, so one run shows every mistake in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..model import SEVERITIES
from .match import check_glob, check_label, check_service_account, compile_cidr, compile_regex
from .model import ACTIONS, API_VERSION, KIND, MODES, SCOPE_KEYS, Entry, Policy, Scope

TOP_KEYS = ("apiVersion", "kind", "metadata", "entries")
ENTRY_KEYS = ("name", "action", "reason", "expires", "severity", "mode", "match")
METADATA_KEYS = ("name", "description")
MAX_BYTES = 4 << 20  # a policy is hand-written; anything bigger is the wrong file


class PolicyError(Exception):
    def __init__(self, file: str, problems: list[tuple[int, str]]) -> None:
        self.file = file
        self.problems = sorted(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.file}:{line}: {message}" if line else f"{self.file}: {message}" for line, message in self.problems]


def load_policy(path: str | Path) -> Policy:
    file = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PolicyError(file, [(0, f"cannot read: {exc.strerror or exc}")]) from None
    if len(data) > MAX_BYTES:
        raise PolicyError(file, [(0, f"larger than {MAX_BYTES >> 20} MB; is this a policy file?")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(file, [(line, "not valid UTF-8")]) from None
    return parse_policy(text, file)


def parse_policy(text: str, file: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise PolicyError(file, [(line, f"invalid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError(file, [(0, f"invalid YAML: {exc}")]) from None
    return _Reader(file).policy(root)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[tuple[int, str]] = []
        self.constructor = SafeConstructor()

    def error(self, node: Node, message: str) -> None:
        self.problems.append((_line(node), message))

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, tuple[Node, Node]]:
        """Keys to (key node, value node); unknown and repeated keys reported with the nearest valid one."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping of keys to values")
            return {}
        out: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            if not isinstance(name, str) or name not in allowed:
                near = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.5)
                hint = f"; did you mean {near[0]!r}?" if near else f"; expected one of {', '.join(allowed)}"
                self.error(key, f"unknown key {name!r} in {what}{hint}")
            elif name in out:
                self.error(key, f"key {name!r} repeated in {what} (first on line {_line(out[name][0])})")
            else:
                out[name] = (key, value)
        return out

    def scalar(self, node: Node, what: str) -> Any:
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a single value, not a {'list' if isinstance(node, SequenceNode) else 'mapping'}")
            return None
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            self.error(node, f"{what}: {node.value!r} cannot be read: {exc}")
            return None

    def text(self, node: Node, what: str) -> str | None:
        value = self.scalar(node, what)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(node, f"{what} must be text; quote {node.value!r} to keep it as written")
            return None
        if not value.strip():
            self.error(node, f"{what} must not be empty")
            return None
        return value

    def policy(self, root: Node | None) -> Policy:
        if root is None:
            raise PolicyError(self.file, [(0, f"empty file; a policy starts with apiVersion: {API_VERSION} and kind: {KIND}")])
        top = self.mapping(root, "the policy", TOP_KEYS)
        for key, want in (("apiVersion", API_VERSION), ("kind", KIND)):
            if key not in top:
                if isinstance(root, MappingNode):
                    self.error(root, f"missing {key}: {want}")
                continue
            got = self.text(top[key][1], key)
            if got is not None and got != want:
                self.error(top[key][1], f"{key} {got!r} is not supported; use {want}")
        name = None
        if "metadata" in top:
            meta = self.mapping(top["metadata"][1], "metadata", METADATA_KEYS)
            name = self.text(meta["name"][1], "metadata.name") if "name" in meta else None
            if "description" in meta:
                self.text(meta["description"][1], "metadata.description")
        entries: list[Entry] = []
        if "entries" not in top:
            if isinstance(root, MappingNode):
                self.error(root, "missing entries: (a list; it may be empty)")
        else:
            node = top["entries"][1]
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                pass  # `entries:` with nothing under it: an empty policy
            elif not isinstance(node, SequenceNode):
                self.error(node, "entries must be a list")
            else:
                seen: dict[str, int] = {}
                for i, item in enumerate(node.value):
                    entry = self.entry(item, i)
                    if entry is None:
                        continue
                    if entry.name in seen:
                        self.error(item, f"entry name {entry.name!r} repeated (first on line {seen[entry.name]})")
                    seen.setdefault(entry.name, entry.line)
                    entries.append(entry)
        if self.problems:
            raise PolicyError(self.file, self.problems)
        return Policy(tuple(entries), self.file, name)

    def entry(self, node: Node, index: int) -> Entry | None:
        before = len(self.problems)
        where = f"entry {index + 1}"
        keys = self.mapping(node, where, ENTRY_KEYS)
        if not isinstance(node, MappingNode):
            return None
        name = self.text(keys["name"][1], f"{where} name") if "name" in keys else None
        name = name or f"#{index + 1}"
        action = None
        if "action" not in keys:
            self.error(node, f"{where} ({name}): missing action: one of {', '.join(ACTIONS)}")
        else:
            action = self.text(keys["action"][1], f"{where} action")
            if action is not None and action not in ACTIONS:
                near = difflib.get_close_matches(action, ACTIONS, n=1, cutoff=0.5)
                hint = f"did you mean {near[0]!r}?" if near else f"expected one of {', '.join(ACTIONS)}"
                self.error(keys["action"][1], f"{where} action {action!r} is unknown; {hint}")
        reason = None
        if "reason" not in keys:
            self.error(node, f"{where} ({name}): missing reason: say why this entry exists (it is shown with what it hides)")
        else:
            reason = self.text(keys["reason"][1], f"{where} reason")
        severity = None
        if "severity" in keys:
            severity = self.text(keys["severity"][1], f"{where} severity")
            if action is not None and action != "severity":
                self.error(keys["severity"][0], f"{where}: severity applies to action: severity only")
            elif severity is not None and severity.lower() not in SEVERITIES:
                self.error(keys["severity"][1], f"{where} severity {severity!r}: choose one of {', '.join(SEVERITIES)}")
            severity = severity.lower() if severity else None
        elif action == "severity":
            self.error(node, f"{where} ({name}): action severity needs severity: one of {', '.join(SEVERITIES)}")
        mode = None
        if "mode" in keys:
            mode = self.text(keys["mode"][1], f"{where} mode")
            if action is not None and action not in ("deny", "mode"):
                self.error(keys["mode"][0], f"{where}: mode applies to action: deny or action: mode only")
            elif mode is not None and mode not in MODES:
                self.error(keys["mode"][1], f"{where} mode {mode!r}: choose one of {', '.join(MODES)}")
        elif action == "mode":
            self.error(node, f"{where} ({name}): action mode needs mode: one of {', '.join(MODES)}")
        expires = self.expires(keys["expires"][1], where) if "expires" in keys else None
        scope = None
        if "match" not in keys:
            self.error(node, f"{where} ({name}): missing match: give at least one of {', '.join(SCOPE_KEYS)}")
        else:
            scope = self.scope(keys["match"][1], where)
        if len(self.problems) > before or action is None or reason is None or scope is None:
            return None
        return Entry(name, action, reason, scope, severity, expires, _line(node), mode)

    def expires(self, node: Node, where: str) -> date | datetime | None:
        value = self.scalar(node, f"{where} expires")
        if isinstance(value, str):
            try:
                # a quoted date stays a date: the last day the entry applies, not its midnight
                value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
            except ValueError:
                self.error(node, f"{where} expires {value!r} is not a date; write YYYY-MM-DD or an ISO 8601 time")
                return None
        if value is not None and not isinstance(value, date):
            self.error(node, f"{where} expires {node.value!r} is not a date; write YYYY-MM-DD or an ISO 8601 time")
            return None
        return value

    def scope(self, node: Node, where: str) -> Scope | None:
        keys = self.mapping(node, f"{where} match", tuple(SCOPE_KEYS))
        if not isinstance(node, MappingNode):
            return None
        if not node.value:
            self.error(node, f"{where} match is empty; give at least one of {', '.join(SCOPE_KEYS)}")
            return None
        checks: dict[str, Callable[[str], object]] = {
            "serviceAccounts": check_service_account,
            "commandRegex": compile_regex,
            "sourceIPs": compile_cidr,
            "labels": check_label,
        }
        values: dict[str, tuple[str, ...]] = {}
        for key, (_, value) in keys.items():
            items = value.value if isinstance(value, SequenceNode) else [value]
            if not items:
                self.error(value, f"{where} match.{key} is an empty list; leave the key out to match anything")
            out = []
            for item in items:
                text = self.text(item, f"{where} match.{key} item")
                if text is None:
                    continue
                try:
                    checks.get(key, check_glob)(text)
                except ValueError as exc:
                    self.error(item, f"{where} match.{key}: {exc}")
                    continue
                out.append(text)
            values[SCOPE_KEYS[key]] = tuple(out)
        return Scope(**values)
