/*
 * completion.c — `baton completion SHELL` prints the completion script for
 * bash, zsh or fish; the script asks `baton completion --complete WORD...`
 * on every Tab, and this file answers from the option tables the commands
 * parse with (cmd_defs), so what is offered never drifts from what is taken.
 * It only ever reads: a plan is loaded (never run) for its step ids, the run
 * store is read for run ids; every error is silent (nothing to offer).
 *
 * The answer, one item a line: the kind (words, files, plans, dirs), the
 * prefix kept before a file name ("--events=" of "--events=out"), the stem
 * to complete as a file name, then for words each candidate, "WORD[\tTEXT]".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "completion_scripts.h"
#include "plan/plan.h"
#include "store/store.h"
#include "util/util.h"

static const char help[] =
	"usage: baton completion bash|zsh|fish\n"
	"       baton completion --steps PLAN\n"
	"       baton completion --runs [--state-dir DIR]\n"
	"\n"
	"Prints the completion script for the shell; see baton(1), COMPLETION, for\n"
	"how to enable it ('make install' installs all three). It completes commands,\n"
	"their options, the values of --output and --color, file names, the step ids\n"
	"of the plan on the line (--only, --from) and run ids.\n"
	"\n"
	"  --steps PLAN        print the step ids of PLAN, one a line (read, never run;\n"
	"                      nothing when it does not load)\n"
	"  --runs              print the recorded run ids, newest first, one a line\n"
	"  --state-dir DIR     the run store (see 'baton runs --help')\n"
	"  -h, --help          show this help\n";

const char completion_shorts[] = "h";
const struct option completion_opts[] = {{"steps", required_argument, 0, 's'},
					 {"runs", no_argument, 0, 'r'},
					 {"state-dir", required_argument, 0, 'S'},
					 {"help", no_argument, 0, 'h'},
					 {0, 0, 0, 0}};

static const char *const shells[] = {"bash", "zsh", "fish"};

/* --- what an option's value, or a command's argument, is --- */

enum kind {
	K_NONE, K_FILE, K_PLAN, K_DIR, K_STEP, K_OUTPUT, K_COLOR, K_SECRET, K_LIMIT, K_RUN, K_RUN_OR_PLAN, K_TASK, K_SHELL
};

static const struct {
	const char *name;
	enum kind kind;
} value_kinds[] = {
	{"var-file", K_FILE}, {"events", K_FILE},    {"inventory", K_FILE}, {"junit", K_FILE},  {"report", K_FILE},
	{"html", K_FILE},     {"plan", K_PLAN},      {"steps", K_PLAN},     {"state-dir", K_DIR}, {"only", K_STEP},
	{"from", K_STEP},     {"output", K_OUTPUT},  {"color", K_COLOR},    {"secret-file", K_SECRET},
	{"limit", K_LIMIT},
};

/* A command's arguments: the first, and those after it. */
static const struct {
	const char *verb;
	enum kind first, rest;
} arg_kinds[] = {
	{"run", K_PLAN, K_NONE},   {"plan", K_PLAN, K_NONE},	{"check", K_PLAN, K_PLAN},
	{"status", K_RUN, K_NONE}, {"logs", K_RUN, K_TASK},	{"cancel", K_RUN, K_NONE},
	{"report", K_RUN, K_NONE}, {"wait", K_RUN, K_RUN},	{"resume", K_RUN_OR_PLAN, K_PLAN},
	{"completion", K_SHELL, K_NONE},
};

/* Options a command's table holds that are not for it: plan shares run's table. */
static bool hidden(const char *verb, const char *opt)
{
	static const char *const not_plan[] = {"dry-run", "detach", "yes", "state-dir", "junit", "report", "markdown",
					       "timestamps", "verbose"};
	if (strcmp(verb, "plan"))
		return false;
	for (size_t i = 0; i < sizeof not_plan / sizeof *not_plan; i++)
		if (!strcmp(opt, not_plan[i]))
			return true;
	return false;
}

