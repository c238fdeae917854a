"""Kubelet, kube-apiserver and audit-policy facts from command lines, static pod manifests and config files;
the coverage of a live API listing (lists it could not read)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .engine import Item
from .inputs import MAX_FILE, CommandLine, Inputs, Obj
from .live import coverage_items

TRUE = ("true", "1", "t", "yes", "y")
# strconv.ParseBool, which pflag uses for bool flags: anything else makes the component refuse the flag.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# strconv.ParseInt(s, 0, 32) syntax (pflag int32 flags): sign, 0x/0b/0o or a leading 0 (octal), _ between digits.
_GO_INT = re.compile(r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)")


class Flags(dict[str, str]):
    """Flag values by normalised name (``_`` → ``-``); ``spelled`` keeps each name as it was written."""

    def __init__(self) -> None:
        super().__init__()
        self.spelled: dict[str, str] = {}

    def text(self, name: str) -> str:
        """``--name=value`` as written on the command line."""
        return f"--{self.spelled.get(name, name)}={self[name]}"


def normalize_flag(name: str) -> str:
    # cliflag.WordSepNormalizeFunc: the kubelet's flag set and every cli.Run command (kube-apiserver) use it.
    return name.replace("_", "-")


def parse_flags(argv: list[str], bool_flags: frozenset[str] = frozenset()) -> Flags:
    """``--name=value`` / ``--name value`` / bare boolean ``--name``; names normalised as pflag's
    WordSepNormalizeFunc does; the last occurrence wins (as pflag). A bare flag followed by another flag is
    read as a boolean even when it is not in ``bool_flags`` (no real value starts with ``--``)."""
    out = Flags()
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            break  # pflag: the rest are arguments, not flags
        if not a.startswith("--"):
            continue
        written, eq, value = a[2:].partition("=")
        name = normalize_flag(written)
        if eq:
            out[name] = value
        elif name in bool_flags or i >= len(argv) or argv[i].startswith("--"):
            out[name] = "true"
        else:
            out[name] = argv[i]
            i += 1
        out.spelled[name] = written
    return out


def _bool(v: str) -> bool:
    return v.strip().lower() in TRUE


def go_bool(s: str) -> bool:
    """A bool flag value as pflag parses it; ValueError where the component would refuse it."""
    if s in GO_TRUE:
        return True
    if s in GO_FALSE:
        return False
    raise ValueError("not a boolean strconv.ParseBool accepts (true/false/1/0/t/f)")


def go_int32(s: str) -> int:
    """An int32 flag value as pflag parses it (strconv.ParseInt(s, 0, 32)); ValueError where it refuses it."""
    if not _GO_INT.fullmatch(s):
        raise ValueError("not an integer")
    sign = -1 if s[0] == "-" else 1
    digits = s.lstrip("+-").replace("_", "")
    base, body = 10, digits
    if len(digits) > 1 and digits[0] == "0":
        base, body = {"x": (16, digits[2:]), "b": (2, digits[2:]), "o": (8, digits[2:])}.get(digits[1].lower(), (8, digits[1:]))
    v = sign * int(body, base)
    if not -(2**31) <= v < 2**31:
        raise ValueError("out of the int32 range")
    return v


def _show_default(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else (str(v) if v != "" else "none")


def _dig(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _list(v: Any) -> list[Any]:
    """A list field of a hand-written file; anything else (a scalar, a mapping) counts as absent, not a crash."""
    return v if isinstance(v, list) else []


# ---------------------------------------------------------------- kubelet

# Bool flags of the kubelet (cmd/kubelet/app/options/options.go, plus --help, --version and the klog flags):
# pflag never takes the next argument as their value.
KUBELET_BOOL = frozenset(
    {
        "anonymous-auth", "authentication-token-webhook", "cgroups-per-qos", "contention-profiling", "cpu-cfs-quota",
        "enable-controller-attach-detach", "enable-debugging-handlers", "enable-server", "exit-on-lock-contention",
        "experimental-allocatable-ignore-eviction", "fail-swap-on", "keep-terminated-pod-volumes",
        "kernel-memcg-notification", "local-storage-capacity-isolation", "make-iptables-util-chains",
        "protect-kernel-defaults", "register-node", "register-schedulable", "rotate-certificates",
        "rotate-server-certificates", "runonce", "seccomp-default", "serialize-image-pulls", "windows-service",
        "help", "version", "add-dir-header", "alsologtostderr", "logtostderr", "one-output", "skip-headers",
        "skip-log-headers", "log-json-split-stream", "log-text-split-stream",
    }
)  # fmt: skip
KUBELET_GV = "kubelet.config.k8s.io/v1beta1"


def _cfg_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ValueError("the kubelet's decoder wants a boolean")


def _cfg_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    raise ValueError("the kubelet's decoder wants a string")


def _cfg_int32(v: Any) -> int:
    # YAML becomes JSON before it is decoded, so 10255.0 arrives as 10255; a string or a fraction does not decode.
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        if -(2**31) <= v < 2**31:
            return v
        raise ValueError("out of the int32 range")
    raise ValueError("the kubelet's decoder wants an int32")


def _check_port(v: int) -> None:
    if not 0 <= v <= 65535:
        raise ValueError("must be between 0 and 65535 (kubelet configuration validation)")


def _check_mode(v: str) -> None:
    if v not in ("AlwaysAllow", "Webhook"):
        raise ValueError("the kubelet accepts only AlwaysAllow or Webhook (cmd/kubelet/app/auth.go BuildAuthz)")


@dataclass(frozen=True, slots=True)
class KubeletSetting:
    fact: str
    flag: str
    path: tuple[str, ...]  # in kubelet.config.k8s.io/v1beta1
    config_default: Any  # v1beta1 defaulting (SetDefaults_KubeletConfiguration)
    flag_default: Any  # with no --config (options.applyLegacyDefaults)
    from_flag: Callable[[str], Any]  # pflag parsing; ValueError = the kubelet refuses the flag
    from_config: Callable[[Any], Any]  # the decoder's type check; ValueError = the kubelet refuses the file
    check: Callable[[Any], None] | None = None  # validation of the effective value


KUBELET_SETTINGS = (
    KubeletSetting("anonymous_auth", "anonymous-auth", ("authentication", "anonymous", "enabled"), False, True, go_bool, _cfg_bool),
    KubeletSetting(
        "authorization_mode", "authorization-mode", ("authorization", "mode"), "Webhook", "AlwaysAllow", str, _cfg_str, _check_mode
    ),
    KubeletSetting("read_only_port", "read-only-port", ("readOnlyPort",), 0, 10255, go_int32, _cfg_int32, _check_port),
    KubeletSetting("client_ca_file", "client-ca-file", ("authentication", "x509", "clientCAFile"), "", "", str, _cfg_str),
)


@dataclass(slots=True)
class DropIn:
    """One ``*.conf`` file of ``--config-dir``."""

    path: str  # host path, as the kubelet names it
    file: str  # input file
    data: dict[str, Any] | None  # None: not merged (see error)
    error: str | None = None  # the kubelet refuses the file (it does not start)
    unreadable: bool = False  # we could not read it: its settings are unknown


def _real(file: str) -> str:
    return str(Path(file).resolve())


def _input_dir(inputs: Inputs, path: str) -> Path | None:
    """A directory a component names by host path: DIR/<path>, else the first directory of that name under DIR
    (the way ``Inputs.resolve`` finds a file)."""
    if inputs.root is None:
        return None
    exact = inputs.root / path.lstrip("/")
    if exact.is_dir():
        return exact
    name = PurePosixPath(path).name
    return next((p for p in sorted(inputs.root.rglob("*")) if p.name == name and p.is_dir()), None) if name else None


def _read_drop_in(p: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A drop-in inputs.py did not turn into an object (e.g. it starts with a comment): its first YAML document."""
    text = p.read_bytes().decode("utf-8", errors="replace")
    if not text.strip():
        return None, "empty file"
    try:
        doc = next(yaml.safe_load_all(text), None)
    except yaml.YAMLError:
        return None, "not valid YAML"
    return (doc, None) if isinstance(doc, dict) else (None, "no apiVersion/kind")


