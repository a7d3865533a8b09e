#!/bin/sh
# Runs the bats end-to-end suite and ends with one plain line of counts
# ("e2e: N passed, M failed"), keeping bats' exit status.
set -u
# Every run is recorded: the tests' runs go to a throwaway run store, never
# to the user's own (a test that wants its own sets BATON_STATE_DIR itself).
state=$(mktemp -d)
export BATON_STATE_DIR="$state"
trap 'rm -rf "$state"' EXIT
out=${E2E_TAP:-build/e2e.tap}
mkdir -p "$(dirname "$out")"
status_file=$(mktemp)
{ bats "$@"; echo $? > "$status_file"; } | tee "$out"
rc=$(cat "$status_file")
rm -f "$status_file"
passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^not ok ' "$out")
echo "e2e: $passed passed, $failed failed"
exit "$rc"
