/*
 * lock.c — the plan's `lock:` key (plan-format.md section 2, runs.md): a name,
 * or {name, wait}. The name becomes a file under STATE_DIR/locks, so it must
 * be a plain, safe file name; `baton run` takes the lock (store/lock.c).
 */
#include <string.h>

#include "plan/internal.h"

#define LOCK_NAME_MAX 128

static bool lock_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '-';
}

/* Checks the name scalar n; reports where it goes wrong. */
static bool lock_name_check(struct loader *L, const struct ynode *n)
{
	int line, col;
	if (ynode_is_null(n) || !n->len) {
		ERR(L, n, "'lock' needs a name");
		return false;
	}
	/* the name picks a file before anything runs: nothing in it may depend on the run */
	const char *x = strstr(n->str, "${{");
	if (x) {
		ld_scalar_place(n, (size_t)(x - n->str), &line, &col);
		diags_add(L->d, L->file, line, col, "a lock name is plain text: ${{ }} is not allowed in it");
		return false;
	}
	for (size_t i = 0; i < n->len; i++)
		if (!lock_name_char(n->str[i])) {
			ld_scalar_place(n, i, &line, &col);
			diags_add(L->d, L->file, line, col,
				  "lock name '%s': only letters, digits, '.', '_' and '-' are allowed (it names a file)",
				  n->str);
			return false;
		}
	if (n->str[0] == '.') {
		ERR(L, n, "lock name '%s' may not start with '.'", n->str);
		return false;
	}
	if (n->len > LOCK_NAME_MAX) {
		ERR(L, n, "lock name is too long: %zu characters, at most %d", n->len, LOCK_NAME_MAX);
		return false;
	}
	return true;
}

void lock_parse(struct loader *L, const struct ynode *n)
{
	static const char *const keys[] = {"name", "wait"};
	struct plan *p = L->p;
	const struct ynode *name = n, *wait = NULL;
	if (n->kind == YNODE_MAP) {
		ld_check_keys(L, n, "lock", keys, ARRAY_LEN(keys), NULL, 0);
		name = ynode_get(n, "name");
		wait = ynode_get(n, "wait");
		if (!name) {
			ERR(L, n, "'lock' needs a 'name'");
			return;
		}
	} else if (n->kind != YNODE_SCALAR) {
		ERR(L, n, "'lock' must be a name or {name, wait}, not %s", ld_type_name(n));
		return;
	}
	if (wait)
		ld_get_duration(L, wait, "wait", &p->lock_wait_ms);
	if (ld_want_scalar(L, name, "name", "a lock name") && lock_name_check(L, name))
		p->lock = xstrdup(name->str);
}
