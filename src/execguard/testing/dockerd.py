"""Start a real, throw-away Docker daemon and a tiny busybox image for tests and emulation.

The daemon runs with debug logging to a file (the `dockerd-log` source reads it), vfs storage,
no iptables and no bridge, in unique temporary directories, so several can run side by side.
Containers it runs should always use ``network_mode="none"``. ``make_test_certs()`` writes a throw-away CA,
server and client certificates (openssl CLI) for a daemon that listens with ``--tls`` or ``--tlsverify``.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE = "local/bb:1"
BUSYBOX = "/usr/bin/busybox"
APPLETS = (
    "sh", "ls", "cat", "id", "echo", "sleep", "wget", "chmod", "rm", "base64", "nc", "mkfifo",
    "ps", "env", "touch", "mkdir", "true", "false", "head", "tail", "grep", "hostname", "uname", "whoami",
)  # fmt: skip
START_TIMEOUT = 60.0


class DockerdUnavailable(RuntimeError):
    """This machine cannot run a test daemon (not root, or dockerd/busybox missing)."""


def why_unavailable() -> str | None:
    """A plain reason the daemon cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "starting dockerd needs root"
    for tool in ("dockerd", "containerd", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    if not os.access(BUSYBOX, os.X_OK):
        return f"{BUSYBOX} not found (install busybox-static)"
    return None


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


_EXT = {
    "ca": "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    "server": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    "client": "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
}


def _openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, check=False)
    if r.returncode:
        raise DockerdUnavailable(f"openssl {args[0]} failed: {r.stderr.decode(errors='replace').strip()[:300]}")


def _ec_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def make_test_certs(directory: Path, days: int = 2) -> TLSFiles:
    """A fresh CA (its key stays in directory) that signs a server and a client certificate (P-256, openssl CLI)."""
    if shutil.which("openssl") is None:
        raise DockerdUnavailable("openssl not found on PATH")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca = d / "ca-key.pem", d / "ca.pem"
    _ec_key(ca_key)
    _openssl("req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", str(days), "-subj", "/CN=execguard test CA",
             "-extensions", "v3_ca", "-config", str(_req_config(d, "ca")), "-out", str(ca))  # fmt: skip
    out: dict[str, Path] = {}
    for role, cn in (("server", "127.0.0.1"), ("client", "execguard-test-client")):
        key, csr, cert = d / f"{role}-key.pem", d / f"{role}.csr", d / f"{role}-cert.pem"
        _ec_key(key)
        _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(csr))
        ext = d / f"{role}.ext"
        ext.write_text(_EXT[role])
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-set_serial", f"0x{secrets.token_hex(8)}",
                 "-days", str(days), "-sha256", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
        out[f"{role}_cert"], out[f"{role}_key"] = cert, key
    return TLSFiles(ca, **out)


