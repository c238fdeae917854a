#!/usr/bin/env python3
"""Time execguard hunt against grep -F -c and jq on the same file, in the same run.

    python benchmarks/run.py benchmarks/out/audit-1G.log --repeat 5

Per repeat, in this order: ``grep -F -c exec``, ``grep -F -c -e LIT ...`` (the prefilter literals
of the built-in rule set), ``execguard hunt -o jsonl -q`` (alerts counted from its stdout; one worker
per CPU, the default), the same with ``-j 1`` (one process) and
``jq -c 'select(.objectRef.subresource=="exec")' | wc -l`` on a slice (the first --jq-fraction of
the file, cut on a line; jq is slow, so MB/s is measured on the slice and stated as such).
Then, once, ``hunt`` with and without ``--no-prefilter`` on a smaller slice.

Any native audit log works: gen_audit.py's sparse file (``--exec-rate 0.001``, the default) or a dense one
(``--exec-rate 0.4``; ``--simulate`` for the simulator's own labelled file, ~38 % exec). Beside MB/s it reports lines/s and the
ratios of hunt to grep and to jq from the same run, which hold better than MB/s on a shared machine.

The page cache is warmed first (the file is read once). Peak RSS of the largest process comes from
GNU time; peak PSS summed over the whole process tree (hunt's workers included) is sampled from /proc in one
more run per tool after the timed ones (sampling slows what it watches). Medians are reported, with every run's
time kept in the JSON written to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out"


def execguard_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "execguard"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "execguard"]


def prefilter_literals() -> list[bytes]:
    from execguard.engine.load import load_rules
    from execguard.engine.match import Engine
    from execguard.pipeline.prefilter import literals_for

    lits = literals_for(Engine(load_rules([], builtin=True)).actions())
    if lits is None:
        raise SystemExit("the built-in rule set turns the prefilter off: nothing to compare with grep -F")
    return lits


TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def run(cmd: list[str], sample: bool = False) -> dict[str, Any]:
    """Run cmd, read its stdout; return seconds, CPU seconds (its processes' user + system), output lines, peak
    RSS (MB) and stdout tail; with ``sample``, the peak memory of its whole process tree as well.

    Peak RSS comes from GNU time (%M) when installed: wait4() on a child forked from this
    process would also count the pages it shared with us before exec. Timed runs are not sampled: reading
    smaps_rollup of every process every 20 ms slowed a hunt with workers by ~20 % on 2 cores, and the
    sampler's thread, runnable now and then, made the default run (-j 0) count a CPU as busy.
    """
    rss_file = OUT / f".rss-{os.getpid()}"
    full = [TIME, "-f", "%M", "-o", str(rss_file), *cmd] if TIME else cmd
    t0 = time.perf_counter()
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    tree = TreeMemory(proc.pid)
    if sample:
        tree.start()
    assert proc.stdout is not None
    lines = 0
    last = b""
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
        last = (last + chunk)[-200:]
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kb = usage.ru_maxrss
    if TIME:
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss_kb = int(rss_file.read_text().split()[-1])
        rss_file.unlink(missing_ok=True)
    if sample:
        tree.stop()
    return {
        "secs": secs, "cpu_secs": usage.ru_utime + usage.ru_stime,
        "lines": lines, "rss_mb": rss_kb / 1024, "rc": proc.returncode, "tail": last.decode(errors="replace"),
        "tree_rss_mb": tree.peak_rss / 1024, "tree_pss_mb": tree.peak_pss / 1024, "procs": tree.peak_procs,
    }


RESCAN = 10  # samples between two looks for the run's processes (workers live for seconds)


class TreeMemory(threading.Thread):
    """Peak memory of a process and all its descendants (hunt -j forks workers), sampled every 20 ms.

    RSS summed over processes counts pages shared after fork once per process (an upper bound);
    PSS (from smaps_rollup) shares them out, so its sum is the memory the run really holds.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = pid
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        pids: list[int] = []
        n = 0
        while not self._done.wait(0.02):
            rss = pss = 0
            if n % RESCAN == 0:  # a walk of all of /proc cost ~40 % of a core every 20 ms, beside the run measured
                pids = self._tree()
            n += 1
            for pid in pids:
                with contextlib.suppress(OSError, ValueError):
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(pids))

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out


def slice_file(src: str, fraction: float, dest: Path) -> Path:
    """The first `fraction` of src, cut after a newline (streamed: this process stays small)."""
    want = int(os.path.getsize(src) * fraction)
    if dest.exists() and dest.stat().st_mtime >= os.path.getmtime(src) and want - (1 << 20) < dest.stat().st_size <= want:
        return dest
    left = want
    with open(src, "rb") as f, open(dest, "wb") as out:
        while left > 0:
            data = f.read(min(left, 8 << 20))
            if not data:
                break
            left -= len(data)
            if left <= 0:
                data = data[: data.rfind(b"\n") + 1]
            out.write(data)
    return dest


