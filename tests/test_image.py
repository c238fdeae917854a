"""The Dockerfile built for real and its image run: hunt on the bundled samples, uid 65532, no pip, and
`watch --audit-webhook` with the Deployment's own arguments answering over TLS.

No registry is reachable here, so the base is a Debian image made by debootstrap from the Debian mirror
(execguard.testing.baseimage, cached under /var/tmp) and passed as the Dockerfile's BASE build argument;
pip inside the build reaches PyPI. An unreachable mirror fails the test: a skip would hide a broken image.
The container runs with --network none; the test's own client reaches it inside the container's network
namespace (nsenter), so the receiver listens on 0.0.0.0:8443 exactly as in the pod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from execguard.guard.manifests import container_security
from execguard.live import manifests
from execguard.testing import baseimage
from execguard.testing.dockerd import Dockerd, TLSFiles

pytestmark = pytest.mark.docker

ROOT = Path(__file__).parent.parent
TOKEN = "apiserver-token-for-image-tests"
UID = container_security()["runAsUser"]
BUILD_TIMEOUT = 1500.0


def docker(daemon: Dockerd, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": daemon.url, "DOCKER_BUILDKIT": "0"}
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        env.pop(name, None)
    try:
        r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"docker {args[0]} did not finish within {timeout:.0f}s")
    if check and r.returncode:
        pytest.fail(f"docker {' '.join(args[:3])} exited with {r.returncode}: {(r.stdout + r.stderr)[-3000:]}")
    return r


@pytest.fixture(scope="module")
def image(docker_daemon: Dockerd) -> Iterator[str]:
    """The Dockerfile built on the test daemon from a debootstrapped base; removed afterwards."""
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not on PATH (Debian's docker.io has it)")
    dockerfile = ROOT / "Dockerfile"
    try:
        tarball = baseimage.rootfs_tarball(dockerfile)
    except baseimage.BaseUnavailable as exc:
        pytest.fail(f"no base image to build on: {exc}")
    base = f"local/execguard-base:{baseimage.recipe_key(dockerfile)}"
    tag = "local/execguard:test"
    docker(docker_daemon, *baseimage.import_args(tarball, base), timeout=300)
    try:
        # --network host: the daemon has no bridge (--bridge=none), and pip in the build stage needs PyPI
        docker(docker_daemon, "build", "--network", "host", "--build-arg", f"BASE={base}", "-t", tag, str(ROOT), timeout=BUILD_TIMEOUT)
        yield tag
    finally:
        docker(docker_daemon, "rmi", "-f", tag, base, check=False, timeout=120)
        docker(docker_daemon, "image", "prune", "-f", check=False, timeout=120)


def test_image_runs_as_65532_with_no_pip_and_the_manifests_paths(docker_daemon: Dockerd, image: str) -> None:
    config = orjson.loads(docker(docker_daemon, "image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == manifests.deployment(manifests.Options())["spec"]["template"]["spec"]["containers"][0]["command"]
    assert config["WorkingDir"] == manifests.DATA
    assert f"{manifests.PORT}/tcp" in config["ExposedPorts"]
    script = textwrap.dedent(f"""
        import importlib.util, os, shutil, stat
        st = os.stat({manifests.DATA!r})
        print(os.getuid(), os.getgid(), st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode)))
        print(importlib.util.find_spec("pip"), shutil.which("pip"), shutil.which("pip3"), shutil.which("gcc"))
    """)
    out = docker(docker_daemon, "run", "--rm", "--network", "none", "--read-only", "--entrypoint", "python3", image, "-c", script).stdout
    assert out.splitlines() == [f"{UID} {UID} {UID} {UID} 0o750", "None None None None"]


def test_hunt_on_the_bundled_samples_finds_what_the_package_finds(docker_daemon: Dockerd, image: str) -> None:
    argv = ["hunt", "--samples", "-q", "-o", "jsonl", "-j", "1"]
    inside = docker(docker_daemon, "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", image, *argv).stdout
    here = subprocess.run([sys.executable, "-m", "execguard", *argv], capture_output=True, text=True, timeout=120, check=True).stdout

    def alerts(text: str) -> list[dict[str, object]]:
        out = [orjson.loads(line) for line in text.splitlines()]
        for a in out:  # the samples sit in each install's own site-packages
            for ref in [a["source"], *a["sources"]]:
                ref["file"] = ref["file"].rsplit("/samples/", 1)[-1]
        return out

    found = alerts(inside)
    assert found and found == alerts(here)
    assert {"critical", "high"} & {a["severity"] for a in found}


def _probe_script(ca: Path) -> str:
    """Run inside the container's network namespace: wait for /healthz, then /readyz and two POSTs; print the codes."""
    return textwrap.dedent(f"""
        import http.client, ssl, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from webhook_util import event_list
        ctx = ssl.create_default_context(cafile={str(ca)!r})
        def call(method, path, body=None, token=None):
            c = http.client.HTTPSConnection("127.0.0.1", {manifests.PORT}, context=ctx, timeout=5)
            headers = {{"Content-Type": "application/json"}} | ({{"Authorization": "Bearer " + token}} if token else {{}})
            c.request(method, path, body=body, headers=headers)
            status = c.getresponse().status
            c.close()
            return status
        deadline = time.monotonic() + 60
        while True:
            try:
                health = call("GET", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        print(health, call("GET", "/readyz"), call("POST", "/audit", event_list(["no-token"])),
              call("POST", "/audit", event_list(["in-the-image"]), {TOKEN!r}))
    """)


