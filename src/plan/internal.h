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

#endif