static enum kind value_kind(const char *opt)
{
	for (size_t i = 0; i < ARRAY_LEN(value_kinds); i++)
		if (!strcmp(value_kinds[i].name, opt))
			return value_kinds[i].kind;
	return K_NONE;
}

/* --- a command's options: its table, and for resume run's as well --- */

struct optset {
	const char *verb;
	const struct option *tables[2];
	const char *shorts[2];
};

static bool optset_of(const char *verb, struct optset *s)
{
	*s = (struct optset){.verb = verb};
	for (size_t i = 0; i < cmd_n_defs; i++)
		if (!strcmp(cmd_defs[i].name, verb)) {
			s->tables[0] = cmd_defs[i].opts;
			s->shorts[0] = cmd_defs[i].shorts;
			if (!strcmp(verb, "resume")) {
				s->tables[1] = run_opts;
				s->shorts[1] = run_shorts;
			}
			return true;
		}
	return false;
}

/* The long option named by the n bytes at name: exact, else the only one they begin. */
static const struct option *find_long(const struct optset *s, const char *name, size_t n)
{
	const struct option *found = NULL;
	size_t prefixed = 0;
	for (int t = 0; t < 2; t++)
		for (const struct option *o = s->tables[t]; o && o->name; o++) {
			if (strncmp(o->name, name, n) || hidden(s->verb, o->name))
				continue;
			if (!o->name[n])
				return o;
			if (!found || strcmp(found->name, o->name))
				prefixed++;
			found = o;
		}
	return prefixed == 1 ? found : NULL;
}

/* The long option whose val is the short option c, or NULL; *takes: c takes a value. */
static const struct option *find_short(const struct optset *s, int c, bool *takes, bool *known)
{
	*takes = *known = false;
	for (int t = 0; t < 2; t++) {
		const char *p = s->shorts[t] ? strchr(s->shorts[t], c) : NULL;
		if (!p || c == ':')
			continue;
		*known = true;
		*takes = p[1] == ':';
		for (const struct option *o = s->tables[t]; o && o->name; o++)
			if (o->val == c)
				return o;
		return NULL;
	}
	return NULL;
}

/* --- the candidates --- */

struct answer {
	const char *cur; /* the word completed */
	size_t cut;      /* bash: how much of cur is before the word readline replaces */
	size_t n;
};

static void head(const struct answer *a, const char *kind, const char *prefix, size_t prefix_len)
{
	size_t cut = a->cut;
	size_t pc = cut < prefix_len ? cut : prefix_len;
	const char *stem = a->cur + prefix_len;
	size_t sc = cut > prefix_len ? cut - prefix_len : 0;
	printf("%s\n%.*s\n%s\n", kind, (int)(prefix_len - pc), prefix + pc, stem + (sc < strlen(stem) ? sc : strlen(stem)));
}

/* Offers word w (with text desc, or NULL) when it begins with what is typed. */
static void offer(struct answer *a, const char *w, const char *desc)
{
	size_t l = strlen(a->cur);
	if (strncmp(w, a->cur, l))
		return;
	/* one line per candidate: a name with a newline in it is not offered */
	if (strchr(w, '\n'))
		return;
	fputs(w + (a->cut <= strlen(w) ? a->cut : strlen(w)), stdout);
	if (desc && *desc) {
		putchar('\t');
		for (const char *p = desc; *p; p++)
			putchar(*p == '\n' || *p == '\t' ? ' ' : *p);
	}
	putchar('\n');
	a->n++;
}

static void offer_pre(struct answer *a, const char *prefix, size_t prefix_len, const char *w, const char *desc)
{
	char *full = xasprintf("%.*s%s", (int)prefix_len, prefix, w);
	offer(a, full, desc);
	free(full);
}

/* Appends the full ids of s and of every step under it. */
static void step_ids(const struct step *s, void (*fn)(void *, const struct step *), void *ud)
{
	if (!s)
		return;
	if (s->full_id && *s->full_id)
		fn(ud, s);
	for (size_t i = 0; i < s->n_children; i++)
		step_ids(s->children[i], fn, ud);
	if (s->handlers)
		for (int k = 0; k < HANDLER__COUNT; k++)
			step_ids(s->handlers[k], fn, ud);
}

