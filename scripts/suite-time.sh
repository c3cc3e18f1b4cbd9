#!/usr/bin/env bash
# Compare two commits' clean-clone CI runs on this machine, back to back: the
# suite's time as a ratio against a baseline run in the same hour, since this
# machine's speed varies by half from hour to hour and a time alone means little.
#
#   scripts/suite-time.sh BASE [HEAD]      (HEAD defaults to HEAD)
#
# Each commit is cloned fresh into a temporary folder (with ../shared linked
# beside it, as CI has it), and its own .ci/run runs there; then the clones go.
# Prints each run's wall time, its pytest summary line and HEAD/BASE. A failing
# run is reported, not hidden: its time is still printed, marked "(failed)", its
# log is kept in $TMPDIR (or /tmp), named by the run and the commit, and the
# script exits 1. BASE runs first: a cold npm or uv cache counts against it.
# Takes as long as both runs (the code before issue 12 took 15 to 21 minutes here).
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside run's $(...) stops the script too
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
resolve() { # a commit as this repository names it, with a runnable .ci/run: checked before anything runs
  local sha
  sha=$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}") || { echo "suite-time: not a commit here: $1" >&2; exit 2; }
  [[ "$(git -C "$repo" ls-tree "$sha" .ci/run)" == 100755\ * ]] || { echo "suite-time: $1 has no executable .ci/run" >&2; exit 2; }
  echo "$sha"
}
base_commit=$(resolve "$1")
head_commit=$(resolve "${2:-HEAD}")
kept="${TMPDIR:-/tmp}"
work="$(mktemp -d "$kept/coursehub-suite-time.XXXXXX")"
trap 'rm -rf "$work"' EXIT
[ -d "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"

run() { # name commit -> prints the run's milliseconds and .ci/run's exit code
  local dir="$work/$1" log="$work/$1.log" short start rc=0 ms s summary mark=""
  git clone --quiet --no-checkout "$repo" "$dir"
  git -C "$dir" checkout --quiet --detach "$2"
  short=$(git -C "$dir" rev-parse --short HEAD)
  echo "$1: $(git -C "$dir" log -1 --format='%h %s' | cut -c1-80)" >&2
  start=$(date +%s%3N)
  (cd "$dir" && .ci/run) >"$log" 2>&1 || rc=$?
  ms=$(($(date +%s%3N) - start))
  s=$((ms / 1000))
  summary=$(grep -aE '[0-9]+ (passed|failed)' "$log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//') || true
  ((rc == 0)) || mark=" (failed)"
  echo "  $((s / 60)):$(printf %02d $((s % 60)))$mark $summary" >&2
  if ((rc)); then  # a failed run's log outlives the clones
    cp "$log" "$kept/suite-time-$1-$short.log"
    echo "  its log: $kept/suite-time-$1-$short.log" >&2
  fi
  rm -rf "$dir"
  echo "$((ms > 0 ? ms : 1)) $rc"
}

base_run=$(run base "$base_commit") # plain assignments: a step that fails in a run stops the script
head_run=$(run head "$head_commit")
read -r base base_rc <<<"$base_run"
read -r head head_rc <<<"$head_run"
awk -v h="$head" -v b="$base" 'BEGIN { printf "suite time head/base: %.2f\n", h / b }'
# the ratio is printed either way; a failed run makes the whole a failure, so nothing takes it at face value
((base_rc == 0 && head_rc == 0)) || exit 1
