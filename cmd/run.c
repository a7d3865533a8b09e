/*
 * run.c — `baton run PLAN`: load, compile, wire the sinks the options ask
 * for, and hand the graph to the scheduler. `--dry-run` (and `baton plan`,
 * in plan.c) prints the expanded tree instead and runs nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "event/event.h"
#include "exec/exec.h"
#include "graph/graph.h"
#include "plan/plan.h"
#include "report/report.h"
#include "sched/sched.h"
#include "store/store.h"

static const char run_help[] =
	"usage: baton run PLAN [OPTIONS]\n"
	"\n"
	"Runs a plan. Exit status: 0 success, 1 a step failed, 2 usage or plan error,\n"
	"3 the plan's timeout was reached, 4 the plan's lock was held by another run,\n"
	"5 the run succeeded but some of its output could not be written, 70 internal\n"
	"error, 130/143 interrupted by SIGINT/SIGTERM.\n"
	"\n"
	"  --var K=V           set the var or input K, typed as its default or type (a list or\n"
	"                      map in YAML flow syntax: 'K=[a, b]'); repeatable, later ones win;\n"
	"                      not for secrets\n"
	"  --var-file F        set vars and inputs from a YAML map in F\n"
	"  --secret-file K=PATH  set secret K to the contents of file PATH (one trailing\n"
	"                      newline removed); repeatable\n"
	"  -j, --jobs N        run at most N local tasks at once (overrides 'concurrency')\n"
	"  --max-hosts N       work on at most N remote hosts at once (overrides\n"
	"                      'ssh.max_hosts', default 64); remote tasks do not count\n"
	"                      against -j\n"
	"  --only ID           run only this step or instance and what it contains, skip the\n"
	"                      rest; ID is a step's full id or a task id as baton prints it\n"
	"                      (deploy@web2, rollout#3, rollout.install#3); repeatable\n"
	"  --from ID           skip the steps before ID and, when ID names an instance, the\n"
	"                      instances of its for_each or on: before it\n"
	"  --dry-run           print the preview ('baton plan') and run nothing; with\n"
	"                      --output json, the dry run's events (a plan.task per task)\n"
	"  --output MODE       auto (default: tty on a terminal, else plain), tty, plain,\n"
	"                      json (the event stream on stdout) or quiet (only failures\n"
	"                      and a failed run's last line, on stderr); a terminal\n"
	"                      with TERM unset, empty or 'dumb' gets plain\n"
	"  --color WHEN        auto (default: on a tty unless NO_COLOR), always (plain\n"
	"                      output too) or never\n"
	"  --timestamps        start each line of the run with its time, HH:MM:SS.mmm UTC\n"
	"  -v, --verbose       show multi-line scripts in full, not their first line\n"
	"  --events FILE       also write the event stream (JSON lines) to FILE; '-' is stdout\n"
	"  --junit FILE        write JUnit XML (one testcase per task) to FILE at the end\n"
	"  --report FILE.html  write the HTML timeline of the run to FILE at the end\n"
	"  --markdown FILE     write a Markdown summary to FILE at the end\n"
	"                      (report files are created before anything runs: a path that\n"
	"                      cannot be written is an error at once; they are written also\n"
	"                      when the run fails or is interrupted)\n"
	"  --inventory FILE    hosts and groups from FILE (replaces the plan's 'inventory')\n"
	"  --limit PATTERN     narrow every 'on:' to the hosts PATTERN matches: a host,\n"
	"                      group, 'all', glob or !exclusion; comma-separated list\n"
	"  --state-dir DIR     the run store (default $BATON_STATE_DIR, else\n"
	"                      $XDG_STATE_HOME/baton, else ~/.local/state/baton)\n"
	"  --detach            run in the background, in a session of its own with no\n"
	"                      terminal; prints the run id once the run is recorded\n"
	"  --yes               approve every 'approve' gate without asking (also\n"
	"                      BATON_APPROVE=all); else a gate asks on the terminal\n"
	"                      (y or yes, then Enter), and fails at once without one\n"
	"  -h, --help          show this help\n"
	"\n"
	"Every run is recorded in the run store: 'baton runs', 'status', 'logs' read it.\n"
	"BATON_NO_STORE=1 turns recording off; BATON_KEEP_RUNS (200) runs are kept.\n"
	"Environment: BATON_SECRET_NAME sets the secret NAME (the name upper-cased, as in\n"
	"BATON_SECRET_TOKEN for 'token'); --secret-file wins over it, it wins over 'vars'.\n"
	"NO_COLOR disables colour. In plain output, GITHUB_ACTIONS=true folds each\n"
	"top-level step in ::group:: and annotates failed tasks (::error at their\n"
	"step's line); GITLAB_CI gives each a collapsed section, BUILDKITE=true a ---\n"
	"group. GITHUB_STEP_SUMMARY=FILE gets the Markdown summary appended at the end.\n";

static const char plan_help[] =
	"usage: baton plan PLAN [OPTIONS]\n"
	"\n"
	"Prints the preview — each step's full id, kind and modifiers, its `when`\n"
	"evaluated where vars, inputs and env decide it, and every task the run would\n"
	"start (each for_each item and host: its command, shell, cwd, env and batch),\n"
	"secrets masked; what only the run can know is marked so, with the reason —\n"
	"and runs nothing. Same as 'baton run --dry-run'.\n"
	"\n"
	"  --output FORMAT     text (default), json (one document: baton-events(7)) or\n"
	"                      dot (a Graphviz digraph of the steps)\n"
	"  --color WHEN        auto (default: on a terminal unless NO_COLOR), always or never\n"
	"  --events FILE       also write the dry run's events (a plan.task per task)\n"
	"  --var K=V           set the var or input K, typed as its default or type (a list or\n"
	"                      map in YAML flow syntax: 'K=[a, b]'); repeatable; not for secrets\n"
	"  --var-file F        set vars and inputs from a YAML map in F\n"
	"  --secret-file K=PATH  set secret K to the contents of file PATH; repeatable\n"
	"  -j, --jobs N        the concurrency to show\n"
	"  --max-hosts N       the max_hosts to show\n"
	"  --only ID           mark every other step and instance as skipped; ID is a full\n"
	"                      id or a task id (deploy@web2, rollout.install#3); repeatable\n"
	"  --from ID           mark the steps (and instances) before this one as skipped\n"
	"  --inventory FILE    hosts and groups from FILE (replaces the plan's 'inventory')\n"
	"  --limit PATTERN     narrow every 'on:' to the hosts PATTERN matches\n"
	"  -h, --help          show this help\n"
	"\n"
	"Environment: BATON_SECRET_NAME sets the secret NAME (the name upper-cased).\n";

enum output_mode { OUT_AUTO, OUT_TTY, OUT_PLAIN, OUT_JSON, OUT_QUIET, OUT_TEXT, OUT_DOT };

struct run_args {
	struct var_args vars;
	int jobs;
	int max_hosts; /* --max-hosts; 0: the plan's */
	const char **only;
	size_t n_only;
	const char *from;
	bool dry_run;
	enum output_mode output;
	const char *events;
	const char *plan;
	const char *inventory; /* --inventory */
	const char *limit;     /* --limit */
	const char *state_dir; /* --state-dir */
	bool detach;           /* --detach */
	bool yes;              /* --yes: approve every `approve` gate */
	int color;             /* --color: -1 never, 0 auto, 1 always */
	bool timestamps;       /* --timestamps */
	bool verbose;          /* -v, --verbose */
	const struct run_resume *resume;
	int ready_fd;          /* --detach: told the run id once it is recorded, or -1 */
	struct {
		enum report_format fmt;
		const char *opt, *path;
	} reports[16];         /* --junit, --report, --markdown */
	size_t n_reports;
	struct report_file *report_files[16]; /* opened before the run */
	int argc;              /* the command line, as recorded */
	char **argv;
};

