#!/usr/bin/env bats
# The truthful preview (architecture.md): `baton plan` evaluates what is known
# before the run — `when` on vars, each for_each instance's command, env and
# shell, hosts per batch — says what is known only at run time and why, and
# is the same as data (--output json), as a graph (--output dot), and as the
# dry run's plan.task events, which name exactly the tasks a real run starts.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

tour_plan() {
	plan tour <<'EOF'
name: tour
vars:
  branch: main
  servers: [app1, app2, app3]
  token: tok-SECRET-42
secrets: [token]
env:
  GLOBAL: g-${{ vars.branch }}
  AUTH: ${{ vars.token }}
defaults:
  shell: /bin/bash -eu
  env: { DEF: d }
steps:
  - id: only-main
    when: vars.branch == "main"
    run: echo deploying ${{ vars.branch }} > main-marker
  - id: each
    for_each: ${{ vars.servers }}
    env: { SERVER: "${{ item }}" }
    run: echo ./deploy.sh ${{ item }} ${{ index }}
  - id: skip-app2
    for_each: ${{ vars.servers }}
    when: item != "app2"
    run: [echo, "${{ item }}", "${{ vars.token }}"]
  - id: zsh
    shell: /bin/sh -x
    run: echo from-sh
  - id: later
    when: steps.each.status == "success"
    run: echo "${{ steps.zsh.stdout }}"
EOF
}

@test "the preview says a step is skipped when its when is false with --var, and expands nothing below it" {
	p=$(tour_plan)
	run b plan "$p"
	assert_status 0
	assert_match "$output" 'only-main +\[run, when: vars\.branch == "main"\]  \(when is true\)'
	assert_contains "$output" '$ echo deploying main > main-marker'
	run b plan "$p" --var branch=feature-x
	assert_status 0
	assert_match "$output" 'only-main +\[run, when: vars\.branch == "main"\]  \(skipped: when is false\)'
	assert_not_contains "$output" 'echo deploying' "a skipped step's command"
	assert_match "$output" '^  7 tasks \(1 decided at run time\), 2 skipped, '
	assert_file_absent main-marker
	# the same as data
	run b plan "$p" --var branch=feature-x --output json
	assert_status 0
	assert_eq "$(py_json "$output" 'S["only-main"]["when"]["value"]' 'S["only-main"]["tasks"][0]["state"]' \
		'S["only-main"]["tasks"][0]["why"]')" $'False\nskipped\nwhen of only-main is false'
}

@test "each instance of a for_each is shown with its own command, label, env and index" {
	p=$(tour_plan)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" 'for_each: 3 items: app1, app2, app3'
	assert_contains "$output" 'each#0 (app1)  $ echo ./deploy.sh app1 0'
	assert_contains "$output" 'each#1 (app2)  $ echo ./deploy.sh app2 1'
	assert_contains "$output" 'each#2 (app3)  $ echo ./deploy.sh app3 2'
	assert_contains "$output" 'env: SERVER=app1'
	assert_contains "$output" '  env: SERVER=app3'
	assert_not_contains "$output" 'deploy.sh ${{ item }}' "a for_each's command left unexpanded"
	# a when that reads item is decided per instance
	assert_contains "$output" 'skip-app2#0 (app1)  $ echo app1 ***'
	assert_contains "$output" 'skip-app2#1 (app2)  skipped: when of skip-app2 is false'
	assert_contains "$output" '3 tasks: 2 run, 1 skipped'
}

@test "the preview shows each task's shell and environment, secrets masked" {
	p=$(tour_plan)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" 'shell: /bin/bash -eu -c'      # defaults.shell
	assert_contains "$output" 'shell: /bin/sh -x -c'         # the step's own
	assert_contains "$output" "shell: none (an argv, exec'd as is)"
	assert_contains "$output" 'env: GLOBAL=g-main'
	assert_contains "$output" 'env: AUTH=***'
	assert_contains "$output" 'env: DEF=d'
	assert_not_contains "$output" 'tok-SECRET-42' "the secret in the preview"
}

@test "what is known only at run time is marked so, with the reference that makes it so" {
	p=$(tour_plan)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" 'when: known at run time: it reads steps.each.status'
	assert_contains "$output" 'known at run time: steps.zsh.stdout'
	p2=$(plan computed <<'EOF'
steps:
  - id: list
    run: echo a b
  - id: per
    for_each: ${{ steps.list.stdout_lines }}
    run: echo ${{ item }}
EOF
)
	run b plan "$p2"
	assert_status 0
	assert_contains "$output" 'or more (some for_each lists are known only when the plan runs)'
	assert_contains "$output" 'tasks: known at run time: its for_each reads steps.list.stdout_lines'
	run b run --dry-run "$p2" --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'E[0]["tasks"]' '[e["task"] for e in E[1:-1]]')" $'null\nlist'
}

