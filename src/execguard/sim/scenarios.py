"""Scenario registry: which formats each story can be written in, and what hunt should make of it."""

from __future__ import annotations

from dataclasses import dataclass

from .writers import DOCKER_FORMATS, K8S_FORMATS, NODE_FORMATS


@dataclass(frozen=True)
class Scenario:
    name: str
    procedure: str | None
    formats: tuple[str, ...]  # formats the story is written in
    detectable: tuple[str, ...]  # formats whose records show enough for a rule to see the attack
    summary: str


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("benign", None, K8S_FORMATS + DOCKER_FORMATS + NODE_FORMATS, (),
             "controllers, kubelets, CI runner pods and attaches, humans' kubectl exec/logs/cp, operators' routine execs, "
             "exec health probes and docker exec by admins"),
    Scenario("teamtnt", "G0139", DOCKER_FORMATS + NODE_FORMATS, DOCKER_FORMATS + NODE_FORMATS,
             "exposed Docker API: list containers, exec miner download/run, base64 stager, credential theft as root, "
             "history wiping, privileged container mounting /"),
    Scenario("hildegard", "S0601", K8S_FORMATS + NODE_FORMATS, K8S_FORMATS + NODE_FORMATS,
             "anonymous user through nodes/proxy: runningpods recon, kubelet /run of a tmate download, base64 miner exec in pods"),
    Scenario("kinsing", "S0599", K8S_FORMATS + DOCKER_FORMATS, (*K8S_FORMATS, "dockerd-log"),
             "pod (Request level) and Docker container created with a bash -c apt-get/wget|sh entrypoint"),
    Scenario("peirates", "S0683", K8S_FORMATS + NODE_FORMATS, K8S_FORMATS,
             "a pod's service-account token (Go-http-client): list secrets (mostly denied), list pods, exec token/metadata theft"),
    Scenario("siloscape", "S0623", K8S_FORMATS + NODE_FORMATS, K8S_FORMATS,
             "kubectl.exe from a Windows node: node credentials denied, then an admin kubeconfig spreads exec through 24 pods"),
    Scenario("insider", None, K8S_FORMATS + NODE_FORMATS, K8S_FORMATS,
             "an admin execs into kube-system pods and reads service-account tokens and kube-proxy's kubeconfig"),
)}

ATTACKS = [name for name in SCENARIOS if name != "benign"]