def find_drop_ins(inputs: Inputs, config_dir: str) -> list[DropIn] | None:
    """The ``*.conf`` files the kubelet merges from ``--config-dir``, in its order; None if the directory is not in
    the input. Order as ``filepath.WalkDir``: lexical by name within each directory, subdirectories included."""
    d = _input_dir(inputs, config_dir)
    if d is None:
        return None
    by_file: dict[str, list[Obj]] = {}
    for o in inputs.objects:
        by_file.setdefault(_real(o.file), []).append(o)
    files = sorted((p for p in d.rglob("*") if p.name.endswith(".conf") and p.is_file()), key=lambda p: p.relative_to(d).parts)
    out: list[DropIn] = []
    for p in files:
        host = "/".join((config_dir.rstrip("/"), *p.relative_to(d).parts))
        objs = by_file.get(_real(str(p)), [])
        kc = next((o for o in objs if o.kind == "KubeletConfiguration"), None)
        data: dict[str, Any] | None = kc.data if kc else None
        error = f"kind {objs[0].kind}, not KubeletConfiguration" if objs and not kc else None
        if not objs:
            try:
                data, error = _read_drop_in(p) if p.stat().st_size <= MAX_FILE else (None, None)
            except OSError:
                data, error = None, None
            if data is None and error is None:
                out.append(DropIn(host, str(p), None, unreadable=True))
                continue
        if data is not None:
            api, kind = data.get("apiVersion"), data.get("kind")
            if not api or not kind:
                error = "no apiVersion/kind"
            elif (api, kind) != (KUBELET_GV, "KubeletConfiguration"):
                error = f"unknown apiVersion/kind {api}/{kind}"
        out.append(DropIn(host, kc.file if kc else str(p), None if error else data, error))
    return out


