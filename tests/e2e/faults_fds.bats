#!/usr/bin/env bats
# The fault suite, descriptor part: a plan wider than the file-descriptor
# limit. baton raises the soft limit to the hard one, admits commands and
# connections only while descriptors remain (the rest wait, they do not
# fail), and says once, clearly, that the limit holds them back.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

# wide N: a plan of N parallel 0.5 s sleeps marked with this test's mark.
wide() {
	{
		printf 'steps:\n  - parallel:\n'
		for i in $(seq "$1"); do printf '      - sleep 0.5%s\n' "$E2E_MARK"; done
	} | plan wide
}

@test "under ulimit -n 128, 200 commands at -j 1000 all succeed in turns, and the limit is said once" {
	p=$(wide 200)
	run bash -c 'ulimit -n 128 && exec "$@"' _ "$BATON" run "$p" -j 1000 --output plain --events "$EV"
	assert_status 0
	assert_not_contains "$output" "Too many open files"
	assert_eq "$(printf '%s\n' "$output" | grep -c 'the file-descriptor limit (128; hard limit 128) lets about')" 2 \
		"the warning: once on stderr, once in the summary"
	assert_eq "$(ev "$EV" 'sum(1 for e in E if e["type"] == "task.end" and e["status"] == "success")')" 200
	assert_eq "$(ev "$EV" 'sum(1 for e in E if e["type"] == "warning")')" 1
	# in turns: never more at once than the descriptors allow (128 less the reserve, 3 each)
	peak=$(ev "$EV" 'max(e["running"] for e in E if e["type"] == "progress")')
	assert_le "$peak" 21 "commands running at once"
	assert_eq "$(mark_pids)" ""
}

@test "the soft descriptor limit is raised to the hard one, for baton and its commands" {
	p=$(plan soft <<'EOF'
steps:
  - id: show
    run: ulimit -n
EOF
)
	run bash -c 'ulimit -Sn 100 && ulimit -Hn 4096 && exec "$@"' _ "$BATON" run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" 4096
	# and 300 at once then need no turns and no warning
	p=$(wide 300)
	run bash -c 'ulimit -Sn 100 && ulimit -Hn 4096 && exec "$@"' _ "$BATON" run "$p" -j 1000 --output plain
	assert_status 0
	assert_not_contains "$output" "file-descriptor limit"
}

@test "a very low limit (32) still runs every command, a few at a time" {
	p=$(wide 12)
	run bash -c 'ulimit -n 32 && exec "$@"' _ "$BATON" run "$p" -j 100 --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'sum(1 for e in E if e["type"] == "task.end" and e["status"] == "success")')" 12
	assert_le "$(ev "$EV" 'max(e["running"] for e in E if e["type"] == "progress")')" 2 "commands running at once"
}
