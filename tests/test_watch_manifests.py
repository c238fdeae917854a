"""Deployment artefacts of the audit webhook receiver: `execguard watch manifests` validated against Kubernetes'
schemas (kubernetes-validate, offline) and its container arguments run for real; the Dockerfile checked
structurally against them (tests/test_image.py builds and runs it); the systemd unit of docs/deploy.md checked by
`systemd-analyze verify`."""

from __future__ import annotations

import base64
import fnmatch
import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson
import pytest
import yaml
from typer.testing import CliRunner

from execguard import __version__
from execguard.cli import app
from execguard.guard.manifests import container_security
from execguard.live import manifests as live_manifests
from execguard.testing.dockerd import TLSFiles, free_port
from webhook_util import Client, event_list

ROOT = Path(__file__).parent.parent
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
TOKEN = "apiserver-token-for-tests"



def manifests(*args: str) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(app, ["watch", "manifests", *args])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds))
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("volume", ["pvc", "emptyDir"])
def test_every_object_validates_strictly(certs: TLSFiles, tmp_path: Path, version: str, volume: str) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    policy = tmp_path / "policy.yml"
    policy.write_text("apiVersion: execguard/v1\nkind: Policy\nentries: []\n")
    docs = manifests("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key), "--token-file", str(token),
                     "--apiserver-cidr", "10.0.0.10/32", "--spool-volume", volume, "--policy", str(policy))  # fmt: skip
    want = {"Namespace", "ServiceAccount", "Secret", "ConfigMap", "Deployment", "Service", "NetworkPolicy"}
    assert set(docs) == want | ({"PersistentVolumeClaim"} if volume == "pvc" else set())
    for doc in docs.values():
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_receiver_is_locked_down_and_reachable_only_from_the_api_server(certs: TLSFiles, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    docs = manifests("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key), "--token-file", str(token),
                     "--apiserver-cidr", "10.0.0.10/32", "--apiserver-cidr", "10.0.0.11/32", "--namespace", "sec")  # fmt: skip
    deploy = docs["Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["securityContext"] == container_security()
    assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"] and pod["automountServiceAccountToken"] is False
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8443, "scheme": "HTTPS"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8443, "scheme": "HTTPS"}
    # the spool outlives the pod: a claim, one replica, Recreate (ReadWriteOnce)
    (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == c["ports"][0]["containerPort"] == 8443
    net = docs["NetworkPolicy"]["spec"]
    assert net["policyTypes"] == ["Ingress"] and net["podSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    (rule,) = net["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}, {"ipBlock": {"cidr": "10.0.0.11/32"}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]
    secret = docs["Secret"]["data"]
    assert base64.b64decode(secret["tls.crt"]) == certs.server_cert.read_bytes() and base64.b64decode(secret["token"]) == TOKEN.encode()
    assert all(d["metadata"]["namespace"] == "sec" for k, d in docs.items() if k != "Namespace")
    # without an API server address nothing gets in
    assert manifests()["NetworkPolicy"]["spec"]["ingress"] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--spool-volume", "hostPath"], "choose pvc or emptyDir"), (["--spool-size", "lots"], "spool size 'lots'"),
     (["--tls-cert", "/nonexistent/cert.pem"], "/nonexistent/cert.pem: cannot read")],
)  # fmt: skip
def test_bad_manifest_options_are_one_line_errors(args: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["watch", "manifests", *args])
    assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.stderr