def _walk(data: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any, str | None]:
    """(does this file set ``path``, the value it leaves there, a structure error). A merge patch that sets an
    ancestor to null deletes everything below it; an ancestor that is not a mapping does not decode."""
    d: Any = data
    for i, key in enumerate(path):
        if key not in d:
            return False, None, None
        d = d[key]
        if i < len(path) - 1:
            if d is None:
                return True, None, None
            if not isinstance(d, dict):
                return True, None, f"{'.'.join(path[: i + 1])}: {d!r} is not a mapping"
    return True, d, None


_REFUSED = object()


def _flag_text(flags: dict[str, str], name: str) -> str:
    return flags.text(name) if isinstance(flags, Flags) else f"--{name}={flags[name]}"


def kubelet_facts(
    flags: dict[str, str],
    config: Obj | None,
    config_named: str | None,
    unresolved: list[str] | None = None,
    *,
    flags_file: str | None = None,
    config_dir: str | None = None,
    drop_ins: list[DropIn] | None = None,
    fragment: bool = False,
) -> dict[str, Any]:
    """Effective kubelet settings: flags over the ``--config-dir`` drop-ins over the ``--config`` file.

    Flag defaults: --anonymous-auth=true, --authorization-mode=AlwaysAllow, --read-only-port=10255 (also the base
    the drop-ins are merged over when there is no --config). kubelet.config.k8s.io/v1beta1 defaults:
    anonymous.enabled=false, authorization.mode=Webhook, readOnlyPort=0. Drop-ins are JSON merge patches
    (RFC 7386, as the kubelet applies them): a mapping merges field by field, a list or scalar replaces, null
    deletes (the v1beta1 default then applies). When --config names a file we were not given, --config-dir a
    directory we were not given (or a drop-in we could not read), or the command line holds variables we could not
    expand (systemd Environment=/EnvironmentFile=), settings not set by a visible flag are unknown (None).
    ``fragment``: ``config`` is a drop-in no command line merges: only what it sets is known.
    A value the kubelet refuses (a flag pflag cannot parse, a file its decoder cannot decode, a value its
    validation rejects) is listed in ``invalid`` and that setting is unknown.
    """
    cfg = config.data if config else None
    missing = config_named is not None and cfg is None
    where = config_named or (config.file if config else "")
    layers: list[tuple[str, str, dict[str, Any]]] = []  # (evidence label, file named in messages, data)
    if cfg is not None:
        layers.append((f"drop-in {where}:" if fragment else "config", where, cfg))
    invalid: list[str] = []
    dir_unknown: str | None = None
    if config_dir is not None and drop_ins is None:
        dir_unknown = f"--config-dir {config_dir} not in the input"
    for d in drop_ins or []:
        if d.unreadable:
            dir_unknown = dir_unknown or f"drop-in {d.path} could not be read"
        elif d.data is None:
            invalid.append(f"drop-in {d.path}: {d.error}")
        else:
            layers.append((f"drop-in {d.path}:", d.path, d.data))
    facts: dict[str, Any] = {
        "config_file": config_named or (config.file if config else None),
        "config_missing": missing,
        "config_dir": config_dir,
        "config_dir_missing": config_dir is not None and drop_ins is None,
        "drop_ins": [d.path for d in drop_ins or []],
        "unresolved": list(unresolved or []),
    }

    def effective(s: KubeletSetting) -> tuple[Any, str]:
        dotted = ".".join(s.path)
        last: tuple[str, str, Any] | None = None
        for label, name, data in layers:
            touched, v, err = _walk(data, s.path)
            if err:
                invalid.append(f"{name}: {err}")
                v = _REFUSED
            elif v is not None:
                try:
                    v = s.from_config(v)
                except ValueError as exc:
                    # a file that does not decode stops the kubelet even where a later file or a flag overrides it
                    invalid.append(f"{name}: {dotted}: {v!r} ({exc})")
                    v = _REFUSED
            if touched:
                last = (label, name, v)
        if s.flag in flags:
            text = _flag_text(flags, s.flag)
            try:
                v = s.from_flag(flags[s.flag])
                if s.check:
                    s.check(v)
            except ValueError as exc:
                invalid.append(f"{text}" + (f" in {flags_file}" if flags_file else "") + f": {exc}")
                return None, f"unknown: the kubelet refuses {text}"
            return v, f"flag {text}"
        if unresolved:
            return None, f"unknown: command line has unexpanded {', '.join(unresolved)}"
        if dir_unknown:
            return None, f"unknown: {dir_unknown}"
        if last is None:
            if fragment:
                return None, f"unknown: {dotted} not set in this drop-in (the rest comes from --config and the other drop-ins)"
            if cfg is not None:
                return s.config_default, f"config default ({dotted} unset → {_show_default(s.config_default)})"
            if missing:
                return None, f"unknown: --config {config_named} not in the input"
            return s.flag_default, f"flag default (--{s.flag} unset → {_show_default(s.flag_default)})"
        label, name, v = last
        if v is _REFUSED:
            return None, f"unknown: the kubelet refuses {dotted} in {name}"
        if v is None or v == "":  # null deletes the field, empty is unset: v1beta1 defaulting fills it in
            how = "null" if v is None else "empty"
            return s.config_default, f"config default ({dotted} {how} in {name} → {_show_default(s.config_default)})"
        if s.check:
            try:
                s.check(v)
            except ValueError as exc:
                invalid.append(f"{name}: {dotted}: {v!r} ({exc})")
                return None, f"unknown: the kubelet refuses {dotted}: {v!r} in {name}"
        return v, f"{label} {dotted}: {_show_default(v)}"

    for s in KUBELET_SETTINGS:
        facts[s.fact], facts[f"{s.fact}_from"] = effective(s)
    facts["invalid"] = list(dict.fromkeys(invalid))  # a broken ancestor is reported once, not per setting
    return facts


