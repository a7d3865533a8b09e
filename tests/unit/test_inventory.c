/*
 * Hosts (plan-format.md section 7): the inventory inline and from a file,
 * groups, host patterns in `on:` and --limit, `localhost`, names resolved
 * through ~/.ssh/config (a temporary HOME, never the real one), `ssh:`
 * settings, and where ${{ host }} may be read.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "plan/plan.h"

/* A home directory of its own for each test, with .ssh/config when config is not NULL. */
static char *make_home(const char *config)
{
	char *dir = xstrdup("/tmp/baton-inv-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
	char *ssh = xasprintf("%s/.ssh", dir);
	cr_assert_eq(mkdir(ssh, 0700), 0, "mkdir %s failed", ssh);
	if (config) {
		char *path = xasprintf("%s/config", ssh);
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f, "cannot write %s", path);
		fputs(config, f);
		cr_assert_eq(fclose(f), 0);
		free(path);
	}
	free(ssh);
	return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	free(path);
}

static void remove_tree(char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	free(th_sh(cmd, NULL));
	free(cmd);
	free(dir);
}

/* Loads yaml as `file` with options (home defaults to a directory that does not exist). */
static struct plan *load(const char *file, const char *yaml, struct load_options *o, struct diags *d)
{
	struct load_options none = {0};
	if (!o)
		o = &none;
	if (!o->home)
		o->home = "/nonexistent/baton-test-home";
	return plan_load_buffer_opts(file, yaml, strlen(yaml), o, d);
}

static struct plan *load_ok(const char *yaml, struct load_options *o)
{
	struct diags d = {0};
	struct plan *p = load("plan.yaml", yaml, o, &d);
	if (!p || d.n) {
		char *t = th_diags_text(&d);
		cr_assert_fail("plan did not load cleanly:\n%s", t);
	}
	diags_free(&d);
	return p;
}

static void load_fail(const char *yaml, struct load_options *o, struct diags *d)
{
	struct plan *p = load("plan.yaml", yaml, o, d);
	if (p) {
		plan_free(p);
		cr_assert_fail("plan loaded but errors were expected");
	}
	cr_assert_gt(d->n, 0);
}

static const struct host *host_named(const struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->inventory.n_hosts; i++)
		if (!strcmp(p->inventory.hosts[i].name, name))
			return &p->inventory.hosts[i];
	cr_assert_fail("no host named %s", name);
	return NULL;
}

/* The names of a step's hosts joined by spaces (caller frees). */
static char *step_hosts(const struct plan *p, const char *full_id)
{
	const struct step *s = plan_find_step(p, full_id);
	cr_assert_not_null(s, "no step %s", full_id);
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (size_t i = 0; i < s->fan->n_hosts; i++)
		buf_printf(&b, "%s%s", i ? " " : "", p->inventory.hosts[s->fan->hosts[i]].name);
	return buf_detach(&b);
}

#define ASSERT_HOSTS(p, id, want)                                                                          \
	do {                                                                                               \
		char *h_ = step_hosts((p), (id));                                                          \
		cr_assert_str_eq(h_, (want), "step %s runs on [%s], expected [%s]", (id), h_, (want));     \
		free(h_);                                                                                  \
	} while (0)

static const char inv_plan[] = "inventory:\n"
			       "  hosts:\n"
			       "    web1: { address: 10.0.0.11 }\n"
			       "    web2: { address: 10.0.0.12 }\n"
			       "    db1: { address: 10.0.0.21 }\n"
			       "    db2: { address: 10.0.0.22 }\n"
			       "  groups:\n"
			       "    web: [web1, web2]\n"
			       "    db: [db2, db1]\n";

/* Loads inv_plan followed by more (the steps). */
static struct plan *load_inv(const char *steps, struct load_options *o)
{
	char *yaml = xasprintf("%s%s", inv_plan, steps);
	struct plan *p = load_ok(yaml, o);
	free(yaml);
	return p;
}

static void load_inv_fail(const char *steps, struct load_options *o, struct diags *d)
{
	char *yaml = xasprintf("%s%s", inv_plan, steps);
	load_fail(yaml, o, d);
	free(yaml);
}

/* ---- the inventory ---- */

Test(inventory, inline_hosts_keep_their_order_and_fields)
{
	setenv("USER", "tester", 1);
	struct plan *p = load_ok("inventory:\n"
				 "  hosts:\n"
				 "    web2: { address: 10.0.0.12, user: admin, port: 2222, vars: { weight: 2 } }\n"
				 "    web1: { address: 10.0.0.11, max_sessions: 1 }\n"
				 "    bare:\n"
				 "steps:\n"
				 "  - run: echo\n"
				 "    on: web1\n",
				 NULL);
	const struct inventory *inv = &p->inventory;
	cr_assert_eq(inv->n_hosts, 3);
	cr_assert_eq(inv->n_declared, 3);
	cr_assert_str_eq(inv->hosts[0].name, "web2");
	cr_assert_str_eq(inv->hosts[0].address, "10.0.0.12");
	cr_assert_str_eq(inv->hosts[0].user, "admin");
	cr_assert_eq(inv->hosts[0].port, 2222);
	cr_assert_eq(json_integer_value(json_object_get(inv->hosts[0].vars, "weight")), 2);
	cr_assert_eq(inv->hosts[0].max_sessions, 4, "ssh's default");
	cr_assert_str_eq(inv->hosts[1].name, "web1");
	cr_assert_str_eq(inv->hosts[1].user, "tester", "$USER");
	cr_assert_eq(inv->hosts[1].port, 22);
	cr_assert_eq(inv->hosts[1].max_sessions, 1);
	cr_assert_eq(inv->hosts[1].n_identities, 0);
	cr_assert_eq(inv->hosts[1].jump, -1);
	cr_assert(json_is_object(inv->hosts[1].vars) && json_object_size(inv->hosts[1].vars) == 0);
	cr_assert_str_eq(inv->hosts[2].address, "bare", "no address, no ssh config: the name");
	cr_assert_not(inv->hosts[2].local || inv->hosts[2].from_config);
	plan_free(p);
}

