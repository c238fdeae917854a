"""Kubelet facts from its command line, ``--config`` file and ``--config-dir`` drop-ins (offline inputs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..engine import Item
from ..gather.inputs import MAX_FILE, Inputs, Obj
from .flags import Flags, go_bool, go_int32, parse_flags


def _show_default(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else (str(v) if v != "" else "none")



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