/* Loads plan path, quietly (secrets and inputs need no value); NULL when it does not load. */
static struct plan *load_quietly(const char *path, const char *inventory)
{
	struct load_options lo = {.secrets_optional = true, .inputs_optional = true, .inventory = inventory};
	struct diags d = {0};
	struct plan *p = plan_load_file_opts(path, &lo, &d);
	diags_free(&d);
	return p;
}

struct step_offer {
	struct answer *a;
	const char *prefix;
	size_t prefix_len;
};

static void offer_step(void *ud, const struct step *s)
{
	struct step_offer *so = ud;
	offer_pre(so->a, so->prefix, so->prefix_len, s->full_id, s->name && strcmp(s->name, s->id) ? s->name : NULL);
}

static void print_step(void *ud, const struct step *s)
{
	(void)ud;
	if (!strchr(s->full_id, '\n'))
		printf("%s\n", s->full_id);
}

static struct store_run *list_runs(const char *state_dir, size_t *count)
{
	*count = 0;
	char *err = NULL;
	char *dir = store_dir(state_dir, &err);
	struct store *st = dir ? store_open(dir, false, &err) : NULL;
	free(err);
	free(dir);
	if (!st)
		return NULL;
	struct store_run *v = store_list(st, 0, NULL, count);
	store_close(st);
	return v;
}

static void free_runs(struct store_run *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_run_free(&v[i]);
	free(v);
}

static void offer_runs(struct answer *a, const char *state_dir)
{
	size_t n;
	struct store_run *v = list_runs(state_dir, &n);
	for (size_t i = 0; i < n; i++) {
		char *desc = xasprintf("%s, %s", v[i].plan ? v[i].plan : "?", run_state_name(v[i].state));
		offer(a, v[i].id, desc);
		free(desc);
	}
	free_runs(v, n);
}

/* The words of the command line, as the completer reads them. */
struct line {
	char **w; /* w[0] is baton, w[n-1] the word completed */
	int n;
};

struct parsed {
	const char *verb;
	struct optset os;
	const char **pos; /* the arguments before the word completed */
	int n_pos;
	const char *state_dir;
	const char *inventory;
	const struct option *pending; /* the word completed is this option's value */
	int pending_short;            /* ... given as this short option (no long name) */
	bool ddash;                   /* after "--": no more options */
};

static void parse_words(const struct line *l, struct parsed *p)
{
	p->pos = xcalloc((size_t)l->n + 1, sizeof *p->pos);
	for (int i = 2; i < l->n - 1; i++) {
		const char *w = l->w[i];
		bool has_next = i + 1 < l->n - 1;
		if (p->ddash || w[0] != '-' || !w[1]) {
			p->pos[p->n_pos++] = w;
		} else if (!strcmp(w, "--")) {
			p->ddash = true;
		} else if (w[1] == '-') {
			size_t n = strcspn(w + 2, "=");
			const struct option *o = find_long(&p->os, w + 2, n);
			if (!o || o->has_arg == no_argument)
				continue;
			const char *val = w[2 + n] == '=' ? w + 3 + n : has_next ? l->w[++i] : NULL;
			if (!val && o->has_arg == required_argument)
				p->pending = o;
			if (val && !strcmp(o->name, "state-dir"))
				p->state_dir = val;
			if (val && !strcmp(o->name, "inventory"))
				p->inventory = val;
		} else {
			for (const char *c = w + 1; *c; c++) {
				bool takes, known;
				const struct option *o = find_short(&p->os, *c, &takes, &known);
				if (!takes)
					continue;
				if (!c[1] && !has_next) {
					p->pending = o;
					p->pending_short = o ? 0 : *c;
				} else if (!c[1]) {
					i++;
				}
				break;
			}
		}
	}
}

/* The plan on the line: the first argument that names a regular file. */
static const char *plan_on_line(const struct parsed *p)
{
	for (int i = 0; i < p->n_pos; i++) {
		struct stat sb;
		if (stat(p->pos[i], &sb) == 0 && S_ISREG(sb.st_mode))
			return p->pos[i];
	}
	return NULL;
}

