"""TCP probes of the addresses the user names (loopback by default): what answers on 2375/2376/10250/10255
without credentials. Nothing else is ever contacted."""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
from typing import Any

from ..engine import Item
from .live import LiveError

PROBE_PORTS = {2375: "docker", 2376: "docker-tls", 10250: "kubelet", 10255: "kubelet-readonly"}
POD_LIST_LIMIT = 4 << 20  # enough of a kubelet's /pods to count a node's pods
SERVICES = frozenset(PROBE_PORTS.values())  # ADDR:PORT/SERVICE names what listens on a non-standard port
LOOPBACK = ("127.0.0.1",)
TIMEOUT = 2.0


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def parse_spec(spec: str) -> tuple[str, list[int], str | None]:
    """ADDR, ADDR:PORT, [V6]:PORT, loopback, each with an optional /SERVICE -> (host, ports, service); LiveError when malformed."""
    addr, slash, service = spec.rpartition("/") if "/" in spec else (spec, "", "")
    if slash and service not in SERVICES:
        raise LiveError(f"{spec}: unknown service {service!r} (choose {', '.join(sorted(SERVICES))})")
    if addr.startswith("["):
        host, close, port = addr[1:].partition("]")
        if not close or (port and not port.startswith(":")):
            raise LiveError(f"{spec}: bad address (write [IPv6]:PORT)")
        port = port[1:]
    elif addr.count(":") == 1:
        host, _, port = addr.partition(":")
    else:
        host, port = addr, ""
    host = "127.0.0.1" if host in ("loopback", "localhost") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise LiveError(f"{spec}: bad address {host!r}") from None
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise LiveError(f"{spec}: bad port {port!r} (1-65535)")
    if service and not port:
        raise LiveError(f"{spec}: /{service} needs a port (ADDR:PORT/{service})")
    return host, [int(port)] if port else list(PROBE_PORTS), service or None


def describe(spec: str) -> str:
    """What probing ``spec`` connects to, for the user: '127.0.0.1:2375 (docker), 127.0.0.1:2376 (docker-tls), ...'."""
    host, ports, service = parse_spec(spec)
    shown = f"[{host}]" if ":" in host else host
    return ", ".join(f"{shown}:{p} ({service or PROBE_PORTS.get(p, 'docker or other')})" for p in ports)


def _tls_context(max_tls12: bool = False) -> ssl.SSLContext:
    """An anonymous client's context: no client certificate, server certificate not checked (an attacker checks neither)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _http(host: str, port: int, path: str, tls: bool, ctx: ssl.SSLContext | None = None, limit: int = 4096) -> tuple[int, bytes]:
    if tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=ctx or _tls_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers={"User-Agent": "execguard-audit"})
        resp = conn.getresponse()
        return resp.status, resp.read(limit)
    finally:
        conn.close()


# Alerts a TLS server sends when the client shows no certificate: Go (dockerd) sends bad_certificate, or
# certificate_required in TLS 1.3 from Go 1.21 on; OpenSSL servers send certificate_required in TLS 1.3.
CLIENT_CERT_ALERTS = frozenset({"SSLV3_ALERT_BAD_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED"})
NO_TLS12 = frozenset({"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE"})


def _tls_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """GET over TLS with no client certificate. TLS 1.2 first: a refusal then comes inside the handshake, before any
    request is sent; in TLS 1.3 it comes after, racing the server's close. Servers without 1.2 get the default."""
    try:
        return _http(host, port, path, True, _tls_context(max_tls12=True))
    except ssl.SSLError as exc:
        if exc.reason not in NO_TLS12:
            raise
    return _http(host, port, path, True, _tls_context())


def alert_name(reason: str) -> str:
    return reason.partition("ALERT_")[2].lower().replace("_", " ") or reason