def kubelet_items(inputs: Inputs) -> list[Item]:
    items: list[Item] = []
    used: set[str] = set()
    for cl in (c for c in inputs.commands if c.program == "kubelet"):
        argv, unresolved = inputs.expand(cl)
        flags = parse_flags(argv, KUBELET_BOOL)
        named = flags.get("config") or None  # the kubelet ignores an empty --config / --config-dir
        config = inputs.resolve(named, "KubeletConfiguration") if named else None
        config_dir = flags.get("config-dir") or None
        drop_ins = find_drop_ins(inputs, config_dir) if config_dir else None
        used.update(_real(d.file) for d in drop_ins or [])
        if config:
            used.add(_real(config.file))
        facts = kubelet_facts(flags, config, named, unresolved, flags_file=cl.file, config_dir=config_dir, drop_ins=drop_ins)
        items.append(Item("kubelet", f"kubelet ({cl.file})", facts, cl.file, cl.line))
    for o in inputs.of_kind("KubeletConfiguration"):
        if _real(o.file) in used:
            continue
        if o.file.endswith(".conf"):  # a drop-in (only *.conf are): unset fields come from elsewhere, not defaults
            items.append(Item("kubelet", f"kubelet drop-in {o.file}", kubelet_facts({}, o, None, fragment=True), o.file, o.line))
        else:
            items.append(Item("kubelet", f"kubelet config {o.file}", kubelet_facts({}, o, None), o.file, o.line))
    return items


# ---------------------------------------------------------------- kube-apiserver


