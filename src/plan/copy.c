/*
 * copy.c — the `copy` and `fetch` step kinds (plan-format.md section 3):
 * their value, read into a struct copy_spec on a STEP_RUN, so that a copy is
 * a task like any other for the graph and the scheduler.
 */
#include <string.h>

#include "plan/internal.h"
#include "plan/plan.h"

int copy_mode_parse(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 4 || strspn(s, "01234567") != n)
		return -1;
	int m = 0;
	for (size_t i = 0; i < n; i++)
		m = m * 8 + (s[i] - '0');
	return m;
}

void ld_parse_copy(struct loader *L, const char *kind, const struct ynode *v, struct step *s)
{
	bool fetch = !strcmp(kind, "fetch");
	if (v->kind != YNODE_MAP) {
		ERR(L, v, "'%s' must be a map %s, not %s", kind, fetch ? "{src, dest}" : "{src, dest, mode}",
		    ld_type_name(v));
		return;
	}
	static const char *const copy_keys[] = {"src", "dest", "mode"};
	ld_check_keys(L, v, kind, copy_keys, fetch ? 2 : 3, NULL, 0);
	struct copy_spec *c = xcalloc(1, sizeof *c);
	c->fetch = fetch;
	s->copy = c;
	const struct ynode *src = ynode_get(v, "src"), *dest = ynode_get(v, "dest");
	const struct ynode *mode = fetch ? NULL : ynode_get(v, "mode");
	if (!src)
		ERR(L, v, "'%s' needs a 'src'", kind);
	else if ((c->src = ld_get_tmpl(L, src, "src")) && !src->len)
		ERR(L, src, "'src' is empty");
	if (!dest)
		ERR(L, v, "'%s' needs a 'dest'", kind);
	else if ((c->dest = ld_get_tmpl(L, dest, "dest")) && !dest->len)
		ERR(L, dest, "'dest' is empty");
	if (mode && (c->mode = ld_get_tmpl(L, mode, "mode")) && tmpl_is_literal(c->mode) && copy_mode_parse(mode->str) < 0)
		ERR(L, mode, "'mode' must be octal permission bits such as \"0644\" or \"0755\", not '%s'", mode->str);
}

void copy_spec_free(struct copy_spec *c)
{
	if (!c)
		return;
	tmpl_free(c->src);
	tmpl_free(c->dest);
	tmpl_free(c->mode);
	free(c);
}
