"""TCP probes of the addresses the user names (loopback by default): what answers on 2375/2376/10250/10255
without credentials. Nothing else is ever contacted."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any

from .engine import Item
from .live import LiveError

PROBE_PORTS = {2375: "docker", 2376: "docker-tls", 10250: "kubelet", 10255: "kubelet-readonly"}
LOOPBACK = ("127.0.0.1",)
TIMEOUT = 2.0


def _split_addr(spec: str) -> tuple[str, list[int]]:
    if spec in ("loopback", "localhost"):
        return "127.0.0.1", list(PROBE_PORTS)
    if spec.startswith("[") and "]" in spec:
        host, _, port = spec[1:].partition("]")
        port = port.lstrip(":")
    elif spec.count(":") == 1:
        host, _, port = spec.partition(":")
    else:
        host, port = spec, ""
    if port and not port.isdigit():
        raise LiveError(f"{spec}: bad port")
    return host, [int(port)] if port else list(PROBE_PORTS)


def _http(host: str, port: int, path: str, tls: bool) -> tuple[int, bytes]:
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers={"User-Agent": "execguard-audit"})
        resp = conn.getresponse()
        return resp.status, resp.read(4096)
    finally:
        conn.close()


def probe(spec: str) -> list[Item]:
    """Connect to the named address only; say what answers without credentials."""
    host, ports = _split_addr(spec)
    items = []
    for port in ports:
        service = PROBE_PORTS.get(port, "unknown")
        facts: dict[str, Any] = {
            "address": host,
            "port": port,
            "service": service,
            "open": False,
            "answer": None,
            "docker_unauthenticated": False,
            "kubelet_anonymous": None,
            "kubelet_readonly": False,
        }
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT):
                facts["open"] = True
        except OSError:
            items.append(Item("tcp_probe", f"{host}:{port}", facts))
            continue
        if service in ("docker", "docker-tls", "unknown"):
            for tls in (service == "docker-tls", service != "docker-tls") if service == "unknown" else (service == "docker-tls",):
                try:
                    code, body = _http(host, port, "/version", tls)
                except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                    facts["answer"] = f"{'https' if tls else 'http'}: {type(exc).__name__}"
                    continue
                facts["answer"] = f"{'https' if tls else 'http'} /version → {code}"
                if code == 200 and b"ApiVersion" in body:
                    facts["docker_unauthenticated"] = True
                    facts["service"] = "docker-tls" if tls else "docker"
                    break
        elif service in ("kubelet", "kubelet-readonly"):
            tls = service == "kubelet"
            try:
                code, _ = _http(host, port, "/pods", tls)
                facts["answer"] = f"{'https' if tls else 'http'} /pods → {code}"
                if tls:
                    facts["kubelet_anonymous"] = {200: "authorized", 403: "authenticated-but-denied", 401: "rejected"}.get(code, str(code))
                else:
                    facts["kubelet_readonly"] = code == 200
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                facts["answer"] = f"{type(exc).__name__}"
        items.append(Item("tcp_probe", f"{host}:{port}", facts))
    return items
