/*
 * plan: load a YAML plan, validate it (reporting every error with its
 * FILE:LINE:COL), and evaluate the ${{ }} expressions inside it. The first
 * stage of the flow in architecture.md; graph/ compiles what this produces.
 */
#ifndef BATON_PLAN_H
#define BATON_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

enum step_kind {
	STEP_RUN,
	STEP_STEPS,
	STEP_PARALLEL,
	STEP_STAGES,
	STEP_STAGE, /* one member of `stages`: its steps run concurrently */
	STEP_BARRIER,
	STEP_SLEEP,
	STEP_JOIN,
	STEP_APPROVE, /* a human gate (approve.c) */
};

/*
 * `copy` and `fetch` (copy.c): a STEP_RUN whose task moves files instead of
 * running a command. Each field may hold ${{ }}, rendered when the task starts.
 */
struct copy_spec {
	bool fetch;
	struct tmpl *src, *dest;
	struct tmpl *mode; /* octal digits ("0644"); NULL: the source's own permission bits */
};

/* Reads a copy mode: 1 to 4 octal digits, at most 07777; -1 when it is not one. */
int copy_mode_parse(const char *s);
void copy_spec_free(struct copy_spec *c);

enum fan_mode { MODE_ALL, MODE_SETTLE, MODE_ANY, MODE_RACE };

/* An int or "P%" (min_success, max_failures, batch sizes). */
struct amount {
	bool set;
	bool percent;
	double value;
};

struct retry_spec {
	int attempts; /* total tries, >= 1 */
	uint64_t delay_ms;
	double backoff;
	uint64_t max_delay_ms; /* 0: no cap */
	double jitter;
	int *on_exit; /* NULL: retry on any failure */
	size_t n_on_exit;
};

/* Parsed expression; see expr_* below. */
struct expr;

/* A field written as ${{ EXPR }}, evaluated when the run gets there, and where it stands. */
struct field_expr {
	struct expr *e; /* NULL: the field is a plain value */
	int line, col;
};

/* `batch:` of a fan-out over items or hosts (plan-format.md section 4). */
struct batch_spec {
	struct amount *sizes; /* the last repeats */
	size_t n_sizes;
	uint64_t pause_ms;
	struct amount max_failures;
	/* fields given as ${{ }} (reading only vars, inputs, env and an enclosing item or host):
	 * they replace the values above when the fan-out starts (batch_resolve) */
	struct field_expr size_x, pause_x, max_failures_x;
};

enum handler_kind { HANDLER_SUCCESS, HANDLER_FAILURE, HANDLER_FINALLY, HANDLER__COUNT };

/* A name = value pair from a YAML map, with the value's place and the key's. */
struct kv {
	char *key;
	char *value;
	int line;
	int col;
	int key_line;
	int key_col;
};

/* A string with ${{ }} parts, parsed once at load time. */
struct tmpl;
struct expr_scope;

/*
 * What only a fan-out over items or hosts sets (for_each, on, batch), and the
 * mode of any fan-out: apart from struct step, which most steps would carry
 * empty. A step without any of it points at step_fan_none.
 */
struct step_fan {
	json_t *for_each;           /* a literal list (strings may hold ${{ }}), or NULL */
	struct tmpl **for_each_tmpls; /* per item of the literal list: its template, or NULL */
	struct expr *for_each_expr; /* or an expression giving a list */
	int for_each_line, for_each_col;

	/* fan-out over hosts: `on:` patterns as written (non-NULL exactly when the
	 * step has `on:`), and the hosts they match (indexes into
	 * plan.inventory.hosts, inventory order, each once, --limit applied: may be
	 * empty under --limit, never otherwise) */
	char **on;
	size_t n_on;
	int on_line, on_col;
	size_t *hosts;
	size_t n_hosts;

	struct tmpl *label; /* `label:` (for_each only): how an instance is shown; NULL: the default (step_label) */

	bool has_batch, has_mode;
	enum fan_mode mode;
	struct batch_spec batch;
	struct amount min_success;
};

/* The modifiers few steps set, apart for the same reason: step_mods_none when a step sets none. */
struct step_mods {
	struct expr *when;
	char *when_src;
	int when_line, when_col;
	uint64_t kill_grace_ms;
	char **semaphores;
	size_t n_semaphores;
	struct kv *env;
	size_t n_env;
	struct tmpl **env_vals;
	struct tmpl *cwd;
	char *shell;
	char *async; /* run in the background under this name */
	struct field_expr continue_x; /* `continue_on_error: ${{ }}`, decided when the step (each instance) fails */
};

