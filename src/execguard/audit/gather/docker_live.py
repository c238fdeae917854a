"""Live, read-only Docker collection: the Engine API at a URL the user names, and stat() of the local sockets."""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import socket
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..collect.docker import DockerConfig, daemon_items, parse_host
from ..engine import Item
from .live import LiveError
from .probe import CLIENT_CERT_ALERTS, alert_name, docker_anonymous

LOCAL_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
TIMEOUT = 2.0
MAX_BODY = 4 << 20


@dataclass(frozen=True)
class ClientTLS:
    """TLS client settings for --docker-host. Paths only: the key is read by the TLS library, never by us."""

    verify: bool  # check the daemon's certificate against ca
    ca: str | None
    cert: str | None
    key: str | None

    def describe(self) -> str:
        who = f"client certificate {self.cert}" if self.cert else "no client certificate"
        return f"{who}, server certificate {'verified against ' + str(self.ca) if self.verify else 'not verified'}"


def client_tls(
    tls: bool = False,
    tlsverify: bool | None = None,
    tlscacert: str | None = None,
    tlscert: str | None = None,
    tlskey: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientTLS | None:
    """The docker CLI's rules: --tlsverify (or a non-empty DOCKER_TLS_VERIFY) implies --tls; DOCKER_TLS enables it;
    files default to ca.pem, cert.pem, key.pem in DOCKER_CERT_PATH (else DOCKER_CONFIG, else ~/.docker), and a
    default cert or key that does not exist is left out. Unlike the CLI, naming a file also turns TLS on."""
    env = os.environ if env is None else env
    verify = tlsverify if tlsverify is not None else bool(env.get("DOCKER_TLS_VERIFY"))
    explicit = {"--tlscacert": tlscacert, "--tlscert": tlscert, "--tlskey": tlskey}
    if not (tls or verify or tlsverify is not None or env.get("DOCKER_TLS") or any(explicit.values())):
        return None
    for flag, path in explicit.items():
        if path and not os.path.isfile(path):
            raise LiveError(f"{flag} {path}: no such file")
    base = env.get("DOCKER_CERT_PATH") or env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")

    def default(name: str) -> str | None:
        path = os.path.join(base, name)
        return path if os.path.isfile(path) else None

    ca = tlscacert or default("ca.pem")
    cert = tlscert or default("cert.pem")
    key = tlskey or default("key.pem")
    if verify and not ca:
        raise LiveError(f"--tlsverify needs a CA certificate: give --tlscacert (no ca.pem in {base})")
    if bool(cert) != bool(key):
        raise LiveError("a client certificate needs both --tlscert and --tlskey (or cert.pem and key.pem in DOCKER_CERT_PATH)")
    return ClientTLS(verify, ca if verify else None, cert, key)


def _context(tls: ClientTLS) -> ssl.SSLContext:
    """As the docker CLI: the daemon's certificate (name included) checked against ca when verifying; our certificate if any."""
    if tls.verify:
        ctx = ssl.create_default_context(cafile=tls.ca)
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert and tls.key:
        ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


def _read(host: str, port: int, tls: ClientTLS | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """GET /version and /info over our own connection: requests (under the docker SDK) would let REQUESTS_CA_BUNDLE
    replace the CA and HTTP(S)_PROXY reroute the audit."""
    ctx = _context(tls) if tls is not None else None
    out: list[dict[str, Any]] = []
    for path in ("/version", "/info"):
        if ctx is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT * 3, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT * 3)
        try:
            conn.request("GET", path, headers={"User-Agent": "execguard-audit"})
            resp = conn.getresponse()
            body = resp.read(MAX_BODY)
        finally:
            conn.close()
        if resp.status != 200:
            raise LiveError(f"GET {path} → {resp.status} {body[:120].decode(errors='replace').strip()}")
        data = json.loads(body)
        out.append(data if isinstance(data, dict) else {})
    return out[0], out[1]


def _explain(exc: Exception, host: str, port: int, tls: ClientTLS | None) -> str:
    """Name a refused client certificate. In TLS 1.3 the refusal follows the handshake and often reaches us as a bare
    EOF or reset; a TLS 1.2 handshake with the same settings gets the alert itself."""
    reason = getattr(exc, "reason", None)
    if reason in CLIENT_CERT_ALERTS:
        return f"the daemon refused the client certificate (TLS alert {alert_name(str(reason))})"
    if tls is None or not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionResetError | BrokenPipeError):
        return str(exc)[:200]
    ctx = _context(tls)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw, ctx.wrap_socket(raw, server_hostname=host):
            pass
    except ssl.SSLError as again:
        if again.reason in CLIENT_CERT_ALERTS:
            return f"the daemon refused the client certificate (TLS alert {alert_name(str(again.reason))} in a TLS 1.2 handshake)"
    except OSError:
        pass
    return str(exc)[:200]


