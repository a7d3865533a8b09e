/*
 * resume.c — the verbs that act on a recorded run: `resume` (a new run that
 * carries over what succeeded), `wait` and `cancel`. They find the run in
 * the store (src/store/), end what a crashed run left running, and hand a
 * resume to run.c with what to carry over.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "plan/plan.h"
#include "sched/sched.h"
#include "store/store.h"

static const char resume_help[] =
	"usage: baton resume [RUN] [PLAN] [OPTIONS]\n"
	"\n"
	"Starts a new run, linked to RUN (an id, a unique prefix of one, or the newest\n"
	"run; of PLAN when given), that re-runs only what did not succeed: a task is\n"
	"carried over, not run, when RUN (or a run it resumed) recorded it succeeded with\n"
	"the same task id, command, environment from the plan's env, and host; it\n"
	"keeps its recorded output for ${{ steps... }} and for_each. A command (or env)\n"
	"changed in the plan runs again. Serves a failed, a cancelled and a crashed\n"
	"run: of a crashed one, what is still running is ended first.\n"
	"\n"
	"The run's own options (--var, --var-file, --secret-file, --inventory, --limit,\n"
	"-j, --only, --from) are used again; those given here are added after them\n"
	"(a later --var wins; --only, --from or --limit given here replace the recorded).\n"
	"It runs in the directory the run was started in (commands, cwd: and recorded\n"
	"relative paths mean what they meant then), so it may be started anywhere.\n"
	"\n"
	"  --snapshot          run the plan text recorded with RUN, not the file\n"
	"  --state-dir DIR     the run store\n"
	"  any option of 'baton run' (--output, --events, --detach, ...)\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: that of the new run; 2 when RUN cannot be found or resumed.\n";

static const char wait_help[] =
	"usage: baton wait [RUN...] [--timeout DURATION] [--state-dir DIR]\n"
	"\n"
	"Waits until the runs end (RUN: an id or unique prefix; none: the newest run)\n"
	"and exits with the run's own exit status; with several, the highest. A run\n"
	"that crashed (its controller died) gives 1.\n"
	"\n"
	"  --timeout D         give up after D (e.g. 30s, 5m): exit 124\n"
	"  --state-dir DIR     the run store (see 'baton runs --help')\n"
	"  -h, --help          show this help\n";

static const char cancel_help[] =
	"usage: baton cancel [RUN] [--kill] [--state-dir DIR]\n"
	"\n"
	"Asks a running run (RUN: an id or unique prefix; none: the newest) to stop, as\n"
	"Ctrl-C would: running tasks are stopped, and continuations and 'finally' still\n"
	"run. --kill: as a second Ctrl-C (handlers do not run; everything is killed).\n"
	"Of a crashed run (its controller died), ends what it left running.\n"
	"\n"
	"  --kill              as a second Ctrl-C: everything is killed at once\n"
	"  --state-dir DIR     the run store (see 'baton runs --help')\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 when asked; 2 when RUN is not running or cannot be found.\n";

/* Opens the store named by --state-dir (or the default) for reading; NULL, said, when it cannot. */
static struct store *open_store(const char *verb, const char *dir_opt)
{
	char *err = NULL;
	char *dir = store_dir(dir_opt, &err);
	struct store *st = dir ? store_open(dir, false, &err) : NULL;
	if (!st)
		fprintf(stderr, "baton %s: %s\n", verb, err ? err : "no run store");
	free(err);
	free(dir);
	return st;
}

static bool find_run(struct store *st, const char *verb, const char *ref, const char *plan, struct store_run *r)
{
	char *err = NULL;
	char *abs = plan ? realpath(plan, NULL) : NULL;
	bool ok = store_find(st, ref, abs ? abs : plan, r, &err);
	if (!ok)
		fprintf(stderr, "baton %s: %s\n", verb, err);
	free(err);
	free(abs);
	return ok;
}

