"""Live, read-only collection: Kubernetes objects through a kubeconfig, the Docker Engine API, and probes of
the local Docker socket and of the TCP ports on the addresses the user names (nothing else is ever contacted).
"""

from __future__ import annotations

import grp
import http.client
import os
import pwd
import socket
import ssl
import stat
from typing import Any

from .docker import DockerConfig, daemon_items, parse_host
from .engine import Item
from .inputs import Inputs, flatten

LOCAL_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
PROBE_PORTS = {2375: "docker", 2376: "docker-tls", 10250: "kubelet", 10255: "kubelet-readonly"}
LOOPBACK = ("127.0.0.1",)
TIMEOUT = 2.0


class LiveError(Exception):
    pass


# ---------------------------------------------------------------- Kubernetes

K8S_LISTS = (
    ("RbacAuthorizationV1Api", "list_cluster_role", "ClusterRole"),
    ("RbacAuthorizationV1Api", "list_cluster_role_binding", "ClusterRoleBinding"),
    ("RbacAuthorizationV1Api", "list_role_for_all_namespaces", "Role"),
    ("RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces", "RoleBinding"),
    ("CoreV1Api", "list_pod_for_all_namespaces", "Pod"),
    ("CoreV1Api", "list_node", "Node"),
)


def kube_client(kubeconfig: str, context: str | None = None) -> Any:
    """An ApiClient for this kubeconfig (no request is made)."""
    from kubernetes import config

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the client raises ConfigException, OSError, yaml errors ...
        raise LiveError(f"{kubeconfig}: {exc}") from None


def kube_inputs(api_client: Any) -> Inputs:
    """List RBAC objects, pods and nodes (read-only) into the same Inputs an offline dump gives."""
    from kubernetes import client

    inputs = Inputs()
    source = f"kube-api:{api_client.configuration.host}"
    for api_name, method, kind in K8S_LISTS:
        api = getattr(client, api_name)(api_client)
        try:
            result = getattr(api, method)(_request_timeout=10)
        except Exception as exc:
            raise LiveError(f"{source}: {method}: {exc}") from None
        data = api_client.sanitize_for_serialization(result)  # wire format (camelCase)
        data["kind"] = f"{kind}List"
        inputs.objects.extend(flatten(data, source, None))
    return inputs


# ---------------------------------------------------------------- Docker


def docker_host_items(url: str) -> list[Item]:
    """Ask the Docker Engine API at URL, with no credentials, who we are allowed to be."""
    import docker

    items: list[Item] = []
    h = parse_host(url, False)
    if h["scheme"] == "unix":
        items += socket_items(url.split("://", 1)[-1])
    try:
        cli = docker.DockerClient(base_url=url, timeout=int(TIMEOUT * 3))
    except Exception as exc:
        raise LiveError(f"{url}: {exc}") from None
    try:
        answered = bool(cli.ping())
        version = cli.version()
        info = cli.info()
    except Exception as exc:
        facts = {"url": url, "answered": False, "error": str(exc)[:200], **h}
        items.append(Item("docker_api", url, facts))
        return items
    finally:
        cli.close()
    facts = {
        "url": url,
        "answered": answered,
        "unauthenticated": answered and h["scheme"] == "tcp",
        **h,
        "version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "os": version.get("Os"),
    }
    items.append(Item("docker_api", url, facts))
    sec = info.get("SecurityOptions") or []
    cfg = DockerConfig(f"dockerd at {url}", None, None)
    cfg.userns_remap = "enabled" if any("name=userns" in s for s in sec) else None
    cfg.authorization_plugins = list((info.get("Plugins") or {}).get("Authorization") or [])
    items += [i for i in daemon_items(cfg, live=True) if i.kind == "docker_daemon"]
    return items


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


# ---------------------------------------------------------------- TCP probes


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
