#!/usr/bin/env bash
# Two builds of execguard on the same files, interleaved (A, B, A, B ...) so both see the same machine:
#   git worktree add --detach /tmp/old REV && python3 -m venv /tmp/old/.venv && /tmp/old/.venv/bin/pip install -e '/tmp/old[fast]'
#   benchmarks/ab.sh /tmp/old/.venv/bin/execguard .venv/bin/execguard FILE...
# Prints one line per run: file, -j, build, wall s, user s, sys s, max RSS KB; then the medians.
set -euo pipefail
a=$1 b=$2; shift 2
runs=${RUNS:-3}
out=$(mktemp)
for f in "$@"; do
  for j in "-j 1" ""; do
    for _ in $(seq "$runs"); do
      for exe in "$a" "$b"; do
        # shellcheck disable=SC2086
        /usr/bin/time -o "$out" -a -f "$(basename "$f")|${j:-default}|$exe|%e|%U|%S|%M" "$exe" hunt -q -o jsonl $j "$f" >/dev/null
      done
    done
  done
done
cat "$out"
echo "median wall s (file, -j, build):"
python3 - "$out" <<'PY'
import statistics, sys
runs: dict[tuple[str, str, str], list[float]] = {}
for line in open(sys.argv[1]):
    f, j, exe, wall = line.split("|")[:4]
    runs.setdefault((f, j, exe), []).append(float(wall))
for key, walls in sorted(runs.items()):
    print(*key, statistics.median(walls))
PY
rm -f "$out"