/* Completes the value of an option of kind k: the value is cur after its first prefix_len bytes. */
static void complete_value(struct answer *a, const struct parsed *p, enum kind k, size_t prefix_len)
{
	const char *prefix = a->cur;
	static const char *const run_outputs[] = {"auto", "tty", "plain", "json", "quiet"};
	static const char *const plan_outputs[] = {"text", "json", "dot"};
	static const char *const colors[] = {"auto", "always", "never"};
	switch (k) {
	case K_FILE:
		head(a, "files", prefix, prefix_len);
		return;
	case K_PLAN:
		head(a, "plans", prefix, prefix_len);
		return;
	case K_DIR:
		head(a, "dirs", prefix, prefix_len);
		return;
	case K_SECRET: {
		/* NAME=PATH: a file name after the '=' */
		const char *eq = strchr(a->cur + prefix_len, '=');
		if (eq) {
			head(a, "files", prefix, (size_t)(eq + 1 - a->cur));
			return;
		}
		break;
	}
	default:
		break;
	}
	head(a, "words", prefix, prefix_len);
	if (k == K_OUTPUT) {
		bool plan = !strcmp(p->verb, "plan");
		const char *const *v = plan ? plan_outputs : run_outputs;
		size_t n = plan ? ARRAY_LEN(plan_outputs) : ARRAY_LEN(run_outputs);
		for (size_t i = 0; i < n; i++)
			offer_pre(a, prefix, prefix_len, v[i], NULL);
	} else if (k == K_COLOR) {
		for (size_t i = 0; i < ARRAY_LEN(colors); i++)
			offer_pre(a, prefix, prefix_len, colors[i], NULL);
	} else if (k == K_STEP) {
		const char *path = plan_on_line(p);
		struct plan *pl = path ? load_quietly(path, p->inventory) : NULL;
		if (pl) {
			struct step_offer so = {a, prefix, prefix_len};
			step_ids(pl->root, offer_step, &so);
			plan_free(pl);
		}
	} else if (k == K_LIMIT) {
		/* a comma-separated list: the last pattern, after any '!' */
		const char *comma = strrchr(a->cur + prefix_len, ',');
		size_t at = comma ? (size_t)(comma + 1 - a->cur) : prefix_len;
		at += a->cur[at] == '!';
		const char *path = plan_on_line(p);
		struct plan *pl = path ? load_quietly(path, p->inventory) : NULL;
		if (pl) {
			const struct inventory *inv = &pl->inventory;
			offer_pre(a, prefix, at, "all", NULL);
			for (size_t i = 0; i < inv->n_groups; i++)
				offer_pre(a, prefix, at, inv->groups[i].name, "group");
			for (size_t i = 0; i < inv->n_declared; i++)
				offer_pre(a, prefix, at, inv->hosts[i].name, "host");
			plan_free(pl);
		}
	}
}

/* The task and step ids of the run ref (the newest when it names none), for 'baton logs RUN TASK...'. */
static void offer_tasks(struct answer *a, const struct parsed *p)
{
	char *err = NULL;
	char *dir = store_dir(p->state_dir, &err);
	struct store *st = dir ? store_open(dir, false, &err) : NULL;
	struct store_run r;
	bool found = st && (store_find(st, p->pos[0], NULL, &r, &err) || store_find(st, NULL, NULL, &r, &err));
	free(err);
	free(dir);
	if (!found) {
		store_close(st);
		return;
	}
	size_t n;
	struct store_task *v = store_tasks(st, r.id, false, &n);
	json_t *seen = json_object();
	for (size_t i = 0; i < n; i++) {
		const char *ids[] = {v[i].step, v[i].id};
		for (size_t k = 0; k < ARRAY_LEN(ids); k++)
			if (ids[k] && !json_object_get(seen, ids[k])) {
				json_object_set_new(seen, ids[k], json_true());
				offer(a, ids[k], NULL);
			}
		store_task_free(&v[i]);
	}
	json_decref(seen);
	free(v);
	store_run_free(&r);
	store_close(st);
}