def _container_argv(c: Any) -> list[str]:
    if not isinstance(c, dict):
        return []
    return [str(x) for x in _list(c.get("command")) + _list(c.get("args"))]


def apiserver_commands(inputs: Inputs) -> list[CommandLine]:
    out = [c for c in inputs.commands if c.program == "kube-apiserver"]
    for pod in inputs.of_kind("Pod"):
        for c in _list(_dig(pod.data, "spec", "containers")):
            argv = _container_argv(c)
            if argv and argv[0].rsplit("/", 1)[-1] == "kube-apiserver":
                out.append(CommandLine(argv, pod.file, pod.line))
    return out


_IMAGE_TAG = re.compile(r"kube-apiserver[^:@/]*:v?(\d+)\.(\d+)")
_GIT_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def apiserver_version(inputs: Inputs) -> tuple[tuple[int, int] | None, str]:
    """(major, minor) of the API server from live /version or a kube-apiserver image tag, and where it was read."""
    for o in inputs.of_kind("ServerVersion"):  # live: GET /version
        m = _GIT_VERSION.match(str(o.data.get("gitVersion") or ""))
        if m:
            return (int(m.group(1)), int(m.group(2))), f"/version {o.data.get('gitVersion')}"
    for pod in inputs.of_kind("Pod"):
        for c in _list(_dig(pod.data, "spec", "containers")):
            image = str(c.get("image") or "") if isinstance(c, dict) else ""
            m = _IMAGE_TAG.search(image)
            if m:
                return (int(m.group(1)), int(m.group(2))), f"image {image} in {pod.file}"
    return None, ""


HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
ANONYMOUS_GATE = "AnonymousAuthConfigurableEndpoints"


def feature_gates(value: str) -> dict[str, bool]:
    out = {}
    for part in value.split(","):
        name, eq, v = part.strip().partition("=")
        if eq:
            out[name.strip()] = _bool(v)
    return out


