#!/usr/bin/env bash
# Two builds of execguard on the same files, interleaved (A, B, A, B ...) so both see the same machine:
#   git worktree add --detach /tmp/old REV && python3 -m venv /tmp/old/.venv && /tmp/old/.venv/bin/pip install -e '/tmp/old[fast]'
#   benchmarks/ab.sh /tmp/old/.venv/bin/execguard .venv/bin/execguard FILE...
# RUNS=N repeats (3); JOBS="1 2 default" the -j values to run ("default": no -j; the default is "1 default").
# Prints one line per run: file, -j, build, wall s, user s, sys s, max RSS KB, 1-minute load average before the
# run; then the medians of wall and CPU (user+sys, the whole process tree) per file, -j and build.
set -euo pipefail
# Some environments set PYTHONDONTWRITEBYTECODE: then every run compiles every module again (0.5-0.8 s a run here), which
# no installed copy does. Timings are of the installed behaviour: write the .pyc files once.
unset PYTHONDONTWRITEBYTECODE
for exe in "$1" "$2"; do "$(dirname "$exe")/python" -m compileall -q "$(dirname "$exe")/../../src" >/dev/null 2>&1 || true; done
a=$1 b=$2; shift 2
runs=${RUNS:-3}
out=$(mktemp)
for f in "$@"; do
  for j in ${JOBS:-1 default}; do
    opt=()
    [ "$j" = default ] || opt=(-j "$j")
    for _ in $(seq "$runs"); do
      for exe in "$a" "$b"; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        /usr/bin/time -o "$out" -a -f "$(basename "$f")|$j|$exe|%e|%U|%S|%M|$load" "$exe" hunt -q -o jsonl "${opt[@]}" "$f" >/dev/null
      done
    done
  done
done
cat "$out"
echo "median wall s, CPU s (file, -j, build):"
python3 - "$out" <<'PY'
import statistics, sys
runs: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
for line in open(sys.argv[1]):
    f, j, exe, wall, user, sys_ = line.split("|")[:6]
    runs.setdefault((f, j, exe), []).append((float(wall), float(user) + float(sys_)))
for key, got in sorted(runs.items()):
    print(*key, statistics.median(w for w, _ in got), round(statistics.median(c for _, c in got), 2))
PY
rm -f "$out"