extern const struct step_fan step_fan_none;
extern const struct step_mods step_mods_none;
/* retry's defaults: what `retry` points at in a step without its own */
extern const struct retry_spec retry_default;
/* `handlers` of a step without any */
extern struct step *const step_no_handlers[HANDLER__COUNT];

/*
 * One step. A plan may hold tens of thousands, which all live through the
 * run: what most steps leave unset lives behind the pointers at the end, each
 * pointing at a shared empty value (never NULL, never written) until the plan
 * sets something there.
 */
struct step {
	enum step_kind kind;
	int line, col;
	/* modifiers; has_* marks what the user wrote */
	bool has_timeout, has_kill_grace, has_retry, has_priority;
	bool continue_on_error;
	bool captured;   /* an expression reads its stdout/stderr: keep them */
	bool is_handler; /* this node is one of the on_success, on_failure, finally sequences */
	int priority;        /* an int, as the plan must write it */
	int max_concurrency; /* 0: none */
	char *id;      /* own id, unique among siblings */
	char *full_id; /* ancestors' ids joined by '.' */
	char *name;    /* display name, or NULL */
	size_t order; /* pre-order position in the plan: the tie-break for priority */
	struct step *parent;

	/* kind payload */
	struct tmpl *run;      /* STEP_RUN with a string */
	struct tmpl **argv;    /* STEP_RUN with a list */
	size_t argc;
	struct copy_spec *copy; /* STEP_RUN that is a `copy` or `fetch`, else NULL */
	struct step **children; /* STEPS, PARALLEL, STAGES, STAGE */
	size_t n_children;
	union { /* read only under the kind that sets it */
		uint64_t sleep_ms; /* STEP_SLEEP */
		struct {           /* STEP_BARRIER */
			char *barrier;
			uint64_t barrier_timeout_ms;
		};
		struct { /* STEP_JOIN */
			char **join;
			size_t n_join;
		};
		struct {                           /* STEP_APPROVE */
			struct tmpl *approve_message; /* may hold ${{ }} */
			uint64_t approve_timeout_ms;  /* 0: none */
		};
	};

	uint64_t timeout_ms;
	const struct retry_spec *retry; /* &retry_default unless has_retry */
	const struct step_fan *fan;
	const struct step_mods *mods;
	struct step *const *handlers; /* on_success, on_failure, finally: each a sequence (STEP_STEPS) or NULL */
};

/*
 * Hosts (plan-format.md section 7). A host comes from the inventory, from
 * ~/.ssh/config (a name the inventory does not list), or is `localhost`
 * without an inventory entry, which runs locally. Every field is resolved at
 * load time: inventory entry, then the inventory's defaults, then
 * ~/.ssh/config (only for hosts without an `address`), then the plan's `ssh:`
 * settings, then built-in defaults. For a host the inventory does not list
 * (a ~/.ssh/config alias, a ProxyJump hop) ~/.ssh/config comes before the
 * inventory's defaults, and a hop's own user@ and :port before both.
 */
struct host {
	char *name;     /* as the plan names it */
	char *address;  /* to connect to: inventory address, else HostName, else the name */
	char *user;     /* inventory/defaults user, else User, else $USER */
	int port;       /* inventory/defaults port, else Port, else 22 */
	char **identities; /* identity files to try after the agent, ~ expanded; may be empty */
	size_t n_identities;
	int max_sessions; /* concurrent commands on this host: host, defaults, ssh, else 4 */
	json_t *vars;     /* the host's inventory vars (object, never NULL) */
	long jump;        /* index of the ProxyJump host in inventory.hosts, or -1 */
	char *proxy_jump; /* the inventory's proxy_jump as written ("none" included), or NULL */
	int jump_line, jump_col; /* where proxy_jump stands */
	bool local;       /* `localhost` with no inventory entry: runs locally */
	bool from_config; /* not in the inventory: found through ~/.ssh/config */
	int line, col;    /* where it is defined or first named */
};

struct group {
	char *name;
	char **members; /* host or group names */
	size_t n_members;
	int line, col;
};

struct inventory {
	struct host *hosts; /* inventory order, then hosts added by name (ssh config, jump hosts) */
	size_t n_hosts;
	size_t n_declared; /* hosts[0 .. n_declared) are the inventory's own: what `all` and globs match */
	struct group *groups;
	size_t n_groups;
};

