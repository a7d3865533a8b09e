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
/* Looks up a key in a map node. */
struct ynode *ynode_get(const struct ynode *map, const char *key);
/* The scalar converted to JSON: plain true/false/null/numbers typed, else a string. */
json_t *ynode_to_json(const struct ynode *n);

/* Where interpolated text stands in a shell script (see shctx.c). */
enum shctx_kind {
	SHCTX_PLAIN,
	SHCTX_SINGLE,
	SHCTX_DOUBLE,
	SHCTX_ANSI,
	SHCTX_SUBST,
	SHCTX_BACKQUOTE,
	SHCTX_COMMENT,
	SHCTX_HEREDOC,
	SHCTX_HEREDOC_QUOTED,
};

#define SHCTX_MAX_DEPTH 32
#define SHCTX_MAX_HEREDOCS 8

struct heredoc {
	char word[64];
	bool quoted;
	bool strip_tabs;
};

struct shctx {
	enum shctx_kind stack[SHCTX_MAX_DEPTH];
	unsigned parens[SHCTX_MAX_DEPTH];
	int depth;
	bool word_start;
	bool overflow;
	struct heredoc pending[SHCTX_MAX_HEREDOCS];
	size_t n_pending;
	struct heredoc body;
	char line[256];
	size_t line_len;
	bool line_overflow;
};

void shctx_init(struct shctx *c);
/* Advances over literal script text. */
void shctx_feed(struct shctx *c, const char *s, size_t n);
/* Appends v quoted for where the script stands; false with *err where that cannot be done safely. */
bool shctx_insert(struct shctx *c, const json_t *v, struct buf *out, char **err);

#endif
