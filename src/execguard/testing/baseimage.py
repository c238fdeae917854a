"""A Debian base image made here, for building the repository's Dockerfile where no image registry is reachable.

``debootstrap --variant=minbase`` from the Debian mirror this machine's apt uses gives a root file system with
python3, its venv module and passwd (groupadd, useradd): what the Dockerfile needs of its base; the CAs this
machine trusts beyond Debian's are added, so pip in the build reaches PyPI as the machine does. The tarball is
cached (keyed by the recipe and the Dockerfile) so repeated runs skip the download; ``docker import`` turns it
into an image with the PATH and locale the official ``python:*-slim`` images set.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from .dockerd import _unmount_under

SUITE = "bookworm"  # the Dockerfile's default base is python:3.11-slim-bookworm: the same Debian release
PACKAGES = ("python3", "python3-venv", "passwd", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("EXECGUARD_BASE_CACHE", "/var/tmp/execguard-base"))
# PIP_CERT: pip inside the build trusts the system's bundle, which holds this machine's own CAs as well (LOCAL_CAS)
ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
# the CAs added to this machine's trust (Debian's place for them): a proxy that inspects TLS to PyPI signs with one
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
DEBOOTSTRAP_TIMEOUT = 900.0


class BaseUnavailable(RuntimeError):
    """The base cannot be made: the mirror is unreachable, debootstrap failed or timed out."""


def apt_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian archive apt on this machine reads for the suite (deb822 .sources or one-line .list), else deb.debian.org.

    EXECGUARD_DEBIAN_MIRROR overrides it.
    """
    if os.environ.get("EXECGUARD_DEBIAN_MIRROR"):
        return os.environ["EXECGUARD_DEBIAN_MIRROR"].rstrip("/")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list")), *sorted((etc / "sources.list.d").glob("*.sources"))]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for uri in _deb_uris(text, path.suffix == ".sources"):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _deb_uris(text: str, deb822: bool) -> list[str]:
    """URIs of `deb` entries for SUITE with the main component (not -security or -updates: debootstrap wants the archive)."""
    out = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.strip().startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
            if ("deb" in fields.get("types", []) and SUITE in fields.get("suites", []) and "main" in fields.get("components", [])
                    and fields.get("enabled", ["yes"]) != ["no"]):  # fmt: skip
                out += [u for u in fields.get("uris", []) if u.startswith(("http://", "https://"))]
        return out
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:] and words[1].startswith(("http://", "https://")):
            out.append(words[1])
    return out


def recipe_key(dockerfile: Path) -> str:
    """What the cached tarball depends on: the suite, the packages, the image settings and the Dockerfile it serves."""
    h = hashlib.sha256()
    for part in (SUITE, *PACKAGES, *ENV):
        h.update(part.encode() + b"\0")
    h.update(dockerfile.read_bytes())
    for ca in _local_cas():
        h.update(ca.name.encode() + b"\0" + ca.read_bytes())
    return h.hexdigest()[:16]


def check_mirror(mirror: str, timeout: float = 20.0) -> None:
    url = f"{mirror}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            answer.read(1)
    except (OSError, ValueError) as exc:
        raise BaseUnavailable(f"the Debian mirror is unreachable ({url}: {exc}); the image test needs it to debootstrap a base "
                              "(EXECGUARD_DEBIAN_MIRROR names another)") from exc  # fmt: skip


def rootfs_tarball(dockerfile: Path, mirror: str | None = None, cache: Path = CACHE, timeout: float = DEBOOTSTRAP_TIMEOUT) -> Path:
    """The cached gzip tarball of the base's root file system, made by debootstrap when it is not there yet."""
    target = cache / f"{SUITE}-{recipe_key(dockerfile)}.tar.gz"
    if target.exists():
        return target
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool) is None:
            raise BaseUnavailable(f"{tool} not found on PATH (scripts/test installs debootstrap)")
    mirror = mirror or apt_mirror()
    check_mirror(mirror)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache))
    try:
        rootfs = work / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror]
        _run(cmd, timeout, "debootstrap")
        cas = _local_cas()
        if cas:
            for ca in cas:
                shutil.copyfile(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
            _run(["chroot", str(rootfs), "update-ca-certificates"], 120, "update-ca-certificates")
        # what an image needs no more of: the downloaded packages and the index (the slim images drop them too)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftover).glob("*"):
                if item.is_file() and item.name != "lock":
                    item.unlink()
        partial = work / "rootfs.tar.gz"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-czf", str(partial), "."], 300, "tar")
        os.replace(partial, target)  # atomic: a run that dies half-way leaves no tarball to trust
        for stale in cache.glob(f"{SUITE}-*.tar.gz"):  # one recipe at a time: older ones only take space
            if stale != target:
                stale.unlink(missing_ok=True)
    finally:
        _unmount_under(work)  # debootstrap killed on its timeout may leave /proc mounted in the root file system
        shutil.rmtree(work, ignore_errors=True)
    return target


def import_args(tarball: Path, name: str) -> list[str]:
    """`docker import` arguments: the tarball as image NAME with the official images' PATH and LANG."""
    changes = [arg for env in ENV for arg in ("--change", f"ENV {env}")]
    return ["import", *changes, str(tarball), name]


def _local_cas() -> list[Path]:
    return sorted(p for p in LOCAL_CAS.glob("*.crt") if p.is_file())


def _run(cmd: list[str], timeout: float, what: str) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise BaseUnavailable(f"{what} did not finish within {timeout:.0f}s") from exc
    if r.returncode:
        tail = (r.stdout + r.stderr).decode(errors="replace").strip().splitlines()[-8:]
        raise BaseUnavailable(f"{what} exited with {r.returncode}: " + " | ".join(tail))