enum known_hosts_mode { KNOWN_HOSTS_STRICT, KNOWN_HOSTS_ACCEPT_NEW, KNOWN_HOSTS_OFF };

/* The plan's `ssh:` settings, defaults filled in. */
struct ssh_settings {
	enum known_hosts_mode known_hosts; /* default strict */
	uint64_t connect_timeout_ms;       /* default 10s */
	uint64_t keepalive_ms;             /* default 15s; 0: none */
	int max_sessions;                  /* default 4 */
	int max_hosts;                     /* remote hosts worked on at once; default 64 */
	char *identity;                    /* ~ expanded, or NULL */
	char *known_hosts_file;            /* ~ expanded; default ~/.ssh/known_hosts (NULL only when no home is known) */
};

/* One of the plan's `inputs:` (plan-format.md section 2). */
enum input_type { INPUT_STRING, INPUT_INT, INPUT_BOOL, INPUT_LIST, INPUT_MAP };
struct input_def {
	char *name;
	enum input_type type;
	bool required;
	json_t *def;       /* the default (new reference), or NULL */
	char *description; /* or NULL */
	json_t *choices;   /* array of allowed values, or NULL */
	int line, col;     /* where the input is declared (its key) */
};

struct semaphore_def {
	char *name;
	int capacity;
};

struct plan {
	char *file;
	char *name;
	char *description;
	json_t *vars; /* object */
	json_t *inputs; /* object: each input's value, given or its default (an optional input with neither is absent) */
	json_t *given;  /* object: what --var and --var-file set, as typed (secrets left out): what a run records */
	struct input_def *input_defs; /* as declared, in plan order */
	size_t n_inputs;
	char **secrets;
	size_t n_secrets;
	struct kv *env;
	size_t n_env;
	struct tmpl **env_vals;
	int concurrency; /* 0: default */
	struct semaphore_def *semaphores;
	size_t n_semaphores;
	uint64_t timeout_ms; /* 0: none */
	char *lock;            /* `lock:` name (a safe file name), or NULL */
	uint64_t lock_wait_ms; /* how long a run waits for the lock; 0: it fails at once */
	struct inventory inventory;
	struct ssh_settings ssh;
	/* defaults, applied below every step */
	struct step defaults;
	struct step *root; /* STEP_STEPS holding the plan's `steps`; plan handlers hang on it */
	size_t n_steps;    /* every step, root excluded */
	struct step **index; /* steps by full id: open addressing, index_cap a power of two */
	size_t index_cap;
};

/*
 * Loads and validates a plan file. Returns the plan (free with plan_free) or
 * NULL with every error added to d. `overrides` (may be NULL) is a JSON
 * object of variables that replace the plan's own (--var, --var-file).
 */
struct plan *plan_load_file(const char *path, json_t *overrides, struct diags *d);
/* The same from a buffer; `file` names it in diagnostics (and its directory is where a relative `inventory:` path starts). */
struct plan *plan_load_buffer(const char *file, const char *data, size_t len, json_t *overrides,
			      struct diags *d);

/* One --var NAME=TEXT or --var-file PATH, as the command line gave it. */
struct var_source {
	bool file;        /* --var-file: text is the file's path */
	const char *text; /* --var: "NAME=TEXT" */
};

/* What the command line adds to a load. */
struct load_options {
	json_t *overrides;     /* values already typed (callers without a command line): applied first, held to
				* a --var-file's rules; may be NULL */
	/* --var and --var-file in command-line order: each must name a var or an input, and its value takes
	 * the input's type or the type of the var's default (a --var's text: as typed for a string, YAML flow
	 * syntax for a list or map) */
	const struct var_source *var_sources;
	size_t n_var_sources;
	bool inputs_optional;  /* check: a required input that is not given is no error */
	const char *inventory; /* --inventory FILE (relative to the cwd): replaces the plan's `inventory`; NULL: none */
	const char *limit;     /* --limit PATTERN: narrows every `on:`; NULL: none */
	const char *home;      /* where ~ points (ssh config, identities); NULL: $HOME */
	json_t *cli_vars;      /* the names --var set (an object used as a set): a secret among them is an
				* error, so that no secret is ever in argv; may be NULL */
	json_t *secret_files;  /* --secret-file: secret name -> its value (string), read from the file; may be NULL */
	bool secrets_optional; /* check and preview: a secret with no value stands as "***" instead of an error */
	bool no_files;         /* read no file the plan names (an `inventory:` path is an error) and no
				* ~/.ssh/config: for fuzzing */
};
struct plan *plan_load_file_opts(const char *path, const struct load_options *o, struct diags *d);
struct plan *plan_load_buffer_opts(const char *file, const char *data, size_t len, const struct load_options *o,
				   struct diags *d);