# py_json JSON EXPR...: evaluates each EXPR with D the document and S its steps by id (nested flattened).
py_json() {
	local doc=$1
	shift
	"$E2E_PY" -c '
import json, sys
D = json.loads(sys.argv[1])
S = {}
def walk(steps):
    for s in steps:
        S[s["id"]] = s
        walk(s["steps"])
walk(D["steps"])
for x in sys.argv[2:]:
    print(eval(x))' "$doc" "$@"
}

@test "baton plan --output json is one versioned document with steps, tasks, env, shell and counts" {
	p=$(tour_plan)
	run b plan "$p" --output json
	assert_status 0
	assert_eq "$(printf '%s\n' "$output" | wc -l)" 1 "one line"
	assert_eq "$(py_json "$output" 'D["v"]' 'D["kind"]' 'D["plan"]["name"]' 'D["plan"]["file"] == sys.argv[1] or D["plan"]["file"]' \
		'D["vars"]["token"]' 'D["env"]["AUTH"]' 'D["counts"]')" \
		$'1\nbaton.plan\ntour\n'"$p"$'\n***\n***\n{\'tasks\': 9, \'runs\': 7, \'skipped\': 1, \'runtime\': 1, \'handler_tasks\': 0, \'exact\': True, \'fails\': False}'
	assert_eq "$(py_json "$output" '[t["id"] for t in S["each"]["tasks"]]' '[t["command"] for t in S["each"]["tasks"]]' \
		'S["each"]["tasks"][1]["env"]' 'S["each"]["tasks"][1]["shell"]' 'S["each"]["tasks"][1]["label"]' \
		'S["skip-app2"]["tasks"][0]["shell"]' 'S["zsh"]["tasks"][0]["shell"]' 'S["each"]["for_each"]' \
		'S["later"]["when"]["state"]' 'S["later"]["tasks"][0]["state"]')" \
		"['each#0', 'each#1', 'each#2']
['echo ./deploy.sh app1 0', 'echo ./deploy.sh app2 1', 'echo ./deploy.sh app3 2']
{'GLOBAL': 'g-main', 'AUTH': '***', 'DEF': 'd', 'SERVER': 'app2'}
/bin/bash -eu -c
app2
None
/bin/sh -x -c
{'source': 'expression', 'known': True, 'items': 3, 'why': None}
runtime
runtime"
	assert_not_contains "$output" 'tok-SECRET-42' "the secret in the JSON"
}

@test "baton plan --output json lists batches, hosts and handlers" {
	p=$(plan roll <<'EOF'
inventory:
  hosts:
    web1: { address: 192.0.2.1, user: deploy }
    web2: { address: 192.0.2.2, user: deploy }
    web3: { address: 192.0.2.3, user: deploy }
steps:
  - id: roll
    on: [web1, web2, web3]
    batch: { size: [1, "100%"], pause: 5s, max_failures: 1 }
    run: echo ${{ host.name }} at ${{ host.address }}
    on_failure:
      - run: echo rollback
EOF
)
	run b plan "$p" --output json
	assert_status 0
	assert_eq "$(py_json "$output" '[(t["id"], t["host"], t["batch"], t["command"]) for t in S["roll"]["tasks"]]' \
		'S["roll"]["batch"]' '[h["name"] for h in S["roll"]["on"]["hosts"]]' \
		'[(t["id"], t["handler"]) for t in S["roll.on_failure.run-1"]["tasks"]]' 'D["counts"]["handler_tasks"]')" \
		"[('roll@web1', 'web1', 0, 'echo web1 at 192.0.2.1'), ('roll@web2', 'web2', 1, 'echo web2 at 192.0.2.2'), ('roll@web3', 'web3', 1, 'echo web3 at 192.0.2.3')]
{'size': [1, '100%'], 'pause_ms': 5000, 'max_failures': 1}
['web1', 'web2', 'web3']
[('roll.on_failure.run-1', 'on_failure')]
1"
	run b plan "$p"
	assert_status 0
	assert_contains "$output" 'roll@web2 [batch 2]  $ echo web2 at 192.0.2.2'
}

