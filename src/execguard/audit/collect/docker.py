"""Docker daemon facts from daemon.json, dockerd command lines and systemd units (offline)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from ..engine import Item
from ..gather.inputs import CommandLine, Inputs, Obj, sequence

DEFAULT_CONFIG = "/etc/docker/daemon.json"
SHORT_WITH_VALUE = {"H": "host", "G": "group", "p": "pidfile", "l": "log-level"}
LONG_WITH_VALUE = frozenset(
    {
        "host",
        "group",
        "userns-remap",
        "authorization-plugin",
        "config-file",
        "data-root",
        "exec-root",
        "pidfile",
        "tlscacert",
        "tlscert",
        "tlskey",
        "storage-driver",
        "containerd",
        "bridge",
        "log-level",
        "default-runtime",
    }
)
LONG_BOOL = frozenset({"tls", "tlsverify", "debug", "iptables", "live-restore", "icc", "ip-forward", "rootless"})


@dataclass
class DockerConfig:
    target: str
    file: str | None
    line: int | None
    hosts: list[tuple[str, str]] = field(default_factory=list)  # (host URL, file it came from)
    tls: bool | None = None
    tlsverify: bool | None = None
    userns_remap: str | None = None
    authorization_plugins: list[str] = field(default_factory=list)
    group: str | None = None

    def effective_tls(self) -> tuple[bool, bool]:
        """(TLS on, client certificates required) as dockerd >= 20.10 decides: any tlsverify setting, even false,
        turns TLS on, and an unset tlsverify copies tls, so --tls alone requires client certificates."""
        if self.tlsverify is not None:
            return True, self.tlsverify
        return bool(self.tls), bool(self.tls)


def _b(v: str) -> bool:
    return v.lower() in ("true", "1", "t", "yes")


def parse_dockerd(argv: list[str]) -> dict[str, list[str]]:
    """dockerd flags in every pflag spelling: -H x, -H=x, -Hx, -DH x, --host x, --host=x; bools bare or =value."""
    out: dict[str, list[str]] = {}
    i = 1
    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if not eq and name in LONG_WITH_VALUE and i < len(argv):
                value = argv[i]
                i += 1
            elif not eq:
                value = "true"
            out.setdefault(name, []).append(value)
        elif a.startswith("-") and len(a) > 1:
            cluster = a[1:]
            for j, ch in enumerate(cluster):
                if ch in SHORT_WITH_VALUE:
                    rest = cluster[j + 1 :]
                    if rest.startswith("="):
                        rest = rest[1:]
                    if not rest and i < len(argv):
                        rest = argv[i]
                        i += 1
                    out.setdefault(SHORT_WITH_VALUE[ch], []).append(rest)
                    break
                out.setdefault({"D": "debug"}.get(ch, ch), []).append("true")
    return out


def _hosts_value(v: Any) -> list[str]:
    if isinstance(v, str):
        return [h.strip() for h in v.split(",") if h.strip()]
    if isinstance(v, list):
        return [str(h).strip() for h in v if str(h).strip()]
    return []


def apply_json(cfg: DockerConfig, obj: Obj) -> None:
    d = obj.data
    cfg.hosts += [(h, obj.file) for h in _hosts_value(d.get("hosts"))]
    if "tls" in d:
        cfg.tls = bool(d["tls"])
    if "tlsverify" in d:
        cfg.tlsverify = bool(d["tlsverify"])
    if d.get("userns-remap"):
        cfg.userns_remap = str(d["userns-remap"])
    cfg.authorization_plugins += [str(p) for p in sequence(d.get("authorization-plugins"))]
    if d.get("group"):
        cfg.group = str(d["group"])


def apply_flags(cfg: DockerConfig, flags: dict[str, list[str]], file: str) -> None:
    cfg.hosts += [(h, file) for v in flags.get("host", []) for h in _hosts_value(v)]
    if "tls" in flags:
        cfg.tls = _b(flags["tls"][-1])
    if "tlsverify" in flags:
        cfg.tlsverify = _b(flags["tlsverify"][-1])
    if flags.get("userns-remap"):
        cfg.userns_remap = flags["userns-remap"][-1] or None
    cfg.authorization_plugins += flags.get("authorization-plugin", [])
    if flags.get("group"):
        cfg.group = flags["group"][-1]


def parse_host(host: str, tls: bool) -> dict[str, Any]:
    """Docker's host syntax: tcp://ADDR:PORT, tcp://:PORT, ADDR:PORT (tcp), unix://PATH, fd://, npipe://, ssh://."""
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = ("unix", host) if host.startswith("/") else ("tcp", host)
    info: dict[str, Any] = {"scheme": scheme, "address": None, "port": None, "loopback": None}
    if scheme != "tcp":
        return info
    rest = rest.split("/", 1)[0]
    addr, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    addr = addr.strip("[]") or "127.0.0.1"  # dockerd's default TCP address
    info["address"] = addr
    info["port"] = int(port) if port.isdigit() else (2376 if tls else 2375)
    try:
        info["loopback"] = ipaddress.ip_address(addr).is_loopback
    except ValueError:
        info["loopback"] = addr == "localhost"
    return info