/* A host's fields as the `host` context shows them: name, address, user, port, vars (new reference). */
json_t *host_to_json(const struct host *h);
void plan_free(struct plan *p);

/* A command-line value typed as a plain YAML scalar would be: true, 3, 1.5, else text. */
json_t *plan_scalar_json(const char *s);


/*
 * Resolves steps.ID... as seen from step `from`: the longest run of leading
 * segments naming a sibling (of from or an ancestor) or a full id; *used says
 * how many segments that took. NULL if none.
 */
struct step *plan_resolve_step_ref(const struct plan *p, const struct step *from, const char *const *segs,
				   size_t nsegs, size_t *used);
/* Finds a step by full id; NULL if none. */
struct step *plan_find_step(const struct plan *p, const char *full_id);

const char *step_kind_name(enum step_kind k);
/* What a step is, as events and the preview name it: its kind's name, or "copy" / "fetch". */
const char *step_kind_word(const struct step *s);
const char *handler_name(enum handler_kind k);

/*
 * How instance `index` of for_each step s, with item `item`, is shown to
 * people: its `label:` rendered in scope (scope may be NULL when s has no
 * label), else the item itself when it is a string or number of at most 40
 * characters, else the index. Caller frees.
 */
char *step_label(const struct step *s, const json_t *item, size_t index, const struct expr_scope *scope);
/* The same; when the `label:` could not be rendered, *err says why (caller frees) and the default is returned. */
char *step_label_err(const struct step *s, const json_t *item, size_t index, const struct expr_scope *scope,
		     char **err);

/* True when s runs once per item or host (it has for_each or on). */
bool step_is_foreach(const struct step *s);

/*
 * Resolves a batch's sizes for n instances: fills out[] (at most n entries)
 * with the number of instances in each batch; returns how many batches.
 */
size_t batch_sizes(const struct batch_spec *b, size_t n, size_t *out);
/* An amount of n: a count, or P% of n rounded up. */
size_t amount_of(const struct amount *a, size_t n);
/*
 * A batch whose fields are ${{ }} (b->*_x), evaluated in scope: *out is b
 * with them replaced (out->sizes is the caller's to free when b->size_x is
 * set). False with *err (caller frees) when one fails or gives a value of
 * the wrong type.
 */
bool batch_resolve(const struct batch_spec *b, const struct expr_scope *scope, struct batch_spec *out, char **err);
/* A `continue_on_error: ${{ }}` evaluated in scope: 1 true, 0 false, -1 with *err (not a boolean, or it failed). */
int continue_on_error_eval(const struct step *s, const struct expr_scope *scope, char **err);
const char *fan_mode_name(enum fan_mode m);

/*
 * Expressions. Values are JSON (jansson). Lookups of contexts other than
 * literals go through the resolver, which the caller supplies at run time.
 */
struct expr_scope {
	/*
	 * Returns a new reference to the value of root (e.g. "vars") followed by as
	 * many leading path segments as it consumes (*used); NULL with *err set
	 * when the name is unknown.
	 */
	json_t *(*lookup)(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			  char **err);
	void *ud;
};

struct expr *expr_parse(const char *src, size_t len, char **err);
void expr_free(struct expr *e);
/* Evaluates e; returns a new reference, or NULL with *err (caller frees) set. */
json_t *expr_eval(const struct expr *e, const struct expr_scope *scope, char **err);
bool expr_truthy(const json_t *v);
/* True when e is a literal (a number, string, boolean or null) and reads no context. */
bool expr_is_literal(const struct expr *e);

/* Visits each context path an expression reads (for static checks). */
typedef void (*expr_path_fn)(void *ud, const char *root, const char *const *segs, size_t nsegs);
void expr_walk_paths(const struct expr *e, expr_path_fn fn, void *ud);

