/*
 * Private to src/plan: the YAML node tree the loader validates, and the
 * expression tree. Other modules see only plan.h.
 */
#ifndef BATON_PLAN_INTERNAL_H
#define BATON_PLAN_INTERNAL_H

#include "plan/plan.h"

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

/*
 * One YAML node with its source mark. A map's items alternate key, value.
 * `plain` is true for an unquoted scalar (so `true` may mean a boolean).
 */
struct ynode {
	enum ynode_kind kind;
	int line;
	int col;
	bool plain;
	bool quoted;    /* a '…' or "…" scalar */
	int16_t indent; /* a literal block scalar (|): its content's indentation; else -1 */
	char *str;
	size_t len;
	struct ynode **items;
	size_t n;
};

/* Limits that keep hostile input from exhausting memory or the stack. */
#define YAML_MAX_DEPTH 64
#define YAML_ALIAS_BUDGET 100000
#define YAML_MAX_NODES 2000000
#define YAML_MAX_MAP_KEYS 10000

/* Parses data into a node tree (caller frees), or adds diagnostics and returns NULL. */
struct ynode *yaml_load(const char *file, const char *data, size_t len, struct diags *d);
void ynode_free(struct ynode *n);
/*
 * yamlhint.c: appends to msg what libyaml's error `problem` at line, column
 * (from 0) of data most likely means where users trip, and the fix; false
 * when no hint fits.
 */
bool yaml_hint(struct buf *msg, const char *data, size_t len, size_t line, size_t column, const char *problem);
/*
 * For a plain command (its text `value`: `run`'s value, or a step written
 * as a string when item) that ends at byte `end` of data, at *line:*col:
 * true, with the place of the '#' in *line and *col and the error in msg,
 * when a comment follows and cuts it inside a quoted string or a ${{ }}
 * (elsewhere a shell would read ' #' as a comment too).
 */
bool yaml_comment_cut(const char *data, size_t len, size_t end, const char *value, size_t vlen, bool item,
		      int *line, int *col, struct buf *msg);
/* Looks up a key in a map node. */
struct ynode *ynode_get(const struct ynode *map, const char *key);
/* The scalar converted to JSON: plain true/false/null/numbers typed, else a string. */
json_t *ynode_to_json(const struct ynode *n);

/*
 * How a ${{ }} in a shell `run:` script refers to its value (see shctx.c):
 * WORD "${__baton_vN}" (a list: one such word per element), QUOTED and
 * HEREDOC ${__baton_vN} (inside "…", a here-document, ${x:-…}, arithmetic),
 * SINGLE '"${__baton_vN}"' (inside '…'), ANSI '"${__baton_vN}"$' (inside
 * $'…'), COMMENT: in a comment, where nothing is expanded.
 */
enum shref_form { SHREF_WORD, SHREF_QUOTED, SHREF_HEREDOC, SHREF_SINGLE, SHREF_ANSI, SHREF_COMMENT };

struct shslot {
	enum shref_form form;
	bool need_int;  /* arithmetic reads it: only an integer value is safe */
	bool need_name; /* it names a variable (read, printf -v, declare): only a plain name is safe */
};

/*
 * Reads a script of len bytes in which slot k (a ${{ }}) stands as one
 * placeholder byte at offset off[k] (ascending), and fills slots[k]. False
 * with *err (caller frees) and *bad (the refused slot, or n for the script
 * as a whole) where no reference form is safe.
 */
/* True when the command line of a `shell:` starts with a POSIX shell (sh, dash, bash, ksh, zsh, …). */
bool shctx_is_posix_shell(const char *shell);
bool shctx_analyze(const char *script, size_t len, const size_t *off, size_t n, struct shslot *slots, char **err,
		   size_t *bad);

/* True when e is a call of raw(): its text is spliced as is. */
bool expr_is_raw(const struct expr *e);

/* ---- the loader (load.c), shared with inventory.c ---- */

struct async_ref {
	const char *name;
	int line, col;
};

struct sshcfg;
struct nametab;

