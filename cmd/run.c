/*
 * run.c — `baton run PLAN`: load, compile, wire the sinks the options ask
 * for, and hand the graph to the scheduler. `--dry-run` (and `baton plan`,
 * in plan.c) prints the expanded tree instead and runs nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cmd.h"
#include "event/event.h"
#include "exec/exec.h"
#include "graph/graph.h"
#include "plan/plan.h"
#include "sched/sched.h"

static const char run_help[] =
	"usage: baton run PLAN [OPTIONS]\n"
	"\n"
	"Runs a plan. Exit status: 0 success, 1 a step failed, 2 usage or plan error,\n"
	"3 the plan's timeout was reached, 130/143 interrupted by SIGINT/SIGTERM.\n"
	"\n"
	"  --var K=V           set variable K (repeatable; later ones win); not for secrets\n"
	"  --var-file F        set variables from a YAML map in F\n"
	"  --secret-file K=PATH  set secret K to the contents of file PATH (one trailing\n"
	"                      newline removed); repeatable\n"
	"  -j, --jobs N        run at most N tasks at once (overrides 'concurrency')\n"
	"  --only STEP         run only this step (full id) and what it contains; repeatable\n"
	"  --from STEP         skip the steps before this one (full id)\n"
	"  --dry-run           print the expanded plan and run nothing\n"
	"  --output MODE       auto (default: tty on a terminal, else plain), tty, plain,\n"
	"                      json (the event stream on stdout) or quiet\n"
	"  --events FILE       also write the event stream (JSON lines) to FILE; '-' is stdout\n"
	"  --inventory FILE    hosts and groups from FILE (replaces the plan's 'inventory')\n"
	"  --limit PATTERN     narrow every 'on:' to the hosts PATTERN matches: a host,\n"
	"                      group, 'all', glob or !exclusion; comma-separated list\n"
	"  -h, --help          show this help\n"
	"\n"
	"Environment: BATON_SECRET_NAME sets the secret NAME (the name upper-cased, as in\n"
	"BATON_SECRET_TOKEN for 'token'); --secret-file wins over it, it wins over 'vars'.\n"
	"NO_COLOR disables colour; GITHUB_ACTIONS=true folds each top-level step in\n"
	"::group:: in plain output.\n";

static const char plan_help[] =
	"usage: baton plan PLAN [OPTIONS]\n"
	"\n"
	"Prints the expanded plan — each step's full id, kind and modifiers (timeout,\n"
	"retry, limits, priority, mode, when) and every command with variables resolved\n"
	"and secrets masked — and runs nothing. Same as 'baton run --dry-run'.\n"
	"\n"
	"  --var K=V           set variable K (repeatable); not for secrets\n"
	"  --var-file F        set variables from a YAML map in F\n"
	"  --secret-file K=PATH  set secret K to the contents of file PATH; repeatable\n"
	"  -j, --jobs N        the concurrency to show\n"
	"  --only STEP         mark every other step as skipped; repeatable\n"
	"  --from STEP         mark the steps before this one as skipped\n"
	"  --inventory FILE    hosts and groups from FILE (replaces the plan's 'inventory')\n"
	"  --limit PATTERN     narrow every 'on:' to the hosts PATTERN matches\n"
	"  -h, --help          show this help\n"
	"\n"
	"Environment: BATON_SECRET_NAME sets the secret NAME (the name upper-cased).\n";

enum output_mode { OUT_AUTO, OUT_TTY, OUT_PLAIN, OUT_JSON, OUT_QUIET };

struct run_args {
	struct var_args vars;
	int jobs;
	const char **only;
	size_t n_only;
	const char *from;
	bool dry_run;
	enum output_mode output;
	const char *events;
	const char *plan;
	const char *inventory; /* --inventory */
	const char *limit;     /* --limit */
};

static bool parse_output(const char *s, enum output_mode *m)
{
	static const char *const names[] = {"auto", "tty", "plain", "json", "quiet"};
	for (size_t i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*m = (enum output_mode)i;
			return true;
		}
	return false;
}