/* What ends, on its host, the process group pgid of run id, unless the group's leader is another process. */
static char *remote_kill(const char *id, long pgid)
{
	return xasprintf("p=%ld; if [ -r /proc/$p/environ ] && ! tr '\\000' '\\n' </proc/$p/environ | "
			 "grep -qx 'BATON_RUN_ID=%s'; then exit 0; fi; kill -s TERM -- -$p 2>/dev/null || exit 0; "
			 "sleep 2; kill -s KILL -- -$p 2>/dev/null; exit 0",
			 pgid, id);
}

/* Ends what crashed run r left running here; says how many groups. */
static void end_leftovers(struct store *st, const char *verb, const struct store_run *r)
{
	size_t n = 0;
	struct store_task *t = store_tasks(st, r->id, false, &n);
	size_t ended = store_end_local(r, t, n);
	size_t remote = 0;
	for (size_t i = 0; i < n; i++)
		remote += !t[i].kind && t[i].status && !strcmp(t[i].status, "running") && t[i].remote_pgid > 0;
	if (ended)
		fprintf(stderr, "baton %s: run %s had crashed: ended %zu process group%s it left running here\n", verb,
			r->id, ended, ended == 1 ? "" : "s");
	if (remote)
		fprintf(stderr,
			"baton %s: run %s had %zu task%s running on remote hosts; each ends there when its "
			"connection is gone (within a few seconds of the crash)%s\n",
			verb, r->id, remote, remote == 1 ? "" : "s",
			strcmp(verb, "resume") ? "; 'baton resume' also ends them before it starts" : ", and is ended now");
	for (size_t i = 0; i < n; i++)
		store_task_free(&t[i]);
	free(t);
}

/* --- resume --- */

/* What resume carries over, and from which run (for what it says). */
struct carry {
	struct store_carried *c;
	const char *from;
};

static bool carry_over(void *ud, const char *task, const char *command, const char *env, const char *host,
		       struct sched_reuse *r)
{
	struct carry *k = ud;
	bool changed;
	const struct store_task *t = store_carried_find(k->c, task, command, env, host, &changed);
	if (changed)
		fprintf(stderr, "baton: %s: its command or environment changed since run %s: it runs again\n", task,
			k->from);
	if (!t)
		return false;
	r->duration_ms = t->duration_ms;
	r->out = t->out;
	r->out_len = t->out_len;
	r->err = t->err;
	r->err_len = t->err_len;
	r->outputs = t->outputs;
	return true;
}

/* The options of the recorded argv that a resume uses again (with their values), as argv entries. */
static bool reused_option(const char *o, bool *has_value)
{
	static const char *const with[] = {"--var", "--var-file", "--secret-file", "--inventory", "--limit",
					   "-j", "--jobs", "--max-hosts", "--only", "--from"};
	for (size_t i = 0; i < sizeof with / sizeof *with; i++) {
		size_t l = strlen(with[i]);
		if (!strncmp(o, with[i], l) && (o[l] == '=' || o[l] == 0)) {
			*has_value = o[l] == 0;
			return true;
		}
	}
	if (!strncmp(o, "-j", 2) && o[2]) {
		*has_value = false;
		return true;
	}
	return false;
}

/*
 * The value val of recorded option opt (its name, up to any '='), made
 * absolute against the directory the run was started in when it is a
 * relative path (--var-file F, --inventory F, --secret-file K=PATH): a
 * resume may be started from anywhere. NULL: it stays as it is.
 */
static char *anchored(const char *opt, const char *val, const char *cwd)
{
	size_t l = strcspn(opt, "=");
	bool file = (l == 10 && !strncmp(opt, "--var-file", l)) || (l == 11 && !strncmp(opt, "--inventory", l)) ||
		    (l == 8 && !strncmp(opt, "--events", l) && val && strcmp(val, "-")) ||
		    (l == 11 && !strncmp(opt, "--state-dir", l));
	bool secret = l == 13 && !strncmp(opt, "--secret-file", l);
	if (!cwd || *cwd != '/' || !val || (!file && !secret))
		return NULL;
	const char *path = val;
	if (secret && !(path = strchr(val, '=')))
		return NULL;
	path += secret;
	if (!*path || *path == '/')
		return NULL;
	return xasprintf("%.*s%s/%s", (int)(path - val), val, cwd, path);
}

