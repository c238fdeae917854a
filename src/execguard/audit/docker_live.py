"""Live, read-only Docker collection: the Engine API at a URL the user names, and stat() of the local sockets."""

from __future__ import annotations

import grp
import os
import pwd
import stat

from .docker import DockerConfig, daemon_items, parse_host
from .engine import Item
from .live import LiveError

LOCAL_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
TIMEOUT = 2.0


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


