#!/usr/bin/env bats
# ${{ }} expressions: captured results, quoting (no injection), raw(),
# variables from the plan, --var and --var-file, default(), undefined names.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "captured stdout loses one trailing newline; stdout_lines, exit_code, stderr" {
	p=$(plan cap <<'EOF'
steps:
  - id: produce
    run: printf 'first\nsecond\n\n'
  - id: err
    run: echo oops >&2; echo out; exit 4
    continue_on_error: true
  - id: use
    run: |
      printf '[%s]\n' "${{ steps.produce.stdout }}"
      echo "line1=${{ steps.produce.stdout_lines[1] }} n=${{ len(steps.produce.stdout_lines) }}"
      echo "code=${{ steps.err.exit_code }} err=${{ steps.err.stderr }} out=${{ steps.err.stdout }} st=${{ steps.err.status }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'out("use")')" $'[first\nsecond\n]\nline1=second n=3\ncode=4 err=oops out=out st=failed'
}

@test "captured output of a step without a final newline is kept whole" {
	p=$(plan cap <<'EOF'
steps:
  - id: produce
    run: printf 'a\nb'
  - id: use
    run: printf '<%s>' "${{ steps.produce.stdout }}" ${{ steps.produce.stdout_lines }}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("use")')" "<a
b><a><b>"
}

@test "captured output keeps what follows a NUL byte; env cannot carry one, and says so" {
	p=$(plan nul <<'EOF'
steps:
  - id: x
    run: printf 'a\0b\nc\n'
  - id: y
    env:
      N: "${{ len(steps.x.stdout) }}"
      L: "${{ len(steps.x.stdout_lines) }}"
      SECOND: "${{ steps.x.stdout_lines[1] }}"
      J: "${{ json(steps.x.stdout) }}"
      JL: "${{ json(steps.x.stdout_lines) }}"
      JE: "${{ json(steps.x.stderr) }}"
    run: printf '%s|' "$N" "$L" "$SECOND" "$J" "$JL" "$JE"
  - id: z
    env: { V: "${{ steps.x.stdout }}" }
    run: touch ran-marker
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'out("y")')" '5|2|c|"a\u0000b\nc"|["a\u0000b","c"]|""|'
	assert_eq "$(ev "$EV" 'one("task.end", task="z")["reason"]')" \
		"cannot prepare the command: env V: the value of \${{ steps.x.stdout }} holds a NUL byte, which cannot be passed to a command faithfully"
	assert_contains "$output" "✗ z: cannot prepare the command: env V: the value of \${{ steps.x.stdout }} holds a NUL byte"
	assert_file_absent ran-marker
}

@test "steps.ID may name a sibling or a full id" {
	p=$(plan ids <<'EOF'
steps:
  - id: build
    steps:
      - id: version
        run: echo 1.2.3
      - id: sibling
        run: echo "v=${{ steps.version.stdout }}"
  - id: full
    run: echo "v=${{ steps.build.version.stdout }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("build.sibling")' 'out("full")')" $'v=1.2.3\nv=1.2.3'
}

# values that would run 'touch pwned' if baton inserted them unquoted
injection_vars='
vars:
  subst: "$(touch pwned); rm -rf x"
  squote: "'"'"'; touch pwned; '"'"'"
  dquote: "\"; touch pwned; echo \""
  back: "`touch pwned`"
  mixed: "a\\b \\\" $HOME * ~ ; & | > pwned"
  newline: "x\ntouch pwned"
  word: "if"
  assign: "X=1"'

@test "interpolation quotes every value as one word when unquoted in the command" {
	p=$(plan inj <<EOF
$injection_vars
steps:
  - id: bare
    run: printf '<%s>\n' \${{ vars.subst }} \${{ vars.squote }} \${{ vars.dquote }} \${{ vars.back }} \${{ vars.mixed }} \${{ vars.newline }} \${{ vars.word }} \${{ vars.assign }}
  - id: echo
    run: echo \${{ vars.subst }}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("bare")')" "<\$(touch pwned); rm -rf x>
<'; touch pwned; '>
<\"; touch pwned; echo \">
<\`touch pwned\`>
<a\\b \\\" \$HOME * ~ ; & | > pwned>
<x
touch pwned>
<if>
<X=1>"
	assert_eq "$(ev "$EV" 'out("echo")')" '$(touch pwned); rm -rf x'
	assert_file_absent pwned "a variable's value was executed"
}

@test "interpolation inside double quotes prints the value literally" {
	p=$(plan inj <<EOF
$injection_vars
steps:
  - id: dq
    run: printf '<%s>\n' "\${{ vars.subst }}" "\${{ vars.squote }}" "\${{ vars.dquote }}" "\${{ vars.back }}" "\${{ vars.mixed }}" "pre \${{ vars.word }} post"
  - id: echo
    run: echo "\${{ vars.subst }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("dq")')" "<\$(touch pwned); rm -rf x>
<'; touch pwned; '>
<\"; touch pwned; echo \">
<\`touch pwned\`>
<a\\b \\\" \$HOME * ~ ; & | > pwned>
<pre if post>"
	assert_eq "$(ev "$EV" 'out("echo")')" '$(touch pwned); rm -rf x'
	assert_file_absent pwned "a variable's value was executed"
}

@test "interpolation inside single quotes prints the value literally" {
	p=$(plan inj <<EOF
$injection_vars
steps:
  - id: sq
    run: printf '<%s>\n' '\${{ vars.subst }}' '\${{ vars.squote }}' 'x\${{ vars.squote }}y' '\${{ vars.back }}' '\${{ vars.mixed }}'
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("sq")')" "<\$(touch pwned); rm -rf x>
<'; touch pwned; '>
<x'; touch pwned; 'y>
<\`touch pwned\`>
<a\\b \\\" \$HOME * ~ ; & | > pwned>"
	assert_file_absent pwned "a variable's value was executed"
}

@test "interpolation inside \$(...), a here-document and a comment injects nothing" {
	p=$(plan inj <<EOF
$injection_vars
steps:
  - id: subst
    run: printf '<%s>\n' "\$(printf '%s' \${{ vars.squote }})" \$(printf '%s' "\${{ vars.word }}")
  - id: heredoc
    run: |
      cat <<END
      \${{ vars.subst }}
      \${{ vars.mixed }}
      END
  - id: comment
    run: "echo visible # \${{ vars.newline }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("subst")')" "<'; touch pwned; '>
<if>"
	assert_eq "$(ev "$EV" 'out("heredoc")')" "\$(touch pwned); rm -rf x
a\\b \\\" \$HOME * ~ ; & | > pwned"
	assert_eq "$(ev "$EV" 'out("comment")')" "visible"
	assert_file_absent pwned "a variable's value was executed"
}

@test "a value with the here-document's delimiter line in it does not end the here-document" {
	p=$(plan heredoc <<'EOF'
vars:
  evil: "x\nEND\ntouch pwned #"
steps:
  - id: heredoc
    run: |
      cat <<END
      ${{ vars.evil }}
      END
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("heredoc")')" "x
END
touch pwned #"
	assert_file_absent pwned "the here-document was ended by the value"
}

@test "interpolation inside backquotes passes the value as data" {
	p=$(plan back <<'EOF'
vars: { v: "'; touch pwned; '" }
steps:
  - id: bq
    run: echo `echo ${{ vars.v }}`
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("bq")')" "'; touch pwned; '"
	assert_file_absent pwned
}

@test "with shell: bash, \$'...' quoting injects nothing" {
	p=$(plan bashq <<'EOF'
vars:
  v: "'; touch pwned; '"
  w: "a\\' b"
steps:
  - id: ansi
    shell: bash
    run: printf '<%s>\n' $'${{ vars.v }}' $'x${{ vars.w }}\ty'
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("ansi")')" "<'; touch pwned; '>
<xa\\' b	y>"
	assert_file_absent pwned
}

@test "argv list elements get the value as plain text, one argument each" {
	p=$(plan argv <<'EOF'
vars: { v: "'; touch pwned; ' $HOME" }
steps:
  - id: argv
    run: [printf, '<%s>', "${{ vars.v }}", "x${{ vars.v }}y"]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("argv")')" "<'; touch pwned; ' \$HOME><x'; touch pwned; ' \$HOMEy>"
	assert_file_absent pwned
}

@test "a list value becomes one word per element, a map one word of JSON" {
	p=$(plan lists <<'EOF'
vars:
  files: ["a b", "c;d", "$e"]
  conf: { k: v }
steps:
  - id: list
    run: printf '<%s>' ${{ vars.files }}
  - id: map
    run: printf '<%s>' ${{ vars.conf }}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("list")')" '<a b><c;d><$e>'
	assert_match "$(ev "$EV" 'out("map")')" '^<\{ ?"k": ?"v" ?\}>$'
}

@test "raw() inserts the value unquoted, on purpose" {
	p=$(plan raw <<'EOF'
vars:
  code: "echo raw-one; echo raw-two"
steps:
  - id: raw
    run: ${{ raw(vars.code) }}
  - id: quoted
    run: echo ${{ vars.code }}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'lines("raw")')" "raw-one raw-two"
	assert_eq "$(ev "$EV" 'out("quoted")')" "echo raw-one; echo raw-two"
}

@test "--var overrides the plan's vars and --var-file too; the later one wins" {
	p=$(plan vars <<'EOF'
vars: { name: plan-value, other: plan-other, keep: kept }
steps:
  - id: show
    run: echo "name=${{ vars.name }} other=${{ vars.other }} keep=${{ vars.keep }}"
EOF
)
	printf 'name: file-name\nother: file-other\n' >overrides.yaml
	run b run "$p" --output quiet --events "$EV" --var name=cli
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "name=cli other=plan-other keep=kept"
	run b run "$p" --output quiet --events "$EV" --var name=cli --var-file overrides.yaml
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "name=file-name other=file-other keep=kept"
	run b run "$p" --output quiet --events "$EV" --var-file overrides.yaml --var name=cli
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "name=cli other=file-other keep=kept"
	run b run "$p" --output quiet --events "$EV" --var 'name=a b=c'
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "name=a b=c other=plan-other keep=kept"
}

@test "a --var value is quoted like any other value" {
	p=$(plan vars <<'EOF'
vars: { name: x }
steps:
  - id: show
    run: echo ${{ vars.name }}
EOF
)
	run b run "$p" --output quiet --events "$EV" --var 'name=$(touch pwned)'
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" '$(touch pwned)'
	assert_file_absent pwned
}

@test "an undefined vars.nope is a plan error at its \${{ }}, with the closest name, and nothing runs" {
	p=$(plan undef <<'EOF'
vars: { nose: 1 }
steps:
  - id: first
    run: touch ran-marker
  - id: use
    run: echo ${{ vars.nope }}
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 2
	assert_contains "$output" "$p:6:15: error: 'run': vars.nope is not defined; did you mean 'nose'?"
	assert_file_absent ran-marker
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:6:15: error: 'run': vars.nope is not defined; did you mean 'nose'?"
}

@test "default(vars.nope, 'x') gives the fallback for a null var; a defined var wins" {
	p=$(plan dflt <<'EOF'
vars: { set: given, nope: ~ }
steps:
  - id: show
    run: echo "${{ default(vars.nope, 'fallback') }} ${{ default(vars.set, 'x') }} ${{ vars.nope || 'or-fallback' }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "fallback given or-fallback"
}

@test "expressions: comparisons, functions and env" {
	p=$(plan expr <<'EOF'
vars: { n: 10, s: "v1.2", list: [a, b, c] }
env: { FROM_PLAN: plan-env }
steps:
  - id: e
    run: >-
      echo ${{ vars.n > 9 }} ${{ vars.n == '10' }} ${{ starts_with(vars.s, 'v') }}
      ${{ contains(vars.list, 'b') }} ${{ len(vars.list) }} ${{ !contains(vars.s, 'x') }}
      ${{ env.FROM_PLAN }} ${{ json(vars.list) }}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_match "$(ev "$EV" 'out("e")')" '^true true true true 3 true plan-env \["a", ?"b", ?"c"\]$'
}

@test "--var values are typed as plain YAML scalars: 1.40 stays text, 3 is a number" {
	p=$(plan typed <<'EOF'
vars: { ver: "0", n: 0 }
steps:
  - id: show
    run: echo ${{ vars.ver }} ${{ vars.n > 2 }} ${{ vars.n == 3 }}
EOF
)
	run b run "$p" --output quiet --events "$EV" --var ver=1.40 --var n=3
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "1.40 true true"
}

@test "env names starting with __baton_ are baton's own: a plan error at the key" {
	p=$(plan own <<'EOF'
steps:
  - env: { __baton_v1: "x" }
    run: echo "${{ 'a' }}"
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:2:12: error: '__baton_v1': names starting with __baton_ are baton's own"
}

@test "a value past 128 KiB cannot go into a local command's environment: the task fails, saying so, and runs nothing" {
	python3 -c 'print("big: \"" + "x" * 200000 + "\"")' >"$BATS_TEST_TMPDIR/vars.yaml"
	p=$(plan big <<'EOF'
vars: { big: "" }
steps:
  - id: big
    run: touch ran-marker; echo ${{ vars.big }} | wc -c
EOF
)
	run b run "$p" --var-file "$BATS_TEST_TMPDIR/vars.yaml" --output quiet --events "$EV"
	assert_status 1
	assert_contains "$(ev "$EV" 'tend("big")["reason"]')" "more than a local command's environment entry can hold (128 KiB)"
	assert_file_absent ran-marker
	# 100 KB fits, and arrives whole
	python3 -c 'print("big: \"" + "x" * 100000 + "\"")' >"$BATS_TEST_TMPDIR/vars.yaml"
	run b run "$p" --var-file "$BATS_TEST_TMPDIR/vars.yaml" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("big")')" 100001
}