def docker_host_items(url: str, tls: ClientTLS | None = None) -> tuple[list[Item], list[str]]:
    """The Engine API at URL: first what a client with no credentials gets (tcp://: plain HTTP, then TLS with no
    client certificate), then version and info read with the user's TLS settings, or anonymously where that works.

    Returns the items and the errors of reads that failed; raises LiveError when nothing answers at all.
    """
    h = parse_host(url, False)
    if h["scheme"] != "tcp":
        return _local_host_items(url, h), []
    anon = docker_anonymous(h["address"], h["port"])
    if not anon["open"] or not (anon["docker_unauthenticated"] or anon["tls"]):
        raise LiveError(f"{url}: no Docker API answer ({anon['answer']})")
    facts: dict[str, Any] = {
        "url": url,
        **h,
        "transport": "tls" if anon["tls"] else "plain",
        "anonymous": anon["answer"],
        "unauthenticated": anon["docker_unauthenticated"],
        "client_cert_required": anon["client_cert_required"],
        "answered": anon["docker_unauthenticated"],
        "read": False,
        "read_with": None,
        "version": anon["version"],
        "api_version": anon["api_version"],
        "os": None,
    }
    if not anon["tls"]:
        read_tls, how = None, "no credentials (plain HTTP" + ("; the TLS options were not needed)" if tls else ")")
    elif tls is not None and (tls.cert or anon["docker_unauthenticated"]):
        read_tls, how = tls, tls.describe()
    elif anon["docker_unauthenticated"]:
        read_tls, how = ClientTLS(False, None, None, None), "no client certificate"
    else:
        facts["read_with"] = "not read: no client certificate given (--tlscert/--tlskey, or DOCKER_CERT_PATH with --tlsverify)"
        return [Item("docker_api", url, facts)], []
    try:
        version, info = _read(h["address"], h["port"], read_tls)
    except (OSError, ValueError, http.client.HTTPException, LiveError) as exc:  # ssl.SSLError is an OSError
        facts["read_with"] = f"not read: reading with {how} failed: {_explain(exc, h['address'], h['port'], read_tls)}"
        return [Item("docker_api", url, facts)], [f"{url}: {facts['read_with']}"]
    facts["read_with"] = f"read with {how}"
    facts.update(read=True, answered=True, version=version.get("Version"), api_version=version.get("ApiVersion"), os=version.get("Os"))
    facts["security_options"] = list(info.get("SecurityOptions") or [])
    return [Item("docker_api", url, facts), *_daemon_from_info(url, info)], []


def _local_host_items(url: str, h: dict[str, Any]) -> list[Item]:
    """unix:// (and the SDK's other schemes): stat the socket, then read version and info with no credentials."""
    import docker

    items: list[Item] = []
    if h["scheme"] == "unix":
        items += socket_items(url.split("://", 1)[-1])
    try:
        cli = docker.DockerClient(base_url=url, timeout=int(TIMEOUT * 3))
    except Exception as exc:
        raise LiveError(f"{url}: {exc}") from None
    base = {"url": url, **h, "transport": h["scheme"], "unauthenticated": False, "client_cert_required": None}
    try:
        answered = bool(cli.ping())
        version = cli.version()
        info = cli.info()
    except Exception as exc:
        items.append(Item("docker_api", url, {**base, "answered": False, "error": str(exc)[:200]}))
        return items
    finally:
        cli.close()
    facts = {
        **base,
        "answered": answered,
        "read": True,
        "read_with": "read with no credentials",
        "version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "os": version.get("Os"),
        "security_options": list(info.get("SecurityOptions") or []),
    }
    items.append(Item("docker_api", url, facts))
    return items + _daemon_from_info(url, info)


def _daemon_from_info(url: str, info: dict[str, Any]) -> list[Item]:
    sec = info.get("SecurityOptions") or []
    cfg = DockerConfig(f"dockerd at {url}", None, None)
    cfg.userns_remap = "enabled" if any("name=userns" in s for s in sec) else None
    cfg.authorization_plugins = list((info.get("Plugins") or {}).get("Authorization") or [])
    return [i for i in daemon_items(cfg, live=True) if i.kind == "docker_daemon"]


def local_socket_items(paths: tuple[str, ...] = LOCAL_SOCKETS) -> list[Item]:
    """stat() the local Docker sockets (each real file once); no connection is made."""
    seen: set[str] = set()
    items: list[Item] = []
    for p in paths:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            items += socket_items(p)
    return items


def socket_items(path: str) -> list[Item]:
    try:
        st = os.stat(path)
    except OSError:
        return []
    if not stat.S_ISSOCK(st.st_mode):
        return []
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
        members = list(grp.getgrgid(st.st_gid).gr_mem)
    except KeyError:
        group, members = str(st.st_gid), []
    mode = stat.S_IMODE(st.st_mode)
    facts = {
        "path": path,
        "mode": f"{mode:04o}",
        "owner": owner,
        "group": group,
        "group_members": members,
        "world_writable": bool(mode & stat.S_IWOTH),
        "group_writable": bool(mode & stat.S_IWGRP),
        "non_root_group": bool(mode & stat.S_IWGRP) and st.st_gid != 0,
    }
    return [Item("docker_socket", path, facts)]
