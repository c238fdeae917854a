"""What a simulated world does, before it is written in any format.

A scenario yields ``Op`` objects in time order; a writer turns each op into the records of one
format (an audit event per stage, a GKE LogEntry, docker events, dockerd debug lines) and every record
into one label line. Ops are small and produced lazily, so output of any size streams.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)


@dataclass(slots=True)
class Label:
    malicious: bool
    scenario: str
    procedure: str | None
    step: str


BENIGN = "benign"


def benign(step: str) -> Label:
    return Label(False, BENIGN, None, step)


@dataclass(slots=True)
class K8sOp:
    """One request to the API server; ``stages`` are (stage, code) pairs, one audit event each."""

    label: Label
    t: float  # seconds since BASE_TIME
    event: dict[str, Any]  # native audit.k8s.io/v1 fields (no stage/stageTimestamp)
    stages: list[tuple[str, float]] = field(default_factory=lambda: [("ResponseComplete", 0.0)])
    gke_request: dict[str, Any] | None = None  # request body GKE logs (writes), when the policy keeps it


@dataclass(slots=True)
class Container:
    id: str
    name: str
    image: str
    labels: dict[str, str]


@dataclass(slots=True)
class DockerExec:
    label: Label
    t: float
    container: Container
    cmd: list[str]
    exec_id: str
    user: str = ""
    privileged: bool = False
    tty: bool = False
    detach: bool = False
    exit_code: int = 0
    duration: float = 0.05
    api: str = "v1.41"
    ref: str = ""  # how the client named the container in the URL (name or id)


@dataclass(slots=True)
class DockerCreate:
    label: Label
    t: float
    container: Container
    cmd: list[str] | None
    entrypoint: list[str] | None = None
    binds: list[str] | None = None
    privileged: bool = False
    network_mode: str = "default"
    start: bool = True
    api: str = "v1.41"


@dataclass(slots=True)
class DockerRemove:
    label: Label
    t: float
    container: Container
    exit_code: int = 137
    api: str = "v1.41"


@dataclass(slots=True)
class DockerCall:
    """A read-only API call (only the daemon's debug log shows it)."""

    label: Label
    t: float
    method: str
    path: str
    api: str = "v1.41"


Op = K8sOp | DockerExec | DockerCreate | DockerRemove | DockerCall


def rfc3339(t: float, digits: int = 6) -> str:
    ts = BASE_TIME + timedelta(seconds=t)
    frac = f"{ts.microsecond:06d}"[:digits]
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if digits else "") + "Z"


def unix_ns(t: float) -> int:
    return int(BASE_TIME.timestamp() * 1_000_000_000) + round(t * 1_000_000_000)


def rand_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rand_hex(rng: random.Random, n: int = 64) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


def rand_suffix(rng: random.Random, n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(rng.choice(alphabet) for _ in range(n))
