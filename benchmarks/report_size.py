"""The HTML report's size and its load time in headless chromium, for 1k / 30k / 100k alerts.

    .venv/bin/python benchmarks/report_size.py --alerts 1000 30000 100000 --repeat 3

Alerts are the simulate corpus's (seed 1, every scenario and format, hunted with the built-in rules), repeated
with each copy moved later by the corpus's time span and given its own pod names and event ids (reasons name the
pod, so they differ too): the mix of rules, actors and commands stays the corpus's. For each size: the JSONL
size, the time `execguard report` takes, the HTML size (plotly.min.js is the same ~4.8 MB in every one), and in
Debian's chromium driven by Playwright the time until the page has drawn everything (navigation start to the
script's ready mark), a filter typed into the table and a sort by severity. Results go to stdout as a
markdown table with the machine's load; figures measured are in RESULTS.md ("HTML report").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from execguard.times import time_ns

EXE = [sys.executable, "-m", "execguard"]


def corpus(work: Path) -> list[dict[str, Any]]:
    subprocess.run([*EXE, "simulate", "--scenario", "all", "--seed", "1", "--out", str(work / "sim")], check=True, capture_output=True)
    subprocess.run([*EXE, "hunt", str(work / "sim"), "-o", "jsonl", "--out", str(work / "base.jsonl"), "-q"], check=True)
    return [json.loads(line) for line in (work / "base.jsonl").read_text().splitlines()]


def scaled(base: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    times = [t for a in base if (t := time_ns(a["time"])) is not None]
    span = max(times) - min(times) + 1_000_000_000
    out = []
    for i in range(n):
        a = base[i % len(base)]
        k = i // len(base)
        if k:
            a = json.loads(json.dumps(a))
            t = time_ns(a["time"])
            if t is not None:
                t += k * span
                a["time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000)) + f".{t % 1_000_000_000:09d}Z"
            pod = a["target"]["pod"]
            if pod:
                a["target"]["pod"] = f"{pod}-{k}"
                a["reasons"] = [r.replace(pod, a["target"]["pod"]) for r in a["reasons"]]
            a["event_id"] = f"{a['event_id']}-{k}"
        out.append(a)
    return out


def until(page: Any, predicate: str, arg: Any = None) -> None:
    # polled from here: page.wait_for_function evals in the page in older Playwright, which the report's CSP refuses
    deadline = time.monotonic() + 300
    while not page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {predicate}")
        time.sleep(0.005)


def load(browser: Any, html: Path, ns: str) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    start = time.perf_counter()
    page.goto(html.resolve().as_uri(), timeout=300_000)
    until(page, "() => !!(window.__report && window.__report.ready)")
    wall = time.perf_counter() - start
    ready = page.evaluate("window.__report.readyMs") / 1000
    t = time.perf_counter()
    page.fill("#filter", f"ns:{ns}")
    until(page, "(t) => document.querySelector('#alerts').dataset.filter === t", f"ns:{ns}")
    filt = time.perf_counter() - t - 0.15  # the filter waits 150 ms after the last key
    page.fill("#filter", "")
    until(page, "() => document.querySelector('#alerts').dataset.filter === ''")
    t = time.perf_counter()
    page.click('#alerts th[data-col="sev"]')
    until(page, "() => document.querySelector('#alerts th[data-col=\"sev\"]').className !== ''")
    sort = time.perf_counter() - t
    page.close()
    if errors:
        raise SystemExit(f"{html}: {errors[0]}")
    return {"wall": wall, "ready": ready, "filter": filt, "sort": sort}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alerts", type=int, nargs="+", default=[1000, 30000, 100000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = corpus(work)
        rows = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True)
            for n in args.alerts:
                alerts = scaled(base, n)
                src = work / f"alerts-{n}.jsonl"
                src.write_text("".join(json.dumps(a) + "\n" for a in alerts))
                html = work / f"report-{n}.html"
                t = time.perf_counter()
                subprocess.run([*EXE, "report", str(src), "--out", str(html), "-q"], check=True)
                build = time.perf_counter() - t
                ns = next(a["target"]["namespace"] for a in alerts if a["target"]["namespace"])
                runs = [load(browser, html, ns) for _ in range(args.repeat)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                rows.append((n, src.stat().st_size, build, html.stat().st_size, med))
                print(f"{n} alerts done", file=sys.stderr)
            browser.close()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs; median of {args.repeat} loads")
    print()
    print("| alerts | JSONL | `execguard report` | HTML | open to drawn (wall) | navigation to drawn (page clock) "
          "| filter `ns:` | sort by severity |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, jsonl, build, size, m in rows:
        print(f"| {n:,} | {jsonl / 1e6:.1f} MB | {build:.1f} s | {size / 1e6:.1f} MB | {m['wall']:.2f} s | {m['ready']:.2f} s |"
              f" {m['filter'] * 1000:.0f} ms | {m['sort'] * 1000:.0f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
