# Shared by interp_gen.bats (local) and ssh_interp_gen.bats (over SSH): the
# generator tests/interp/gen.py, and the hand-written cases of issue 8 that
# ran ${{ }} values as shell code. Load after helpers (and ssh_helpers).
#
# Every function takes ON: '' for a local run, else a host of $INV.

GEN="$REPO_DIR/tests/interp/gen.py"
# the fixed sample `make check` runs (make fuzz-interp takes a new seed each time)
GEN_SEED=20260812
GEN_CASES=500

# gen_sample SIDE WORK [ARGS...]: run the fixed sample on SIDE (local or
# remote) in the scratch directory WORK (the remote user must reach it);
# failing cases go to build/interp-gen/SIDE/ as plan files.
gen_sample() {
	local side=$1 work=$2
	shift 2
	rm -rf "$REPO_DIR/build/interp-gen/$side"
	run timeout -k 5 900 "$E2E_PY" "$GEN" --baton "$BATON" --seed "$GEN_SEED" --cases "$GEN_CASES" \
		--side "$side" --work "$work" --report-dir "$REPO_DIR/build/interp-gen/$side" "$@"
	assert_status 0
	# the counts are there and say what they must
	assert_match "$output" "^gen\.py: seed $GEN_SEED, [0-9]+ cases generated$"
	assert_match "$output" "executed bash $side [0-9]+"
	assert_match "$output" "executed dash $side [0-9]+"
	assert_match "$output" "; canaries 0; 0 failures;"
	local n
	n=$(sed -n 's/^gen\.py: seed [0-9]*, \([0-9]*\) cases generated$/\1/p' <<<"$output")
	assert_ge "$n" "$GEN_CASES" "cases generated"
	n=$(sed -n 's/^  exact matches  *\([0-9]*\)$/\1/p' <<<"$output")
	assert_ge "${n:-0}" $((GEN_CASES / 2)) "cases whose output matched the oracle byte for byte"
}

# five_plan FILE SHELL ON CANARY: issue 8's first four scripts, verbatim, as
# steps c1..c4 (c2, a here-string, only under bash), with v a value that
# creates CANARY if it ever runs.
five_plan() {
	local file=$1 shell=$2 on=$3 canary=$4
	{
		printf 'vars: {v: "x; touch %s"}\n' "$canary"
		printf 'defaults: {shell: %s}\n' "$shell"
		[ -z "$on" ] || printf 'ssh: { known_hosts_file: "%s" }\n' "$SSH_KNOWN_HOSTS"
		echo 'steps:'
		echo '- id: c1'
		[ -z "$on" ] || echo "  on: $on"
		cat <<'EOF'
  continue_on_error: true
  run: |                        # any `<<` (a bit shift, or `<<<`) opens a fake heredoc
    echo "$((1<<3))"
    echo ${{ vars.v }}
EOF
		if [ "$shell" = bash ]; then
			echo '- id: c2'
			[ -z "$on" ] || echo "  on: $on"
			cat <<'EOF'
  continue_on_error: true
  run: |
    cat <<< hi
    echo ${{ vars.v }}
EOF
		fi
		echo '- id: c3'
		[ -z "$on" ] || echo "  on: $on"
		cat <<'EOF'
  continue_on_error: true
  run: 'echo "$(case x in x) echo ${{ vars.v }};; esac)"'   # case's `)` closes `$(`
- id: c4
EOF
		[ -z "$on" ] || echo "  on: $on"
		cat <<'EOF'
  continue_on_error: true
  run: |                        # `$(` inside a heredoc body is not tracked
    cat <<EOF
    $(echo ${{ vars.v }})
    EOF
EOF
	} >"$file"
}

# task_of STEP ON: the task id of STEP (STEP@ON on a host)
task_of() { printf '%s%s' "$1" "${2:+@$2}"; }

