/*
 * ~/.ssh/config read as OpenSSH reads it (plan-format.md section 7): Include
 * (relative, ~/, absolute, globs, nested, inside blocks, the depth limit),
 * Match (all, host, originalhost, user, localuser, negations, lists, ANDed),
 * criteria baton cannot evaluate as errors at FILE:LINE, and the inventory's
 * proxy_jump. Each test has a temporary HOME, never the real one. The
 * differential test against `ssh -G` is tests/sshconfig_diff.py.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "plan/plan.h"

static char *make_home(const char *config)
{
	char *dir = xstrdup("/tmp/baton-sshcfg-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
	char *ssh = xasprintf("%s/.ssh", dir);
	cr_assert_eq(mkdir(ssh, 0700), 0, "mkdir %s failed", ssh);
	free(ssh);
	if (config) {
		char *path = xasprintf("%s/.ssh/config", dir);
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f, "cannot write %s", path);
		fputs(config, f);
		cr_assert_eq(fclose(f), 0);
		free(path);
	}
	return dir;
}

/* Writes HOME/rel (its directory made if need be). */
static void put(const char *home, const char *rel, const char *text)
{
	char *path = xasprintf("%s/%s", home, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	char *cmd = xasprintf("mkdir -p '%s'", path);
	free(th_sh(cmd, NULL));
	free(cmd);
	*slash = '/';
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

static struct plan *load(const char *yaml, const char *home, struct diags *d)
{
	struct load_options o = {.home = home};
	return plan_load_buffer_opts("plan.yaml", yaml, strlen(yaml), &o, d);
}

static struct plan *load_ok(const char *yaml, const char *home)
{
	struct diags d = {0};
	struct plan *p = load(yaml, home, &d);
	if (!p || d.n) {
		char *t = th_diags_text(&d);
		cr_assert_fail("plan did not load cleanly:\n%s", t);
	}
	diags_free(&d);
	return p;
}

static void load_fail(const char *yaml, const char *home, struct diags *d)
{
	struct plan *p = load(yaml, home, d);
	if (p) {
		plan_free(p);
		cr_assert_fail("plan loaded but errors were expected");
	}
}

static const struct host *host_named(const struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->inventory.n_hosts; i++)
		if (!strcmp(p->inventory.hosts[i].name, name))
			return &p->inventory.hosts[i];
	cr_assert_fail("no host named %s", name);
	return NULL;
}

static const char *via(const struct plan *p, const char *name)
{
	const struct host *h = host_named(p, name);
	return h->jump >= 0 ? p->inventory.hosts[h->jump].name : "(none)";
}

Test(sshcfg_include, relative_tilde_absolute_globs_nested_and_inside_blocks)
{
	char *home = make_home(NULL);
	char *abs = xasprintf("Include %s/abs/*.conf\n", home);
	char *config = xasprintf("Include conf.d/*.conf\n"       /* relative: under ~/.ssh, in glob order */
				 "Host b\n"
				 "  Include ~/.ssh/only-b.conf\n" /* applies only when Host b does */
				 "Host *\n"
				 "%s"
				 "  User fallback\n",
				 abs);
	put(home, ".ssh/config", config);
	put(home, ".ssh/conf.d/10-a.conf", "Host a\n  HostName a.example.com\n  Include nested.conf\n");
	put(home, ".ssh/conf.d/20-a.conf", "Host a\n  HostName second-wins-not\n  User from20\n");
	put(home, ".ssh/nested.conf", "Port 2201\n");
	put(home, ".ssh/only-b.conf", "HostName b.example.com\nMatch all\nPort 2202\n");
	put(home, "abs/x.conf", "Host c\n  HostName c.example.com\n");
	struct plan *p = load_ok("steps: [{ run: x, on: [a, b, c] }]\n", home);
	const struct host *a = host_named(p, "a"), *b = host_named(p, "b"), *c = host_named(p, "c");
	cr_assert_str_eq(a->address, "a.example.com", "the first file of the glob comes first");
	cr_assert_eq(a->port, 2201, "a nested Include inside Host a");
	cr_assert_str_eq(a->user, "from20");
	cr_assert_str_eq(b->address, "b.example.com");
	cr_assert_eq(b->port, 2202, "Match all in a file included by Host b applies to b");
	cr_assert_str_eq(b->user, "fallback", "the including file's Host b/Host * state survives the include");
	cr_assert_eq(a->port, 2201);
	cr_assert_str_eq(c->address, "c.example.com", "an absolute Include inside Host *");
	cr_assert_eq(c->port, 22, "only-b.conf does not apply to c");
	plan_free(p);
	free(abs);
	free(config);
	remove_tree(home);
}

Test(sshcfg_include, a_missing_file_or_empty_glob_is_nothing_and_too_deep_an_error)
{
	char *home = make_home("Include none-such.conf conf.d/*.conf\nHost a\n  User u\n");
	struct plan *p = load_ok("steps: [{ run: x, on: a }]\n", home);
	cr_assert_str_eq(host_named(p, "a")->user, "u");
	plan_free(p);
	remove_tree(home);

	home = make_home("Host a\n  User u\nInclude loop.conf\n");
	put(home, ".ssh/loop.conf", "# itself again\nInclude loop.conf\n");
	struct diags d = {0};
	load_fail("steps: [{ run: x, on: a }]\n", home, &d);
	char *loop = xasprintf("%s/.ssh/loop.conf", home);
	ASSERT_DIAG_IN(&d, loop, "Include nested more than 16 files deep", 2, 1);
	diags_free(&d);
	free(loop);
	remove_tree(home);
}

Test(sshcfg_match, host_originalhost_user_localuser_negations_lists_and_all)
{
	setenv("USER", "me", 1);
	char *home = make_home("Host *.lan\n"
			       "  HostName %h.example.com\n"
			       "Match host web1.lan.example.com\n" /* host sees HostName with %h expanded */
			       "  User fromhost\n"
			       "Match originalhost WEB2.LAN\n" /* originalhost: the name as given, any case */
			       "  User fromoriginal\n"
			       "Match user fromhost\n" /* the User set so far */
			       "  Port 2001\n"
			       "Match localuser me host *.example.com,!db*\n" /* ANDed, a negated list entry */
			       "  IdentityFile ~/.ssh/%r\n"
			       "Match !host web*\n"
			       "  Port 2003\n"
			       "Match user !me\n" /* only negations: never matches, as in OpenSSH */
			       "  Port 2004\n"
			       "Match all\n"
			       "  Port 2005\n"
			       "  User fromall\n");
	struct plan *p =
		load_ok("steps: [{ run: x, on: [web1.lan, web2.lan, db1.lan, other.lan] }]\n", home);
	const struct host *w1 = host_named(p, "web1.lan"), *w2 = host_named(p, "web2.lan"),
			  *db = host_named(p, "db1.lan"), *o = host_named(p, "other.lan");
	cr_assert_str_eq(w1->address, "web1.lan.example.com");
	cr_assert_str_eq(w1->user, "fromhost");
	cr_assert_eq(w1->port, 2001);
	cr_assert_eq(w1->n_identities, 1);
	char *want = xasprintf("%s/.ssh/fromhost", home);
	cr_assert_str_eq(w1->identities[0], want);
	free(want);
	cr_assert_str_eq(w2->user, "fromoriginal");
	cr_assert_eq(w2->port, 2005);
	cr_assert_str_eq(db->user, "fromall");
	cr_assert_eq(db->port, 2003);
	cr_assert_eq(db->n_identities, 0, "!db* rules the block out");
	cr_assert_eq(o->port, 2003);
	plan_free(p);
	remove_tree(home);
}

Test(sshcfg_match, a_match_host_block_makes_a_name_known)
{
	char *home = make_home("Match host 10.0.0.*\n  User never\nHost ten\n  HostName 10.0.0.5\n"
			       "Match host 10.0.0.*\n  User admin\nMatch originalhost solo\n  Port 2222\n");
	struct plan *p = load_ok("steps: [{ run: x, on: [ten, solo] }]\n", home);
	cr_assert_str_eq(host_named(p, "ten")->user, "admin", "Match host sees the HostName set before it, not after");
	cr_assert_eq(host_named(p, "solo")->port, 2222);
	cr_assert(host_named(p, "solo")->from_config);
	plan_free(p);
	remove_tree(home);
}

Test(sshcfg_match, criteria_baton_cannot_evaluate_are_errors_at_their_line)
{
	static const char *const bad[] = {"Match exec \"true\"", "Match canonical", "Match final host x",
					  "Match host x tagged t", "Match localnetwork 10.0.0.0/8", "Match sometimes"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *config = xasprintf("Host a\n  User u\n%s\n  User v\n", bad[i]);
		char *home = make_home(config);
		char *path = xasprintf("%s/.ssh/config", home);
		struct diags d = {0};
		load_fail("steps: [{ run: x, on: a }]\n", home, &d);
		ASSERT_DIAG_IN(&d, path, "is not supported by baton", 3, 1);
		EXPECT_N(&d, 1);
		diags_free(&d);
		free(path);
		free(config);
		remove_tree(home);
	}
	static const char *const malformed[][2] = {{"Match", "'Match' needs a criterion"},
						   {"Match host", "Match criterion 'host' needs a list"},
						   {"Match all host x", "'all' cannot be combined"}};
	for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
		char *home = make_home(NULL);
		put(home, ".ssh/inc.conf", malformed[i][0]);
		put(home, ".ssh/config", "Host a\n  User u\nInclude inc.conf\n");
		char *path = xasprintf("%s/.ssh/inc.conf", home);
		struct diags d = {0};
		load_fail("steps: [{ run: x, on: a }]\n", home, &d);
		ASSERT_DIAG_IN(&d, path, malformed[i][1], 1, 1);
		diags_free(&d);
		free(path);
		remove_tree(home);
	}
}