@test "baton plan --output dot is a digraph of the steps: sequence, fan-out and dashed handlers" {
	p=$(plan dot <<'EOF'
name: 'dot "quoted" \ plan'
vars: { token: tok-SECRET-7 }
secrets: [token]
steps:
  - id: first
    run: echo one
  - id: fan
    parallel:
      - run: echo a
      - { id: named, name: "the tok-SECRET-7 step", run: echo b }
    finally:
      - run: echo cleanup
  - id: last
    when: vars.token == "x"
    run: echo three
EOF
)
	run b plan "$p" --output dot
	assert_status 0
	assert_not_contains "$output" 'tok-SECRET-7' "the secret in the graph"
	"$E2E_PY" - "$output" <<'PY'
import re, sys
g = sys.argv[1]
assert g.startswith('digraph "dot \\"quoted\\" \\\\ plan" {'), g.splitlines()[0]
assert g.rstrip().endswith("}")
nodes = dict(re.findall(r'^  (n\d+) \[shape=\w+, label="((?:[^"\\]|\\.)*)"', g, re.M))
edges = re.findall(r'^  (n\d+) -> (n\d+)(?: \[([^\]]*)\])?;$', g, re.M)
lines = [l for l in g.splitlines()[1:-1]]
assert len(lines) == 2 + len(nodes) + len(edges), lines
for a, b, _ in edges:
    assert a in nodes and b in nodes, (a, b)
by = {v.split("\\n")[0]: k for k, v in nodes.items()}
E = {(a, b): attrs for a, b, attrs in edges}
assert (by["first"], by["fan"]) in E                      # the sequence
assert (by["fan"], by["fan.run-1"]) in E and "crow" in E[(by["fan"], by["fan.run-1"])]   # fan-out
assert (by["fan"], by["fan.named"]) in E
assert "style=dashed" in E[(by["fan"], by["fan.finally"])]   # the handler
assert (by["fan"], by["last"]) in E
assert "the *** step" in nodes[by["fan.named"]]
assert "dotted" in re.search(r'^  %s \[.*$' % by["last"], g, re.M).group(0)   # when is false: skipped
print("ok")
PY
}

@test "baton plan --output takes text, json or dot; run --dry-run --output json is the event stream" {
	p=$(tour_plan)
	run b plan "$p" --output yaml
	assert_status 2
	assert_contains "$output" "--output takes text, json or dot, not 'yaml'"
	run b plan "$p" --output text
	assert_status 0
	assert_match "$output" '^plan tour'
	run b run --dry-run "$p" --output json
	assert_status 0
	printf '%s\n' "$output" >"$EV"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(of("plan.task"))' 'E[0]["tasks"]')" $'8\nnull'
	assert_file_absent main-marker
}

@test "a dry run's plan.task events name exactly the tasks a real run starts" {
	p=$(plan diff <<'EOF'
vars:
  items: [x, y, z]
  go: false
steps:
  - id: a
    run: "true"
  - id: par
    parallel:
      - { id: p1, run: "true" }
      - { id: p2, run: [true] }
  - id: off
    when: vars.go
    run: echo never
  - id: fe
    for_each: ${{ vars.items }}
    when: item != "y"
    steps:
      - id: inner
        run: echo ${{ item }}
      - id: nested
        for_each: [1, 2]
        run: echo ${{ item }}
    on_success:
      - run: echo fine
    on_failure:
      - run: echo bad
  - id: st
    stages:
      - { name: s1, steps: ["true", "true"] }
      - { name: s2, steps: ["true"] }
  - id: loc
    on: localhost
    for_each: [u, v, w]
    batch: { size: 2 }
    run: echo ${{ host.name }} ${{ item }}
finally:
  - run: "true"
EOF
)
	run b run --dry-run "$p" --events "$BATS_TEST_TMPDIR/dry.jsonl"
	assert_status 0
	ev_valid "$BATS_TEST_TMPDIR/dry.jsonl"
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	real=$(ev "$EV" '"\n".join(sorted(starts()))')
	dry=$(ev "$BATS_TEST_TMPDIR/dry.jsonl" \
		'"\n".join(sorted(e["task"] for e in of("plan.task") if e["handler"] != "on_failure" and e["condition"] is None))')
	assert_eq "$dry" "$real" "the dry run's tasks and the real run's"
	assert_contains "$dry" "fe.nested#2#1"
	assert_not_contains "$dry" "fe.inner#1"
	assert_contains "$dry" "loc@localhost#2"
	assert_eq "$(ev "$BATS_TEST_TMPDIR/dry.jsonl" 'E[0]["tasks"]' \
		'len([e for e in of("plan.task") if e["handler"] is None])' 'one("plan.task", task="fe.on_failure.run-1")["handler"]' \
		'[(e["batch"], e["command"]) for e in of("plan.task", step="loc")]')" \
		$'15\n15\non_failure\n0 echo localhost u 0 echo localhost v 1 echo localhost w'
}