static void offer_options(struct answer *a, const struct parsed *p)
{
	head(a, "words", "", 0);
	for (int t = 0; t < 2; t++)
		for (const struct option *o = p->os.tables[t]; o && o->name; o++) {
			if (hidden(p->verb, o->name) || (t == 1 && find_long(&p->os, o->name, strlen(o->name)) != o))
				continue;
			char *w = xasprintf("--%s", o->name);
			offer(a, w, NULL);
			free(w);
		}
	if (!strcmp(a->cur, "-"))
		for (int t = 0; t < 2; t++)
			for (const char *c = p->os.shorts[t]; c && *c; c++)
				if (*c != ':') {
					char w[3] = {'-', *c, 0};
					offer(a, w, NULL);
				}
}

static int complete(const struct line *l, size_t cut)
{
	struct answer a = {.cur = l->w[l->n - 1], .cut = cut};
	if (l->n <= 2) {
		head(&a, "words", "", 0);
		if (a.cur[0] == '-') {
			offer(&a, "--help", NULL);
			offer(&a, "--version", NULL);
			return 0;
		}
		for (size_t i = 0; i < cmd_n_defs; i++)
			offer(&a, cmd_defs[i].name, cmd_defs[i].help);
		return 0;
	}
	struct parsed p = {.verb = l->w[1]};
	if (!optset_of(p.verb, &p.os)) {
		head(&a, "words", "", 0);
		return 0;
	}
	parse_words(l, &p);
	const char *cur = a.cur;
	if (p.pending) {
		complete_value(&a, &p, value_kind(p.pending->name), 0);
	} else if (p.pending_short) {
		head(&a, "words", "", 0);
	} else if (!p.ddash && !strncmp(cur, "--", 2) && strchr(cur, '=')) {
		size_t n = strcspn(cur + 2, "=");
		const struct option *o = find_long(&p.os, cur + 2, n);
		if (o && o->has_arg != no_argument)
			complete_value(&a, &p, value_kind(o->name), n + 3);
		else
			head(&a, "words", "", 0);
	} else if (!p.ddash && cur[0] == '-') {
		offer_options(&a, &p);
	} else {
		enum kind k = K_NONE;
		for (size_t i = 0; i < ARRAY_LEN(arg_kinds); i++)
			if (!strcmp(arg_kinds[i].verb, p.verb))
				k = p.n_pos ? arg_kinds[i].rest : arg_kinds[i].first;
		if (k == K_RUN_OR_PLAN)
			k = strchr(cur, '/') ? K_PLAN : K_RUN;
		if (k == K_RUN) {
			head(&a, "words", "", 0);
			offer_runs(&a, p.state_dir);
		} else if (k == K_TASK) {
			head(&a, "words", "", 0);
			offer_tasks(&a, &p);
		} else if (k == K_SHELL) {
			head(&a, "words", "", 0);
			for (size_t i = 0; i < ARRAY_LEN(shells); i++)
				offer(&a, shells[i], NULL);
		} else if (k == K_NONE) {
			offer_options(&a, &p); /* nothing more to give: what may still be said */
		} else {
			complete_value(&a, &p, k, 0);
		}
	}
	free(p.pos);
	return 0;
}

/*
 * Splits a bash command line (up to the cursor) into words: blanks separate,
 * quotes and backslashes are read as the shell reads them. The last word is
 * the one completed ("" after a blank). *raw_last: where it begins in line.
 */