Test(inventory, defaults_fill_what_a_host_leaves_out)
{
	struct load_options o = {.home = "/home/t"};
	struct plan *p = load_ok("ssh: { max_sessions: 7, identity: ~/.ssh/ssh_key }\n"
				 "inventory:\n"
				 "  defaults: { user: deploy, port: 2200, identity: ~/.ssh/deploy, max_sessions: 2 }\n"
				 "  hosts:\n"
				 "    a: { address: 10.0.0.1 }\n"
				 "    b: { address: 10.0.0.2, user: root, port: 22, identity: /k/b, max_sessions: 9 }\n"
				 "steps:\n"
				 "  - run: echo\n"
				 "    on: all\n",
				 &o);
	const struct host *a = host_named(p, "a"), *b = host_named(p, "b");
	cr_assert_str_eq(a->user, "deploy");
	cr_assert_eq(a->port, 2200);
	cr_assert_eq(a->max_sessions, 2);
	cr_assert_eq(a->n_identities, 1);
	cr_assert_str_eq(a->identities[0], "/home/t/.ssh/deploy", "~ expanded against the home");
	cr_assert_str_eq(b->user, "root");
	cr_assert_eq(b->port, 22);
	cr_assert_eq(b->max_sessions, 9);
	cr_assert_eq(b->n_identities, 1);
	cr_assert_str_eq(b->identities[0], "/k/b");
	plan_free(p);
}

Test(inventory, ssh_identity_and_max_sessions_come_after_the_inventory)
{
	struct load_options o = {.home = "/home/t"};
	struct plan *p = load_ok("ssh: { max_sessions: 7, identity: ~/.ssh/ssh_key }\n"
				 "inventory: { hosts: { a: { address: 10.0.0.1 } } }\n"
				 "steps: [{ run: echo, on: a }]\n",
				 &o);
	const struct host *a = host_named(p, "a");
	cr_assert_eq(a->max_sessions, 7);
	cr_assert_eq(a->n_identities, 1);
	cr_assert_str_eq(a->identities[0], "/home/t/.ssh/ssh_key");
	plan_free(p);
}

Test(inventory, bad_hosts_and_defaults_are_errors_at_their_place)
{
	struct diags d = {0};
	load_fail("inventory:\n"
		  "  defaults: { user: deploy, prot: 22 }\n"
		  "  hosts:\n"
		  "    web1: { address: 10.0.0.11, port: 70000 }\n"
		  "    all: {}\n"
		  "    bad/name: {}\n"
		  "    db1: { max_sessions: 0, vars: [1], adress: x }\n"
		  "    db2: [1]\n"
		  "steps: [echo]\n",
		  NULL, &d);
	TH_ASSERT_DIAG(&d, "unknown key 'prot' in the inventory's defaults; did you mean 'port'?", 2, 29);
	TH_ASSERT_DIAG(&d, "'port' must be 1 to 65535, not 70000", 4, 39);
	TH_ASSERT_DIAG(&d, "'all' cannot name a host", 5, 5);
	TH_ASSERT_DIAG(&d, "bad host name 'bad/name'", 6, 5);
	TH_ASSERT_DIAG(&d, "'max_sessions' must be at least 1, not 0", 7, 26);
	TH_ASSERT_DIAG(&d, "'vars' must be a map, not a list", 7, 35);
	TH_ASSERT_DIAG(&d, "unknown key 'adress' in host 'db1'; did you mean 'address'?", 7, 40);
	TH_ASSERT_DIAG(&d, "host 'db2' must be a map", 8, 10);
	EXPECT_N(&d, 8);
	diags_free(&d);
}

Test(inventory, wrong_shapes_are_errors)
{
	struct diags d = {0};
	load_fail("inventory: [a, b]\nsteps: [echo]\n", NULL, &d);
	TH_ASSERT_DIAG(&d, "'inventory' must be a file path or a map with hosts, groups and defaults, not a list", 1,
		       12);
	diags_free(&d);
	d = (struct diags){0};
	load_fail("inventory: { hosts: [a], groups: x, hots: {} }\nsteps: [echo]\n", NULL, &d);
	TH_ASSERT_DIAG(&d, "'hosts' must be a map", 1, 21);
	TH_ASSERT_DIAG(&d, "'groups' must be a map", 1, 34);
	TH_ASSERT_DIAG(&d, "unknown key 'hots' in the inventory; did you mean 'hosts'?", 1, 37);
	EXPECT_N(&d, 3);
	diags_free(&d);
}

/* ---- groups ---- */