/*
 * True when the option given on resume's command line replaces the recorded
 * ones of its kind: the selection (--only, --from, --limit), and what may be
 * given once (--inventory, -j, --max-hosts). --var and the like add to the recorded.
 */
static bool replaces(const char *given, const char *recorded)
{
	static const char *const sel[][2] = {{"--only", NULL}, {"--from", NULL},     {"--limit", NULL},
					     {"--inventory", NULL}, {"--jobs", "-j"},  {"--max-hosts", NULL}};
	for (size_t i = 0; i < sizeof sel / sizeof *sel; i++) {
		bool g = false, r = false;
		for (int k = 0; k < 2 && sel[i][k]; k++) {
			size_t l = strlen(sel[i][k]);
			bool shortopt = sel[i][k][1] != '-'; /* -j4 as well as -j 4 */
			g |= !strncmp(given, sel[i][k], l) && (given[l] == '=' || !given[l] || shortopt);
			r |= !strncmp(recorded, sel[i][k], l) && (recorded[l] == '=' || !recorded[l] || shortopt);
		}
		if (g && r)
			return true;
	}
	return false;
}

/* resume's own options (read by hand below: the rest go to run), for completion */
const char resume_shorts[] = "h";
const struct option resume_opts[] = {{"snapshot", no_argument, 0, 'n'},
				     {"state-dir", required_argument, 0, 'S'},
				     {"help", no_argument, 0, 'h'},
				     {0, 0, 0, 0}};

/* True when w is an option of run (its table) whose value is the next word: --junit F, -j N, not --junit=F. */
static bool run_option_needs_value(const char *w)
{
	if (w[0] == '-' && w[1] == '-') {
		if (strchr(w, '='))
			return false;
		for (const struct option *o = run_opts; o->name; o++)
			if (!strcmp(o->name, w + 2))
				return o->has_arg == required_argument;
		return false;
	}
	const char *c = w[1] && !w[2] ? strchr(run_shorts, w[1]) : NULL;
	return c && c[1] == ':';
}