struct loader {
	const char *file; /* where diagnostics point: the plan, or an inventory file while it is read */
	struct diags *d;
	struct plan *p;
	const struct load_options *opts; /* never NULL */
	size_t n_steps;
	struct async_ref *asyncs; /* async names declared */
	size_t n_asyncs;
	struct async_ref *joins; /* names joined */
	size_t n_joins;

	/* hosts (inventory.c) */
	char *home;                /* where ~ points, or NULL when unknown */
	char *local_user;          /* $USER, else the passwd name; NULL until needed */
	struct sshcfg *sshcfg;     /* ~/.ssh/config, read on first need */
	bool sshcfg_read;
	bool sshcfg_bad;           /* it had errors (said): names it might know are not called unknown */
	bool inventory_bad;        /* the inventory had errors: patterns are not resolved against it */
	struct host defaults;      /* the inventory's defaults (name NULL) */
	size_t hosts_cap;          /* room in p->inventory.hosts */
	unsigned char *host_state; /* per host: resolution state (inventory.c) */
	struct nametab *host_names, *group_names; /* name -> index (inventory.c) */
	size_t *chain;             /* hosts being resolved, outermost first: ProxyJump cycles */
	size_t n_chain;
};

#define ERR(L, n, ...) diags_add((L)->d, (L)->file, (n)->line, (n)->col, __VA_ARGS__)

/* Checks used by every part of the loader; each reports its own error. */
const char *ld_type_name(const struct ynode *n);
bool ld_want_scalar(struct loader *L, const struct ynode *n, const char *key, const char *what);
bool ld_get_int(struct loader *L, const struct ynode *n, const char *key, long min, long *out);
bool ld_get_duration(struct loader *L, const struct ynode *n, const char *key, uint64_t *ms);
/* The member of set closest to key (for "did you mean"), or NULL if none is close. */
const char *ld_closest(const char *key, const char *const *set, size_t n);
bool ld_in_set(const char *key, const char *const *set, size_t n);
/* Where byte off of scalar n's text stands in the file (exact for one-line scalars and literal blocks). */
void ld_scalar_place(const struct ynode *n, size_t off, int *line, int *col);
/* Gives t (read from scalar n) its place, and each of its ${{ }} the place where it stands. */
void ld_tmpl_place(struct tmpl *t, const struct ynode *n);
/* Visits each ${{ }} of t: its expression and where it stands (0:0 when unknown). */
void tmpl_walk_slots(const struct tmpl *t, void (*fn)(void *ud, const struct expr *e, int line, int col), void *ud);
/* A string field that may hold ${{ }}, parsed and placed; NULL when reported. */
struct tmpl *ld_get_tmpl(struct loader *L, const struct ynode *n, const char *key);
/* approve.c: the value of `approve:` (a message, or {message, timeout}) into s. */
void ld_parse_approve(struct loader *L, const struct ynode *v, struct step *s);
/* copy.c: the value of a `copy` or `fetch` step (kind names which). */
void ld_parse_copy(struct loader *L, const char *kind, const struct ynode *v, struct step *s);
/* Prepares a `run:` string to go through a shell (tmpl_shell_prepare), reporting a refused spot. */
void ld_prepare_run(struct loader *L, const struct ynode *n, struct tmpl *t);
/*
 * fieldexpr.c: a field's value written as ${{ EXPR }} (continue_on_error,
 * batch fields). False when v is a plain value (the caller parses it);
 * true when it is an expression: parsed into *out, or reported.
 */
bool ld_field_expr(struct loader *L, const struct ynode *v, const char *key, struct field_expr *out);
/* A step's own fan-out fields and modifiers, made on the first write (the shared empty ones are never written). */
struct step_fan *ld_fan(struct step *s);
struct step_mods *ld_mods(struct step *s);
/* Reports every key of map that is not in a (or b), with a "did you mean" hint. */
void ld_check_keys(struct loader *L, const struct ynode *map, const char *where, const char *const *a, size_t na,
		   const char *const *b, size_t nb);
/* Reads a whole file ("-": stdin) of at most 64 MiB; NULL with a diagnostic. */
char *ld_read_file(const char *path, size_t *len, struct diags *d);
/* True for a plain empty, null or ~ scalar. */
bool ynode_is_null(const struct ynode *n);

/*
 * Checks every expression's references once the tree has its ids (refs.c):
 * contexts, vars, steps, async names and joins, barriers, remote env names.
 */
