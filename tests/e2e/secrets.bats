#!/usr/bin/env bats
# Secrets: given with --secret-file or BATON_SECRET_NAME (never --var, so never
# in argv), and masked in every form baton writes — raw, shell-quoted, escaped
# for double quotes and here-documents, as JSON, each list element — in the
# plain, tty and JSON outputs, the events, the summary and the dry run.

load helpers
setup() {
	e2e_setup
	unset BATON_SECRET_TOKEN BATON_SECRET_OTHER
}
teardown() { e2e_teardown; }

# The secret used below: every character that quoting changes, and a tail to grep for.
SECRET=$'p4\'ss"w$rd\\q`x-TAIL9'

# no_forms FILE...: no file holds the secret or the list's elements in any form
# baton writes (computed here independently of baton), nor a telling piece of
# them; JSON lines are decoded first, so an escaped form cannot hide. Each file
# must also show *** somewhere (something was masked, not just absent).
no_forms() {
	SECRET="$SECRET" "$E2E_PY" -S - "$@" <<'PY'
import json, os, re, sys
t = os.environ["SECRET"]
lst = ["alpha'one", "b3ta \"two\""]
RES = {"!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then",
       "until", "while", "select", "function", "time", "[[", "]]"}
def shell_forms(s):
    plain = re.fullmatch(r"[A-Za-z0-9_\-./:,+@%]+", s) and s not in RES
    return {s, s if plain else "'" + s.replace("'", "'\\''") + "'", s.replace("'", "'\\''"),
            re.sub(r'([$`"\\])', r'\\\1', s), re.sub(r'([$`\\])', r'\\\1', s)}
def text_forms(s):
    return shell_forms(s) | shell_forms(json.dumps(s, ensure_ascii=False)[1:-1])
forms = text_forms(t) | text_forms(json.dumps(lst, ensure_ascii=False, separators=(",", ":")))
for e in lst:
    forms |= text_forms(e)
pieces = {"p4'ss", "TAIL9", "alpha", "b3ta"}
bad = 0
def strings(v):
    if isinstance(v, str): yield v
    elif isinstance(v, list):
        for x in v: yield from strings(x)
    elif isinstance(v, dict):
        for x in v.values(): yield from strings(x)
for path in sys.argv[1:]:
    raw = open(path, "rb").read().decode("utf-8", "replace")
    texts = [raw]
    if raw.startswith("{"):
        texts = [s for line in raw.splitlines() if line.strip() for s in strings(json.loads(line))]
    text = "\n".join(texts)
    for f in sorted(forms | pieces, key=len, reverse=True):
        if f in text:
            print("%s shows %r" % (path, f)); bad += 1
    if "***" not in text:
        print("%s masks nothing" % path); bad += 1
sys.exit(1 if bad else 0)
PY
}

# The plan that shows the secret everywhere: commands in each quoting
# context, output, a failure reason, a failure's last lines, for_each items.
forms_plan() {
	plan forms <<'EOF'
vars:
  lst: ["alpha'one", 'b3ta "two"']
secrets: [token, lst]
steps:
  - id: bare
    run: echo ${{ vars.token }}
  - id: single
    run: echo '${{ vars.token }}'
  - id: double
    run: echo "${{ vars.token }}" "${{ vars.lst }}"
  - id: heredoc
    run: |
      cat <<EOF
      ${{ vars.token }} ${{ vars.lst }}
      EOF
  - id: list
    run: printf '%s\n' ${{ vars.lst }} ${{ json(vars.lst) }} "${{ json(vars.lst) }}"
  - id: json
    run: printf '%s\n' "${{ json(vars) }}" ${{ json(vars) }}
  - id: each
    for_each: ${{ vars.lst }}
    run: echo "${{ item }}"
  - id: env
    env: { T: "${{ vars.token }}" }
    run: printf '%s\n' "$T" >&2
  - id: exe
    run: ["/nonexistent/${{ vars.token }}"]
    continue_on_error: true
  - id: fails
    env: { T: "${{ vars.token }}" }
    run: printf '%s\n' "$T"; exit 3
EOF
}

@test "the secret and each of its forms are masked in plain, JSON and tty output, events and the summary" {
	p=$(forms_plan)
	export BATON_SECRET_TOKEN="$SECRET"
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	printf '%s\n' "$output" >plain.txt
	ev_valid "$EV"
	assert_contains "$output" "✗ fails: exit code 3" "the failure block"
	assert_contains "$output" "│ ***" "the failure block's last lines"
	assert_contains "$output" "cannot run /nonexistent/***" "a failure reason"
	run b run "$p" --output json
	assert_status 1
	printf '%s\n' "$output" >stdout.jsonl
	no_forms plain.txt "$EV" stdout.jsonl
	# what ran got the real value: masking is only what baton writes
	assert_eq "$(ev "$EV" 'out("env", "stderr")')" "***"
	assert_eq "$(ev "$EV" 'len(of("task.start", step="each"))')" 2
}

@test "the secret and its forms are masked in the tty view" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(forms_plan)
	export BATON_SECRET_TOKEN="$SECRET"
	TERM=xterm COLUMNS=300 run timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null
	assert_status 1
	printf '%s\n' "$output" >tty.txt
	assert_contains "$output" $'\e[' "not the tty view"
	no_forms tty.txt
}

@test "baton plan and --dry-run mask the secret and its forms" {
	p=$(forms_plan)
	export BATON_SECRET_TOKEN="$SECRET"
	run b plan "$p"
	assert_status 0
	printf '%s\n' "$output" >plan.txt
	run b run "$p" --dry-run
	assert_status 0
	printf '%s\n' "$output" >dry.txt
	run b run "$p" --dry-run --events "$EV"
	assert_status 0
	no_forms plan.txt dry.txt
	assert_not_contains "$(cat "$EV")" "TAIL9" "the dry run's events"
}