int cmd_resume(int argc, char **argv)
{
	const char *dir_opt = NULL, *ref = NULL, *plan = NULL;
	bool snapshot = false;
	/* resume's own words; everything else is for run */
	char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
	int n_rest = 0;
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (!strcmp(w, "-h") || !strcmp(w, "--help")) {
			fputs(resume_help, stdout);
			free(rest);
			return 0;
		} else if (!strcmp(w, "--snapshot")) {
			snapshot = true;
		} else if (!strcmp(w, "--state-dir") && i + 1 < argc) {
			dir_opt = argv[++i];
		} else if (!strncmp(w, "--state-dir=", 12)) {
			dir_opt = w + 12;
		} else if (w[0] == '-') {
			rest[n_rest++] = argv[i];
			/* an option of run that takes a value: its value goes with it */
			if (run_option_needs_value(w) && i + 1 < argc)
				rest[n_rest++] = argv[++i];
		} else {
			struct stat sb;
			bool is_file = stat(w, &sb) == 0 && S_ISREG(sb.st_mode);
			if (is_file && !plan) {
				plan = w;
			} else if (!is_file && !ref) {
				ref = w;
			} else {
				free(rest);
				return cmd_usage_error("resume", "'%s': one run and one plan at most", w);
			}
		}
	}
	struct store *st = open_store("resume", dir_opt);
	struct store_run r;
	if (!st || !find_run(st, "resume", ref, plan, &r)) {
		store_close(st);
		free(rest);
		return 2;
	}
	int rc = 2;
	struct sched_preamble *pre = NULL;
	size_t n_pre = 0;
	char *plan_given = NULL;
	if (r.state == RS_RUNNING) {
		fprintf(stderr, "baton resume: run %s is still running (pid %ld): 'baton cancel %s' or 'baton wait %s' first\n",
			r.id, r.pid, r.id, r.id);
		goto out;
	}
	if (r.state == RS_SUCCESS && !plan)
		fprintf(stderr, "baton resume: run %s succeeded: every task is carried over\n", r.id);
	if (r.state == RS_CRASHED) {
		end_leftovers(st, "resume", &r);
		size_t n;
		struct store_task *t = store_tasks(st, r.id, false, &n);
		pre = xcalloc(n + 1, sizeof *pre);
		for (size_t i = 0; i < n; i++)
			if (!t[i].kind && t[i].status && !strcmp(t[i].status, "running") && t[i].remote_pgid > 0 &&
			    t[i].remote_host) {
				pre[n_pre].host = xstrdup(t[i].remote_host);
				pre[n_pre++].command = remote_kill(r.id, t[i].remote_pgid);
			}
		for (size_t i = 0; i < n; i++)
			store_task_free(&t[i]);
		free(t);
	}
	plan_given = plan ? realpath(plan, NULL) : NULL; /* resume goes to the run's directory */
	const char *plan_path = plan_given ? plan_given : plan ? plan : r.plan_abs;
	struct run_resume rr = {.from = r.id, .remote = pre, .n_remote = n_pre};
	size_t text_len = 0;
	char *text = NULL;
	if (snapshot) {
		text = store_plan_text(st, r.id, &text_len);
		if (!text) {
			fprintf(stderr, "baton resume: run %s has no recorded plan text\n", r.id);
			goto out;
		}
		rr.plan_text = text;
		rr.plan_len = text_len;
	} else if (access(plan_path, R_OK) != 0) {
		fprintf(stderr, "baton resume: the plan of run %s, %s, cannot be read (%s): 'baton resume %s --snapshot' runs "
			"the copy recorded with the run\n", r.id, plan_path, strerror(errno), r.id);
		goto out;
	} else if (store_file_changed(plan_path, r.plan_sha256)) {
		fprintf(stderr, "baton resume: %s changed since run %s: a task whose command changed runs again "
			"(each is named below); --snapshot runs the plan as it was\n", plan_path, r.id);
	}
	/* what was carried: this run's tasks, and those of the runs it resumed, the newest last */
	struct carry k = {store_carried_load(st, &r), r.id};
	rr.match = carry_over;
	rr.ud = &k;
	/* argv for run: the recorded options, then those given here */
	json_error_t je;
	json_t *rec = r.argv_json ? json_loads(r.argv_json, 0, &je) : NULL;
	size_t nrec = json_is_array(rec) ? json_array_size(rec) : 0;
	char **av = xcalloc(nrec + (size_t)n_rest + 3, sizeof *av);
	char **made = xcalloc(nrec + 1, sizeof *made); /* what av holds that is freed after */
	size_t n_made = 0;
	int ac = 0;
	av[ac++] = "run";
	av[ac++] = (char *)plan_path;
	for (size_t i = 1; i < nrec; i++) {
		const char *w = json_string_value(json_array_get(rec, i));
		bool v = false;
		if (!w || w[0] != '-' || !reused_option(w, &v))
			continue;
		bool replaced = false;
		for (int k = 0; k < n_rest && !replaced; k++)
			replaced = replaces(rest[k], w);
		const char *val = v && i + 1 < nrec ? json_string_value(json_array_get(rec, i + 1)) : NULL;
		if (v)
			i++;
		if (replaced)
			continue;
		char *a = NULL;
		if (val) {
			av[ac++] = (char *)w;
			a = anchored(w, val, r.cwd);
			av[ac++] = a ? a : (char *)val;
		} else if (strchr(w, '=') && (a = anchored(w, strchr(w, '=') + 1, r.cwd))) {
			char *joined = xasprintf("%.*s=%s", (int)strcspn(w, "="), w, a);
			free(a);
			av[ac++] = a = joined;
		} else {
			av[ac++] = (char *)w;
		}
		if (a)
			made[n_made++] = a;
	}
	/* those given here: their paths from here, since the run goes on where the first one was started */
	char *here = getcwd(NULL, 0);
	made = xrealloc(made, (n_made + (size_t)n_rest + 2) * sizeof *made);
	for (int k = 0; k < n_rest; k++) {
		const char *w = rest[k];
		char *a = NULL;
		bool v = false;
		if (w[0] == '-' && k + 1 < n_rest && (reused_option(w, &v) || !strcmp(w, "--events")) &&
		    (v || !strcmp(w, "--events")) && !strchr(w, '=')) {
			av[ac++] = rest[k++];
			a = anchored(w, rest[k], here);
			av[ac++] = a ? a : rest[k];
		} else if (w[0] == '-' && strchr(w, '=') && (a = anchored(w, strchr(w, '=') + 1, here))) {
			char *joined = xasprintf("%.*s=%s", (int)strcspn(w, "="), w, a);
			free(a);
			av[ac++] = a = joined;
		} else {
			av[ac++] = rest[k];
		}
		if (a)
			made[n_made++] = a;
	}
	{
		/* the store the run was found in, wherever resume goes (a relative BATON_STATE_DIR too) */
		av = xrealloc(av, ((size_t)ac + 3) * sizeof *av);
		av[ac++] = "--state-dir";
		char *a = realpath(store_path(st), NULL);
		av[ac++] = a ? a : (char *)store_path(st);
		if (a)
			made[n_made++] = a;
	}
	free(here);
	av[ac] = NULL;
	fprintf(stderr, "baton: resuming run %s (%s)\n", r.id, run_state_name(r.state));
	/* where the run was started: its commands and relative paths mean what they meant then */
	if (r.cwd && chdir(r.cwd) != 0)
		fprintf(stderr, "baton resume: cannot go to %s, where run %s was started (%s): it runs here\n", r.cwd, r.id,
			strerror(errno));
	store_close(st);
	st = NULL;
	rc = cmd_run_resumed(ac, av, &rr);
	free(av);
	for (size_t i = 0; i < n_made; i++)
		free(made[i]);
	free(made);
	json_decref(rec);
	store_carried_free(k.c);
	free(text);
