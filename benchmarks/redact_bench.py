#!/usr/bin/env python3
"""Time redaction alone, the work it adds to every event a source builds.

    python benchmarks/redact_bench.py benchmarks/out/audit-100M.log --repeat 5

Reads every requestURI of the file (and the argv of its exec URIs), then times ``redact.text`` on
every URI and ``redact.argv`` on every argv, as the k8s-audit source calls them. Prints the median
time per call. Run it with PYTHONPATH pointing at another checkout's ``src`` to compare versions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson

from execguard import redact


def _inputs(path: Path) -> tuple[list[str], list[list[str]]]:
    uris: list[str] = []
    argvs: list[list[str]] = []
    with path.open("rb") as f:
        for line in f:
            try:
                uri = orjson.loads(line).get("requestURI")
            except orjson.JSONDecodeError:
                continue
            if not isinstance(uri, str):
                continue
            uris.append(uri)
            cmd = [v for k, v in parse_qsl(urlsplit(uri).query) if k == "command"]
            if cmd:
                argvs.append(cmd)
    return uris, argvs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    uris, argvs = _inputs(args.file)
    text_runs, argv_runs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for uri in uris:
            redact.text(uri)
        t1 = time.perf_counter()
        for argv in argvs:
            redact.argv(argv)
        t2 = time.perf_counter()
        text_runs.append((t1 - t0) / len(uris))
        argv_runs.append((t2 - t1) / max(len(argvs), 1))
    print(f"{redact.__file__}")
    print(f"redact.text on {len(uris)} requestURIs: {statistics.median(text_runs) * 1e6:.2f} us per call (median of {args.repeat})")
    print(f"redact.argv on {len(argvs)} exec argvs: {statistics.median(argv_runs) * 1e6:.2f} us per call (median of {args.repeat})")


if __name__ == "__main__":
    main()