Test(inventory, groups_of_groups_expand_in_inventory_order_each_host_once)
{
	struct plan *p = load_inv("    app: [db, web, web1]\n"
				  "steps:\n"
				  "  - id: a\n"
				  "    run: echo\n"
				  "    on: app\n"
				  "  - id: b\n"
				  "    run: echo\n"
				  "    on: db\n",
				  NULL);
	ASSERT_HOSTS(p, "a", "web1 web2 db1 db2");
	ASSERT_HOSTS(p, "b", "db1 db2");
	cr_assert_eq(p->inventory.n_groups, 3);
	cr_assert_str_eq(p->inventory.groups[2].name, "app");
	cr_assert_eq(p->inventory.groups[2].n_members, 3);
	cr_assert_str_eq(p->inventory.groups[2].members[0], "db");
	plan_free(p);
}

Test(inventory, group_cycles_are_errors)
{
	struct diags d = {0};
	load_fail("inventory:\n"
		  "  hosts: { h: {} }\n"
		  "  groups:\n"
		  "    a: [h, b]\n"
		  "    b: [c]\n"
		  "    c: [a]\n"
		  "    self: [self]\n"
		  "steps: [echo]\n",
		  NULL, &d);
	TH_ASSERT_DIAG(&d, "group cycle: a -> b -> c -> a", 4, 5);
	TH_ASSERT_DIAG(&d, "group cycle: self -> self", 7, 5);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

/* An inventory with groups g0 .. g(n-1), each holding the next, the last holding host h, then more. */
static char *nested_groups(size_t n, const char *last_extra, const char *steps)
{
	struct buf b = {0};
	buf_adds(&b, "inventory:\n  hosts: { h: { address: 10.0.0.1 }, h2: { address: 10.0.0.2 } }\n  groups:\n");
	for (size_t i = 0; i + 1 < n; i++)
		buf_printf(&b, "    g%zu: [g%zu]\n", i, i + 1);
	buf_printf(&b, "    g%zu: [h%s]\n", n - 1, last_extra);
	buf_adds(&b, steps);
	return buf_detach(&b);
}

Test(inventory, groups_nest_to_any_depth, .timeout = 20)
{
	static const size_t depths[] = {1001, 1002, 5000};
	for (size_t i = 0; i < ARRAY_LEN(depths); i++) {
		char *y = nested_groups(depths[i], ", h2", "steps:\n  - run: echo\n    on: g0\n");
		struct plan *p = load_ok(y, NULL);
		ASSERT_HOSTS(p, "run-1", "h h2");
		plan_free(p);
		free(y);
	}
}

Test(inventory, a_cycle_at_the_end_of_a_deep_chain_is_reported, .timeout = 20)
{
	char *y = nested_groups(5000, ", g0", "steps:\n  - run: echo\n    on: g0\n");
	struct diags d = {0};
	load_fail(y, NULL, &d);
	const struct diag *g = th_diag_find(&d, "group cycle: g0 -> g1 -> g2 -> ");
	cr_assert_not_null(g, "%s", th_diags_text(&d));
	cr_assert_not_null(strstr(g->msg, "-> g4999 -> g0"), "%.80s", g->msg + strlen(g->msg) - 40);
	diags_free(&d);
	free(y);
}

Test(inventory, group_members_must_be_hosts_or_groups)
{
	struct diags d = {0};
	load_fail("inventory:\n"
		  "  hosts: { web1: {}, web2: {} }\n"
		  "  groups:\n"
		  "    web: [web1, wbe2, zzz]\n"
		  "    web1: [web2]\n"
		  "    'x y': []\n"
		  "    all: []\n"
		  "steps: [echo]\n",
		  NULL, &d);
	TH_ASSERT_DIAG(&d, "group 'web': 'wbe2' is neither a host nor a group of the inventory; did you mean 'web2'?",
		       4, 17);
	TH_ASSERT_DIAG(&d, "group 'web': 'zzz' is neither a host nor a group of the inventory", 4, 23);
	TH_ASSERT_DIAG(&d, "'web1' is both a host (line 2) and a group", 5, 5);
	TH_ASSERT_DIAG(&d, "bad group name 'x y'", 6, 5);
	TH_ASSERT_DIAG(&d, "'all' cannot name a group", 7, 5);
	EXPECT_N(&d, 5);
	diags_free(&d);
}

/* ---- patterns ---- */

Test(inventory, patterns_name_group_all_glob_exclusion_and_union)
{
	struct plan *p = load_inv("steps:\n"
				  "  - { id: name, run: x, on: db1 }\n"
				  "  - { id: group, run: x, on: web }\n"
				  "  - { id: every, run: x, on: all }\n"
				  "  - { id: glob, run: x, on: 'db?' }\n"
				  "  - { id: class, run: x, on: '*[2]' }\n"
				  "  - { id: excl, run: x, on: [all, '!web', '!db2'] }\n"
				  "  - { id: union, run: x, on: [db2, web2, db2] }\n"
				  "  - { id: commas, run: x, on: 'web, !web1 , db1' }\n"
				  "  - { id: last, run: x, on: ['!web1', web] }\n",
				  NULL);
	ASSERT_HOSTS(p, "name", "db1");
	ASSERT_HOSTS(p, "group", "web1 web2");
	ASSERT_HOSTS(p, "every", "web1 web2 db1 db2");
	ASSERT_HOSTS(p, "glob", "db1 db2");
	ASSERT_HOSTS(p, "class", "web2 db2");
	ASSERT_HOSTS(p, "excl", "db1");
	ASSERT_HOSTS(p, "union", "web2 db2");
	ASSERT_HOSTS(p, "commas", "web2 db1");
	ASSERT_HOSTS(p, "last", "web2");
	const struct step *s = plan_find_step(p, "commas");
	cr_assert_eq(s->fan->n_on, 3);
	cr_assert_str_eq(s->fan->on[1], "!web1", "patterns are kept as written, trimmed");
	cr_assert(step_is_foreach(s), "an `on` step is a fan-out");
	cr_assert_not(step_is_foreach(p->root));
	plan_free(p);
}

Test(inventory, unmatched_patterns_are_errors_at_their_place)
{
	struct diags d = {0};
	load_inv_fail("steps:\n"
		      "  - run: x\n"
		      "    on: [wbe1, 'x*', '!nope', '', 'a b']\n"
		      "  - run: x\n"
		      "    on: web1, !zz*\n"
		      "  - run: x\n"
		      "    on: [web1, '!web1']\n"
		      "  - run: x\n"
		      "    on: { a: 1 }\n"
		      "  - run: x\n"
		      "    on:\n",
		      NULL, &d);
	TH_ASSERT_DIAG(&d, "unknown host or group 'wbe1'; did you mean 'web1'?", 12, 10);
	TH_ASSERT_DIAG(&d, "host pattern 'x*' matches no host of the inventory", 12, 16);
	TH_ASSERT_DIAG(&d, "unknown host or group 'nope'", 12, 22);
	TH_ASSERT_DIAG(&d, "empty host pattern", 12, 31);
	TH_ASSERT_DIAG(&d, "bad host pattern 'a b'", 12, 35);
	TH_ASSERT_DIAG(&d, "host pattern 'zz*' matches no host", 14, 15);
	TH_ASSERT_DIAG(&d, "'on' matches no host once its exclusions are applied", 16, 9);
	TH_ASSERT_DIAG(&d, "'on' must be a host pattern or a list of them, not a map", 18, 9);
	TH_ASSERT_DIAG(&d, "'on' needs at least one host pattern", 20, 8);
	EXPECT_N(&d, 9);
	diags_free(&d);
}

Test(inventory, all_with_an_empty_inventory_is_an_error)
{
	struct diags d = {0};
	load_fail("steps:\n  - run: x\n    on: all\n", NULL, &d);
	TH_ASSERT_DIAG(&d, "'all' matches no host: the inventory lists none", 3, 9);
	diags_free(&d);
}

Test(inventory, patterns_are_not_resolved_against_a_broken_inventory)
{
	struct diags d = {0};
	load_fail("inventory: { hosts: { web1: { port: 0 } } }\n"
		  "steps: [{ run: x, on: web2 }]\n",
		  NULL, &d);
	TH_ASSERT_DIAG(&d, "'port' must be at least 1", 1, 37);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* ---- --limit ---- */

Test(inventory, limit_narrows_every_on_step)
{
	const char *steps = "steps:\n"
			    "  - { id: w, run: x, on: web }\n"
			    "  - id: outer\n"
			    "    steps: [{ id: d, run: x, on: all }]\n"
			    "    on_failure: [{ id: h, run: x, on: db }]\n"
			    "  - { id: local, run: x }\n";
	struct load_options o = {.limit = "web1,db*"};
	struct plan *p = load_inv(steps, &o);
	ASSERT_HOSTS(p, "w", "web1");
	ASSERT_HOSTS(p, "outer.d", "web1 db1 db2");
	ASSERT_HOSTS(p, "outer.on_failure.h", "db1 db2");
	cr_assert_null(plan_find_step(p, "local")->fan->on);
	plan_free(p);

	o = (struct load_options){.limit = "!web2, !db1"};
	p = load_inv(steps, &o);
	ASSERT_HOSTS(p, "w", "web1");
	ASSERT_HOSTS(p, "outer.d", "web1 db2");
	plan_free(p);

	o = (struct load_options){.limit = "db"};
	p = load_inv(steps, &o);
	ASSERT_HOSTS(p, "w", ""); /* allowed: the step runs no instance */
	ASSERT_HOSTS(p, "outer.d", "db1 db2");
	plan_free(p);
}

Test(inventory, limit_patterns_that_match_nothing_are_errors)
{
	struct diags d = {0};
	struct load_options o = {.limit = "wbe1, nope*,"};
	load_inv_fail("steps: [{ run: x, on: web }]\n", &o, &d);
	ASSERT_DIAG_IN(&d, "--limit", "unknown host or group 'wbe1'; did you mean 'web1'?", 0, 0);
	ASSERT_DIAG_IN(&d, "--limit", "host pattern 'nope*' matches no host", 0, 0);
	ASSERT_DIAG_IN(&d, "--limit", "empty host pattern", 0, 0);
	EXPECT_N(&d, 3);
	diags_free(&d);
}

/* ---- localhost ---- */

Test(inventory, localhost_without_an_entry_runs_locally)
{
	setenv("USER", "tester", 1);
	struct plan *p = load_inv("steps:\n"
				  "  - { id: a, run: x, on: [localhost, web1] }\n"
				  "  - { id: b, run: x, on: localhost }\n",
				  NULL);
	ASSERT_HOSTS(p, "a", "web1 localhost");
	ASSERT_HOSTS(p, "b", "localhost");
	const struct host *h = host_named(p, "localhost");
	cr_assert(h->local);
	cr_assert_not(h->from_config);
	cr_assert_str_eq(h->user, "tester");
	cr_assert_eq(p->inventory.n_hosts, 5, "added once");
	cr_assert_eq(p->inventory.n_declared, 4);
	plan_free(p);

	p = load_ok("inventory: { hosts: { localhost: { port: 2222 } } }\n"
		    "steps: [{ run: x, on: localhost }]\n",
		    NULL);
	cr_assert_not(host_named(p, "localhost")->local, "with an entry, localhost is an SSH host like any other");
	cr_assert_eq(host_named(p, "localhost")->port, 2222);
	plan_free(p);
}

Test(inventory, all_and_globs_cover_only_the_inventory_own_hosts)
{
	struct plan *p = load_inv("steps:\n"
				  "  - { id: a, run: x, on: localhost }\n"
				  "  - { id: b, run: x, on: all }\n"
				  "  - { id: c, run: x, on: '*' }\n",
				  NULL);
	ASSERT_HOSTS(p, "b", "web1 web2 db1 db2");
	ASSERT_HOSTS(p, "c", "web1 web2 db1 db2");
	plan_free(p);
}

/* ---- inventory files ---- */

Test(inventory, a_file_inventory_is_relative_to_the_plan)
{
	char *dir = make_home(NULL);
	write_file(dir, "hosts.yaml",
		   "hosts:\n"
		   "  web1: { address: 10.1.1.1 }\n"
		   "groups:\n"
		   "  web: [web1]\n");
	char *file = xasprintf("%s/plan.yaml", dir);
	struct diags d = {0};
	struct load_options o = {0};
	struct plan *p = load(file, "inventory: hosts.yaml\nsteps: [{ id: a, run: x, on: web }]\n", &o, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	ASSERT_HOSTS(p, "a", "web1");
	cr_assert_str_eq(host_named(p, "web1")->address, "10.1.1.1");
	plan_free(p);
	diags_free(&d);
	free(file);
	remove_tree(dir);
}

Test(inventory, errors_in_an_inventory_file_carry_its_own_place)
{
	char *dir = make_home(NULL);
	write_file(dir, "inv.yaml",
		   "hosts:\n"
		   "  web1: { address: 10.1.1.1 }\n"
		   "  web2: { port: nope }\n"
		   "groups:\n"
		   "  web: [web1, web3]\n");
	char *file = xasprintf("%s/plan.yaml", dir), *inv = xasprintf("%s/inv.yaml", dir);
	struct diags d = {0};
	struct load_options o = {0};
	cr_assert_null(load(file, "inventory: inv.yaml\nsteps: [{ run: x, on: web }]\n", &o, &d));
	ASSERT_DIAG_IN(&d, inv, "'port' must be an integer, not 'nope'", 3, 17);
	ASSERT_DIAG_IN(&d, inv, "group 'web': 'web3' is neither a host nor a group", 5, 15);
	EXPECT_N(&d, 2);
	diags_free(&d);
	free(file);
	free(inv);
	remove_tree(dir);
}

Test(inventory, the_inventory_option_replaces_the_plans_own)
{
	char *dir = make_home(NULL);
	write_file(dir, "other.yaml", "hosts: { db9: { address: 10.9.9.9 } }\n");
	char *path = xasprintf("%s/other.yaml", dir);
	struct load_options o = {.inventory = path};
	struct plan *p = load_ok("inventory: { hosts: { web1: {} } }\n"
				 "steps: [{ id: a, run: x, on: all }]\n",
				 &o);
	ASSERT_HOSTS(p, "a", "db9");
	plan_free(p);
	free(path);
	remove_tree(dir);
}

Test(inventory, a_missing_inventory_file_is_an_error)
{
	struct diags d = {0};
	load_fail("inventory: no-such.yaml\nsteps: [{ run: x, on: web }]\n", NULL, &d);
	TH_ASSERT_DIAG(&d, "'inventory': no-such.yaml: cannot open: No such file or directory", 1, 12);
	EXPECT_N(&d, 1);
	diags_free(&d);

	d = (struct diags){0};
	struct load_options o = {.inventory = "/no/such/inventory.yaml"};
	load_fail("steps: [echo]\n", &o, &d);
	ASSERT_DIAG_IN(&d, "--inventory", "/no/such/inventory.yaml: cannot open", 0, 0);
	diags_free(&d);
}

Test(inventory, no_files_reads_no_inventory_file)
{
	char *dir = make_home(NULL);
	write_file(dir, "hosts.yaml", "hosts: { web1: {} }\n");
	char *file = xasprintf("%s/plan.yaml", dir);
	struct diags d = {0};
	struct load_options o = {.no_files = true};
	cr_assert_null(load(file, "inventory: hosts.yaml\nsteps: [echo]\n", &o, &d));
	ASSERT_DIAG_IN(&d, file, "not read: this load reads no files", 1, 12);
	diags_free(&d);
	free(file);
	remove_tree(dir);
}

/* ---- ~/.ssh/config ---- */

static const char ssh_config[] = "# a comment\n"
				 "Host bastion jump\n"
				 "    HostName bastion.example.com\n"
				 "    User jumper\n"
				 "    Port 2201\n"
				 "\n"
				 "Host db*.internal !db9.internal\n"
				 "  user dbadmin\n"
				 "  IDENTITYFILE ~/.ssh/db_%r@%h:%p\n"
				 "  IdentityFile %d/.ssh/second_%u\n"
				 "  ProxyJump bastion\n"
				 "Host \"quoted\"\n"
				 "  HostName=%h.example.com\n"
				 "  IdentityFile = \"~/.ssh/with space\"\n"
				 "  ProxyJump none\n"
				 "Host db1.internal\n"
				 "  User never-first-wins\n"
				 "Match host quoted\n"
				 "  User never-match\n"
				 "Match all\n"
				 "  Port 2222\n"
				 "Host *\n"
				 "  User star\n"
				 "  IdentityFile ~/.ssh/id_star\n";

Test(sshconfig, a_name_the_inventory_lacks_is_found_in_ssh_config)
{
	setenv("USER", "tester", 1);
	char *home = make_home(ssh_config);
	struct load_options o = {.home = home};
	struct plan *p = load_ok("steps:\n"
				 "  - { id: a, run: x, on: [db1.internal, bastion, quoted] }\n",
				 &o);
	ASSERT_HOSTS(p, "a", "db1.internal bastion quoted");
	const struct host *db = host_named(p, "db1.internal");
	cr_assert(db->from_config);
	cr_assert_str_eq(db->address, "db1.internal");
	cr_assert_str_eq(db->user, "dbadmin", "the first User wins");
	cr_assert_eq(db->port, 2222, "Match all applies");
	cr_assert_eq(db->n_identities, 3, "every IdentityFile of every matching block");
	char *want = xasprintf("%s/.ssh/db_dbadmin@db1.internal:2222", home);
	cr_assert_str_eq(db->identities[0], want);
	free(want);
	want = xasprintf("%s/.ssh/second_tester", home);
	cr_assert_str_eq(db->identities[1], want);
	free(want);
	want = xasprintf("%s/.ssh/id_star", home);
	cr_assert_str_eq(db->identities[2], want);
	free(want);
	cr_assert_geq(db->jump, 0);
	cr_assert_str_eq(p->inventory.hosts[db->jump].name, "bastion", "the jump host is the alias named here too");

	const struct host *b = host_named(p, "bastion");
	cr_assert_str_eq(b->address, "bastion.example.com");
	cr_assert_str_eq(b->user, "jumper");
	cr_assert_eq(b->port, 2201, "Port in the Host block comes before Match all");
	cr_assert_eq(b->jump, -1);

	const struct host *q = host_named(p, "quoted");
	cr_assert_str_eq(q->address, "quoted.example.com", "%%h in HostName");
	cr_assert_str_eq(q->user, "star", "other Match blocks never apply");
	cr_assert_eq(q->jump, -1, "ProxyJump none");
	want = xasprintf("%s/.ssh/with space", home);
	cr_assert_str_eq(q->identities[0], want);
	free(want);
	plan_free(p);
	remove_tree(home);
}

Test(sshconfig, wildcards_alone_and_negations_do_not_make_a_name_known)
{
	char *home = make_home(ssh_config);
	struct load_options o = {.home = home};
	struct diags d = {0};
	load_fail("steps:\n"
		  "  - run: x\n"
		  "    on: [db9.internal, elsewhere]\n",
		  &o, &d);
	TH_ASSERT_DIAG(&d, "unknown host or group 'db9.internal'", 3, 10);
	TH_ASSERT_DIAG(&d, "unknown host or group 'elsewhere'", 3, 24);
	EXPECT_N(&d, 2);
	diags_free(&d);
	remove_tree(home);
}

Test(sshconfig, inventory_hosts_without_an_address_take_the_config)
{
	char *home = make_home(ssh_config);
	struct load_options o = {.home = home};
	struct plan *p = load_ok("inventory:\n"
				 "  defaults: { user: deploy }\n"
				 "  hosts:\n"
				 "    bastion: { port: 22 }\n"
				 "    jump: { address: 10.0.0.9 }\n"
				 "    db2.internal: {}\n"
				 "steps: [{ run: x, on: all }]\n",
				 &o);
	const struct host *b = host_named(p, "bastion");
	cr_assert_str_eq(b->address, "bastion.example.com");
	cr_assert_str_eq(b->user, "deploy", "the inventory's defaults win over the config for its own hosts");
	cr_assert_eq(b->port, 22, "the entry wins");
	cr_assert_not(b->from_config);
	const struct host *j = host_named(p, "jump");
	cr_assert_str_eq(j->address, "10.0.0.9");
	cr_assert_eq(j->port, 22, "a host with an address does not read the config");
	cr_assert_eq(j->n_identities, 0);
	const struct host *db = host_named(p, "db2.internal");
	cr_assert_str_eq(p->inventory.hosts[db->jump].name, "bastion", "the jump is the inventory's bastion");
	cr_assert_eq(p->inventory.n_hosts, 3, "no host added");
	plan_free(p);
	remove_tree(home);
}

Test(sshconfig, hosts_only_the_config_knows_keep_its_values_over_inventory_defaults)
{
	char *home = make_home(ssh_config);
	struct load_options o = {.home = home};
	struct plan *p = load_ok("inventory: { defaults: { user: deploy, port: 2000 } }\n"
				 "steps: [{ run: x, on: [bastion, quoted] }]\n",
				 &o);
	cr_assert_str_eq(host_named(p, "bastion")->user, "jumper");
	cr_assert_eq(host_named(p, "bastion")->port, 2201);
	cr_assert_str_eq(host_named(p, "quoted")->user, "star");
	plan_free(p);
	remove_tree(home);
}

Test(sshconfig, proxyjump_chains_ad_hoc_hops_and_cycles)
{
	char *home = make_home("Host a\n  ProxyJump b\n"
			       "Host b\n  ProxyJump admin@gw.example.com:2022,mid\n"
			       "Host mid\n  HostName mid.example.com\n  ProxyJump never-used\n"
			       "Host gw.example.com\n  User gwuser\n"
			       "Host loop1\n  ProxyJump loop2\n"
			       "Host loop2\n  ProxyJump loop1\n"
			       "Host bad\n  ProxyJump user@:22\n"
			       "Host plain\n  ProxyJump 10.0.0.1\n");
	struct load_options o = {.home = home};
	struct plan *p = load_ok("steps: [{ run: x, on: [a, plain] }]\n", &o);
	const struct host *a = host_named(p, "a");
	cr_assert_geq(a->jump, 0);
	const struct host *b = &p->inventory.hosts[a->jump];
	cr_assert_str_eq(b->name, "b");
	cr_assert(b->from_config);
	cr_assert_geq(b->jump, 0);
	/* as in OpenSSH, `gw,mid` reaches b through mid, and mid through gw (not mid's own ProxyJump) */
	const struct host *mid = &p->inventory.hosts[b->jump];
	cr_assert_str_eq(mid->name, "admin@gw.example.com:2022,mid", "a chain is named as written");
	cr_assert_str_eq(mid->address, "mid.example.com", "its last hop is looked up in the config");
	cr_assert_geq(mid->jump, 0);
	const struct host *gw = &p->inventory.hosts[mid->jump];
	cr_assert_str_eq(gw->name, "admin@gw.example.com:2022", "a hop is named as written");
	cr_assert_str_eq(gw->address, "gw.example.com");
	cr_assert_str_eq(gw->user, "admin", "the hop's user wins over the config's");
	cr_assert_eq(gw->port, 2022);
	cr_assert_eq(gw->jump, -1);
	const struct host *ip = &p->inventory.hosts[host_named(p, "plain")->jump];
	cr_assert_str_eq(ip->address, "10.0.0.1");
	cr_assert_not(ip->from_config, "an ad-hoc hop the config does not name");
	plan_free(p);

	struct diags d = {0};
	load_fail("steps:\n  - run: x\n    on: [loop1, bad]\n", &o, &d);
	TH_ASSERT_DIAG(&d, "ProxyJump cycle: loop1 -> loop2 -> loop1", 3, 10);
	TH_ASSERT_DIAG(&d, "bad ProxyJump 'user@:22'", 3, 17);
	EXPECT_N(&d, 2);
	diags_free(&d);
	remove_tree(home);
}

Test(sshconfig, a_bad_port_in_the_config_is_an_error_there)
{
	char *home = make_home("Host x\n  Port 99999\n");
	char *cfg = xasprintf("%s/.ssh/config", home);
	struct load_options o = {.home = home};
	struct diags d = {0};
	load_fail("steps: [{ run: x, on: x }]\n", &o, &d);
	ASSERT_DIAG_IN(&d, cfg, "bad Port '99999'", 2, 1);
	diags_free(&d);
	free(cfg);
	remove_tree(home);
}

Test(sshconfig, the_config_is_not_read_when_no_host_needs_it)
{
	char *home = make_home("Host x\n  Port 99999\n");
	struct load_options o = {.home = home};
	struct plan *p = load_ok("inventory: { hosts: { web1: { address: 10.0.0.1 } } }\n"
				 "steps: [{ run: x, on: web1 }]\n",
				 &o);
	plan_free(p);
	remove_tree(home);
}

/* ---- ssh: ---- */

Test(ssh_settings, defaults)
{
	struct load_options o = {.home = "/home/t"};
	struct plan *p = load_ok("steps: [echo]\n", &o);
	cr_assert_eq(p->ssh.known_hosts, KNOWN_HOSTS_STRICT);
	cr_assert_eq(p->ssh.connect_timeout_ms, 10000);
	cr_assert_eq(p->ssh.keepalive_ms, 15000);
	cr_assert_eq(p->ssh.max_sessions, 4);
	cr_assert_null(p->ssh.identity);
	cr_assert_str_eq(p->ssh.known_hosts_file, "/home/t/.ssh/known_hosts");
	plan_free(p);
}

Test(ssh_settings, every_key)
{
	struct load_options o = {.home = "/home/t"};
	struct plan *p = load_ok("ssh:\n"
				 "  known_hosts: accept-new\n"
				 "  connect_timeout: 2s\n"
				 "  keepalive: 0\n"
				 "  max_sessions: 1\n"
				 "  identity: ~/.ssh/ci\n"
				 "  known_hosts_file: /etc/baton/known_hosts\n"
				 "steps: [echo]\n",
				 &o);
	cr_assert_eq(p->ssh.known_hosts, KNOWN_HOSTS_ACCEPT_NEW);
	cr_assert_eq(p->ssh.connect_timeout_ms, 2000);
	cr_assert_eq(p->ssh.keepalive_ms, 0);
	cr_assert_eq(p->ssh.max_sessions, 1);
	cr_assert_str_eq(p->ssh.identity, "/home/t/.ssh/ci");
	cr_assert_str_eq(p->ssh.known_hosts_file, "/etc/baton/known_hosts");
	plan_free(p);
	p = load_ok("ssh: { known_hosts: off }\nsteps: [echo]\n", NULL);
	cr_assert_eq(p->ssh.known_hosts, KNOWN_HOSTS_OFF);
	plan_free(p);
}

Test(ssh_settings, errors)
{
	struct diags d = {0};
	load_fail("ssh: { known_hosts: stric, connect_timeout: 0s, keepalive: soon, max_sessions: 0, identity: '',"
		  " user: me }\n"
		  "steps: [echo]\n",
		  NULL, &d);
	TH_ASSERT_DIAG(&d, "unknown known_hosts mode 'stric'; did you mean 'strict'?", 1, 21);
	TH_ASSERT_DIAG(&d, "'connect_timeout' must be more than 0", 1, 45);
	TH_ASSERT_DIAG(&d, "'keepalive': bad duration 'soon'", 1, 60);
	TH_ASSERT_DIAG(&d, "'max_sessions' must be at least 1, not 0", 1, 80);
	TH_ASSERT_DIAG(&d, "'identity' is empty", 1, 93);
	TH_ASSERT_DIAG(&d, "unknown key 'user' in ssh", 1, 97);
	EXPECT_N(&d, 6);
	diags_free(&d);
	d = (struct diags){0};
	load_fail("ssh: [strict]\nsteps: [echo]\n", NULL, &d);
	TH_ASSERT_DIAG(&d, "'ssh' must be a map, not a list", 1, 6);
	diags_free(&d);
}

/* ---- the host context and fan-out rules ---- */

Test(host_context, host_is_read_only_inside_an_on_step)
{
	struct plan *p = load_inv("steps:\n"
				  "  - run: echo ${{ host.name }} ${{ host.address }} ${{ host.user }} ${{ host.port }}\n"
				  "    on: web\n"
				  "  - on: db\n"
				  "    steps:\n"
				  "      - run: echo ${{ host.vars.role }}\n"
				  "        when: ${{ host.name == 'db1' }}\n"
				  "      - run: echo ${{ host }}\n",
				  NULL);
	plan_free(p);
	struct diags d = {0};
	load_inv_fail("steps:\n"
		      "  - run: echo ${{ host.name }}\n"
		      "  - run: echo ${{ host.nope }}\n"
		      "    on: web\n"
		      "  - run: echo ${{ item }}\n"
		      "    on: web\n"
		      "    for_each: ['${{ host.name }}']\n",
		      NULL, &d);
	TH_ASSERT_DIAG(&d, "'run': 'host' is defined only inside an 'on' step", 11, 15);
	TH_ASSERT_DIAG(&d, "'run': 'host' has name, address, user, port and vars, not 'nope'", 12, 15);
	TH_ASSERT_DIAG(&d, "'for_each': 'host' is defined only inside an 'on' step", 16, 17);
	EXPECT_N(&d, 3);
	diags_free(&d);
}

Test(host_context, host_to_json_has_the_documented_fields)
{
	struct plan *p = load_ok("inventory: { hosts: { w: { address: 10.0.0.5, user: u, port: 2022, vars: { k: v } } } }\n"
				 "steps: [{ run: x, on: w }]\n",
				 NULL);
	json_t *j = host_to_json(host_named(p, "w"));
	cr_assert_eq(json_object_size(j), 5);
	cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "w");
	cr_assert_str_eq(json_string_value(json_object_get(j, "address")), "10.0.0.5");
	cr_assert_str_eq(json_string_value(json_object_get(j, "user")), "u");
	cr_assert_eq(json_integer_value(json_object_get(j, "port")), 2022);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "vars"), "k")), "v");
	json_decref(j);
	plan_free(p);
}