static int parse_args(int argc, char **argv, bool preview, struct run_args *a)
{
	const char *name = preview ? "plan" : "run";
	static const struct option opts[] = {{"var", required_argument, 0, 'v'},
					     {"var-file", required_argument, 0, 'f'},
					     {"secret-file", required_argument, 0, 's'},
					     {"jobs", required_argument, 0, 'j'},
					     {"only", required_argument, 0, 'o'},
					     {"from", required_argument, 0, 'F'},
					     {"dry-run", no_argument, 0, 'n'},
					     {"output", required_argument, 0, 'O'},
					     {"events", required_argument, 0, 'e'},
					     {"limit", required_argument, 0, 'l'},
					     {"inventory", required_argument, 0, 'i'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	int c;
	char *end;
	optind = 0;
	/* GNU getopt moves the plan behind the options, so options may follow it */
	while ((c = getopt_long(argc, argv, "j:h", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
		case 'f':
			var_args_add(&a->vars, c == 'f', optarg);
			break;
		case 's':
			var_args_secret_file(&a->vars, optarg);
			break;
		case 'j':
			errno = 0;
			a->jobs = (int)strtol(optarg, &end, 10);
			if (*end || errno || a->jobs < 1 || a->jobs > 100000)
				return cmd_usage_error(name, "-j takes a number from 1 to 100000, not '%s'", optarg);
			break;
		case 'o':
			a->only = xrealloc(a->only, (a->n_only + 1) * sizeof *a->only);
			a->only[a->n_only++] = optarg;
			break;
		case 'F':
			if (a->from)
				return cmd_usage_error(name, "--from may be given once");
			a->from = optarg;
			break;
		case 'n':
			a->dry_run = true;
			break;
		case 'O':
			if (!parse_output(optarg, &a->output))
				return cmd_usage_error(name, "--output takes auto, tty, plain, json or quiet, not '%s'",
						       optarg);
			break;
		case 'e':
			a->events = optarg;
			break;
		case 'l':
			if (a->limit)
				return cmd_usage_error(name, "--limit may be given once (it takes a comma-separated list)");
			a->limit = optarg;
			break;
		case 'i':
			if (a->inventory)
				return cmd_usage_error(name, "--inventory may be given once");
			a->inventory = optarg;
			break;
		case 'h':
			fputs(preview ? plan_help : run_help, stdout);
			return -1;
		default:
			return cmd_usage_error(name, "bad option");
		}
	}
	if (optind >= argc)
		return cmd_usage_error(name, "no plan given");
	a->plan = argv[optind++];
	if (optind < argc)
		return cmd_usage_error(name, "one plan at a time (got %s and %s)", a->plan, argv[optind]);
	if (a->vars.bad)
		return 2;
	return 0;
}

static bool no_color(void)
{
	const char *v = getenv("NO_COLOR");
	return v && *v;
}

static int term_width(int fd)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	return c && atoi(c) > 0 ? atoi(c) : 80;
}

static void on_tick(uv_timer_t *h)
{
	bus_tick(h->data);
}

/* Before the loop waits for anything: everything emitted so far goes out. */
static void on_prepare(uv_prepare_t *h)
{
	bus_flush(h->data);
}

static FILE *open_events(const char *path)
{
	FILE *f = fopen(path, "we"); /* e: close-on-exec, so commands cannot write to it */
	if (!f)
		fprintf(stderr, "baton: --events %s: %s\n", path, strerror(errno));
	return f;
}

/* Wires the sinks the options ask for; false if the events file cannot be opened. */
static bool add_sinks(struct bus *bus, const struct run_args *a, bool *tty, FILE *out, FILE *err)
{
	bool events_stdout = a->events && !strcmp(a->events, "-");
	if (a->events && !events_stdout) {
		FILE *f = open_events(a->events);
		if (!f)
			return false;
		bus_add(bus, sink_json_new(f, true));
	}
	enum output_mode m = a->output;
	if (events_stdout && (m == OUT_JSON))
		m = OUT_QUIET; /* one stream on stdout is enough */
	if (events_stdout)
		bus_add(bus, sink_json_new(out, false));
	/* with the event stream on stdout, people read stderr */
	FILE *human = events_stdout ? err : out;
	int fd = fileno(events_stdout ? stderr : stdout);
	if (m == OUT_AUTO)
		m = isatty(fd) ? OUT_TTY : OUT_PLAIN;
	const char *gha = getenv("GITHUB_ACTIONS");
	struct human_options o = {.color = false, .github = gha && !strcmp(gha, "true"), .summary = true,
				  .width = term_width(fd)};
	*tty = false;
	switch (m) {
	case OUT_TTY:
		o.color = !no_color();
		bus_add(bus, sink_tty_new(human, &o));
		*tty = true;
		break;
	case OUT_PLAIN:
		bus_add(bus, sink_plain_new(human, &o));
		break;
	case OUT_JSON:
		bus_add(bus, sink_json_new(out, false));
		break;
	default:
		break;
	}
	return true;
}

static int dry_run(const struct graph *g, const struct plan *p, const struct run_args *a, const char *run_id)
{
	size_t n_secrets;
	char **secrets = plan_secret_values(p, &n_secrets);
	/* with the event stream on stdout, the tree goes to stderr */
	FILE *out = a->events && !strcmp(a->events, "-") ? stderr : stdout;
	bool color = isatty(fileno(out)) && !no_color();
	graph_render(g, (const char *const *)secrets, n_secrets, out, color);
	if (a->events) {
		struct bus bus;
		bus_init(&bus, run_id, (const char *const *)secrets, n_secrets);
		FILE *f = strcmp(a->events, "-") ? open_events(a->events) : stdout;
		if (f) {
			bus_add(&bus, sink_json_new(f, f != stdout));
			struct event e = {.type = EV_RUN_START, .plan = p->file, .name = p->name, .dry_run = true,
					  .tasks = g->tasks_exact ? (long)g->n_tasks : -1};
			bus_emit(&bus, &e);
			struct event end = {.type = EV_RUN_END, .status = ST_SUCCESS};
			bus_emit(&bus, &end);
		}
		bus_close(&bus);
	}
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	return 0;
}

/* True when some step runs on a remote host (so libssh2 is worth loading). */
static bool needs_ssh(const struct plan *p)
{
	for (size_t i = 0; i < p->index_cap; i++) {
		const struct step *s = p->index[i];
		for (size_t k = 0; s && k < s->n_hosts; k++)
			if (!p->inventory.hosts[s->hosts[k]].local)
				return true;
	}
	return false;
}

static struct executor *ssh_executor(uv_loop_t *loop, const struct plan *p)
{
	static const enum exec_known_hosts modes[] = {
		[KNOWN_HOSTS_STRICT] = EXEC_KH_STRICT,
		[KNOWN_HOSTS_ACCEPT_NEW] = EXEC_KH_ACCEPT_NEW,
		[KNOWN_HOSTS_OFF] = EXEC_KH_OFF,
	};
	struct exec_ssh_options o = {
		.known_hosts = modes[p->ssh.known_hosts],
		.known_hosts_file = p->ssh.known_hosts_file ? p->ssh.known_hosts_file : "/dev/null",
		.connect_timeout_ms = p->ssh.connect_timeout_ms,
		.keepalive_ms = p->ssh.keepalive_ms,
		.home = getenv("HOME"),
	};
	const char *why = NULL;
	struct executor *x = exec_ssh_new(loop, &o, &why);
	if (!x)
		fprintf(stderr, "baton: %s; steps on remote hosts will fail\n", why ? why : "no SSH");
	return x;
}

static int execute(const struct graph *g, const struct plan *p, const struct run_args *a, const char *run_id)
{
	size_t n_secrets;
	char **secrets = plan_secret_values(p, &n_secrets);
	struct bus bus;
	bus_init(&bus, run_id, (const char *const *)secrets, n_secrets);
	bool tty = false;
	int rc = 2;
	uv_loop_t loop;
	uv_loop_init(&loop);
	/* a slow reader of a piped stdout must not hold up the loop */
	FILE *out = event_stream_open(&loop, stdout), *err = event_stream_open(&loop, stderr);
	if (add_sinks(&bus, a, &tty, out ? out : stdout, err ? err : stderr)) {
		struct executor *x = exec_local_new(&loop);
		uv_timer_t tick;
		uv_timer_init(&loop, &tick);
		tick.data = &bus;
		if (tty) {
			uv_timer_start(&tick, on_tick, 100, 100);
			uv_unref((uv_handle_t *)&tick);
		}
		uv_prepare_t prep;
		uv_prepare_init(&loop, &prep);
		prep.data = &bus;
		uv_prepare_start(&prep, on_prepare);
		uv_unref((uv_handle_t *)&prep); /* it must not keep the loop alive */
		struct executor *ssh = needs_ssh(p) ? ssh_executor(&loop, p) : NULL;
		struct sched_options o = {.loop = &loop, .bus = &bus, .exec = x, .ssh = ssh, .run_id = run_id};
		rc = sched_run(g, &o);
		uv_close((uv_handle_t *)&prep, NULL);
		uv_close((uv_handle_t *)&tick, NULL);
		x->ops->free(x);
		if (ssh)
			ssh->ops->free(ssh);
	}
	bus_close(&bus);
	if (out)
		fclose(out);
	if (err)
		fclose(err);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		fprintf(stderr, "baton: internal error: handles left open at exit\n");
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	return rc;
}

static int run_main(int argc, char **argv, bool preview)
{
	struct run_args a = {.output = OUT_AUTO};
	var_args_init(&a.vars);
	int rc = parse_args(argc, argv, preview, &a);
	if (rc) {
		var_args_free(&a.vars);
		free(a.only);
		return rc < 0 ? 0 : rc;
	}
	struct load_options lo = {.inventory = a.inventory, .limit = a.limit, .secrets_optional = preview || a.dry_run};
	var_args_load_options(&a.vars, &lo);
	struct plan *p = cmd_load_plan(a.plan, &lo);
	if (!p) {
		var_args_free(&a.vars);
		free(a.only);
		return 2;
	}
	struct diags d = {0};
	struct graph_options go = {.concurrency = a.jobs, .only = a.only, .n_only = a.n_only, .from = a.from};
	struct graph *g = graph_compile(p, &go, &d);
	diags_print(&d, stderr);
	diags_free(&d);
	if (!g) {
		rc = 2;
	} else {
		char *run_id = event_new_run_id();
		rc = preview || a.dry_run ? dry_run(g, p, &a, run_id) : execute(g, p, &a, run_id);
		free(run_id);
	}
	graph_free(g);
	plan_free(p);
	var_args_free(&a.vars);
	free(a.only);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	return run_main(argc, argv, false);
}

int cmd_plan(int argc, char **argv)
{
	return run_main(argc, argv, true);
}
