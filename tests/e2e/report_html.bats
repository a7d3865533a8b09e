#!/usr/bin/env bats
# The HTML report in a real browser: Debian's chromium, headless, driven over
# the DevTools protocol by browser.py. The pages are written by
# report_html_write from report data documents of known content
# (tests/fixtures/report-data.json, and the generated 10,000-task and hostile
# ones) through build/report-html.

load helpers

setup() {
	e2e_setup
	: "${REPORT_HTML:=$REPO_DIR/build/report-html}"
	[ -x "$REPORT_HTML" ] || {
		echo "report-html not found at $REPORT_HTML (run make build/report-html)" >&2
		return 1
	}
	BROWSER="$E2E_DIR/browser.py"
	DATA="$REPO_DIR/tests/fixtures/report-data.json"
}
teardown() { e2e_teardown; }

# py FILE EXPR: EXPR over the JSON in FILE (as d), printed.
py() {
	"$E2E_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

page() {
	run "$REPORT_HTML" "$1" "$2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

browse() {
	local out=$1
	shift
	timeout 60 "$E2E_PY" "$BROWSER" "$@" > "$out"
	local rc=$?
	[ "$rc" -eq 0 ] || { echo "browser.py $* exited $rc"; cat "$out"; return 1; }
}

# The page loaded with nothing on the console and no dialog.
clean_load() {
	[ "$(py "$1" 'len(d["errors"]) + len(d["dialogs"])')" = 0 ] || {
		py "$1" 'd["errors"] + d["dialogs"]'
		return 1
	}
}

@test "report html: the page loads with no console error and one bar per attempt, classed by status" {
	page "$DATA" r.html
	browse c.json check r.html
	clean_load c.json
	want=$(py "$DATA" 'len(d["tasks"])')
	[ "$want" -eq 17 ]
	[ "$(py c.json 'd["bars"]')" -eq "$want" ]
	for st in success failed timeout cancelled skipped; do
		want=$(py "$DATA" "sum(1 for t in d['tasks'] if t['status'] == '$st')")
		got=$(py c.json "d['classes'].get('st-$st', 0)")
		[ "$got" -eq "$want" ] || { echo "st-$st: $got bars, the data has $want"; return 1; }
	done
	[ "$(py c.json "d['classes'].get('st-running', 0)")" -eq "$(py "$DATA" "sum(1 for t in d['tasks'] if t['status'] is None)")" ]
	[ "$(py c.json "d['classes'].get('tolerated', 0)")" -eq "$(py "$DATA" "sum(1 for t in d['tasks'] if t['tolerated'])")" ]
	# the first attempt of migrate, retried, is marked as such
	[ "$(py c.json "d['classes'].get('retry', 0)")" -eq 1 ]
	[ "$(py c.json 'd["scripts"]')" -eq 2 ]
	# the page opens on the run's failure
	[[ "$(py c.json 'd["detail_text"]')" == *"rollout.deploy@web3"*"curl: (7) Failed to connect"* ]]
}

@test "report html: a click on a failed bar shows its command, exit code, reason and output in #detail" {
	page "$DATA" r.html
	browse c.json check r.html --click '.bar[data-task="migrate"][data-attempt="1"]'
	clean_load c.json
	# the mouse landed on that bar (a real click at its centre)
	[ "$(py c.json 'd["clicked"]')" = "migrate attempt 1" ]
	detail=$(py c.json 'd["detail_text"]')
	echo "$detail"
	[[ "$detail" == migrate* ]]
	[[ "$detail" == *"attempt1 of 2"* ]]
	[[ "$detail" == *"exit code75"* ]]
	[[ "$detail" == *"reasonexit code 75"* ]]
	[[ "$detail" == *"./migrate --to 2.4.1"* ]]
	[[ "$detail" == *"database is locked, try again"* ]]
	# the auto-selected failure is gone from the panel
	[[ "$detail" != *"curl: (7)"* ]]
	# stderr lines are marked apart from stdout
	browse e.json eval r.html \
		"document.querySelector('.bar[data-task=\"rollout.deploy@web3\"]').click() || [...document.querySelectorAll('#detail .out div')].map(e => e.className + ':' + e.textContent).join('|')"
	[ "$(py e.json 'd["values"][0]')" = ":restarting app|e:app.service: main process exited, status=1/FAILURE|e:curl: (7) Failed to connect to localhost port 8080" ]
}

@test "report html: PAGE.html#task=ID[&attempt=N] opens that task" {
	page "$DATA" r.html
	browse c.json check 'r.html#task=rollout.deploy%40web4'
	clean_load c.json
	[[ "$(py c.json 'd["detail_text"]')" == "rollout.deploy@web4timeout"*"signalSIGTERM"* ]]
	browse c.json check 'r.html#task=migrate&attempt=1'
	[[ "$(py c.json 'd["detail_text"]')" == "migratefailed"*"attempt1 of 2"* ]]
	# without an attempt, the last one
	browse c.json check 'r.html#task=migrate'
	[[ "$(py c.json 'd["detail_text"]')" == "migratesuccess"*"attempt2 of 2"* ]]
}

@test "report html: the slowest lists rank tasks and hosts, and a row opens its task" {
	page "$DATA" r.html
	browse c.json check r.html --click '#slow-tasks tr:nth-child(1)'
	clean_load c.json
	[[ "$(py c.json 'd["detail_text"]')" == "rollout.deploy@web4timeout"* ]]
	browse e.json eval r.html \
		"[...document.querySelectorAll('#slow-hosts .name')].map(e => e.textContent).join(' ')" \
		"[...document.querySelectorAll('#slow-tasks .name')].length"
	[ "$(py e.json 'd["values"][0]')" = "@web4 @web3 @web2 @web1" ]
	[ "$(py e.json 'd["values"][1]')" -eq 10 ]
}

@test "report html: grouped by host, every bar is still there" {
	page "$DATA" r.html
	browse c.json check r.html --click '#mode button[data-m="host"]'
	clean_load c.json
	[ "$(py c.json 'd["bars"]')" -eq 17 ]
	browse e.json eval r.html "document.querySelector('#mode button[data-m=\"host\"]').click() || [...document.querySelectorAll('.gh .rl span:nth-child(3)')].map(e => e.textContent).join(' ')"
	[ "$(py e.json 'd["values"][0]')" = "local (no host) @web1 @web2 @web3 @web4" ]
}

@test "report html: batches and barrier releases are drawn on the rollout step" {
	page "$DATA" r.html
	browse e.json eval r.html \
		"[...document.querySelectorAll('.tag')].map(e => e.textContent).join('|')" \
		"document.querySelectorAll('.band').length + ' ' + document.querySelectorAll('.bline').length"
	[ "$(py e.json 'd["values"][0]')" = "batch 1 · 1|batch 2 · 3 · 2 failed|‖ drained 1/1|‖ drained 3/3" ]
	[ "$(py e.json 'd["values"][1]')" = "2 2" ]
}

@test "report html: 10,000 tasks load cleanly and draw (the 2 s target is make bench's)" {
	"$E2E_PY" "$E2E_DIR/report_data.py" big 10000 big.json
	page big.json big.html
	browse c.json check big.html
	clean_load c.json
	[ "$(py c.json 'd["bars"]')" -eq 10000 ]
	ms=$(py c.json 'round(d["rendered_ms"])')
	size=$(stat -c %s big.html)
	echo "# 10,000 tasks: ${size} bytes, rendered in ${ms} ms" >&3
	# the 2 s target is measured by make bench (section g), not timed here: a loaded CI
	# machine must not fail it; a page that takes 10x that is broken all the same
	[ "$ms" -lt 20000 ]
	# one row per item: the most rows a page can have
	"$E2E_PY" "$E2E_DIR/report_data.py" big 10000 flat.json flat
	page flat.json flat.html
	browse f.json check flat.html
	clean_load f.json
	[ "$(py f.json 'd["bars"]')" -eq 10000 ]
	ms=$(py f.json 'round(d["rendered_ms"])')
	echo "# 10,000 rows: $(stat -c %s flat.html) bytes, rendered in ${ms} ms" >&3
	# the 2 s target is measured by make bench (section g), not timed here: a loaded CI
	# machine must not fail it; a page that takes 10x that is broken all the same
	[ "$ms" -lt 20000 ]
}

@test "report html: markup, CDATA ends and escaped bytes in any text stay text" {
	"$E2E_PY" "$E2E_DIR/report_data.py" hostile "$DATA" hostile.json
	page hostile.json h.html
	[ "$(grep -c '<script' h.html)" -eq 2 ]
	! grep -q '<img' h.html
	browse c.json check h.html --click '.bar.st-failed:not(.tolerated):not(.retry)'
	clean_load c.json
	[ "$(py c.json 'd["scripts"]')" -eq 2 ]
	[ "$(py c.json 'd["imgs"]')" -eq 0 ]
	[ "$(py c.json 'd["iframes"]')" -eq 0 ]
	payload='</script><script>alert(1)</script><img src=x onerror=alert(1)>]]>\xFF\xFE<!--'
	detail=$(py c.json 'd["detail_text"]')
	for field in "label $payload" "reason $payload" "out $payload" "err $payload" "echo '$payload'" "web3$payload"; do
		[[ "$detail" == *"$field"* ]] || { echo "missing in #detail: $field"; echo "$detail"; return 1; }
	done
	[[ "$detail" == *"café 日本 🚀"* ]]
	[ "$(py c.json 'd["title"]')" = "baton · deploy $payload · failed" ]
	# the page's other texts too: the step header, the barrier tag, the warning
	browse e.json eval h.html "document.body.textContent.split(String.raw\`$payload\`).length - 1"
	[ "$(py e.json 'd["values"][0]')" -ge 15 ]
}

@test "report html: the page names nothing on the network" {
	page "$DATA" r.html
	"$E2E_PY" "$E2E_DIR/report_data.py" big 300 big.json
	page big.json big.html
	for f in r.html big.html; do
		run grep -Eio '(src|href|action)=|https?:|url\(|@import|<link' "$f"
		[ "$status" -eq 1 ] || { echo "$f: $output"; return 1; }
	done
	grep -q "default-src 'none'" r.html
	# the policy lets the page's own script run, by its SHA-256, and nothing else
	"$E2E_PY" -c '
import base64, hashlib, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
csp = re.search(r"script-src (\x27sha256-[^\x27]+\x27)\"", page).group(1)
code = re.findall(r"<script>(.*?)</script>", page, re.S)
assert len(code) == 1, len(code)
want = "\x27sha256-" + base64.b64encode(hashlib.sha256(code[0].encode()).digest()).decode() + "\x27"
assert csp == want, (csp, want)
' r.html
}

@test "report html: browser.py takes a screenshot" {
	page "$DATA" r.html
	browse s.json screenshot r.html shot.png 1200 800
	clean_load s.json
	"$E2E_PY" -c 'import sys; sys.exit(open("shot.png", "rb").read(8) != b"\x89PNG\r\n\x1a\n")'
	[ "$(stat -c %s shot.png)" -gt 20000 ]
}

@test "report html: browser.py reports console errors, exceptions and dialogs" {
	printf '<!DOCTYPE html><script>alert("hi"); console.error("bad"); nope();</script>\n' > bad.html
	browse c.json check bad.html
	[ "$(py c.json 'd["dialogs"]')" = "['alert: hi']" ]
	[ "$(py c.json 'len(d["errors"])')" -eq 2 ]
	[[ "$(py c.json 'd["errors"][1]')" == *"nope is not defined"* ]]
}