Test(host_context, on_steps_take_the_fan_out_modifiers)
{
	struct plan *p = load_inv("steps:\n"
				  "  - id: roll\n"
				  "    on: all\n"
				  "    batch: { size: [1, 50%], pause: 1s }\n"
				  "    mode: settle\n"
				  "    min_success: 3\n"
				  "    steps:\n"
				  "      - run: drain\n"
				  "      - barrier: drained\n"
				  "  - id: pairs\n"
				  "    on: web\n"
				  "    for_each: [a, b]\n"
				  "    min_success: 4\n"
				  "    run: echo ${{ item }} ${{ host.name }}\n",
				  NULL);
	const struct step *s = plan_find_step(p, "roll");
	cr_assert(step_is_foreach(s));
	cr_assert(s->fan->has_batch);
	cr_assert_eq(s->fan->n_hosts, 4);
	plan_free(p);
	struct diags d = {0};
	load_inv_fail("steps:\n"
		      "  - run: x\n"
		      "    on: web\n"
		      "    min_success: 3\n"
		      "  - run: x\n"
		      "    on: web\n"
		      "    for_each: [a, b]\n"
		      "    min_success: 5\n"
		      "  - barrier: b\n"
		      "    on: web\n"
		      "  - run: x\n"
		      "    on: web\n"
		      "    async: bg\n",
		      NULL, &d);
	TH_ASSERT_DIAG(&d, "'min_success' is 3 but 'on' makes only 2 instances", 13, 18);
	TH_ASSERT_DIAG(&d, "'min_success' is 5 but 'on' and 'for_each' make only 4 instances", 17, 18);
	TH_ASSERT_DIAG(&d, "barrier 'b' is itself a branch", 18, 5);
	TH_ASSERT_DIAG(&d, "async step 'bg' must stand in a sequence of steps, outside any for_each or on", 20, 5);
	EXPECT_N(&d, 4);
	diags_free(&d);
}

Test(host_context, plan_load_buffer_without_options_still_works)
{
	struct diags d = {0};
	const char *yaml = "inventory: { hosts: { w: { address: 10.0.0.5 } } }\nsteps: [{ run: x, on: w }]\n";
	struct plan *p = plan_load_buffer("plan.yaml", yaml, strlen(yaml), NULL, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	cr_assert_eq(plan_find_step(p, "run-1")->fan->n_hosts, 1);
	plan_free(p);
	diags_free(&d);
}