out:
	free(plan_given);
	for (size_t i = 0; i < n_pre; i++) {
		free((char *)pre[i].host);
		free((char *)pre[i].command);
	}
	free(pre);
	store_run_free(&r);
	store_close(st);
	free(rest);
	return rc;
}

/* --- wait and cancel --- */

static int parse_duration_ms(const char *s, uint64_t *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	double mul = !*end || !strcmp(end, "s") ? 1000 : !strcmp(end, "ms") ? 1 : !strcmp(end, "m") ? 60000
		     : !strcmp(end, "h")				   ? 3600000
									   : -1;
	if (mul < 0 || v * mul > 1e15)
		return -1;
	*ms = (uint64_t)(v * mul);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* the options of 'baton wait' as getopt_long reads them (completion offers them too) */
const char wait_shorts[] = "h";
const struct option wait_opts[] = {{"timeout", required_argument, 0, 't'},
					     {"state-dir", required_argument, 0, 'S'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};

int cmd_wait(int argc, char **argv)
{
	const char *dir_opt = NULL;
	uint64_t timeout = 0;
	bool has_timeout = false;
	const char *timeout_text = "";
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, wait_shorts, wait_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(wait_help, stdout);
			return 0;
		} else if (c == 'S') {
			dir_opt = optarg;
		} else if (c == 't') {
			if (parse_duration_ms(optarg, &timeout) != 0)
				return cmd_usage_error("wait", "--timeout takes a duration (30s, 5m, 500ms), not '%s'", optarg);
			has_timeout = true;
			timeout_text = optarg;
		} else {
			return cmd_bad_option("wait", argc, argv, wait_opts, wait_shorts);
		}
	}
	struct store *st = open_store("wait", dir_opt);
	if (!st)
		return 2;
	/* the runs, found once: by id from here on */
	size_t n = argc > optind ? (size_t)(argc - optind) : 1;
	char **ids = xcalloc(n, sizeof *ids);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_run r;
		if (!find_run(st, "wait", argc > optind ? argv[optind + (int)i] : NULL, NULL, &r)) {
			rc = 2;
			break;
		}
		ids[i] = xstrdup(r.id);
		store_run_free(&r);
	}
	uint64_t start = mono_ms();
	int worst = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		for (;;) {
			struct store_run r;
			char *err = NULL;
			if (!store_find(st, ids[i], NULL, &r, &err)) {
				fprintf(stderr, "baton wait: %s\n", err);
				free(err);
				rc = 2;
				break;
			}
			if (r.state != RS_RUNNING) {
				int code = r.state == RS_CRASHED ? 1 : r.exit_code;
				if (r.state == RS_CRASHED)
					fprintf(stderr, "baton wait: run %s crashed (its controller, pid %ld, is gone)\n", r.id,
						r.pid);
				worst = code > worst ? code : worst;
				store_run_free(&r);
				break;
			}
			store_run_free(&r);
			if (has_timeout && mono_ms() - start >= timeout) {
				fprintf(stderr, "baton wait: run %s still running after %s\n", ids[i], timeout_text);
				rc = 124;
				break;
			}
			struct timespec ts = {0, 100 * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	store_close(st);
	return rc ? rc : worst;
}

/* the options of 'baton cancel' as getopt_long reads them (completion offers them too) */
const char cancel_shorts[] = "h";
const struct option cancel_opts[] = {{"kill", no_argument, 0, 'k'},
					     {"state-dir", required_argument, 0, 'S'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};

int cmd_cancel(int argc, char **argv)
{
	const char *dir_opt = NULL;
	bool hard = false;
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, cancel_shorts, cancel_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(cancel_help, stdout);
			return 0;
		} else if (c == 'S') {
			dir_opt = optarg;
		} else if (c == 'k') {
			hard = true;
		} else {
			return cmd_bad_option("cancel", argc, argv, cancel_opts, cancel_shorts);
		}
	}
	if (argc - optind > 1)
		return cmd_usage_error("cancel", "one run at a time");
	struct store *st = open_store("cancel", dir_opt);
	struct store_run r;
	if (!st || !find_run(st, "cancel", optind < argc ? argv[optind] : NULL, NULL, &r)) {
		store_close(st);
		return 2;
	}
	int rc = 0;
	if (r.state == RS_CRASHED) {
		end_leftovers(st, "cancel", &r);
		fprintf(stderr, "baton cancel: run %s had crashed; 'baton resume %s' re-runs what did not succeed\n", r.id,
			r.id);
	} else if (r.state != RS_RUNNING) {
		fprintf(stderr, "baton cancel: run %s is not running: it ended %s (exit %d)\n", r.id,
			run_state_name(r.state), r.exit_code);
		rc = 2;
	} else if (kill((pid_t)r.pid, SIGINT) != 0) {
		fprintf(stderr, "baton cancel: cannot signal run %s (pid %ld): %s\n", r.id, r.pid, strerror(errno));
		rc = 1;
	} else {
		if (hard) {
			/* a second interrupt, once the first was taken (signals of one kind do not queue) */
			struct timespec ts = {0, 200 * 1000000L};
			nanosleep(&ts, NULL);
			if (store_run_alive(&r))
				kill((pid_t)r.pid, SIGINT);
		}
		printf("cancelling run %s (pid %ld)%s; 'baton wait %s' waits for its end\n", r.id, r.pid,
		       hard ? ", killing what runs" : "", r.id);
	}
	store_run_free(&r);
	store_close(st);
	return rc;
}
