#!/usr/bin/env bats
# The HTML report of real runs, in headless Chromium (browser.py): the bars
# match the run's events, the click detail shows a real failure, hostile
# output stays text, the 10,000-task plan draws in under 2 s.

load helpers

setup() {
	e2e_setup
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
	BROWSER="$E2E_DIR/browser.py"
}
teardown() { e2e_teardown; }

py() {
	"$E2E_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# ev EXPR: EXPR over the events in ev.jsonl (as evs), printed.
ev() {
	"$E2E_PY" -c 'import json, sys; evs = [json.loads(l) for l in open("ev.jsonl")]; print(eval(sys.argv[1]))' "$1"
}

browse() {
	local out=$1
	shift
	timeout 60 "$E2E_PY" "$BROWSER" "$@" > "$out"
	local rc=$?
	[ "$rc" -eq 0 ] || { echo "browser.py $* exited $rc"; cat "$out"; return 1; }
}

clean_load() {
	[ "$(py "$1" 'len(d["errors"]) + len(d["dialogs"])')" = 0 ] || {
		py "$1" 'd["errors"] + d["dialogs"]'
		return 1
	}
}

@test "report html run: the demo's page has one bar per attempt with the status its events gave" {
	run timeout 60 "$BATON" run "$REPO_DIR/plans/demo.yaml" --output quiet --events ev.jsonl --report demo.html
	[ "$status" -eq 0 ]
	browse c.json check demo.html --click '.bar[data-task="flaky-upload"][data-attempt="1"]'
	clean_load c.json
	[ "$(py c.json 'd["bars"]')" -eq "$(ev 'sum(1 for e in evs if e["type"] == "task.start")')" ]
	for st in success failed timeout; do
		want=$(ev "sum(1 for e in evs if e['type'] == 'task.end' and e['status'] == '$st')")
		[ "$(py c.json "d['classes'].get('st-$st', 0)")" -eq "$want" ] || { py c.json 'd["classes"]'; return 1; }
	done
	[ "$(py c.json "d['classes'].get('retry', 0)")" -eq 2 ]
	[ "$(py c.json 'd["clicked"]')" = "flaky-upload attempt 1" ]
	detail=$(py c.json 'd["detail_text"]')
	[[ "$detail" == *"attempt1 of 3"* ]]
	[[ "$detail" == *"exit code75"* ]]
	[[ "$detail" == *'if [ "$n" -lt 2 ]; then echo "upload failed'* ]]
	[[ "$detail" == *"upload failed (attempt 1)"* ]]
	# the same page, later, from the run store
	run "$BATON" report --html later.html
	[ "$status" -eq 0 ]
	cmp demo.html later.html
}

@test "report html run: batches and barrier releases of a rollout are drawn" {
	run timeout 60 "$BATON" run "$REPO_DIR/plans/rolling-batches.yaml" --output quiet --events ev.jsonl --report r.html
	[ "$status" -eq 0 ]
	browse e.json eval r.html \
		"[...document.querySelectorAll('.tag:not(.bt)')].map(e => e.textContent).join('|')" \
		"document.querySelectorAll('.band').length + ' ' + document.querySelectorAll('.bline').length"
	clean_load e.json
	[ "$(py e.json 'd["values"][0]')" = "batch 1 · 1|batch 2 · 2|batch 3 · 3" ]
	[ "$(py e.json 'd["values"][1]')" = "3 $(ev 'sum(1 for e in evs if e["type"] == "barrier.release")')" ]
}

@test "report html run: markup and bytes that are not UTF-8 in a task's output, command and label stay text" {
	p=$(plan hostile <<'EOF'
steps:
  - name: evil
    for_each: ["</script><script>alert(1)</script>"]
    label: "${{ item }}<img src=x onerror=alert(2)>"
    run: |
      echo '</script><script>alert(3)</script> ]]> <img src=x onerror=alert(4)>'
      printf 'bad \377\376 bytes\n' >&2
      exit 3
EOF
)
	run timeout 60 "$BATON" run "$p" --output quiet --report h.html
	[ "$status" -eq 1 ]
	[ "$(grep -c '<script' h.html)" -eq 2 ]
	! grep -q '<img' h.html
	browse c.json check h.html --click '.bar.st-failed'
	clean_load c.json
	[ "$(py c.json 'd["imgs"]')" -eq 0 ]
	[ "$(py c.json 'd["scripts"]')" -eq 2 ]
	detail=$(py c.json 'd["detail_text"]')
	echo "$detail"
	[[ "$detail" == *'</script><script>alert(1)</script><img src=x onerror=alert(2)>'* ]]
	[[ "$detail" == *'</script><script>alert(3)</script> ]]> <img src=x onerror=alert(4)>'* ]]
	[[ "$detail" == *'bad \xFF\xFE bytes'* ]]
	[[ "$detail" == *"exit code3"* ]]
}

@test "report html run: the 10,000-task plan's page draws, and how long it takes (the 2 s target is make bench's)" {
	awk 'BEGIN { print "name: bench-10000"; print "steps:"; print "  - parallel:";
		for (i = 0; i < 10000; i++) print "      - run: \"true\"" }' > p10000.yaml
	run timeout 300 "$BATON" run p10000.yaml -j 2 --output quiet --report big.html
	[ "$status" -eq 0 ]
	browse c.json check big.html
	clean_load c.json
	[ "$(py c.json 'd["bars"]')" -eq 10000 ]
	[ "$(py c.json "d['classes'].get('st-success', 0)")" -eq 10000 ]
	ms=$(py c.json 'round(d["rendered_ms"])')
	echo "# the 10,000-task plan's report: $(stat -c %s big.html) bytes, rendered in ${ms} ms" >&3
	# the 2 s target is measured by make bench (section g), not timed here: a loaded CI
	# machine must not fail it; a page that takes 10x that is broken all the same
	[ "$ms" -lt 20000 ]
}