void ld_check_refs(struct loader *L);

/*
 * inputs.c: parses the plan's `inputs:` into p->input_defs (after `vars:` and
 * `secrets:`), then gives vars and inputs what the command line set and
 * inputs their defaults, reporting every name the plan lacks, value of the
 * wrong type or outside `choices`, and required input not given.
 */
void inputs_parse(struct loader *L, const struct ynode *n);
void inputs_apply_given(struct loader *L);

/* Parses the plan's `lock:` (a name, or {name, wait}) into p->lock and p->lock_wait_ms (lock.c). */
void lock_parse(struct loader *L, const struct ynode *n);

/* ---- secrets (secret.c) ---- */

/*
 * Gives each secret of `list` (the plan's `secrets:` node, may be NULL) its
 * value in p->vars: --secret-file, then BATON_SECRET_NAME, then what vars
 * hold already. Reports a secret set with --var, one with no value, two that
 * read the same environment variable, and a --secret-file naming no secret.
 */
void secrets_resolve(struct loader *L, const struct ynode *list);

/* Reports each `env` name that reaches a command on a remote host and that a POSIX shell cannot export (envcheck.c). */
void env_check_remote(struct loader *L);

/* ---- hosts (inventory.c) ---- */

/* Sets the home directory and the `ssh:` defaults; before anything else about hosts. */
void loader_hosts_init(struct loader *L);
/* Parses the plan's `ssh:` map into p->ssh. */
void ssh_settings_parse(struct loader *L, const struct ynode *n);
/* Fills in the ssh defaults that depend on the home directory. */
void ssh_settings_finish(struct loader *L);
/* Loads the inventory: --inventory, else the plan's `inventory:` (n, may be NULL). */
void inventory_load(struct loader *L, const struct ynode *n);
/* Parses a step's `on:` and resolves its patterns to s->hosts; true when they resolved without error. */
bool on_parse(struct loader *L, const struct ynode *v, struct step *s);
/* Narrows every step's hosts to --limit (after all steps are parsed). */
void limit_apply(struct loader *L);
/* Frees what the loader holds for hosts. */
void loader_hosts_free(struct loader *L);
void inventory_free(struct inventory *inv);
void ssh_settings_free(struct ssh_settings *s);

/* ---- ~/.ssh/config (sshconfig.c) ---- */

/* What the first matching blocks of ~/.ssh/config say about one host (OpenSSH: first value wins). */
struct sshcfg_host {
	bool named;      /* a Host pattern other than a bare *, or a Match host/originalhost, matched the name */
	char *hostname;  /* HostName as written (%h not expanded), or NULL */
	char *user;      /* or NULL */
	int port;        /* 0: none */
	char *proxyjump; /* as written ("none" included), or NULL */
	char **identities; /* every IdentityFile of every matching block, in order, as written */
	size_t n_identities;
	int line;        /* where the first Host line that named it stands, 0 if none */
};

/*
 * Reads path and the files it includes (relative Includes under home/.ssh); a
 * missing file is an empty config. NULL with diagnostics on errors.
 */
struct sshcfg *sshcfg_load(const char *path, const char *home, struct diags *d);
/* Looks name up as `ssh -G name` does; local_user for Match user/localuser. */
void sshcfg_lookup(const struct sshcfg *c, const char *name, const char *local_user, struct sshcfg_host *out);
/* The address ssh connects to: HostName with %h and %% expanded (else name), lowercased unless an IP address. */
char *sshcfg_address(const struct sshcfg_host *h, const char *name);
void sshcfg_host_free(struct sshcfg_host *h);
void sshcfg_free(struct sshcfg *c);
const char *sshcfg_path(const struct sshcfg *c);
/*
 * Expands ssh_config tokens in s: %% %d (home) %u (local user) %h (remote
 * address) %n (the name as given) %p (port) %r (remote user), and a leading ~.
 * Unknown tokens stay as written. Any argument may be NULL (its token stays).
 */
struct sshcfg_tokens {
	const char *home, *local_user, *host, *name, *user;
	int port;
};
char *sshcfg_expand(const char *s, const struct sshcfg_tokens *t);

#endif