def anonymous_facts(
    flags: dict[str, str], authn_file: str | None, authn: Obj | None, version: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Anonymous authentication of kube-apiserver from --anonymous-auth and the --authentication-config file.

    ``anonymous_auth`` is true only when anonymous requests are authenticated on every path; a file's
    ``anonymous.conditions`` (exact, case-sensitive paths) restrict it to those paths. The API server refuses
    to start when --anonymous-auth is given together with an ``anonymous`` section, when conditions are set
    with ``enabled: false``, or with the section while the AnonymousAuthConfigurableEndpoints gate is off;
    those are reported as conflicts and the setting is unknown (None), not guessed.
    """
    flag = flags.get("anonymous-auth")
    facts: dict[str, Any] = {
        "authentication_config": authn_file,
        "authentication_config_missing": bool(authn_file) and authn is None,
        "anonymous_paths": None,
        "anonymous_other_paths": [],
        "anonymous_conflicts": [],
    }
    section = authn.data.get("anonymous") if authn else None
    if authn is not None and section is not None:
        where = str(authn_file)
        section = section if isinstance(section, dict) else {}
        enabled = section.get("enabled") is True
        conditions = [c for c in _list(section.get("conditions")) if isinstance(c, dict)]
        paths = [str(c.get("path") or "") for c in conditions]
        conflicts = []
        if flag is not None:
            conflicts.append(f"--anonymous-auth={flag} is set and {where} has an anonymous section")
        if conditions and not enabled:
            conflicts.append(f"{where}: anonymous.conditions are set but anonymous.enabled is not true")
        gate = feature_gates(flags.get("feature-gates", "")).get(ANONYMOUS_GATE)
        if gate is False:
            conflicts.append(f"--feature-gates {ANONYMOUS_GATE}=false and {where} has an anonymous section")
        elif version is not None and (version < (1, 31) or (version < (1, 32) and gate is not True)):
            # the section came in 1.31 behind an alpha gate (off by default), on by default from 1.32
            need = "Kubernetes 1.31 or later" if version < (1, 31) else f"{ANONYMOUS_GATE}=true on 1.31 (alpha, off by default)"
            conflicts.append(f"Kubernetes {version[0]}.{version[1]} and {where} has an anonymous section, which needs {need}")
        facts["anonymous_conflicts"] = conflicts
        if conflicts:
            facts["anonymous_auth"] = None
            facts["anonymous_auth_from"] = "unknown: the API server does not start with this configuration"
            return facts
        facts["anonymous_auth"] = enabled and not paths
        facts["anonymous_paths"] = paths if enabled else []
        facts["anonymous_other_paths"] = [p for p in paths if p not in HEALTH_PATHS] if enabled else []
        if not enabled:
            facts["anonymous_auth_from"] = f"{where}: anonymous.enabled false"
        elif paths:
            facts["anonymous_auth_from"] = f"{where}: anonymous only on {', '.join(paths)}"
        else:
            facts["anonymous_auth_from"] = f"{where}: anonymous.enabled true with no conditions (every path)"
        return facts
    if flag is not None:
        facts["anonymous_auth"] = _bool(flag)
        facts["anonymous_auth_from"] = f"--anonymous-auth={flag}"
        if facts["authentication_config_missing"]:
            # Were the file to hold an anonymous section, the API server would refuse the flag and not run.
            facts["anonymous_auth_from"] += f" (--authentication-config {authn_file} not in the input)"
    elif facts["authentication_config_missing"]:
        facts["anonymous_auth"] = None
        facts["anonymous_auth_from"] = "unknown (that file may hold an anonymous section)"
    else:
        facts["anonymous_auth"] = True
        facts["anonymous_auth_from"] = "default (true)" + (f"; {authn_file} has no anonymous section" if authn else "")
    return facts


def apiserver_items(inputs: Inputs) -> tuple[list[Item], set[str]]:
    items: list[Item] = []
    policies_used: set[str] = set()
    for cl in apiserver_commands(inputs):
        flags = parse_flags(cl.argv, frozenset({"anonymous-auth"}))
        authn_file = flags.get("authentication-config")
        authn = inputs.resolve(authn_file, "AuthenticationConfiguration") if authn_file else None
        facts: dict[str, Any] = anonymous_facts(flags, authn_file, authn, apiserver_version(inputs)[0])
        authz_config = flags.get("authorization-config")
        modes: list[str] | None
        if authz_config:
            obj = inputs.resolve(authz_config, "AuthorizationConfiguration")
            authorizers = obj.data.get("authorizers") if obj else None
            if obj is None or not isinstance(authorizers, list | None):
                modes = None  # not in the input, or authorizers that do not decode (the API server does not start)
            else:
                modes = [str(a.get("type")) for a in _list(authorizers) if isinstance(a, dict)]
            note = " (not in the input)" if obj is None else "" if modes is not None else " (authorizers is not a list)"
            facts["authorization_from"] = f"--authorization-config {authz_config}{note}"
        elif "authorization-mode" in flags:
            modes = [m for m in flags["authorization-mode"].split(",") if m]
            facts["authorization_from"] = f"--authorization-mode={flags['authorization-mode']}"
        else:
            modes = ["AlwaysAllow"]
            facts["authorization_from"] = "default (--authorization-mode unset → AlwaysAllow)"
        facts["authorization_modes"] = modes
        facts["authorization_known"] = modes is not None
        facts["always_allow"] = bool(modes) and "AlwaysAllow" in (modes or [])
        backends = [b for b, f in (("log", "audit-log-path"), ("webhook", "audit-webhook-config-file")) if flags.get(f)]
        policy_file = flags.get("audit-policy-file")
        facts["audit_backends"] = backends
        facts["audit_policy_file"] = policy_file
        facts["audit_enabled"] = bool(backends and policy_file)
        policy = inputs.resolve(policy_file, "Policy") if policy_file else None
        facts["audit_policy_missing"] = bool(policy_file) and policy is None
        if policy:
            policies_used.add(policy.file)
        items.append(Item("apiserver", f"kube-apiserver ({cl.file})", facts, cl.file, cl.line))
        if policy and facts["audit_enabled"]:
            items.extend(audit_policy_items(policy))
    return items, policies_used


# ---------------------------------------------------------------- audit policy

# (resource, subresource, namespaced, verbs) a T1609 request is audited as.
AUDITED = (
    ("pods", "exec", True, ("get", "create")),
    ("pods", "attach", True, ("get", "create")),
    ("pods", "ephemeralcontainers", True, ("patch", "update")),
    ("nodes", "proxy", False, ("get", "create")),
)
STAGES_THAT_SEE_EXEC = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete"})


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def audit_resource_match(rule: dict[str, Any], group: str, resource: str, subresource: str) -> str:
    """'all', 'some' (only named objects) or 'none' — audit policy semantics (not RBAC's):
    ``*`` all; exact ``resource/subresource``; ``*/sub``; ``resource/*`` (which also matches ``resource`` itself);
    ``pods`` alone does not match ``pods/exec``; an empty resources list in a group matches all of that group.
    """
    combined = f"{resource}/{subresource}" if subresource else resource
    best = "none"
    for gr in _list(rule.get("resources")):
        if not isinstance(gr, dict) or str(gr.get("group") or "") != group:
            continue
        res_list = _strs(gr.get("resources"))
        if not res_list:
            return "all"
        named = bool(_strs(gr.get("resourceNames")))
        for res in res_list:
            hit = (
                res == combined
                or res == "*"
                or (bool(subresource) and res.startswith("*/") and subresource == res[2:])
                or (res.endswith("/*") and resource == res[:-2])
            )
            if hit:
                if not named:
                    return "all"
                best = "some"
    return best


def rule_applies(rule: dict[str, Any], verb: str, group: str, resource: str, subresource: str, namespaced: bool) -> tuple[str, list[str]]:
    """('all' | 'some' | 'none', conditions) for a request of this kind by anyone in any namespace."""
    conds: list[str] = []
    verbs = _strs(rule.get("verbs"))
    if verbs and verb not in verbs:
        return "none", conds
    if rule.get("users"):
        conds.append("users " + ",".join(_strs(rule["users"])))
    if rule.get("userGroups"):
        conds.append("userGroups " + ",".join(_strs(rule["userGroups"])))
    namespaces = _strs(rule.get("namespaces"))
    if namespaces or rule.get("resources"):
        if namespaces:
            if not namespaced:
                if "" not in namespaces:
                    return "none", conds
            else:
                conds.append("namespaces " + ",".join(n or '""' for n in namespaces))
        if rule.get("resources"):
            m = audit_resource_match(rule, group, resource, subresource)
            if m == "none":
                return "none", conds
            if m == "some":
                conds.append("resourceNames")
    elif rule.get("nonResourceURLs"):
        return "none", conds
    return ("some" if conds else "all"), conds


def policy_coverage(policy: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [r for r in _list(policy.get("rules")) if isinstance(r, dict)]
    policy_omit = set(_strs(policy.get("omitStages")))
    out = []
    for resource, sub, namespaced, verbs in AUDITED:
        for verb in verbs:
            level, at, omit = "None", "no rule matches (default None)", set(policy_omit)
            exceptions: list[str] = []
            blind_for: list[str] = []
            for i, r in enumerate(rules, 1):
                how, conds = rule_applies(r, verb, "", resource, sub, namespaced)
                if how == "none":
                    continue
                lvl = str(r.get("level") or "None")
                r_omit = policy_omit | set(_strs(r.get("omitStages")))
                if how == "some":
                    exceptions.append(f"rule {i} ({'; '.join(conds)}): {lvl}")
                    if lvl == "None" or STAGES_THAT_SEE_EXEC <= r_omit:
                        blind_for.append(f"rule {i} ({'; '.join(conds)})")
                    continue
                level, at, omit = lvl, f"rule {i}", r_omit
                break
            blind = level == "None" or STAGES_THAT_SEE_EXEC <= omit
            out.append(
                {
                    "resource": f"{resource}/{sub}",
                    "verb": verb,
                    "level": level,
                    "rule": at,
                    "omit_stages": sorted(omit),
                    "blind": blind,
                    "exceptions": exceptions,
                    "blind_for": blind_for,
                    # exec/attach/proxy commands are in requestURI (Metadata); a debug container's command is in the body.
                    "command_visible": not blind and (sub != "ephemeralcontainers" or level in ("Request", "RequestResponse")),
                }
            )
    return out


def audit_policy_items(policy: Obj) -> list[Item]:
    items = []
    for cov in policy_coverage(policy.data):
        facts = {"policy": policy.file, **cov}
        target = f"audit policy {policy.file}: {cov['verb']} {cov['resource']}"
        items.append(Item("audit_coverage", target, facts, policy.file, policy.line))
    return items


def collect(inputs: Inputs) -> list[Item]:
    items = kubelet_items(inputs) + coverage_items(inputs)
    api, used = apiserver_items(inputs)
    items += api
    for p in inputs.of_kind("Policy"):
        if p.file not in used and str(p.data.get("apiVersion", "")).startswith("audit.k8s.io"):
            items += audit_policy_items(p)
    return items