# check_five SHELL ON CANARY_DIR [INVENTORY ARGS...]: the four run, print
# the value as one literal word (task.start's command still shows the value),
# and no canary appears; the fifth, a backslash right before ${{, is a load
# error at its line that says what to do, and runs nothing.
check_five() {
	local shell=$1 on=$2 dir=$3
	shift 3
	local canary="$dir/PWNED-$shell" p q t want
	five_plan "$BATS_TEST_TMPDIR/five-$shell.yaml" "$shell" "$on" "$canary"
	p="$BATS_TEST_TMPDIR/five-$shell.yaml"
	run --separate-stderr b run "$p" --output quiet --events "$EV" "$@"
	assert_file_absent "$canary" "a value ran as shell code under $shell ${on:+on $on}"
	assert_status 0
	for t in c1 c2 c3 c4; do
		[ "$t" = c2 ] && [ "$shell" != bash ] && continue
		case $t in
		c1) want="8"$'\n'"x; touch $canary" ;;
		c2) want="hi"$'\n'"x; touch $canary" ;;
		*) want="x; touch $canary" ;;
		esac
		assert_eq "$(ev "$EV" "tend('$(task_of $t "$on")')['status']")" success "$t under $shell"
		assert_eq "$(ev "$EV" "out('$(task_of $t "$on")')")" "$want" "what $t printed under $shell"
		assert_contains "$(ev "$EV" "one('task.start', task='$(task_of $t "$on")')['command']")" \
			"x; touch $canary" "the command shown for $t shows the value"
	done

	# the fifth: `echo foo\${{ vars.w }}` (the backslash eats the quote)
	q="$BATS_TEST_TMPDIR/five5-$shell.yaml"
	{
		printf 'vars: {w: "x; touch %s #"}\n' "$canary"
		printf 'defaults: {shell: %s}\n' "$shell"
		[ -z "$on" ] || printf 'ssh: { known_hosts_file: "%s" }\n' "$SSH_KNOWN_HOSTS"
		echo 'steps:'
		echo '- id: c5'
		[ -z "$on" ] || echo "  on: $on"
		echo '  run: echo foo\${{ vars.w }}   # the backslash eats the quote'
	} >"$q"
	run --separate-stderr b check "$q" "$@"
	assert_status 2
	# (it says to pass the value through env:, or here to remove the backslash)
	local line
	line=$(grep -n 'run: echo foo' "$q" | cut -d: -f1)
	assert_match "$stderr$output" "^$q:$line:[0-9]+: error: .*(env:|backslash)" \
		"the load error names the file, line, column and the way out"
	run --separate-stderr b run "$q" --output quiet "$@"
	assert_status 2
	assert_file_absent "$canary" "the fifth case ran under $shell ${on:+on $on}"
}

# check_nul SHELL ON DIR [INVENTORY ARGS...]: a value holding a NUL byte fails
# its task with a reason that says so, and nothing of the task runs: the
# `rm -rf DIR/srv/${{ vars.d }}` that a value cut at the NUL would turn into
# `rm -rf DIR/srv/` leaves DIR/srv/keep in place.
check_nul() {
	local shell=$1 on=$2 dir=$3
	shift 3
	mkdir -p "$dir/srv/keep"
	chmod -R a+rwX "$dir/srv"
	local p="$BATS_TEST_TMPDIR/nul-$shell.yaml" t
	{
		echo 'vars: {d: "\0evil"}'
		printf 'defaults: {shell: %s}\n' "$shell"
		[ -z "$on" ] || printf 'ssh: { known_hosts_file: "%s" }\n' "$SSH_KNOWN_HOSTS"
		echo 'steps:'
		echo '- id: bare'
		[ -z "$on" ] || echo "  on: $on"
		echo '  continue_on_error: true'
		printf '  run: rm -rf %s/srv/${{ vars.d }}; touch %s/ran-bare\n' "$dir" "$dir"
		echo '- id: quoted'
		[ -z "$on" ] || echo "  on: $on"
		echo '  continue_on_error: true'
		printf '  run: touch %s/ran-quoted; rm -rf "%s/srv/${{ vars.d }}"\n' "$dir" "$dir"
	} >"$p"
	run --separate-stderr b run "$p" --output quiet --events "$EV" "$@"
	assert_status 0 # both steps fail, under continue_on_error
	[ -d "$dir/srv/keep" ] || fail "the NUL value cut the path: $dir/srv was removed"
	assert_file_absent "$dir/ran-bare" "a task with a NUL value ran"
	assert_file_absent "$dir/ran-quoted" "a task with a NUL value ran"
	for t in bare quoted; do
		t=$(task_of $t "$on")
		assert_eq "$(ev "$EV" "tend('$t')['status']" "tend('$t')['exit_code']")" $'failed\nnull' "$t"
		assert_match "$(ev "$EV" "tend('$t')['reason']")" '(NUL|nul)' "the reason of $t names the NUL byte"
	done
}