def docker_anonymous(host: str, port: int, tls_first: bool = False) -> dict[str, Any]:
    """What a client with no credentials gets from a Docker API port: GET /version over http and over https.

    Facts: ``open`` (TCP connect), ``tls`` (the port speaks TLS), ``docker_unauthenticated`` (the API answered),
    ``client_cert_required`` (the TLS handshake was refused for want of a client certificate), ``answer``
    (what each attempt got: the evidence), and ``version``/``api_version`` when the API answered.
    """
    facts: dict[str, Any] = {
        "open": False,
        "tls": None,
        "client_cert_required": None,
        "docker_unauthenticated": False,
        "answer": None,
        "version": None,
        "api_version": None,
    }
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            facts["open"] = True
    except OSError as exc:
        facts["answer"] = f"connect: {type(exc).__name__}"
        return facts
    notes: list[str] = []
    for tls in (True, False) if tls_first else (False, True):
        what = "https without a client certificate" if tls else "http"
        try:
            code, body = _tls_get(host, port, "/version") if tls else _http(host, port, "/version", False)
        except ssl.SSLError as exc:
            reason = str(exc.reason or type(exc).__name__)
            if reason in CLIENT_CERT_ALERTS:
                facts.update(tls=True, client_cert_required=True)
                notes.append(f"{what}: handshake refused (TLS alert {alert_name(reason)})")
                break
            notes.append(f"{what}: {reason}")
            continue
        except (OSError, http.client.HTTPException) as exc:
            notes.append(f"{what}: {type(exc).__name__}")
            continue
        if tls:
            facts["tls"] = True  # an HTTP answer over TLS, whatever it says
        version = _docker_version(body) if code == 200 else None
        if version is not None:
            facts.update(tls=tls, docker_unauthenticated=True, **version)
            if tls:
                facts["client_cert_required"] = False
            notes.append(f"{what}: /version → 200 (Docker {version['version']}, API {version['api_version']})")
            break
        if not tls and b"HTTPS server" in body:  # Go's answer to plain HTTP on a TLS port
            facts["tls"] = True
            notes.append(f"{what}: /version → {code} (the port speaks TLS)")
            continue
        notes.append(f"{what}: /version → {code}")
    facts["answer"] = "; ".join(notes)
    return facts


def _docker_version(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "ApiVersion" not in data:
        return None
    return {"version": data.get("Version"), "api_version": data.get("ApiVersion")}


def probe(spec: str) -> list[Item]:
    """Connect to the named address only; say what answers without credentials."""
    host, ports, hint = parse_spec(spec)
    items = []
    for port in ports:
        service = hint or PROBE_PORTS.get(port, "unknown")
        facts: dict[str, Any] = {
            "address": host,
            "port": port,
            "service": service,
            "open": False,
            "answer": None,
            "tls": None,
            "client_cert_required": None,
            "docker_unauthenticated": False,
            "kubelet_anonymous": None,
            "kubelet_readonly": False,
        }
        if service in ("docker", "docker-tls", "unknown"):
            found = docker_anonymous(host, port, tls_first=service == "docker-tls")
            facts.update({k: found[k] for k in ("open", "answer", "tls", "client_cert_required", "docker_unauthenticated")})
            if found["docker_unauthenticated"] or found["client_cert_required"]:
                facts["service"] = "docker-tls" if found["tls"] else "docker"
                facts["version"], facts["api_version"] = found["version"], found["api_version"]
            items.append(Item("tcp_probe", f"{host}:{port}", facts))
            continue
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT):
                facts["open"] = True
        except OSError:
            items.append(Item("tcp_probe", f"{host}:{port}", facts))
            continue
        tls = service == "kubelet"
        try:
            code, body = _http(host, port, "/pods", tls, limit=POD_LIST_LIMIT)
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
            facts["answer"] = f"{type(exc).__name__}"
            items.append(Item("tcp_probe", f"{host}:{port}", facts))
            continue
        facts["answer"] = f"{'https' if tls else 'http'} /pods → {code}: {_kubelet_answer(code, body)}"
        pods = code == 200 and _pod_count(body) is not None  # a 200 that is not a PodList is not a kubelet
        if tls:
            # the kubelet answers 401 "Unauthorized" when anonymous auth is off, and 403 "Forbidden (user=system:anonymous,
            # ...)" when anonymous requests are authenticated but the authorizer (Webhook) refuses them
            decision = {401: "rejected", 403: "authenticated-but-denied"}.get(code, "authorized" if pods else f"other ({code})")
            facts["kubelet_anonymous"] = decision
        else:
            facts["kubelet_readonly"] = pods
        items.append(Item("tcp_probe", f"{host}:{port}", facts))
    return items


_POD_LIST = re.compile(rb'^\s*\{\s*"kind"\s*:\s*"PodList"')


def _pod_count(body: bytes) -> int | None:
    """Pods in a kubelet /pods answer; -1 for a PodList too long to count; None if it is no PodList."""
    try:
        data = json.loads(body)
    except ValueError:
        return -1 if _POD_LIST.match(body) else None  # cut at POD_LIST_LIMIT
    if not isinstance(data, dict) or data.get("kind") != "PodList" or not isinstance(data.get("items"), list):
        return None
    return len(data["items"])


def _kubelet_answer(code: int, body: bytes) -> str:
    count = _pod_count(body) if code == 200 else None
    if count is not None:
        size = f"{count} pod{'' if count == 1 else 's'}" if count >= 0 else f"more than {POD_LIST_LIMIT >> 20} MB of pods"
        return f"PodList of {size}, readable without credentials"
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:160] or "(empty body)"
