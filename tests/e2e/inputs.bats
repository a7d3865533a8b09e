#!/usr/bin/env bats
# Inputs and typed --var (plan-format.md section 2): declared inputs given,
# missing, ill-typed or outside their choices; every such error at once, each
# with the input's description, exit 2 and nothing run; --var and --var-file
# values typed against the var's default or the input's type; a --var naming
# nothing, and references that can never resolve, caught before the run with
# "did you mean".

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

# A plan whose first step leaves a marker: any error must come before it runs.
deploy_plan() {
	plan deploy <<'EOF'
vars:
  version: "1.4.2"
  servers: [app01]
inputs:
  region:
    description: AWS region to deploy to
    required: true
    choices: [eu-west-1, us-east-1]
  replicas:
    type: int
    description: Number of pods
    default: 2
  canary: { type: bool, default: false }
steps:
  - id: first
    run: touch ran-marker
  - id: rollout
    for_each: ${{ vars.servers }}
    run: echo "deploy ${{ item }} ${{ vars.version }} to ${{ inputs.region }} x${{ inputs.replicas }}"
  - id: canary
    when: inputs.canary
    run: echo canary
EOF
}

@test "the issue's examples: a misspelt var in the plan or on the command line fails check, a list --var is a list" {
	p=$(plan typo <<'EOF'
vars: { version: "1.4.2", servers: [app01] }
steps:
  - id: build
    run: echo ${{ vars.verison }}
  - id: rollout
    for_each: ${{ vars.servers }}
    run: echo ${{ item }}
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:4:15: error: 'run': vars.verison is not defined; did you mean 'version'?"
	sed -i 's/verison/version/' "$p"
	run b check "$p" --var verison=9.9
	assert_status 2
	assert_contains "$output" "--var verison=9.9: error: the plan has no var or input 'verison'; did you mean 'version'?"
	run b check "$p" --var 'servers=[app04, app05]'
	assert_status 0
	run b run "$p" --output quiet --events "$EV" --var 'servers=[app04, app05]'
	assert_status 0
	assert_eq "$(ev "$EV" 'out("rollout#0")' 'out("rollout#1")')" $'app04\napp05'
}

@test "inputs given: typed values reach commands and when; defaults fill the rest" {
	p=$(deploy_plan)
	run b run "$p" --output quiet --events "$EV" --var region=us-east-1 --var 'servers=[web1, web2]' --var canary=true
	assert_status 0
	assert_eq "$(ev "$EV" 'out("rollout#0")' 'out("rollout#1")' 'out("canary")')" \
		$'deploy web1 1.4.2 to us-east-1 x2\ndeploy web2 1.4.2 to us-east-1 x2\ncanary'
	run b run "$p" --output quiet --events "$EV" --var region=eu-west-1 --var replicas=5 --var version=1.40
	assert_status 0
	assert_eq "$(ev "$EV" 'out("rollout#0")' 'status("canary")')" $'deploy app01 1.40 to eu-west-1 x5\nskipped'
}

@test "every bad input is reported at once, with its description; exit 2 and nothing runs" {
	p=$(deploy_plan)
	run b run "$p" --output plain --var replicas=abc --var canary=maybe
	assert_status 2
	assert_contains "$output" "--var replicas=abc: error: input 'replicas' (Number of pods) must be an int, not 'abc'"
	assert_contains "$output" "--var canary=maybe: error: input 'canary' must be a bool (true or false), not 'maybe'"
	assert_contains "$output" "$p:5:3: error: input 'region' (AWS region to deploy to) is required and was not given: give it with --var region=VALUE"
	assert_contains "$output" "3 errors"
	assert_file_absent ran-marker
	run b run "$p" --output plain --var region=eu-west
	assert_status 2
	assert_contains "$output" "--var region=eu-west: error: input 'region' (AWS region to deploy to) must be one of eu-west-1 or us-east-1, not 'eu-west'; did you mean 'eu-west-1'?"
	assert_not_contains "$output" "is required"
	assert_file_absent ran-marker
	# the preview refuses the same
	run b plan "$p" --var replicas=abc
	assert_status 2
	assert_contains "$output" "must be an int"
	assert_file_absent ran-marker
}

@test "check validates what is given but does not need required inputs; run does" {
	p=$(deploy_plan)
	run b check "$p"
	assert_status 0
	run b check "$p" --var replicas=x
	assert_status 2
	assert_contains "$output" "input 'replicas' (Number of pods) must be an int, not 'x'"
	run b run "$p" --output quiet
	assert_status 2
	assert_file_absent ran-marker
}

@test "a declaration's errors are located, with did-you-mean" {
	p=$(plan decl <<'EOF'
vars: { env: x }
inputs:
  env: {}
  count: { tpye: int }
  mode: { type: strng, choices: [a, b], default: c }
  n: { type: int, default: many }
steps: [echo]
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:3:3: error: 'env' is both a var and an input"
	assert_contains "$output" "$p:4:12: error: unknown key 'tpye' in input 'count'; did you mean 'type'?"
	assert_contains "$output" "$p:5:17: error: input 'mode': unknown type 'strng'; did you mean 'string'?"
	assert_contains "$output" "$p:5:50: error: input 'mode': the default is not one of its choices (a or b)"
	assert_contains "$output" "$p:6:28: error: input 'n': the default must be an int, like the input (type: int)"
}

@test "--var values take the type of the default: string as typed, int, bool, list and map in YAML flow syntax" {
	p=$(plan typed <<'EOF'
vars:
  ver: "0"
  n: 0
  on: false
  list: []
  cfg: {}
  free: ~
steps:
  - id: show
    run: echo ${{ vars.ver }} ${{ vars.n > 40 }} ${{ vars.on == true }} ${{ len(vars.list) }} ${{ vars.cfg.k }} ${{ vars.free }}
  - id: each
    for_each: ${{ vars.list }}
    run: echo ${{ item }}
EOF
)
	run b run "$p" --output quiet --events "$EV" --var ver=1.40 --var n=41 --var on=true --var 'list=[a, "b c"]' \
		--var 'cfg={k: v}' --var free=007
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "1.40 true true 2 v 007"
	assert_eq "$(ev "$EV" 'out("each#1")')" "b c"
	run b run "$p" --output plain --var n=4.5 --var on=1 --var 'list=[a' --var 'cfg=[1]' --var nope=1
	assert_status 2
	assert_contains "$output" "--var n=4.5: error: var 'n' must be an int like its default (0), not '4.5'"
	assert_contains "$output" "--var on=1: error: var 'on' must be a bool (true or false) like its default (false), not '1'"
	assert_contains "$output" "--var list=[a: error: var 'list' must be a list like its default, in YAML flow syntax as in --var 'list=[a, b]', not '[a' (invalid YAML:"
	assert_contains "$output" "--var cfg=[1]: error: var 'cfg' must be a map like its default"
	assert_contains "$output" "--var nope=1: error: the plan has no var or input 'nope'"
	assert_contains "$output" "5 errors"
}

@test "a --var-file is held to the same rules, at its keys" {
	p=$(deploy_plan)
	printf 'region: us-east-1\nreplicas: 3\nverison: "2"\n' >vars.yaml
	run b run "$p" --output plain --var-file vars.yaml
	assert_status 2
	assert_contains "$output" "vars.yaml:3:1: error: the plan has no var or input 'verison'; did you mean 'version'?"
	assert_file_absent ran-marker
	printf 'region: us-east-1\nreplicas: 3\nversion: 1.50\n' >vars.yaml
	run b run "$p" --output quiet --events "$EV" --var-file vars.yaml
	assert_status 0
	assert_eq "$(ev "$EV" 'out("rollout#0")')" "deploy app01 1.50 to us-east-1 x3"
}

@test "references that can never resolve fail check with did-you-mean" {
	p=$(plan refs <<'EOF'
inputs: { region: {} }
steps:
  - id: build
    run: make
  - run: echo ${{ steps.biuld.stdout }} ${{ inputs.regoin }}
  - run: echo ${{ steps.build.outputs.sha }}
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:5:15: error: 'run': no step with id 'biuld'; did you mean 'build'?"
	assert_contains "$output" "$p:5:41: error: 'run': inputs.regoin is not declared; did you mean 'region'?"
	assert_contains "$output" "2 errors"
}

@test "an optional input without a default is null; the dry run shows inputs resolved" {
	p=$(plan opt <<'EOF'
inputs:
  tag: { description: image tag }
  env: { default: staging }
steps:
  - id: show
    run: echo "tag=${{ default(inputs.tag, 'latest') }} env=${{ inputs.env }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "tag=latest env=staging"
	run b run "$p" --dry-run --var tag=v9 --var env=prod
	assert_status 0
	assert_contains "$output" "tag=v9 env=prod"
}

@test "resume re-reads the recorded --var: a run with inputs resumes" {
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
	unset BATON_NO_STORE
	p=$(plan res <<EOF
inputs: { region: { required: true } }
steps:
  - id: one
    run: echo \${{ inputs.region }} >> $BATS_TEST_TMPDIR/one
  - id: two
    run: test -e $BATS_TEST_TMPDIR/flag
EOF
)
	run b run "$p" --output quiet --var region=eu
	assert_status 1
	touch "$BATS_TEST_TMPDIR/flag"
	run b resume --output quiet
	assert_status 0
	assert_eq "$(cat "$BATS_TEST_TMPDIR/one")" "eu"
}

@test "inputs and --var errors under ASan: no leak, no error" {
	p=$(deploy_plan)
	printf 'region: us-east-1\nverison: 2\n' >vars.yaml
	run --separate-stderr b_asan run "$p" --output plain --var replicas=abc --var 'servers=[a' --var-file vars.yaml \
		--var region=x
	assert_status 2
	assert_not_contains "$stderr" "Sanitizer"
	run --separate-stderr b_asan run "$p" --output quiet --var region=us-east-1 --var 'servers=[a, b]'
	assert_status 0
	assert_not_contains "$stderr" "Sanitizer"
}
