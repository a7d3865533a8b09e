#!/bin/sh
# Runs the bats end-to-end suite and ends with one plain line of counts
# ("e2e: N passed, M failed"), keeping bats' exit status.
set -u
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
