"""Read an offline evidence directory into plain data: Kubernetes objects, command lines, daemon.json.

Everything here is format handling only; no check knows how a file was read. Each object keeps the file and
(for YAML) the line it started on, so findings can point back at it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE = 64 * 1024 * 1024
COMMANDS = ("kubelet", "kube-apiserver", "dockerd")
# daemon.json keys that mark a JSON object as Docker daemon configuration.
DOCKER_KEYS = frozenset({"hosts", "tls", "tlsverify", "userns-remap", "authorization-plugins", "group", "tlscacert", "live-restore"})


# The cli merges only the objects of a live collection, so list failures travel as one internal object that
# coverage_items() turns into findings. Not a Kubernetes kind.
COVERAGE_KIND = "ExecguardListCoverage"


def mapping(value: Any) -> dict[str, Any]:
    """A field that must be a mapping; any other shape (named by shapes.problems) reads as empty."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    """A field that must be a list; any other shape (named by shapes.problems) reads as empty."""
    return value if isinstance(value, list) else []


class AuditInputError(Exception):
    """An input the user named cannot be read at all (exit 2)."""


@dataclass(slots=True)
class Obj:
    data: dict[str, Any]
    file: str
    line: int | None = None

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def meta(self) -> dict[str, Any]:
        m = self.data.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or "")

    @property
    def namespace(self) -> str | None:
        ns = self.meta.get("namespace")
        return str(ns) if ns else None


@dataclass(slots=True)
class CommandLine:
    argv: list[str]
    file: str
    line: int | None = None
    env: dict[str, str] = field(default_factory=dict)  # systemd Environment= of the same unit file
    env_files: list[str] = field(default_factory=list)  # systemd EnvironmentFile= (host paths)

    @property
    def program(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else ""


@dataclass
class Inputs:
    root: Path | None = None
    objects: list[Obj] = field(default_factory=list)
    commands: list[CommandLine] = field(default_factory=list)
    docker_configs: list[Obj] = field(default_factory=list)  # daemon.json
    texts: dict[str, str] = field(default_factory=dict)  # small text files (systemd EnvironmentFile= targets)
    warnings: list[str] = field(default_factory=list)

    def env_file(self, path: str) -> dict[str, str] | None:
        """KEY=VALUE lines of an EnvironmentFile named by host path (DIR/<path>, then by file name)."""
        if self.root is None:
            return None
        exact = str((self.root / path.lstrip("/")).resolve())
        hit = next((t for f, t in self.texts.items() if str(Path(f).resolve()) == exact), None)
        if hit is None:
            hit = next((t for f, t in self.texts.items() if os.path.basename(f) == os.path.basename(path)), None)
        return None if hit is None else parse_env(hit)

    def expand(self, cl: CommandLine) -> tuple[list[str], list[str]]:
        """argv with $VAR / ${VAR} from Environment= and EnvironmentFile= substituted (split on whitespace, as
        systemd does for $VAR), and the names that could not be resolved."""
        env = dict(cl.env)
        missing: list[str] = []
        for ef in cl.env_files:
            loaded = self.env_file(ef.lstrip("-"))
            if loaded is None:
                if not ef.startswith("-"):
                    missing.append(f"EnvironmentFile={ef}")
                loaded = {}
            env.update(loaded)
        argv: list[str] = []
        for w in cl.argv:
            m = _VAR.fullmatch(w)
            if m:
                name = m.group(1) or m.group(2)
                if name in env:
                    argv += env[name].split()
                else:
                    missing.append(name)
                continue
            argv.append(w)
        return argv, missing

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o.kind in kinds]

    def resolve(self, path: str, kind: str | None = None) -> Obj | None:
        """The object read from the file a component names by its host path (e.g. kubelet --config).

        Looked up as DIR/<path>, then by file name anywhere under DIR; with ``kind`` the object must be of it.
        """
        if self.root is None:
            return None
        wanted = [str((self.root / path.lstrip("/")).resolve())]
        base = os.path.basename(path)
        for by_name in (False, True):
            for o in self.objects + self.docker_configs:
                hit = os.path.basename(o.file) == base if by_name else str(Path(o.file).resolve()) in wanted
                if hit and (kind is None or o.kind == kind):
                    return o
        return None


_DIRECTIVE = re.compile(r"[A-Z][A-Za-z]*=")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def _kind_of_list(list_kind: str) -> str | None:
    return list_kind[: -len("List")] if list_kind.endswith("List") and list_kind != "List" else None


def flatten(data: Any, file: str, line: int | None, item_lines: list[int | None] | None = None) -> Iterator[Obj]:
    """A Kubernetes object, or the items of a List / typed list (RoleList ...) with their kind filled in."""
    if not isinstance(data, dict):
        return
    kind = str(data.get("kind") or "")
    items = data.get("items")
    if isinstance(items, list) and (kind.endswith("List") or "kind" not in data):
        inferred = _kind_of_list(kind)
        for i, item in enumerate(items):
            if isinstance(item, dict):
                if inferred and not item.get("kind"):
                    item = {**item, "kind": inferred}
                at = item_lines[i] if item_lines and i < len(item_lines) else line
                yield from flatten(item, file, at)
        return
    if kind:
        yield Obj(data, file, line)


def _yaml_docs(text: str) -> Iterator[tuple[Any, int, list[int | None]]]:
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            item_lines: list[int | None] = []
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if getattr(k, "value", None) == "items" and isinstance(v, yaml.SequenceNode):
                        item_lines = [n.start_mark.line + 1 for n in v.value]
            yield loader.construct_document(node), node.start_mark.line + 1, item_lines
    finally:
        loader.dispose()


def _split_commands(text: str, file: str) -> Iterator[CommandLine]:
    """kubelet / kube-apiserver / dockerd invocations in /proc/PID/cmdline dumps, ps output, shell scripts, systemd units."""
    if "\0" in text:
        argv = [a for a in text.split("\0") if a]
        if argv and os.path.basename(argv[0]) in COMMANDS:
            yield CommandLine(argv, file, 1)
        return
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        logical.append((start, buf + raw))
        buf = ""
    if buf:
        logical.append((start, buf))
    env: dict[str, str] = {}
    env_files: list[str] = []
    for _, line in logical:  # systemd applies Environment= wherever it appears in the unit
        s = line.strip()
        if s.startswith("Environment="):
            try:
                assignments = shlex.split(s[len("Environment=") :])
            except ValueError:
                assignments = s[len("Environment=") :].split()
            for a in assignments:
                k, eq, v = a.partition("=")
                if eq:
                    env[k] = v
        elif s.startswith("EnvironmentFile="):
            env_files.append(s[len("EnvironmentFile=") :].strip())
    for n, line in logical:
        s = line.strip()
        if s.startswith("#"):
            continue
        if s.startswith("ExecStart="):
            s = s[len("ExecStart=") :].lstrip("-@+!:")
        elif _DIRECTIVE.match(s):
            continue  # other systemd directives (EnvironmentFile=-/etc/default/kubelet is not a command)
        try:
            words = shlex.split(s, comments=False)
        except ValueError:
            words = s.split()
        for i, w in enumerate(words):
            if os.path.basename(w) in COMMANDS:
                yield CommandLine(words[i:], file, n, dict(env), list(env_files))
                break


def _yaml_error(name: str, exc: yaml.YAMLError) -> str:
    """'FILE:LINE: not valid YAML: <problem>' from PyYAML's marks (1-based line), on one line."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{name}:{mark.line + 1}" if mark is not None else name
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def read_dir(root: str | os.PathLike[str]) -> Inputs:
    base = Path(root)
    if not base.exists():
        raise AuditInputError(f"{root}: no such file or directory")
    files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
    inputs = Inputs(root=base if base.is_dir() else base.parent)
    for path in files:
        read_file(path, inputs)
    return inputs