def test_the_containers_arguments_run_a_receiver_that_answers_probes_and_takes_batches(certs: TLSFiles, tmp_path: Path) -> None:
    """`execguard` started with the Deployment's command and args, paths moved to this test's files."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    (c,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["execguard"]
    port = free_port()
    data = tmp_path / "data"
    moved = {"/tls/tls.crt": str(certs.server_cert), "/tls/tls.key": str(certs.server_key), "/tls/token": str(token),
             "0.0.0.0:8443": f"127.0.0.1:{port}"}  # fmt: skip
    argv = [sys.executable, "-m", "execguard", *(moved.get(a, a.replace("/var/lib/execguard", str(data))) for a in c["args"])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = Client(port, certs.ca, timeout=2)
                if probe.request("GET", c["livenessProbe"]["httpGet"]["path"])[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.1)
        assert probe.request("GET", c["readinessProbe"]["httpGet"]["path"])[0] == 200
        assert Client(port, certs.ca).post(event_list(["no-token"])) == 401
        assert Client(port, certs.ca, TOKEN).post(event_list(["in-the-pod"])) == 200
        deadline = time.monotonic() + 30
        while not (data / "alerts.db").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # as the kubelet stops the pod
        stdout, stderr = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, stderr.decode()
    alerts = [orjson.loads(line) for line in stdout.splitlines() if line.strip()]
    assert [a["event_id"] for a in alerts] == ["in-the-pod"]
    assert TOKEN.encode() not in stdout + stderr


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M) if m.group(1)[0] != "#"]


def test_dockerfile_is_a_slim_non_root_image_without_build_tools() -> None:
    """Structural, on the default base (test_image.py builds and runs it on a base made with debootstrap)."""
    steps = _dockerfile()
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    stages = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    assert len(stages) == 2
    for i in stages:
        image = steps[i][1].split()[0].replace("${BASE}", args.get("BASE", ""))
        assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image), image
    final = steps[stages[-1] :]
    runs = " ".join(a for k, a in final if k == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|make|build-essential|apt-get install)\b", runs)
    assert "pip uninstall -y pip setuptools wheel" in runs  # no installer left in the image that runs
    build = " ".join(a for k, a in steps[: stages[-1]] if k == "RUN")
    assert "bin/pip uninstall -y pip setuptools" in build  # nor in the venv copied into it
    # what the Deployment of `watch manifests` relies on: the port it probes, the data directory the image owns
    assert [a for k, a in final if k == "EXPOSE"] == [str(live_manifests.PORT)]
    assert [a for k, a in final if k == "WORKDIR"] == [live_manifests.DATA]
    assert f"-m 0750 {live_manifests.DATA}" in runs
    assert live_manifests.Options().image.endswith(f":{__version__}")
    user = [a for k, a in final if k == "USER"]
    assert user and user[-1].split(":")[0] == str(container_security()["runAsUser"]) != "0"
    assert f"--uid {container_security()['runAsUser']}" in runs
    (entry,) = [a for k, a in final if k == "ENTRYPOINT"]
    assert orjson.loads(entry) == ["execguard"]  # exec form; what the manifests' command names
    assert 'execguard = "execguard.__main__:main"' in (ROOT / "pyproject.toml").read_text()


def test_dockerfile_copies_only_what_exists_and_the_context_sends() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]

    def sent(path: str) -> bool:
        keep = True
        for pattern in ignore:
            negate = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!").rstrip("/")) or path.startswith(pattern.lstrip("!").rstrip("/") + "/"):
                keep = negate
        return keep

    copies = [shlex.split(a) for k, a in _dockerfile() if k == "COPY"]
    local = [c for c in copies if not any(x.startswith("--from=") for x in c)]
    assert local
    for c in local:
        for source in c[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert sent(source), f"COPY {source}: left out by .dockerignore"
    # the package's data (rules, samples) is under src/: the wheel built from the context has it
    assert sent("src") and not sent("tests") and not sent(".venv")


def test_systemd_unit_in_deploy_md_verifies(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (scripts/test installs systemd)")
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    start = text.index("`/etc/systemd/system/execguard-watch.service`:")
    unit = text[start:].split("```ini\n", 1)[1].split("```", 1)[0]
    # verify checks that ExecStart's program exists: point it at this venv's execguard
    unit = unit.replace("/opt/execguard/bin/execguard", str(Path(sys.executable).with_name("execguard")))
    path = tmp_path / "execguard-watch.service"
    path.write_text(unit)
    result = subprocess.run(
        [tool, "verify", str(path)], capture_output=True, text=True, timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"}
    )
    assert result.returncode == 0, result.stderr
    mine = [line for line in (result.stdout + result.stderr).splitlines() if path.name in line]
    assert not mine, mine  # an unknown key or a bad value is a warning naming the unit file