/* --output: run's modes, or (preview) the plan's formats text, json and dot. */
static bool parse_output(const char *s, bool preview, enum output_mode *m)
{
	static const char *const names[] = {"auto", "tty", "plain", "json", "quiet", "text", "dot"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		bool plans = i == OUT_TEXT || i == OUT_JSON || i == OUT_DOT;
		bool runs = i <= OUT_QUIET;
		if (!strcmp(s, names[i]) && (preview ? plans : runs)) {
			*m = (enum output_mode)i;
			return true;
		}
	}
	return false;
}

/* run, plan and resume: the options getopt_long reads (completion offers them too) */
const char run_shorts[] = "j:hv";
const struct option run_opts[] = {{"var", required_argument, 0, 'A'},
					     {"var-file", required_argument, 0, 'f'},
					     {"secret-file", required_argument, 0, 's'},
					     {"jobs", required_argument, 0, 'j'},
					     {"max-hosts", required_argument, 0, 'H'},
					     {"only", required_argument, 0, 'o'},
					     {"from", required_argument, 0, 'F'},
					     {"dry-run", no_argument, 0, 'n'},
					     {"output", required_argument, 0, 'O'},
					     {"events", required_argument, 0, 'e'},
					     {"limit", required_argument, 0, 'l'},
					     {"inventory", required_argument, 0, 'i'},
					     {"state-dir", required_argument, 0, 'S'},
					     {"detach", no_argument, 0, 'D'},
					     {"yes", no_argument, 0, 'Y'},
					     {"junit", required_argument, 0, 'J'},
					     {"report", required_argument, 0, 'R'},
					     {"markdown", required_argument, 0, 'M'},
					     {"color", required_argument, 0, 'C'},
					     {"timestamps", no_argument, 0, 'T'},
					     {"verbose", no_argument, 0, 'v'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};

static int parse_args(int argc, char **argv, bool preview, struct run_args *a)
{
	const char *name = preview ? "plan" : a->resume ? "resume" : "run";
	int c;
	char *end;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	/* GNU getopt moves the plan behind the options, so options may follow it */
	while ((c = getopt_long(argc, argv, run_shorts, run_opts, NULL)) != -1) {
		switch (c) {
		case 'A':
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
		case 'H': {
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (!*optarg || *end || errno || v < 1 || v > 100000)
				return cmd_usage_error(name, "--max-hosts takes a number from 1 to 100000, not '%s'", optarg);
			a->max_hosts = (int)v;
			break;
		}
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
			if (!parse_output(optarg, preview, &a->output))
				return cmd_usage_error(name,
						       preview ? "--output takes text, json or dot, not '%s'"
							       : "--output takes auto, tty, plain, json or quiet, not '%s'",
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
		case 'S':
			a->state_dir = optarg;
			break;
		case 'C':
			if (!strcmp(optarg, "auto") || !strcmp(optarg, "always") || !strcmp(optarg, "never"))
				a->color = !strcmp(optarg, "always") ? 1 : !strcmp(optarg, "never") ? -1 : 0;
			else
				return cmd_usage_error(name, "--color takes auto, always or never, not '%s'", optarg);
			break;
		case 'T':
			a->timestamps = true;
			break;
		case 'v':
			a->verbose = true;
			break;
		case 'Y':
			if (preview)
				return cmd_usage_error(name, "--yes is for 'baton run' (a preview asks nothing)");
			a->yes = true;
			break;
		case 'D':
			if (preview)
				return cmd_usage_error(name, "--detach is for 'baton run'");
			a->detach = true;
			break;
		case 'J':
		case 'R':
		case 'M': {
			const char *opt = c == 'J' ? "--junit" : c == 'R' ? "--report" : "--markdown";
			if (preview)
				return cmd_usage_error(name, "%s is for 'baton run' (see 'baton report')", opt);
			if (!strcmp(optarg, "-"))
				return cmd_usage_error(name, "%s needs a file ('-' is not one: standard output has the run's own output)", opt);
			if (a->n_reports == ARRAY_LEN(a->reports))
				return cmd_usage_error(name, "at most %zu report files", ARRAY_LEN(a->reports));
			a->reports[a->n_reports].fmt = c == 'J' ? REPORT_JUNIT : c == 'R' ? REPORT_HTML : REPORT_MARKDOWN;
			a->reports[a->n_reports].opt = opt;
			a->reports[a->n_reports++].path = optarg;
			break;
		}
		case 'h':
			fputs(preview ? plan_help : run_help, stdout);
			return -1;
		default:
			return cmd_bad_option(name, argc, argv, run_opts, run_shorts);
		}
	}
	if (optind >= argc)
		return cmd_usage_error(name, "no plan given");
	a->plan = argv[optind++];
	if (optind < argc)
		return cmd_usage_error(name, "one plan at a time (got %s and %s)", a->plan, argv[optind]);
	if (a->vars.bad)
		return 2;
	if (a->dry_run && a->n_reports)
		return cmd_usage_error(name, "%s needs a run: it does not go with --dry-run", a->reports[0].opt);
	return 0;
}

/*
 * Creates every report file (a temporary name next to it) before anything
 * runs: false, said on stderr, when one cannot be; those opened are removed.
 */
static bool open_reports(struct run_args *a)
{
	for (size_t i = 0; i < a->n_reports; i++) {
		char *err = NULL;
		a->report_files[i] = report_file_open(a->reports[i].fmt, a->reports[i].path, &err);
		if (!a->report_files[i]) {
			fprintf(stderr, "baton: %s %s\n", a->reports[i].opt, err);
			free(err);
			for (size_t k = 0; k < i; k++)
				report_file_discard(a->report_files[k]);
			return false;
		}
	}
	return true;
}

static bool no_color(void)
{
	const char *v = getenv("NO_COLOR");
	return v && *v;
}

/* --color: always, never, or (auto) on a terminal that can show it, unless NO_COLOR. */
static bool use_color(const struct run_args *a, bool terminal)
{
	return a->color > 0 || (a->color == 0 && terminal && !cmd_dumb_terminal() && !no_color());
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

/*
 * Opens --events FILE (created or truncated; close-on-exec, so commands
 * cannot write to it) before anything runs or prints: -1 when there is no
 * such file to open, -2 (said on stderr) when it cannot be opened. A new
 * file is 0600, as the run store's are: commands' output may be private.
 */
static int open_events(const struct run_args *a)
{
	if (!a->events || !strcmp(a->events, "-"))
		return -1;
	int fd = open(a->events, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "baton: --events %s: %s\n", a->events, strerror(errno));
		return -2;
	}
	return fd;
}

/* The events file as a stream of whole lines (see event_stream_open). */
static FILE *events_stream(uv_loop_t *loop, struct bus *bus, int fd, const char *path)
{
	char *name = xasprintf("--events %s", path);
	FILE *f = event_stream_open(loop, bus, fd, true, name);
	free(name);
	return f;
}

/* The live terminal view, and the descriptor of its terminal. */
struct tty_view {
	struct sink *sink;
	int fd;
	bool human_tty; /* the human output (tty or plain) is on a terminal: it shows approve gates' questions */
};

/* Wires the sinks the options ask for; sets the tty view, if there is one. */
/* Where a plan step is written (its full id), for CI annotations. */
static bool step_place(void *ud, const char *step, int *line, int *col)
{
	const struct step *s = step ? plan_find_step(ud, step) : NULL;
	if (!s)
		return false;
	*line = s->line;
	*col = s->col;
	return true;
}

static void add_sinks(struct bus *bus, const struct plan *p, const struct run_args *a, FILE *events, FILE *out,
		      FILE *err, struct tty_view *tty)
{
	bool events_stdout = a->events && !strcmp(a->events, "-");
	if (events)
		bus_add(bus, sink_json_new(events, true));
	enum output_mode m = a->output;
	if (events_stdout && (m == OUT_JSON))
		m = OUT_QUIET; /* one stream on stdout is enough */
	if (events_stdout)
		bus_add(bus, sink_json_new(out, false));
	/* with the event stream on stdout, people read stderr */
	FILE *human = events_stdout ? err : out;
	int fd = events_stdout ? STDERR_FILENO : STDOUT_FILENO;
	if (m == OUT_AUTO)
		m = isatty(fd) ? OUT_TTY : OUT_PLAIN;
	if (m == OUT_TTY && cmd_dumb_terminal())
		m = OUT_PLAIN; /* the live area needs a cursor that moves */
	const char *gha = getenv("GITHUB_ACTIONS");
	struct human_options o = {.color = use_color(a, m == OUT_TTY), .github = gha && !strcmp(gha, "true"),
				  .summary = true, .width = term_width(fd), .verbose = a->verbose,
				  .timestamps = a->timestamps};
	tty->human_tty = (m == OUT_TTY || m == OUT_PLAIN) && isatty(fd);
	switch (m) {
	case OUT_TTY:
		tty->sink = sink_tty_new(human, &o);
		tty->fd = fd;
		bus_add(bus, tty->sink);
		break;
	case OUT_PLAIN:
		bus_add(bus, sink_plain_new(human, &o));
		if (ci_detect() != CI_NONE) {
			struct ci_options co = {.kind = ci_detect(), .plan = a->plan, .where = step_place, .ud = (void *)p};
			bus_add(bus, sink_ci_new(human, &co));
		}
		break;
	case OUT_JSON:
		bus_add(bus, sink_json_new(out, false));
		break;
	case OUT_QUIET:
		/* errors still go to stderr: each failure's line, and the final line of a run that failed */
		if (a->output == OUT_QUIET)
			bus_add(bus, sink_quiet_new(err, isatty(STDERR_FILENO) && !no_color()));
		break;
	default:
		break;
	}
}

/* Writes out what stdio holds for f; false, said on stderr, when it could not be written. */
static bool flushed(FILE *f, const char *name)
{
	if (fflush(f) == 0 && !ferror(f))
		return true;
	fprintf(stderr, "baton: %s: %s\n", name, strerror(errno ? errno : EIO));
	return false;
}

/* The dry run's event stream: one plan.task per task the preview says the run would start. */
static void on_plan_task(void *ud, const struct pv_task *t)
{
	if (t->state == PV_SKIPPED)
		return;
	struct event e = {.type = EV_PLAN_TASK, .task = t->id, .step = t->node->step->full_id, .host = t->host,
			  .item = t->item, .label = t->label, .attempt = 1, .command = t->command, .shell = t->shell,
			  .cwd = t->cwd, .batch = t->batch, .condition = t->state == PV_RUNTIME ? t->why : NULL,
			  .handler = t->handler >= 0 ? handler_name((enum handler_kind)t->handler) : NULL};
	bus_emit(ud, &e);
}

static void dry_run_events(const struct preview *pv, const struct plan *p, const struct run_args *a,
			   const char *run_id, int events_fd, const char *const *secrets, size_t n_secrets,
			   bool *ok)
{
	struct bus bus;
	bus_init(&bus, run_id, secrets, n_secrets);
	FILE *f = events_fd >= 0 ? events_stream(NULL, &bus, events_fd, a->events)
				 : event_stream_open(NULL, &bus, STDOUT_FILENO, false, "standard output");
	bus_add(&bus, sink_json_new(f, true));
	struct pv_counts k;
	preview_count(pv, &k);
	struct event e = {.type = EV_RUN_START, .plan = p->file, .name = p->name, .dry_run = true,
			  .tasks = k.exact && !k.fails && !k.runtime ? (long)k.runs : -1};
	bus_emit(&bus, &e);
	struct pv_visitor v = {NULL, on_plan_task, NULL, SIZE_MAX, &bus};
	preview_walk(pv, &v);
	struct event end = {.type = EV_RUN_END, .status = ST_SUCCESS};
	bus_emit(&bus, &end);
	bus_close(&bus);
	*ok &= !bus.lost;
}

/*
 * The preview instead of a run: `baton plan` as text, json or dot; `run
 * --dry-run` as text, or with --output json as the event stream a run would
 * write (run.start, a plan.task per task, run.end) on stdout. --events adds
 * that stream to a file, or to stdout ('-', the preview then on stderr).
 */
static int dry_run(const struct graph *g, const struct plan *p, const struct run_args *a, const char *run_id,
		   int events_fd, bool preview)
{
	size_t n_secrets;
	char **secrets = plan_secret_values(p, &n_secrets);
	struct preview *pv = preview_new(g, (const char *const *)secrets, n_secrets);
	bool events_stdout = a->events && !strcmp(a->events, "-");
	bool json_events = !preview && a->output == OUT_JSON;
	FILE *out = events_stdout ? stderr : stdout;
	bool color = use_color(a, isatty(fileno(out)));
	if (preview && a->output == OUT_JSON)
		preview_json(pv, out);
	else if (preview && a->output == OUT_DOT)
		preview_dot(pv, out);
	else if (!json_events && a->output != OUT_QUIET)
		preview_text(pv, out, color);
	bool ok = flushed(out, events_stdout ? "standard error" : "standard output");
	if (events_fd >= 0 || events_stdout || json_events) {
		if ((events_stdout || json_events) && events_fd >= 0) {
			/* the file and stdout: two streams of the same events */
			dry_run_events(pv, p, a, run_id, events_fd, (const char *const *)secrets, n_secrets, &ok);
			events_fd = -1;
		}
		dry_run_events(pv, p, a, run_id, events_fd, (const char *const *)secrets, n_secrets, &ok);
	}
	preview_free(pv);
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	return ok ? EXIT_OK : EXIT_OUTPUT;
}

/* True when some step runs on a remote host (so libssh2 is worth loading). */
static bool needs_ssh(const struct plan *p)
{
	for (size_t i = 0; i < p->index_cap; i++) {
		const struct step *s = p->index[i];
		for (size_t k = 0; s && k < s->fan->n_hosts; k++)
			if (!p->inventory.hosts[s->fan->hosts[k]].local)
				return true;
	}
	return false;
}

/* A line of the known hosts file that baton skips: a warning each, on stderr and as an event. */
static void known_hosts_warning(void *ud, const char *msg)
{
	bus_warn(ud, false, NULL, "warning: %s", msg);
}

static struct executor *ssh_executor(uv_loop_t *loop, const struct graph *g, struct bus *bus, struct exec_fds *fds)
{
	const struct plan *p = g->plan;
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
		.warn = known_hosts_warning,
		.warn_ud = bus,
		.fds = fds,
		.max_idle = (size_t)g->max_hosts, /* open connections: max_hosts worked on, as many idle */
	};
	const char *why = NULL;
	struct executor *x = exec_ssh_new(loop, &o, &why);
	if (!x)
		fprintf(stderr, "baton: %s; steps on remote hosts will fail\n", why ? why : "no SSH");
	return x;
}

/* The terminal was resized: the live view is redrawn for its new width. */
static void on_winch(uv_signal_t *h, int signum)
{
	(void)signum;
	struct tty_view *v = h->data;
	sink_tty_resize(v->sink, term_width(v->fd));
}

/* resume: the store has commands with their secrets masked, so the command is masked before it is compared. */
struct reuse_ctx {
	const struct run_resume *rr;
	const struct bus *bus;
};

static bool reuse_masked(void *ud, const char *task, const char *command, const char *env, const char *host,
			 struct sched_reuse *r)
{
	struct reuse_ctx *c = ud;
	struct buf m = {0}, me = {0};
	bool masked = c->bus->n_secrets &&
		      mask_secrets(command, strlen(command), c->bus->secrets, c->bus->n_secrets, &m);
	bool env_masked = env && c->bus->n_secrets &&
			  mask_secrets(env, strlen(env), c->bus->secrets, c->bus->n_secrets, &me);
	bool hit = c->rr->match(c->rr->ud, task, masked ? m.data : command, env_masked ? me.data : env, host, r);
	buf_free(&m);
	buf_free(&me);
	return hit;
}

/* Runs the graph with the sinks wired: the tick and the flush before each wait, SIGWINCH for a tty view. */
static int run_loop(uv_loop_t *loop, struct bus *bus, struct tty_view *tty, const struct graph *g,
		    const struct plan *p, const char *run_id, struct exec_fds *fds, const struct run_resume *rr, bool yes)
{
	struct executor *x = exec_local_new(loop, fds);
	uv_timer_t tick;
	uv_timer_init(loop, &tick);
	tick.data = bus;
	uv_signal_t winch;
	uv_signal_init(loop, &winch);
	winch.data = tty;
	if (tty->sink) {
		uv_timer_start(&tick, on_tick, 100, 100);
		uv_unref((uv_handle_t *)&tick);
		uv_signal_start(&winch, on_winch, SIGWINCH);
		uv_unref((uv_handle_t *)&winch);
	}
	uv_prepare_t prep;
	uv_prepare_init(loop, &prep);
	prep.data = bus;
	uv_prepare_start(&prep, on_prepare);
	uv_unref((uv_handle_t *)&prep); /* it must not keep the loop alive */
	struct executor *ssh = needs_ssh(p) ? ssh_executor(loop, g, bus, fds) : NULL;
	struct sched_approver *approver = cmd_approver_new(loop, yes, !tty->sink, !tty->human_tty);
	if (tty->sink && tty->human_tty)
		cmd_approver_view(approver, tty->sink);
	struct sched_options o = {.loop = loop, .bus = bus, .exec = x, .ssh = ssh, .fds = fds, .run_id = run_id,
				  .approver = approver};
	struct reuse_ctx rc_ctx = {rr, bus};
	if (rr) {
		o.reuse = reuse_masked;
		o.reuse_ud = &rc_ctx;
		o.resumed_from = rr->from;
		o.preamble = rr->remote;
		o.n_preamble = rr->n_remote;
	}
	int rc = sched_run(g, &o);
	cmd_approver_free(approver);
	uv_close((uv_handle_t *)&prep, NULL);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_close((uv_handle_t *)&winch, NULL);
	x->ops->free(x);
	if (ssh)
		ssh->ops->free(ssh);
	return rc;
}


/*
 * --detach: tells the command that waits in the foreground that the run is
 * recorded ("ok ID") or why it is not ("no WHY"), once.
 */
static void tell_ready(const struct run_args *a, const char *id, const char *why)
{
	if (a->ready_fd < 0)
		return;
	char *msg = id ? xasprintf("ok %s\n", id) : xasprintf("no %s\n", why);
	ssize_t n = write(a->ready_fd, msg, strlen(msg));
	(void)n; /* the waiting command gone: nothing to tell */
	free(msg);
	close(a->ready_fd);
	((struct run_args *)a)->ready_fd = -1;
}

/* True unless BATON_NO_STORE turns recording off. */
static bool recording(void)
{
	const char *off = getenv("BATON_NO_STORE");
	return !off || !*off || !strcmp(off, "0");
}

/*
 * Records the run's start in the store and returns the store's sink (the
 * first of all: it commits before any other output writes). NULL when
 * recording is off, or impossible: then the run goes on, and says on stderr
 * that it is not recorded.
 */
static struct sink *record(uv_loop_t *loop, struct bus *bus, const struct run_args *a, const struct plan *p,
			   const struct graph *g)
{
	if (!recording()) {
		tell_ready(a, NULL, "recording is off (BATON_NO_STORE)");
		return NULL;
	}
	char *err = NULL;
	char *dir = store_dir(a->state_dir, &err);
	struct store *st = dir ? store_open(dir, true, &err) : NULL;
	json_t *argv = json_array();
	for (int i = 0; i < a->argc; i++)
		json_array_append_new(argv, json_string(a->argv[i]));
	char *argv_json = json_dumps(argv, JSON_COMPACT);
	char *vars_json = json_dumps(p->given, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(argv);
	struct store_file files[2] = {{.path = a->plan}, {.path = a->inventory}};
	size_t n_files = a->inventory ? 2 : 1;
	for (size_t i = 0; i < n_files; i++)
		files[i].text = store_read_file(files[i].path, &files[i].len);
	char *abs = realpath(a->plan, NULL);
	struct store_run_info ri = {.id = bus->run_id, .plan = a->plan, .plan_abs = abs ? abs : a->plan,
				    .name = p->name, .vars_json = vars_json, .argv_json = argv_json,
				    .tasks = g->tasks_exact ? (long)g->n_tasks : -1, .files = files, .n_files = n_files,
				    .resumed_from = a->resume ? a->resume->from : NULL};
	bool ok = st && store_begin(st, &ri, store_keep_runs(), &err);
	for (size_t i = 0; i < n_files; i++)
		free((char *)files[i].text);
	free(abs);
	free(argv_json);
	free(vars_json);
	free(dir);
	if (!ok) {
		fprintf(stderr, "baton: this run is not recorded: %s\n", err ? err : "the run store failed");
		tell_ready(a, NULL, err ? err : "the run store failed");
		free(err);
		store_close(st);
		return NULL;
	}
	struct sink *sink = store_sink_new(st, loop, bus);
	tell_ready(a, bus->run_id, NULL);
	return sink;
}

static int execute(const struct graph *g, const struct plan *p, const struct run_args *a, const char *run_id,
		   int events_fd)
{
	size_t n_secrets;
	char **secrets = plan_secret_values(p, &n_secrets);
	struct bus bus;
	bus_init(&bus, run_id, (const char *const *)secrets, n_secrets);
	uv_loop_t loop;
	uv_loop_init(&loop);
	/*
	 * Every output goes through a stream that never holds up the loop (a slow
	 * reader must not delay timeouts) and tells when a write fails. stdout and
	 * stderr on one pipe or terminal share one. While the run lasts, stderr is
	 * that stream too, for whatever else baton says there.
	 */
	fflush(stdout);
	fflush(stderr);
	FILE *out = event_stream_open(&loop, &bus, STDOUT_FILENO, false, "standard output");
	FILE *err = event_stream_same(STDOUT_FILENO, STDERR_FILENO)
			    ? out
			    : event_stream_open(&loop, &bus, STDERR_FILENO, false, "standard error");
	FILE *std_err = stderr;
	stderr = err;
	bus.err = err;
	FILE *events = events_fd >= 0 ? events_stream(&loop, &bus, events_fd, a->events) : NULL;
	struct tty_view tty = {NULL, -1, false};
	struct sink *rec = record(&loop, &bus, a, p, g);
	if (rec)
		bus_add(&bus, rec);
	add_sinks(&bus, p, a, events, out, err, &tty);
	/* the reports, and GitHub's job summary: written when the sink closes, whatever the run's end */
	const char *summary = getenv("GITHUB_STEP_SUMMARY");
	if (summary && !*summary)
		summary = NULL;
	if (a->n_reports || summary)
		bus_add(&bus, report_sink_new((struct report_file **)a->report_files, a->n_reports, summary, &bus));
	/* the budget outlives the executors: what they close after run_loop still gives back */
	struct exec_fds fds;
	exec_fds_init(&fds);
	/*
	 * A detached run that cannot be recorded does not run: the foreground
	 * has said it did not start, and nobody could follow, wait for or
	 * cancel it.
	 */
	int rc = rec || !a->detach ? run_loop(&loop, &bus, &tty, g, p, run_id, &fds, a->resume, a->yes) : EXIT_FAILED;
	bus_close(&bus);
	if (out != err)
		fclose(out); /* waits for its reader to take everything */
	bus.err = stderr = std_err;
	fclose(err);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		fprintf(stderr, "baton: internal error: handles left open at exit\n");
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	return rc == EXIT_OK && bus.lost ? EXIT_OUTPUT : rc;
}

/* A signal while baton waits for the plan's lock: nothing has started yet, so it leaves at once. */
static void on_lock_signal(int sig)
{
	static const char msg[] = "baton: interrupted while waiting for the plan's lock\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)n; /* nothing more can be done about a failed write here */
	_exit(sig == SIGTERM ? EXIT_SIGTERM : EXIT_SIGINT);
}

/*
 * Takes the plan's lock (runs.md "Cross-run locks") before anything runs,
 * waiting up to its `wait`; NULL, said on stderr, when it cannot. SIGINT and
 * SIGTERM end the wait and baton at once (130, 143): there is nothing to
 * clean up yet, and the kernel drops the lock with the process.
 */
static struct store_lock *take_lock(const struct plan *p, const struct run_args *a, const char *run_id)
{
	char *why = NULL;
	char *dir = store_dir(a->state_dir, &why);
	struct store_lock *l = NULL;
	if (dir) {
		struct sigaction sa = {.sa_handler = on_lock_signal}, old_int = {.sa_handler = SIG_DFL},
				 old_term = {.sa_handler = SIG_DFL};
		sigemptyset(&sa.sa_mask);
		bool caught = sigaction(SIGINT, &sa, &old_int) == 0 && sigaction(SIGTERM, &sa, &old_term) == 0;
		if (caught)
			l = store_lock_take(dir, p->lock, p->lock_wait_ms, run_id, stderr, &why);
		else
			why = xasprintf("cannot catch SIGINT and SIGTERM while waiting for lock %s: %s", p->lock,
					strerror(errno));
		/* the scheduler catches them from here on */
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		free(dir);
	}
	if (!l) {
		fprintf(stderr, "baton: %s\n", why);
		free(why);
	}
	return l;
}


/*
 * --detach: the run goes on in a child, in a session of its own with no
 * terminal, its standard streams on /dev/null; this process waits until the
 * child says the run is recorded, prints how to follow it and returns 0.
 * Returns -1 in the child, which goes on to run.
 */
static int detach(struct run_args *a)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		fprintf(stderr, "baton: --detach: %s\n", strerror(errno));
		return EXIT_INTERNAL;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "baton: --detach: %s\n", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return EXIT_INTERNAL;
	}
	if (pid == 0) {
		close(fds[0]);
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (int fd = 0; fd < 3 && null >= 0; fd++)
			dup2(null, fd);
		if (null > 2)
			close(null);
		a->ready_fd = fds[1];
		a->output = OUT_QUIET;
		return -1;
	}
	close(fds[1]);
	char msg[512] = "";
	size_t got = 0;
	ssize_t n;
	while (got < sizeof msg - 1 && (n = read(fds[0], msg + got, sizeof msg - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
		if (memchr(msg, '\n', got))
			break;
	}
	close(fds[0]);
	msg[got] = 0;
	msg[strcspn(msg, "\n")] = 0;
	if (strncmp(msg, "ok ", 3) != 0) {
		int st = 0;
		/* it could not record the run: it stops there (see below), or it failed before */
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		fprintf(stderr, "baton: the run did not start in the background: %s\n",
			!strncmp(msg, "no ", 3) ? msg + 3 : "it ended before it was recorded");
		return WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : EXIT_FAILED;
	}
	const char *id = msg + 3;
	printf("run %s started in the background (pid %ld)\n"
	       "  follow it:   baton logs -f %s\n"
	       "  its state:   baton status %s\n"
	       "  wait for it: baton wait %s\n"
	       "  stop it:     baton cancel %s\n",
	       id, (long)pid, id, id, id, id);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_OUTPUT;
}

/* Loads the plan: the file, or (resume --snapshot) the text recorded of it, under its path. */
static struct plan *load_plan(const struct run_args *a, const struct load_options *lo)
{
	if (!a->resume || !a->resume->plan_text)
		return cmd_load_plan(a->plan, lo);
	struct diags d = {0};
	struct plan *p = plan_load_buffer_opts(a->plan, a->resume->plan_text, a->resume->plan_len, lo, &d);
	diags_print(&d, stderr);
	diags_free(&d);
	return p;
}

static int run_main(int argc, char **argv, bool preview, const struct run_resume *rr)
{
	struct run_args a = {.output = preview ? OUT_TEXT : OUT_AUTO, .argc = argc, .argv = argv, .resume = rr, .ready_fd = -1};
	var_args_init(&a.vars);
	int rc = parse_args(argc, argv, preview, &a);
	if (rc) {
		var_args_free(&a.vars);
		free(a.only);
		return rc < 0 ? 0 : rc;
	}
	struct load_options lo = {.inventory = a.inventory, .limit = a.limit, .secrets_optional = preview || a.dry_run};
	var_args_load_options(&a.vars, &lo);
	struct plan *p = load_plan(&a, &lo);
	if (!p) {
		var_args_free(&a.vars);
		free(a.only);
		return 2;
	}
	struct diags d = {0};
	struct graph_options go = {.concurrency = a.jobs, .max_hosts = a.max_hosts, .only = a.only, .n_only = a.n_only,
				   .from = a.from};
	struct graph *g = graph_compile(p, &go, &d);
	diags_print(&d, stderr);
	diags_free(&d);
	if (!g) {
		rc = 2;
	} else {
		char *run_id = event_new_run_id();
		bool live = !preview && !a.dry_run;
		/*
		 * The lock first: a run that waits for it, or fails, must not
		 * truncate an --events file the holder may be writing. A detached
		 * run takes it here, in the foreground, and its child keeps it.
		 */
		struct store_lock *lock = NULL;
		int events_fd = -1;
		if (a.detach && a.dry_run) {
			rc = cmd_usage_error("run", "--detach and --dry-run do not go together");
		} else if (a.detach && !recording()) {
			rc = cmd_usage_error("run", "--detach needs the run store (BATON_NO_STORE is set)");
		} else if (live && p->lock && !(lock = take_lock(p, &a, run_id))) {
			rc = EXIT_LOCKED;
		} else if ((events_fd = open_events(&a)) == -2) {
			rc = 2;
		} else if (!open_reports(&a)) {
			if (events_fd >= 0)
				close(events_fd);
			rc = 2;
		} else if (!live) {
			rc = dry_run(g, p, &a, run_id, events_fd, preview);
		} else if (a.detach && (rc = detach(&a)) >= 0) {
			/* the foreground half: the run goes on in the child */
			if (events_fd >= 0)
				close(events_fd);
			for (size_t i = 0; i < a.n_reports; i++)
				report_file_release(a.report_files[i]);
		} else {
			rc = execute(g, p, &a, run_id, events_fd);
			if (a.detach) {
				tell_ready(&a, NULL, "the run ended before it was recorded");
				store_lock_release(lock);
				graph_free(g);
				plan_free(p);
				var_args_free(&a.vars);
				free(a.only);
				free(run_id);
				_exit(rc); /* the child: nothing of the foreground's stdio to flush twice */
			}
		}
		store_lock_release(lock); /* the run is over: the next one may go */
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
	return run_main(argc, argv, false, NULL);
}

int cmd_run_resumed(int argc, char **argv, const struct run_resume *rr)
{
	return run_main(argc, argv, false, rr);
}

int cmd_plan(int argc, char **argv)
{
	return run_main(argc, argv, true, NULL);
}