/* Templates: strings with ${{ }} parts. */
enum tmpl_quote {
	TMPL_TEXT,  /* values inserted as text (env, cwd, argv elements) */
	TMPL_SHELL, /* a shell command as people see it: each value quoted for where it stands */
};
struct tmpl *tmpl_parse(const char *src, size_t len, char **err, size_t *err_off);
void tmpl_free(struct tmpl *t);
const char *tmpl_source(const struct tmpl *t);
/* Where the template stands in the plan (0:0 when unknown). */
void tmpl_set_place(struct tmpl *t, int line, int col);
void tmpl_place(const struct tmpl *t, int *line, int *col);
bool tmpl_is_literal(const struct tmpl *t);
/*
 * Renders t into out; false with *err set when an expression fails or a
 * value holds a NUL byte. TMPL_SHELL gives the displayed form only: what a
 * shell runs comes from tmpl_render_shell.
 */
bool tmpl_render(const struct tmpl *t, enum tmpl_quote q, const struct expr_scope *scope, struct buf *out,
		 char **err);
/* The dry run's rendering: an expression that cannot be evaluated yet stays as written. */
void tmpl_preview(const struct tmpl *t, enum tmpl_quote q, const struct expr_scope *scope, struct buf *out);

/*
 * Prepares t to run through a POSIX shell (plan-format.md section 6): judges
 * where each ${{ }} stands. False with *err (caller frees) and *err_off, the
 * offset in t's source of the ${{ }} refused, where no reference is safe.
 */
bool tmpl_shell_prepare(struct tmpl *t, char **err, size_t *err_off);
/* The ${{ … }} part that starts at src_off in t's source, or NULL. */
const char *tmpl_part_at(const struct tmpl *t, size_t src_off);
/* Gives each ${{ }} of t its place in the plan, from its offset in t's source (for messages). */
void tmpl_place_slots(struct tmpl *t, void (*where)(const void *ud, size_t off, int *line, int *col),
		      const void *ud);

/* A shell command rendered by reference: no value is ever part of its script. */
struct shell_cmd {
	char *script;  /* what the shell runs: each ${{ }} a reference such as "${__baton_v1}" */
	char *display; /* for people: the values quoted in where they stand (secrets still unmasked) */
	char **env;    /* NAME=VALUE for every variable the script refers to, NULL-terminated */
	size_t n_env;
};
/* Renders a prepared t; false with *err (caller frees) when an expression fails or a value cannot go where it stands. */
bool tmpl_render_shell(const struct tmpl *t, const struct expr_scope *scope, struct shell_cmd *out, char **err);
void shell_cmd_free(struct shell_cmd *c);
void tmpl_walk_paths(const struct tmpl *t, expr_path_fn fn, void *ud);
/* Converts a value to text as interpolation does (numbers, booleans, JSON for maps). */
void value_to_text(const json_t *v, struct buf *out);

/*
 * Looks up the contexts that do not depend on a run's progress: vars.NAME,
 * inputs.NAME (null for an optional input neither given nor defaulted) and
 * env.NAME (baton's environment overlaid with the plan's literal env).
 * Same contract as expr_scope.lookup; other roots get an error.
 */
json_t *plan_lookup_static(const struct plan *p, const char *root, const char *const *segs, size_t nsegs,
			   size_t *used, char **err);

/*
 * Secrets (secret.c). A secret's value comes from --secret-file NAME=PATH,
 * else the environment variable plan_secret_env_name(NAME), else `vars`
 * (--var-file, then the plan's default); never from --var.
 */
/* "BATON_SECRET_" and the name upper-cased (ASCII letters only); caller frees. */
char *plan_secret_env_name(const char *name);
/*
 * Every string that masking hides, built once per run from the secrets'
 * values: each value as text (numbers and booleans as text, a list or map as
 * JSON), shell-quoted as one word, its body inside single quotes, escaped for
 * double quotes and here-documents, folded for a comment, as a JSON string
 * body; each element of a list and each value of a map in all those forms;
 * lines of multi-line forms of at least 4 bytes. Sorted bytewise (strcmp),
 * which mask_secrets needs; no empty or repeated string, none holds a NUL. A
 * NULL-terminated array: the caller frees each string and the array.
 */
char **plan_secret_values(const struct plan *p, size_t *n);

/*
 * Appends s to out with every occurrence of each of the n strings in secrets
 * (sorted bytewise, as plan_secret_values gives them) hidden, overlaps
 * included, each hidden run as ***; true if any was. Costs O(len log n).
 */
bool mask_secrets(const char *s, size_t len, const char *const *secrets, size_t n, struct buf *out);

#endif