static void split_line(const char *line, struct line *l, const char **raw_last)
{
	size_t cap = 8;
	l->w = xcalloc(cap, sizeof *l->w);
	l->n = 0;
	const char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		*raw_last = p;
		struct buf b = {0};
		buf_add(&b, "", 0);
		char q = 0;
		while (*p && (q || (*p != ' ' && *p != '\t' && *p != '\n'))) {
			if (q == '\'' && *p == '\'')
				q = 0;
			else if (q == '"' && *p == '"')
				q = 0;
			else if (!q && (*p == '\'' || *p == '"'))
				q = *p;
			else if (*p == '\\' && q != '\'' && p[1]) {
				p++;
				buf_add(&b, p, 1);
			} else
				buf_add(&b, p, 1);
			p++;
		}
		if ((size_t)l->n + 1 >= cap)
			l->w = xrealloc(l->w, (cap *= 2) * sizeof *l->w);
		l->w[l->n++] = xstrndup(b.data ? b.data : "", b.len);
		buf_free(&b);
		if (!*p)
			break;
	}
}

/* bash replaces only what follows the last of COMP_WORDBREAKS in the word (the '=' of --output=json). */
static size_t bash_cut(const char *raw, const char *breaks)
{
	size_t cut = 0;
	for (size_t i = 0; raw[i]; i++)
		if (strchr(breaks, raw[i]) && raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' && raw[i] != '"' &&
		    raw[i] != '\'')
			cut = i + 1;
	return cut;
}

static int complete_bash(const char *line, const char *breaks)
{
	struct line l;
	const char *raw;
	split_line(line, &l, &raw);
	/* the cut is counted in the word as typed: right only when it has no quote or backslash before it */
	size_t cut = bash_cut(raw, breaks);
	if (strpbrk(raw, "'\"\\"))
		cut = 0;
	if (l.n < 1 || cut > strlen(l.w[l.n - 1]))
		cut = 0;
	int rc = l.n >= 2 ? complete(&l, cut) : 0;
	for (int i = 0; i < l.n; i++)
		free(l.w[i]);
	free(l.w);
	return rc;
}

static int print_steps(const char *path)
{
	struct plan *p = load_quietly(path, NULL);
	if (!p)
		return 1;
	step_ids(p->root, print_step, NULL);
	plan_free(p);
	return 0;
}

static int print_runs(const char *state_dir)
{
	size_t n;
	struct store_run *v = list_runs(state_dir, &n);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", v[i].id);
	free_runs(v, n);
	return 0;
}

int cmd_completion(int argc, char **argv)
{
	/* the scripts' own entry points: every word after is the line, read as is */
	if (argc >= 2 && !strcmp(argv[1], "--complete")) {
		int i = argc >= 3 && !strcmp(argv[2], "--") ? 3 : 2;
		if (argc - i < 2)
			return 0;
		struct line l = {argv + i, argc - i};
		return complete(&l, 0);
	}
	if (argc >= 2 && !strcmp(argv[1], "--complete-bash"))
		return argc >= 3 ? complete_bash(argv[2], argc >= 4 ? argv[3] : "") : 0;
	const char *steps = NULL, *state_dir = NULL;
	bool runs = false;
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, completion_shorts, completion_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			steps = optarg;
			break;
		case 'r':
			runs = true;
			break;
		case 'S':
			state_dir = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		default:
			return cmd_bad_option("completion", argc, argv, completion_opts, completion_shorts);
		}
	}
	if (steps || runs) {
		if (optind < argc || (steps && runs))
			return cmd_usage_error("completion", "--steps PLAN and --runs go alone");
		return steps ? print_steps(steps) : print_runs(state_dir);
	}
	if (optind >= argc)
		return cmd_usage_error("completion", "which shell? bash, zsh or fish");
	if (argc - optind > 1)
		return cmd_usage_error("completion", "one shell at a time");
	const char *sh = argv[optind];
	const char *const scripts[] = {bash_script, zsh_script, fish_script};
	for (size_t i = 0; i < ARRAY_LEN(shells); i++)
		if (!strcmp(sh, shells[i])) {
			fputs(scripts[i], stdout);
			return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
		}
	const char *hint = closest_name(sh, shells, ARRAY_LEN(shells));
	if (hint)
		return cmd_usage_error("completion", "unknown shell '%s'; did you mean '%s'? (bash, zsh or fish)", sh, hint);
	return cmd_usage_error("completion", "unknown shell '%s' (bash, zsh or fish)", sh);
}
