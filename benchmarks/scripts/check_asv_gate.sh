#!/usr/bin/env bash
# Check that .ci/asv-gate catches real regressions and stays green on an unchanged commit.
# For each case it builds a temporary two-commit git repository from the current tree
# (tracked and untracked, not ignored files): commit 1 = the tree, commit 2 = the tree with a
# planted change; then runs the gate there and checks its exit status.
#   larger-output  DEFAULT_BLOCK_CAP 2**16 -> 2**13: zstd files ~5 % larger  -> must be red
#   three-commit   the same, then a third commit that only touches README.md (the
#                  regression is in HEAD's parent: only the committed baseline sees it)
#                                                                            -> must be red
#   baseline-update  the same smaller blocks committed with benchmarks/baseline.json
#                  rewritten (asv_gate.py --write-baseline), then a README commit
#                                                                            -> must be green
#   stream-memory  iter_frames decodes into a 2-frame buffer: traced streaming peak doubles
#                                                                            -> must be red
#   read-sleep     mrcz.read sleeps 50 ms first                              -> must be red
#   unchanged      commit 2 only touches README.md                           -> must be green
# Takes 6-12 min per case on the shared 2-core machine (the gate runs every benchmark on
# both commits), so it is a script, not a test. Each case's log: $LOGDIR/<case>-<n>.log.
# Usage: ASV_PYTHON=/path/to/venv/bin/python bash benchmarks/scripts/check_asv_gate.sh \
#          [case ...]      (default: larger-output three-commit baseline-update stream-memory
#                           read-sleep unchanged x3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${ASV_PYTHON:-$ROOT/.venv/bin/python}
LOGDIR=${LOGDIR:-$(mktemp -d -t asv-gate-check-XXXXXX)}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(larger-output three-commit baseline-update stream-memory read-sleep
                                 unchanged unchanged unchanged)

plant() {  # plant CASE: edit the tree in the current folder
  "$PY" - "$1" <<'EOF'
import sys
from pathlib import Path

def replace(path, old, new):
    text = Path(path).read_text()
    if text.count(old) != 1:
        sys.exit(f"check_asv_gate: cannot plant: {old!r} is not exactly once in {path}")
    Path(path).write_text(text.replace(old, new))

case = sys.argv[1]
if case in ("larger-output", "three-commit", "baseline-update"):
    replace("mrczbench/mrc/chunks.py", "DEFAULT_BLOCK_CAP = 2**16", "DEFAULT_BLOCK_CAP = 2**13")
elif case == "stream-memory":
    replace("mrczbench/mrcz.py",
            "            out = _allocate(header, 1, float(\"inf\"))\n",
            "            out = _allocate(header, 2, float(\"inf\"))\n")
elif case == "read-sleep":
    replace("mrczbench/mrcz.py",
            "    path = Path(path)\n    if threads is None:\n        threads = _cpu_count()\n",
            "    __import__('time').sleep(0.05)\n"
            "    path = Path(path)\n    if threads is None:\n        threads = _cpu_count()\n")
elif case == "unchanged":
    with open("README.md", "a") as f:
        f.write("\n<!-- unchanged code -->\n")
else:
    sys.exit(f"check_asv_gate: unknown case {case!r}; use larger-output, three-commit, "
             "baseline-update, stream-memory, read-sleep or unchanged")
EOF
}

bad=0
n=0
for case in "${cases[@]}"; do
  n=$((n + 1))
  repo=$(mktemp -d -t asv-gate-repo-XXXXXX)
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
     | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
     | tar --null -T - -cf -) | tar -xf - -C "$repo"
  (
    cd "$repo"
    git init -q -b main && git add -A
    git -c user.name=check -c user.email=check@localhost commit -q -m "base"
    plant "$case"
    if [ "$case" = baseline-update ]; then
      "$PY" benchmarks/scripts/asv_gate.py --write-baseline >/dev/null
    fi
    git add -A
    git -c user.name=check -c user.email=check@localhost commit -q -m "plant: $case"
    if [ "$case" = three-commit ] || [ "$case" = baseline-update ]; then
      plant unchanged
      git -c user.name=check -c user.email=check@localhost commit -q -am "a README line"
    fi
  )
  log="$LOGDIR/$case-$n.log"
  start=$SECONDS
  status=0
  ASV_PYTHON=$PY bash "$repo/.ci/asv-gate" >"$log" 2>&1 || status=$?
  elapsed=$((SECONDS - start))
  want=1
  case "$case" in unchanged|baseline-update) want=0 ;; esac
  verdict=$(grep -E '^asv-gate: (ok|FAILED|ERROR)' "$log" | tail -1 || true)
  if [ "$status" -eq "$want" ]; then
    echo "check_asv_gate: $case: as expected (exit $status, ${elapsed}s): $verdict"
  else
    echo "check_asv_gate: $case: WRONG (exit $status, want $want, ${elapsed}s): $verdict" >&2
    bad=$((bad + 1))
  fi
  grep -E '^asv-gate: (REGRESSION|note)' "$log" | sed 's/^/    /' | head -12 || true
  rm -rf "$repo"
done
echo "check_asv_gate: logs in $LOGDIR"
[ "$bad" -eq 0 ] || { echo "check_asv_gate: $bad case(s) wrong" >&2; exit 1; }
echo "check_asv_gate: all ${#cases[@]} case(s) as expected"