Test(sshcfg_tokens, hostname_takes_h_and_percent_and_is_lowercased_unless_an_address)
{
	setenv("USER", "me", 1);
	char *home = make_home("Host Up\n  HostName %h.EXAMPLE.com\nHost v6\n  HostName FE80::1\n"
			       "Host pct\n  HostName a%%b\n  IdentityFile %d/%u/%n/%h/%r/%p/%%\n  User ru\n  Port 2");
	struct plan *p = load_ok("steps: [{ run: x, on: [Up, v6, pct] }]\n", home);
	cr_assert_str_eq(host_named(p, "Up")->address, "up.example.com");
	cr_assert_str_eq(host_named(p, "v6")->address, "FE80::1");
	const struct host *pct = host_named(p, "pct");
	cr_assert_str_eq(pct->address, "a%b");
	char *want = xasprintf("%s/me/pct/a%%b/ru/2/%%", home);
	cr_assert_str_eq(pct->identities[0], want);
	free(want);
	plan_free(p);
	remove_tree(home);
}

Test(inventory_proxy_jump, hosts_defaults_none_and_chains)
{
	char *home = make_home("Host cfgjump\n  HostName gw.example.com\n"
			       "Host web2\n  ProxyJump cfgjump\n");
	struct plan *p = load_ok("inventory:\n"
				 "  defaults: { proxy_jump: bastion }\n"
				 "  hosts:\n"
				 "    bastion: { address: 10.0.0.1 }\n"
				 "    web1: { address: 10.0.0.11 }\n"
				 "    web2: {}\n"
				 "    web3: { address: 10.0.0.13, proxy_jump: none }\n"
				 "    web4: { address: 10.0.0.14, proxy_jump: 'ops@cfgjump:2022,web1' }\n"
				 "steps: [{ run: x, on: all }]\n",
				 home);
	cr_assert_str_eq(via(p, "bastion"), "(none)", "the defaults' jump does not apply to the jump host itself");
	cr_assert_str_eq(via(p, "web1"), "bastion", "the defaults' proxy_jump");
	cr_assert_str_eq(via(p, "web2"), "bastion", "for the inventory's hosts its defaults come before the config");
	cr_assert_str_eq(via(p, "web3"), "(none)");
	cr_assert_str_eq(via(p, "web4"), "ops@cfgjump:2022,web1", "a chain is a host named as written");
	const struct host *chain = host_named(p, "ops@cfgjump:2022,web1");
	cr_assert_str_eq(chain->address, "10.0.0.11", "the chain's last hop: the inventory's web1");
	cr_assert_str_eq(via(p, "ops@cfgjump:2022,web1"), "ops@cfgjump:2022", "then the rest of the chain");
	const struct host *first = host_named(p, "ops@cfgjump:2022");
	cr_assert_str_eq(first->address, "gw.example.com", "a hop is resolved through ~/.ssh/config");
	cr_assert_str_eq(first->user, "ops");
	cr_assert_eq(first->port, 2022);
	plan_free(p);
	remove_tree(home);
}