def rate(x: float) -> str:
    """Three significant figures below 100 (dense input runs at a few MB/s), whole numbers above."""
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def count_lines(path: str | Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while data := f.read(16 << 20):
            n += data.count(b"\n")
    return n


def warm(path: str | Path) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass
    return time.perf_counter() - t0


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from execguard.sources import find

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "grep": subprocess.run(["grep", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "jq": subprocess.run(["jq", "--version"], capture_output=True, text=True).stdout.strip() if shutil.which("jq") else None,
        "find_backend": find.backend(),
        "loadavg_before": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jq-fraction", type=float, default=0.1, help="share of the file jq runs on (default 0.1)")
    ap.add_argument("--small-fraction", type=float, default=0.1, help="share of the file for the --no-prefilter comparison")
    ap.add_argument("--no-jq", action="store_true")
    args = ap.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    path = args.file
    size = os.path.getsize(path)
    mb = size / 1e6
    lits = prefilter_literals()
    eg = execguard_cmd()
    info = machine()
    info.update(file=path, bytes=size, repeat=args.repeat, literals=[x.decode() for x in lits])
    stem = Path(path).name
    jq_slice = slice_file(path, args.jq_fraction, OUT / f"{stem}.jq-slice") if not args.no_jq else None
    small = slice_file(path, args.small_fraction, OUT / f"{stem}.small-slice")
    print(f"{path}: {mb:.0f} MB; warming the page cache ...", file=sys.stderr)
    info["warm_secs"] = [warm(path), warm(path)]
    for extra in (jq_slice, small):
        if extra is not None:
            warm(extra)
    lines = count_lines(path)
    info["lines"] = lines

    tools: dict[str, dict[str, Any]] = {
        "grep -F -c exec": {"cmd": ["grep", "-F", "-c", "exec", path], "mb": mb, "in_lines": lines},
        "grep -F -c -e LITERALS": {
            "cmd": ["grep", "-F", "-c", *[a for x in lits for a in ("-e", x.decode())], path],
            "mb": mb,
            "in_lines": lines,
        },
        "execguard hunt": {"cmd": [*eg, "hunt", "-o", "jsonl", "-q", path], "mb": mb, "in_lines": lines},
        "execguard hunt -j 1": {"cmd": [*eg, "hunt", "-o", "jsonl", "-q", "-j", "1", path], "mb": mb, "in_lines": lines},
    }
    if jq_slice is not None:
        tools["jq (slice)"] = {
            "cmd": ["jq", "-c", 'select(.objectRef.subresource=="exec")', str(jq_slice)],
            "mb": jq_slice.stat().st_size / 1e6,
            "in_lines": count_lines(jq_slice),
        }
    for tool in tools.values():
        tool["runs"] = []
    for i in range(args.repeat):
        for name, tool in tools.items():
            r = run(tool["cmd"])
            tool["runs"].append(r)
            print(
                f"run {i + 1}/{args.repeat} {name}: {r['secs']:.2f} s, {tool['mb'] / r['secs']:.0f} MB/s, "
                f"{r['rss_mb']:.0f} MB RSS, {r['cpu_secs'] / r['secs']:.2f} CPUs, "
                f"out {r['tail'].strip()[-40:] if 'grep' in name else r['lines']}",
                file=sys.stderr,
            )

    for tool in tools.values():  # once more, sampled: the memory of the whole process tree
        tool["memory"] = run(tool["cmd"], sample=True)

    small_mb = small.stat().st_size / 1e6
    prefilter = {}
    for label, flag in (("prefilter", []), ("--no-prefilter", ["--no-prefilter"])):
        runs = [run([*eg, "hunt", "-o", "jsonl", "-q", *flag, str(small)]) for _ in range(max(1, min(args.repeat, 3)))]
        secs = statistics.median(r["secs"] for r in runs)
        prefilter[label] = {"secs": secs, "mb_s": small_mb / secs, "alerts": runs[0]["lines"], "rss_mb": max(r["rss_mb"] for r in runs)}
        print(
            f"small slice {small_mb:.0f} MB, hunt {label}: {secs:.2f} s, {small_mb / secs:.0f} MB/s, {runs[0]['lines']} alerts",
            file=sys.stderr,
        )

    info["loadavg_after"] = os.getloadavg()
    summary: dict[str, Any] = {}
    for name, tool in tools.items():
        secs = statistics.median(r["secs"] for r in tool["runs"])
        out = tool["runs"][0]
        result = out["tail"].strip().splitlines()[-1] if "grep" in name and out["tail"].strip() else out["lines"]
        summary[name] = {
            "median_secs": secs,
            "mb_s": tool["mb"] / secs,
            "lines_s": tool["in_lines"] / secs,
            "mb": tool["mb"],
            "rss_mb": max(r["rss_mb"] for r in tool["runs"]),
            "tree_rss_mb": tool["memory"]["tree_rss_mb"],
            "tree_pss_mb": tool["memory"]["tree_pss_mb"],
            "procs": tool["memory"]["procs"],
            # CPU seconds over wall seconds per timed run: above ~1.2, the default started workers
            "cpus": [r["cpu_secs"] / r["secs"] for r in tool["runs"]],
            "result": result,
            "secs": [r["secs"] for r in tool["runs"]],
        }
    eg_rate = summary["execguard hunt"]["mb_s"]
    # per repeat: hunt and grep ran seconds apart, so load from other work hits both alike
    per_repeat = {
        f"{mine} / {ref}": [
            (tools[mine]["mb"] / a["secs"]) / (tools[ref]["mb"] / b["secs"])
            for a, b in zip(tools[mine]["runs"], tools[ref]["runs"], strict=True)
        ]
        for mine in ("execguard hunt", "execguard hunt -j 1")
        for ref in ("grep -F -c exec", "jq (slice)")
        if ref in tools
    }
    report = {
        "machine": info,
        "tools": summary,
        "small_slice": {"mb": small_mb, **prefilter},
        "ratio_vs_grep_exec": eg_rate / summary["grep -F -c exec"]["mb_s"],
        "ratio_vs_grep_literals": eg_rate / summary["grep -F -c -e LITERALS"]["mb_s"],
        "ratio_single_process_vs_grep_exec": summary["execguard hunt -j 1"]["mb_s"] / summary["grep -F -c exec"]["mb_s"],
        "ratios_per_repeat": per_repeat,
    }
    if "jq (slice)" in summary:
        report["ratio_vs_jq"] = eg_rate / summary["jq (slice)"]["mb_s"]
        report["ratio_single_process_vs_jq"] = summary["execguard hunt -j 1"]["mb_s"] / summary["jq (slice)"]["mb_s"]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    dest = OUT / f"results-{stem}-{stamp}.json"
    dest.write_text(json.dumps(report, indent=2, default=str))

    print(
        f"\n{path}: {mb:.0f} MB, {lines} lines, median of {args.repeat}, {info['cpus']} CPUs ({info['cpu']}), "
        f"load {info['loadavg_before'][0]:.1f} -> {info['loadavg_after'][0]:.1f}, find backend {info['find_backend']}"
    )
    print("| tool | MB/s | lines/s | peak RSS MB (largest process) | peak PSS MB (all processes) | result |")
    print("|---|---:|---:|---:|---:|---|")
    for name, s in summary.items():
        what = (
            f"{s['result']} lines"
            if "grep" in name
            else (f"{s['result']} alerts" if "execguard" in name else f"{s['result']} lines on {s['mb']:.0f} MB slice")
        )
        print(
            f"| {name} | {rate(s['mb_s'])} | {rate(s['lines_s'])} | {s['rss_mb']:.0f} "
            f"| {s['tree_pss_mb']:.0f} ({s['procs']} procs) | {what} |"
        )
    ratios = report["ratio_vs_grep_exec"], report["ratio_vs_grep_literals"], report["ratio_single_process_vs_grep_exec"]
    print(
        f"\nexecguard / grep -F -c exec = {ratios[0]:.3g}; execguard / grep -F -c -e LITERALS = {ratios[1]:.3g}; "
        f"execguard -j 1 / grep -F -c exec = {ratios[2]:.3g}"
    )
    if "ratio_vs_jq" in report:
        print(f"execguard / jq = {report['ratio_vs_jq']:.3g}; execguard -j 1 / jq = {report['ratio_single_process_vs_jq']:.3g}")
    for label, values in per_repeat.items():
        print(f"per repeat, {label}: {', '.join(f'{v:.3f}' for v in values)}")
    p, n = prefilter["prefilter"], prefilter["--no-prefilter"]
    print(
        f"{small_mb:.0f} MB slice: prefilter {rate(p['mb_s'])} MB/s vs --no-prefilter {rate(n['mb_s'])} MB/s "
        f"({n['secs'] / p['secs']:.1f}x); alerts {p['alerts']} vs {n['alerts']}"
    )
    print(f"JSON: {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