def _req_config(d: Path, role: str) -> Path:
    """A minimal openssl config whose v3_ca section carries our CA extensions (req -x509 reads them from -config)."""
    cfg = d / f"{role}.cnf"
    cfg.write_text("[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n" + _EXT[role])
    return cfg


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def busybox_rootfs_tar(busybox: str = BUSYBOX) -> bytes:
    """A tar of a minimal root file system: /bin/busybox plus applet symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for name in APPLETS:
            link = tarfile.TarInfo(f"bin/{name}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"),
            ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Dockerd:
    """A running test daemon. Use ``start_dockerd()``; always ``stop()`` it (or use it as a context manager)."""

    base: Path  # data, socket, log
    exec_root: Path  # short path: unix socket names are limited to ~108 bytes
    socket_path: Path
    log_path: Path
    tcp_url: str | None
    proc: subprocess.Popen[bytes]
    _log_file: Any = field(repr=False, default=None)
    _client: Any = field(repr=False, default=None)
    tls: TLSFiles | None = None  # tcp_url serves TLS with these files
    tlsverify: bool | None = None  # what dockerd was told: --tlsverify, --tlsverify=false, or nothing (--tls alone)
    argv: list[str] = field(default_factory=list)  # the dockerd command line

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> Any:
        """A docker SDK client for this daemon (docker.DockerClient)."""
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.url, timeout=60)
        return self._client

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # any failure means "not yet"
            return False

    def import_busybox(self, image: str = IMAGE) -> str:
        repo, _, tag = image.rpartition(":")
        self.client().api.import_image_from_data(busybox_rootfs_tar(), repository=repo, tag=tag)
        return image

    def stop(self) -> None:
        """Kill the daemon and its containerd, unmount leftovers and remove every directory."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                for c in self._client.containers.list(all=True):
                    c.remove(force=True)
        self._terminate(20)
        if self._log_file is not None:
            self._log_file.close()
        for root in (self.exec_root, self.base):
            _unmount_under(root)
            shutil.rmtree(root, ignore_errors=True)

    def _terminate(self, grace: float) -> None:
        """Close our client, SIGTERM dockerd (SIGKILL after ``grace`` seconds) and kill what it left running."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        _kill_children_left(self.exec_root)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop dockerd (SIGTERM, as systemd does) and start it again with the same command line and data dirs.

        Containers stop with it (no live-restore); images and stopped containers stay.
        """
        self._terminate(30)
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS")}
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
        deadline = time.monotonic() + timeout
        while not (self.socket_path.exists() and self.ping()):
            if self.proc.poll() is not None:
                raise DockerdUnavailable(f"dockerd exited with {self.proc.returncode} on restart: {_tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise DockerdUnavailable(f"dockerd did not answer /_ping within {timeout:.0f}s of a restart: {_tail(self.log_path)}")
            time.sleep(0.2)

    def __enter__(self) -> Dockerd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_dockerd(
    tcp: bool = False,
    image: bool = True,
    timeout: float = START_TIMEOUT,
    tls: TLSFiles | None = None,
    tlsverify: bool | None = True,
    authz_plugins: tuple[str, ...] = (),
) -> Dockerd:
    """Start dockerd -D in fresh temporary directories, wait for /_ping, import the busybox image.

    With ``tls``, the loopback TCP listener (implied) serves TLS with those files and ``--tlscacert tls.ca``:
    ``tlsverify=True`` passes ``--tlsverify``; ``False`` passes ``--tls --tlsverify=false`` (any client is
    served); ``None`` passes ``--tls`` alone, which dockerd >= 20.10 treats as ``--tlsverify``.
    The unix socket, which the helper's own client uses, is unaffected.
    ``authz_plugins`` are passed as ``--authorization-plugin=NAME``: dockerd finds each at
    /run/docker/plugins/NAME.sock (``plugin_socket``), which must answer before the first /_ping.
    """
    reason = why_unavailable()
    if reason:
        raise DockerdUnavailable(reason)
    base = Path(tempfile.mkdtemp(prefix="execguard-dockerd-"))
    exec_root = Path(tempfile.mkdtemp(prefix="egx", dir="/tmp"))
    sock = base / "docker.sock"
    log_path = base / "dockerd-debug.log"
    tcp_url = f"tcp://127.0.0.1:{free_port()}" if tcp or tls else None
    cmd = [
        "dockerd", "-D",
        "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--host", f"unix://{sock}",
        "--data-root", str(base / "root"),
        "--exec-root", str(exec_root),
        "--pidfile", str(base / "dockerd.pid"),
    ]  # fmt: skip
    if tcp_url:
        cmd += ["--host", tcp_url]
    cmd += [f"--authorization-plugin={name}" for name in authz_plugins]
    if tls:
        cmd += {True: ["--tlsverify"], False: ["--tls", "--tlsverify=false"], None: ["--tls"]}[tlsverify]
        cmd += ["--tlscacert", str(tls.ca), "--tlscert", str(tls.server_cert), "--tlskey", str(tls.server_key)]
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed by Dockerd.stop
    # dockerd takes flag defaults from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: keep a caller's client settings out
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS")}
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    daemon = Dockerd(base, exec_root, sock, log_path, tcp_url, proc, log_file, tls=tls, tlsverify=tlsverify if tls else None, argv=cmd)
    try:
        deadline = time.monotonic() + timeout
        while not (sock.exists() and daemon.ping()):
            if proc.poll() is not None:
                raise DockerdUnavailable(f"dockerd exited with {proc.returncode}: {_tail(log_path)}")
            if time.monotonic() > deadline:
                raise DockerdUnavailable(f"dockerd did not answer /_ping within {timeout:.0f}s: {_tail(log_path)}")
            time.sleep(0.2)
        if image:
            daemon.import_busybox()
    except BaseException:
        daemon.stop()
        raise
    return daemon


PLUGIN_DIR = Path("/run/docker/plugins")  # dockerd's fixed discovery dir for plugin sockets


def unique_plugin_name(prefix: str = "execguard-test") -> str:
    """A plugin name no other test run uses: the discovery dir is shared by every daemon on the host."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}"


def plugin_socket(name: str) -> Path:
    return PLUGIN_DIR / f"{name}.sock"


@contextlib.contextmanager
def running_dockerd(tcp: bool = False, **kwargs: Any) -> Iterator[Dockerd]:
    daemon = start_dockerd(tcp=tcp, **kwargs)
    try:
        yield daemon
    finally:
        daemon.stop()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _unmount_under(root: Path) -> None:
    """Lazily unmount anything still mounted below root (shm, netns, rootfs), deepest first."""
    prefix = str(root.resolve()) + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def _kill_children_left(exec_root: Path) -> None:
    """containerd and shims of this daemon only: their command line names our exec root."""
    marker = str(exec_root).encode()
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(pid_dir.name), signal.SIGKILL)