Test(inventory_proxy_jump, bad_values_are_errors_at_the_value)
{
	char *home = make_home(NULL);
	struct diags d = {0};
	load_fail("inventory:\n"
		  "  defaults: { proxy_jump: 'a@' }\n"
		  "  hosts:\n"
		  "    h1: { address: 10.0.0.1, proxy_jump: 'gw:99999' }\n"
		  "    h2: { address: 10.0.0.2, proxy_jump: [gw] }\n"
		  "    h3: { address: 10.0.0.3, proxy_jump: 'gw,,x' }\n"
		  "    h4: { address: 10.0.0.4, proxy_jump: h5 }\n"
		  "    h5: { address: 10.0.0.5, proxy_jump: h4 }\n"
		  "    h6: { address: 10.0.0.6, proxyjump: gw }\n"
		  "steps: [{ run: x, on: [h4] }]\n",
		  home, &d);
	TH_ASSERT_DIAG(&d, "bad 'proxy_jump' hop 'a@'", 2, 27);
	TH_ASSERT_DIAG(&d, "bad 'proxy_jump' hop 'gw:99999'", 4, 42);
	TH_ASSERT_DIAG(&d, "'proxy_jump' must be", 5, 42);
	TH_ASSERT_DIAG(&d, "bad 'proxy_jump' hop ''", 6, 42);
	TH_ASSERT_DIAG(&d, "ProxyJump cycle: h4 -> h5 -> h4", 8, 42);
	TH_ASSERT_DIAG(&d, "unknown key 'proxyjump'", 9, 30);
	EXPECT_N(&d, 6);
	diags_free(&d);
	remove_tree(home);
}