def daemon_items(cfg: DockerConfig, live: bool = False) -> list[Item]:
    tls, tlsverify = cfg.effective_tls()
    items: list[Item] = []
    for host, file in cfg.hosts:
        h = parse_host(host, tls)
        if h["scheme"] != "tcp":
            continue
        facts = {
            "daemon": cfg.target,
            "host": host,
            **h,
            "tls": tls,
            "tlsverify": tlsverify,
            "tlsverify_implied": tlsverify and cfg.tlsverify is None,  # by --tls alone: dockerd < 20.10 did not verify
        }
        items.append(Item("docker_listener", f"{cfg.target} {host}", facts, file, cfg.line if file == cfg.file else None))
    facts = {
        "daemon": cfg.target,
        "hosts": [h for h, _ in cfg.hosts] or ["unix:///var/run/docker.sock (default)"],
        "userns_remap": cfg.userns_remap,
        "authorization_plugins": cfg.authorization_plugins,
        "group": cfg.group or "docker",
        "live": live,
    }
    items.append(Item("docker_daemon", cfg.target, facts, cfg.file, cfg.line))
    return items


def socket_unit_streams(text: str) -> list[tuple[str, int]]:
    """ListenStream= values of a systemd .socket unit that are TCP (a port, ADDR:PORT or [V6]:PORT), with line."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s.startswith("ListenStream="):
            continue
        v = s[len("ListenStream=") :].strip()
        if not v or v.startswith(("/", "@")):
            continue  # unix socket path or abstract socket
        out.append((f"tcp://{v}" if ":" in v else f"tcp://0.0.0.0:{v}", n))  # a bare port listens on every address
    return out


def collect(inputs: Inputs) -> list[Item]:
    items: list[Item] = []
    used: set[str] = set()
    cfgs: list[DockerConfig] = []
    for cl in (c for c in inputs.commands if c.program == "dockerd"):
        cfg = _from_command(cl, inputs, used)
        cfgs.append(cfg)
        items += daemon_items(cfg)
    for obj in inputs.docker_configs:
        if obj.file in used:
            continue
        cfg = DockerConfig(f"dockerd config {obj.file}", obj.file, obj.line)
        apply_json(cfg, obj)
        cfgs.append(cfg)
        items += daemon_items(cfg)
    # systemd socket activation (docker.socket + dockerd -H fd://): TCP sockets systemd hands to the daemon
    activated = [c for c in cfgs if any(h.startswith("fd://") for h, _ in c.hosts)] or cfgs
    for file, text in inputs.texts.items():
        if not file.endswith(".socket") or "docker" not in os.path.basename(file):
            continue
        for host, line in socket_unit_streams(text):
            cfg = DockerConfig(f"{os.path.basename(file)} (socket activation)", file, line, hosts=[(host, file)])
            modes = [c.effective_tls() for c in activated]
            cfg.tls = any(t for t, _ in modes)
            cfg.tlsverify = all(v for _, v in modes) if cfg.tls else None
            items += [i for i in daemon_items(cfg) if i.kind == "docker_listener"]
    return items


def _from_command(cl: CommandLine, inputs: Inputs, used: set[str]) -> DockerConfig:
    argv, _ = inputs.expand(cl)
    flags = parse_dockerd(argv)
    cfg = DockerConfig(f"dockerd ({cl.file}:{cl.line})", cl.file, cl.line)
    named = (flags.get("config-file") or [DEFAULT_CONFIG])[-1]
    obj = inputs.resolve(named, "DockerDaemonConfig")
    if obj is None and "config-file" not in flags and len(inputs.docker_configs) == 1:
        obj = inputs.docker_configs[0]
    if obj is not None:
        used.add(obj.file)
        cfg.target = f"dockerd ({cl.file}:{cl.line} + {os.path.basename(obj.file)})"
        apply_json(cfg, obj)
    apply_flags(cfg, flags, cl.file)
    return cfg