def read_file(path: Path, inputs: Inputs) -> None:
    name = str(path)
    try:
        if path.stat().st_size > MAX_FILE:
            inputs.warnings.append(f"{name}: larger than {MAX_FILE} bytes, skipped")
            return
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        inputs.warnings.append(f"{name}: {exc.strerror or exc}")
        return
    looks_structured = path.suffix.lower() in (".json", ".yaml", ".yml") or text.lstrip().startswith(("{", "apiVersion", "kind", "---"))
    if looks_structured and _structured(text, name, path, inputs):
        return
    if len(text) <= 1024 * 1024:
        inputs.texts[name] = text
    inputs.commands.extend(_split_commands(text, name))


def _structured(text: str, name: str, path: Path, inputs: Inputs) -> bool:
    docs: list[tuple[Any, int | None, list[int | None]]] = []
    try:
        docs = list(_yaml_docs(text))
    except yaml.YAMLError as yaml_exc:
        try:
            docs = [(json.loads(text), None, [])]
        except ValueError:
            if path.suffix.lower() in (".json", ".yaml", ".yml"):
                inputs.warnings.append(_yaml_error(name, yaml_exc))
            return False
    found = False
    for data, line, item_lines in docs:
        if isinstance(data, dict) and not data.get("kind") and (path.name == "daemon.json" or DOCKER_KEYS & set(data)):
            inputs.docker_configs.append(Obj({**data, "kind": "DockerDaemonConfig"}, name, line))
            found = True
            continue
        objs = list(flatten(data, name, line, item_lines))
        inputs.objects.extend(objs)
        found = found or bool(objs) or data is None
    return found