@test "a multi-line secret in a command is masked whole in the dry run" {
	p=$(plan lines <<'EOF'
vars: { key: "first-line-AAAA\nsecond-line-BBBB" }
secrets: [key]
steps:
  - run: echo "${{ vars.key }}"
EOF
)
	run b plan "$p"
	assert_status 0
	assert_not_contains "$output" "AAAA"
	assert_not_contains "$output" "BBBB"
	assert_contains "$output" '$ echo "***"'
}

# ---- where a secret comes from ----

@test "--var naming a secret is an error (exit 2) that says how to give it; nothing runs" {
	p=$(plan var <<'EOF'
secrets: [token]
steps:
  - run: touch ran-marker
EOF
)
	for cmd in run plan check; do
		run b "$cmd" "$p" --var token=on-the-command-line
		assert_status 2
		assert_contains "$output" "$p:1:11: error: secret 'token' cannot be set with --var"
		assert_contains "$output" "--secret-file token=PATH"
		assert_contains "$output" "BATON_SECRET_TOKEN"
	done
	assert_file_absent ran-marker
}

@test "a secret with no value is an error when the plan runs, naming the ways to give it; check and the preview need none" {
	p=$(plan none <<'EOF'
vars: { token: null }
secrets: [token]
steps:
  - run: touch ran-marker ${{ vars.token }}
EOF
)
	run b run "$p"
	assert_status 2
	assert_contains "$output" "$p:2:11: error: secret 'token' has no value: give it with --secret-file token=PATH or the environment variable BATON_SECRET_TOKEN"
	assert_file_absent ran-marker
	# a CI lint step or a preview has no secrets to give: nothing runs, so none is needed
	for cmd in check plan "run --dry-run"; do
		run b $cmd "$p"
		assert_status 0
		assert_not_contains "$output" "has no value"
	done
	run b plan "$p"
	assert_status 0
	assert_contains "$output" "touch ran-marker ***"
	assert_file_absent ran-marker
	BATON_SECRET_TOKEN=given run b check "$p"
	assert_status 0
}

@test "--secret-file reads the value, one trailing newline removed; a missing file is exit 2" {
	p=$(plan file <<'EOF'
secrets: [token]
steps:
  - id: show
    env: { T: "${{ vars.token }}" }
    run: printf '%s' "$T" | od -An -c | tr -s ' '
EOF
)
	printf 'ab-cd\n\n' >two.txt
	run b run "$p" --output plain --secret-file token=two.txt
	assert_status 0
	assert_contains "$output" "[show]  a b - c d \\n" "only one trailing newline is removed"
	printf 'ab-cd\r\n' >crlf.txt
	run b run "$p" --output plain --secret-file token=crlf.txt
	assert_status 0
	assert_contains "$output" "[show]  a b - c d"$'\n' "a CRLF counts as one newline"
	run b run "$p" --secret-file token=missing.txt
	assert_status 2
	assert_contains "$output" "baton: --secret-file token=missing.txt: No such file or directory"
	run b run "$p" --secret-file tokn=two.txt
	assert_status 2
	assert_contains "$output" "--secret-file: error: 'tokn' is not one of the plan's secrets; did you mean 'token'?"
}

@test "precedence: --secret-file, then BATON_SECRET_NAME, then the plan's default" {
	p=$(plan order <<'EOF'
vars: { token: plan-default }
secrets: [token]
steps:
  - id: show
    env: { T: "${{ vars.token }}" }
    run: test "$T" = "$WANT" && echo same
EOF
)
	printf 'from-file\n' >f.txt
	WANT=plan-default run b run "$p" --output plain
	assert_status 0
	assert_contains "$output" "[show] same"
	BATON_SECRET_TOKEN=from-env WANT=from-env run b run "$p" --output plain
	assert_status 0
	assert_contains "$output" "[show] same"
	BATON_SECRET_TOKEN=from-env WANT=from-file run b run "$p" --output plain --secret-file token=f.txt
	assert_status 0
	assert_contains "$output" "[show] same"
}

@test "BATON_SECRET_* reach no command: the value goes only where the plan puts it" {
	p=$(plan env <<'EOF'
secrets: [token]
steps:
  - id: inherit
    run: env | grep -c '^BATON_SECRET_' || true
  - id: placed
    env: { API_TOKEN: "${{ vars.token }}" }
    run: test "$API_TOKEN" = env-s3cret-42 && echo placed-ok
  - id: context
    run: echo ${{ env.BATON_SECRET_TOKEN }}
EOF
)
	BATON_SECRET_TOKEN=env-s3cret-42 BATON_SECRET_UNUSED=x run b run "$p" --output plain
	assert_status 1
	assert_contains "$output" "[inherit] 0"
	assert_contains "$output" "[placed] placed-ok"
	assert_contains "$output" "env.BATON_SECRET_TOKEN is how baton is given secret 'token', not part of the environment: read it as vars.token"
}

@test "a secret given with --secret-file is not in baton's argv" {
	p=$(plan argv <<'EOF'
secrets: [token]
steps:
  - run: tr '\0' ' ' </proc/$PPID/cmdline >baton-argv.txt
EOF
)
	printf 'file-s3cret-42\n' >f.txt
	run b run "$p" --output plain --secret-file token=f.txt
	assert_status 0
	assert_contains "$(cat baton-argv.txt)" "run $p --output plain --secret-file token=f.txt"
	assert_not_contains "$(cat baton-argv.txt)" "s3cret"
}
