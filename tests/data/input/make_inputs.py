"""Write the files of this folder (run from the repository root: python tests/data/input/make_inputs.py).

Records come from tests/data/eks/filter-log-events.json and tests/data/docker/docker-events.jsonl
(see tests/data/README.md); audit IDs and event IDs are made unique per copy so that every copy is an alert
of its own. The klog lines are written here in the shape kube-apiserver prints them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE.parent


def export_events(copies: int) -> list[dict[str, object]]:
    base = json.loads((DATA / "eks" / "filter-log-events.json").read_text())["events"]
    out = []
    for n in range(copies):
        for i, ev in enumerate(base):
            message = ev["message"]
            if message.startswith("{"):  # one event of the sample is plain text, kept as it is
                msg = json.loads(message)
                msg["auditID"] = f"{msg['auditID']}-{n}"
                message = json.dumps(msg, separators=(",", ":"))
            out.append({**ev, "eventId": f"{ev['eventId'][:-6]}{n:03d}{i:03d}", "message": message})
    return out


def main() -> None:
    events = export_events(6)  # 48 elements
    full = json.dumps({"events": events, "searchedLogStreams": []}, indent=4)
    (HERE / "export-full.json").write_text(full + "\n")
    # cut in the middle of the last element's message, as a copy interrupted mid-transfer leaves it
    last = full.rfind('"message"')
    (HERE / "export-cut.json").write_text(full[: last + 200])
    # element 20 broken in the middle (a key without its colon)
    starts = [i for i in range(len(full)) if full.startswith('"logStreamName": ', i)]
    at = starts[20]
    (HERE / "export-bad-element.json").write_text(full[:at] + '"logStreamName" ' + full[at + len('"logStreamName": ') :] + "\n")
    compact = json.dumps({"events": events, "searchedLogStreams": []})
    at = [i for i in range(len(compact)) if compact.startswith('"logStreamName": ', i)][20]
    (HERE / "export-compact-bad-element.json").write_text(compact[:at] + '"logStreamName" ' + compact[at + len('"logStreamName": ') :])
    docker = [json.loads(line) for line in (DATA / "docker" / "docker-events.jsonl").read_text().splitlines() if line.strip()]
    arr = json.dumps(docker)
    at = [i for i in range(len(arr)) if arr.startswith('"status": ', i)][5]
    (HERE / "array-bad-element.json").write_text(arr[:at] + '"status" ' + arr[at + len('"status": ') :] + "\n")
    (HERE / "array-full.json").write_text(arr + "\n")

    # native audit events, one per line (the messages of the export above)
    audit = "".join(str(ev["message"]) + "\n" for ev in events if str(ev["message"]).startswith("{"))
    (HERE / "audit.log").write_text(audit)
    (HERE / "audit-utf16.log").write_text(audit, encoding="utf-16")  # with a byte order mark
    (HERE / "audit-utf16le.log").write_text(audit, encoding="utf-16-le")  # without
    (HERE / "audit-utf8-bom.log").write_text(audit, encoding="utf-8-sig")

    (HERE / "random.bin").write_bytes(random.Random(1609).randbytes(4096))
    (HERE / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    (HERE / "kube-apiserver.klog").write_text(
        "Flag --insecure-port has been deprecated, This flag has no effect now and will be removed in v1.24.\n"
        'I1202 04:42:44.123456       1 server.go:565] external host was not specified, using 172.18.0.2\n'
        'I1202 04:42:51.902113       1 httplog.go:132] "HTTP" verb="POST" URI="/api/v1/namespaces/prod/pods/web/exec'
        '?command=sh&container=app&stdin=true&tty=true" latency="12.3ms" userAgent="kubectl/v1.30.0" audit-ID="x" '
        'srcIP="172.18.0.1:50312" resp=101\n'
        'W1202 04:42:52.000001       1 dispatcher.go:217] Failed calling webhook, failing open\n'
    )
    (HERE / "kube-apiserver-json.log").write_text(
        '{"ts":1764650571902.113,"caller":"httplog/httplog.go:132","msg":"HTTP","v":3,"verb":"POST",'
        '"URI":"/api/v1/namespaces/prod/pods/web/exec?command=sh","latency":"12.3ms","resp":101}\n'
        '{"ts":1764650572000.001,"caller":"dispatcher.go:217","msg":"Failed calling webhook, failing open","v":0}\n'
    )


if __name__ == "__main__":
    main()
