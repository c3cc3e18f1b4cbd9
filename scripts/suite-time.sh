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
# run is reported, not hidden: its time is still printed, marked "(failed)", and
# its log is kept in $TMPDIR (or /tmp), named by the run and the commit.
# Takes as long as both runs (the code before issue 12 took 15 to 21 minutes here).
set -euo pipefail
shopt -s inherit_errexit  # a commit that does not check out stops the script inside run's $(...) too
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
kept="${TMPDIR:-/tmp}"
work="$(mktemp -d "$kept/coursehub-suite-time.XXXXXX")"
trap 'rm -rf "$work"' EXIT
[ -d "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"

run() { # name commit -> prints the run's milliseconds
  local dir="$work/$1" log="$work/$1.log" start rc=0
  git clone --quiet "$repo" "$dir"
  git -C "$dir" checkout --quiet "$2"
  local commit
  commit=$(git -C "$dir" rev-parse --short HEAD)
  echo "$1: $(git -C "$dir" log -1 --format='%h %s' | cut -c1-80)" >&2
  start=$(date +%s%3N)
  (cd "$dir" && .ci/run) >"$log" 2>&1 || rc=$?
  local ms=$(($(date +%s%3N) - start)) s
  s=$((ms / 1000))
  echo "  $((s / 60)):$(printf %02d $((s % 60)))$( ((rc)) && echo ' (failed)') $(grep -aE '[0-9]+ (passed|failed)' "$log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//')" >&2
  if ((rc)); then  # a failed run's log outlives the clones
    cp "$log" "$kept/suite-time-$1-$commit.log"
    echo "  its log: $kept/suite-time-$1-$commit.log" >&2
  fi
  rm -rf "$dir"
  echo "$((ms > 0 ? ms : 1))"
}

base=$(run base "$1")
head=$(run head "${2:-HEAD}")
python3 -c "print(f'suite time head/base: {$head / $base:.2f}')"