def test_watch_audit_webhook_runs_the_deployments_arguments_over_tls(docker_daemon: Dockerd, image: str, certs: TLSFiles,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """The Deployment's command and args, its mounts (/tls read-only, a volume at /var/lib/execguard, /tmp) and its
    security context (read-only root, no capability, uid 65532), kube-apiserver's client posting over TLS."""
    (c,) = manifests.deployment(manifests.Options())["spec"]["template"]["spec"]["containers"]
    tls = tmp_path / "tls"
    tls.mkdir()
    for name, source in (("tls.crt", certs.server_cert), ("tls.key", certs.server_key)):
        shutil.copyfile(source, tls / name)
    (tls / "token").write_text(TOKEN + "\n")
    for path in (tls, *tls.iterdir()):  # the Secret's files are readable by the pod's group (defaultMode 0440, fsGroup)
        os.chown(path, 0, UID)
        path.chmod(0o750 if path.is_dir() else 0o440)
    volume = f"execguard-image-test-{os.getpid()}"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"/tls", manifests.DATA, "/tmp"}
    run = ["run", "-d", "--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "-v", f"{tls}:/tls:ro", "-v", f"{volume}:{manifests.DATA}", "--tmpfs", "/tmp", "--entrypoint", c["command"][0],
           image, *c["args"]]  # fmt: skip
    container = docker(docker_daemon, *run).stdout.strip()
    try:
        pid = docker(docker_daemon, "inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
        probe = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", _probe_script(certs.ca)],
                               capture_output=True, text=True, timeout=90, check=False)  # fmt: skip
        logs = docker(docker_daemon, "logs", container, check=False)
        assert probe.returncode == 0, probe.stderr[-2000:] + logs.stderr[-2000:]
        assert probe.stdout.split() == ["200", "200", "401", "200"]
        deadline = time.monotonic() + 30
        while '"in-the-image"' not in docker(docker_daemon, "logs", container).stdout and time.monotonic() < deadline:
            time.sleep(0.2)
        docker(docker_daemon, "stop", "-t", "45", container, timeout=90)  # SIGTERM, as the kubelet stops the pod
        code = docker(docker_daemon, "inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip()
        logs = docker(docker_daemon, "logs", container)
        assert code == "0", logs.stderr[-3000:]
        alerts = [orjson.loads(line) for line in logs.stdout.splitlines() if line.strip()]
        assert [a["event_id"] for a in alerts] == ["in-the-image"]
        assert TOKEN not in logs.stdout + logs.stderr
        # the store on the volume, read by a second container as the same user
        stored = docker(docker_daemon, "run", "--rm", "--network", "none", "--read-only", "-v", f"{volume}:{manifests.DATA}",
                        image, "alerts", "--store", f"{manifests.DATA}/alerts.db", "-o", "jsonl").stdout  # fmt: skip
        assert [orjson.loads(line)["event_id"] for line in stored.splitlines()] == ["in-the-image"]
    finally:
        docker(docker_daemon, "rm", "-f", container, check=False)
        docker(docker_daemon, "volume", "rm", "-f", volume, check=False)