@test "secrets are masked in the text, JSON, DOT and events of a preview" {
	p=$(plan sec <<'EOF'
name: sec
vars: { token: tok-SECRET-99, list: [a] }
secrets: [token]
env: { T: "${{ vars.token }}" }
steps:
  - id: s
    name: uses tok-SECRET-99
    for_each: ["${{ vars.token }}"]
    cwd: /tmp/${{ vars.token }}
    run: echo ${{ item }} ${{ vars.token }}
EOF
)
	for o in text json dot; do
		run b plan "$p" --output "$o"
		assert_status 0
		assert_not_contains "$output" "tok-SECRET-99" "the secret in --output $o"
		assert_contains "$output" "***"
	done
	run b run --dry-run "$p" --events "$EV"
	assert_status 0
	assert_not_contains "$(cat "$EV")" "tok-SECRET-99" "the secret in the events"
	assert_eq "$(ev "$EV" 'E[1]["command"]' 'E[1]["cwd"]' 'E[1]["item"]')" $'echo *** ***\n/tmp/***\n***'
}

@test "baton plan - names a plan from standard input <stdin> in text, and file null in JSON" {
	run b plan - <<<$'steps:\n  - echo from-stdin'
	assert_status 0
	assert_eq "$(head -n 1 <<<"$output")" "plan <stdin>"
	assert_not_contains "$output" "plan -" "the old header"
	run b plan - --output json <<<$'steps:\n  - echo from-stdin'
	assert_status 0
	assert_eq "$(py_json "$output" 'D["plan"]["file"]' 'D["plan"]["name"]')" $'None\nNone'
	run b plan - --output dot <<<$'steps:\n  - echo from-stdin'
	assert_status 0
	assert_match "$output" '^digraph "<stdin>" \{'
}

@test "a large fan-out is cut in text with a count, and whole in JSON" {
	p=$(plan big <<EOF
vars: { xs: [$(seq -s ', ' 1 500)] }
steps:
  - id: each
    for_each: \${{ vars.xs }}
    batch: { size: 100 }
    run: echo \${{ item }}
EOF
)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" 'each#7 (8) [batch 1]  $ echo 8'
	assert_not_contains "$output" 'each#8 '
	assert_contains "$output" '… 492 more tasks (500 in all: 500 run)'
	assert_contains "$output" '5 batches, pause 0ms, max_failures 0:'
	run b plan "$p" --output json
	assert_status 0
	assert_eq "$(py_json "$output" 'len(S["each"]["tasks"])' 'S["each"]["tasks"][499]["batch"]' 'S["each"]["tasks"][499]["command"]')" \
		$'500\n4\necho 500'
}

@test "each instance is shown with its label: the step's label, else a short item, else its index" {
	p=$(plan labels <<'EOF'
vars:
  servers:
    - { name: web-a, ip: 192.0.2.1 }
    - { name: web-b, ip: 192.0.2.2 }
steps:
  - id: d
    for_each: ${{ vars.servers }}
    label: ${{ item.name }}
    run: echo ${{ item.ip }}
  - id: long
    for_each: ["an-item-far-longer-than-forty-characters-to-show-whole", short]
    run: echo ${{ index }}
EOF
)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" 'd#0 (web-a)  $ echo 192.0.2.1'
	assert_contains "$output" 'd#1 (web-b)  $ echo 192.0.2.2'
	assert_contains "$output" 'long#0  $ echo 0'
	assert_contains "$output" 'long#1 (short)  $ echo 1'
	run b run --dry-run "$p" --output json
	assert_status 0
	printf '%s\n' "$output" >"$EV"
	assert_eq "$(ev "$EV" '[e["label"] for e in of("plan.task")]')" "web-a web-b 0 short"
}

@test "a for_each over a value that is not a list is shown to fail before anything runs" {
	# (a --var takes its default's type, so the string comes from a var with none)
	p=$(plan notlist <<'EOF'
vars: { servers: null }
steps:
  - id: build
    run: echo build
  - id: rollout
    for_each: ${{ vars.servers }}
    run: echo deploy ${{ item }}
EOF
)
	run b plan "$p" --var 'servers=app04 app05'
	assert_status 0
	assert_contains "$output" 'for_each: the expression gives a string, not a list: the step fails'
	assert_contains "$output" 'tasks: none, the run fails here: its for_each fails: the expression gives a string, not a list'
	assert_match "$output" '^  1 task before a for_each whose list is not a list: the run fails there, '
	run b plan "$p" --var 'servers=app04 app05' --output json
	assert_status 0
	assert_eq "$(py_json "$output" 'D["counts"]["fails"]' 'S["rollout"]["tasks_fail"]')" $'True\nTrue'
}
