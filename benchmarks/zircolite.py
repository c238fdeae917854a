"""execguard and Zircolite side by side on the same files, in the same run (issue 10).

Zircolite (github.com/wagga40/Zircolite) is a Sigma hunter that loads every record into SQLite and runs each
rule as SQL. Setup, once (its own venv under benchmarks/out/, git-ignored; see benchmarks/README.md):

    .venv/bin/python benchmarks/zircolite.py setup ZIRCOLITE_WORKTREE     # a clone of it: copies its code, makes the venv
    benchmarks/out/zircolite-venv/bin/python benchmarks/zircolite.py convert  # our rules -> its JSON ruleset
    .venv/bin/python benchmarks/zircolite.py run FILE [FILE ...] --repeat 3

``convert`` runs inside Zircolite's venv (its pySigma and pySigma-backend-sqlite, the converter Zircolite itself
uses for YAML rules) over execguard's built-in rules, with a processing pipeline that renames execguard's field
names to the columns Zircolite makes of a Kubernetes audit record (it flattens nested keys to their last part:
``objectRef.subresource`` -> ``subresource``). execguard's derived fields (``command.text``: the decoded argv;
``actor.kind``; ``outcome``) have no column, so they are mapped to the nearest raw one (``requestURI``,
``username``, ``code``): the rule count and shape are the same, the answers are not, and the alert counts
printed beside the times are there to show the work done, not agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ZDIR = OUT / "zircolite"
VENV = OUT / "zircolite-venv"
RULESET = OUT / "zircolite-execguard-rules.json"
ROOT = HERE.parent

# execguard field -> Zircolite column (last part of the audit record's key)
FIELD_MAP = {
    "action": "subresource",
    "outcome": "code",
    "verb": "verb",
    "resource": "resource",
    "stage": "stage",
    "request_uri": "requestURI",
    "actor.user": "username",
    "actor.kind": "username",
    "actor.user_agent": "userAgent",
    "actor.credential_pod": "username",
    "target.pod": "name",
    "target.namespace": "namespace",
    "target.kind": "resource",
    "target.image": "image",
    "privileged": "privileged",
}
FALLBACK = "requestURI"  # command.*, rbac.*, binds, tty, stdin, run_as_user: the URI or body text is the nearest


def setup(checkout: Path) -> None:
    """Copy Zircolite's code (not its bundled rules or GUI) and install its requirements in a venv of its own."""
    ZDIR.mkdir(parents=True, exist_ok=True)
    for name in ("zircolite.py", "zircolite", "config", "templates", "requirements.txt"):
        src = checkout / name
        dst = ZDIR / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin/pip"), "install", "-q", "-r", str(ZDIR / "requirements.txt")], check=True)


def convert() -> None:
    """execguard's built-in rules as a Zircolite ruleset (run with Zircolite's venv python)."""
    from sigma.backends.sqlite import sqlite  # type: ignore[import-not-found]
    from sigma.collection import SigmaCollection  # type: ignore[import-not-found]
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline  # type: ignore[import-not-found]
    from sigma.processing.transformations import FieldMappingTransformation  # type: ignore[import-not-found]

    rules = sorted((ROOT / "src/execguard/rules").rglob("*.yml"))
    collection = SigmaCollection.load_ruleset([str(p) for p in rules])
    names: set[str] = set()
    for rule in collection:
        detection = getattr(rule, "detection", None)
        for item in (detection.detections.values() if detection else []):
            for sub in getattr(item, "detection_items", []):
                for leaf in getattr(sub, "detection_items", [sub]):
                    if getattr(leaf, "field", None):
                        names.add(leaf.field)
    mapping = {n: FIELD_MAP.get(n, FALLBACK) for n in names}
    pipeline = ProcessingPipeline(
        name="execguard fields to Zircolite columns",
        priority=10,
        items=[ProcessingItem(identifier="execguard_fields", transformation=FieldMappingTransformation(mapping))],
    )
    backend = sqlite.sqliteBackend(pipeline)
    out, failed = [], []
    for rule in collection:
        try:
            if hasattr(rule, "detection"):
                converted = backend.convert_rule(rule, "zircolite")
            else:  # a correlation rule, as Zircolite converts them
                converted = backend.convert_correlation_rule(rule, "zircolite")
        except Exception as exc:  # a construct the SQL backend does not take: say which
            failed.append(f"{rule.title}: {exc}")
            continue
        out.extend(c for c in converted if isinstance(c, dict))
    RULESET.write_text(json.dumps(out, indent=1))
    print(f"{len(out)} SQL rules from {len(rules)} rule files in {RULESET}")
    for line in failed:
        print(f"  not converted: {line}")


def _timed(cmd: list[str], stdout: int | None = subprocess.DEVNULL, cwd: Path | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (children), peak RSS in MB of the largest child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, stdout=stdout, stderr=subprocess.DEVNULL, check=True, cwd=cwd)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss // 1024


def _count_zircolite(path: Path) -> int:
    try:
        data = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return -1
    return sum(int(d.get("count", len(d.get("matches", [])))) for d in data) if isinstance(data, list) else -1


def run(files: list[Path], repeat: int) -> None:
    if not RULESET.exists():
        sys.exit(f"no {RULESET}: run the convert step first (see the module docstring)")
    exe = str(ROOT / ".venv/bin/execguard")
    zpy, zmain = str(VENV / "bin/python"), str(ZDIR / "zircolite.py")
    print(f"load before: {os.getloadavg()[0]:.2f}")
    print("| file | MB | tool | wall s (median) | CPU s (median) | alerts / detections | tool/execguard wall |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for f in files:
        f = f.resolve()
        f.read_bytes()  # warm the page cache
        mb = f.stat().st_size / 1e6
        rows: dict[str, list[tuple[float, float]]] = {"execguard": [], "execguard -j 1": [], "zircolite": []}
        counts: dict[str, int] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(repeat):  # each repeat runs the tools back to back: load from other work hits them alike
                with open(Path(tmp) / "eg.jsonl", "wb") as out:
                    w, c, _ = _timed([exe, "hunt", "-q", "-o", "jsonl", str(f)], stdout=out.fileno())
                rows["execguard"].append((w, c))
                counts["execguard"] = (Path(tmp) / "eg.jsonl").read_bytes().count(b"\n")
                w, c, _ = _timed([exe, "hunt", "-q", "-o", "jsonl", "-j", "1", str(f)])
                rows["execguard -j 1"].append((w, c))
                zout = Path(tmp) / "z.json"
                w, c, _ = _timed(
                    [zpy, zmain, "--events", str(f), "--jsonl", "--ruleset", str(RULESET), "-o", str(zout), "-q",
                     "-l", str(Path(tmp) / "z.log")],
                    cwd=ZDIR,  # it reads config/ relative to where it runs
                )
                rows["zircolite"].append((w, c))
                counts["zircolite"] = _count_zircolite(zout)
        base = statistics.median(w for w, _ in rows["execguard"])
        for tool, times in rows.items():
            wall = statistics.median(w for w, _ in times)
            cpu = statistics.median(c for _, c in times)
            n = counts.get(tool, counts["execguard"])
            print(f"| {f.name} | {mb:.1f} | {tool} | {wall:.2f} | {cpu:.2f} | {n} | {wall / base:.2f}x |")
    print(f"load after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("checkout", type=Path)
    sub.add_parser("convert")
    r = sub.add_parser("run")
    r.add_argument("files", type=Path, nargs="+")
    r.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.cmd == "setup":
        setup(args.checkout)
    elif args.cmd == "convert":
        convert()
    else:
        run(args.files, args.repeat)


if __name__ == "__main__":
    main()
