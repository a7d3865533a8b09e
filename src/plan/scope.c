/*
 * scope.c — the parts of the expression context that a plan alone decides
 * (vars, env) and secret masking, shared by the dry run and the scheduler.
 */
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

json_t *plan_lookup_static(const struct plan *p, const char *root, const char *const *segs, size_t nsegs,
			   size_t *used, char **err)
{
	if (!strcmp(root, "vars")) {
		if (!nsegs) {
			*used = 0;
			return json_incref(p->vars);
		}
		json_t *v = json_object_get(p->vars, segs[0]);
		if (!v) {
			*err = xasprintf("vars.%s is not defined (set it under 'vars:' or with --var %s=VALUE)", segs[0],
					 segs[0]);
			return NULL;
		}
		*used = 1;
		return json_incref(v);
	}
	if (!strcmp(root, "env")) {
		if (!nsegs) {
			*err = xstrdup("'env' needs a name, as in env.HOME");
			return NULL;
		}
		*used = 1;
		for (size_t i = p->n_env; i-- > 0;)
			if (!strcmp(p->env[i].key, segs[0]))
				return json_string(p->env[i].value);
		const char *v = getenv(segs[0]);
		if (!v) {
			*err = xasprintf("env.%s is not set", segs[0]);
			return NULL;
		}
		json_t *j = json_string(v);
		return j ? j : json_string("");
	}
	*err = xasprintf("'%s' is not available here", root);
	return NULL;
}

char **plan_secret_values(const struct plan *p, size_t *n)
{
	char **v = xcalloc(p->n_secrets + 1, sizeof *v);
	*n = 0;
	for (size_t i = 0; i < p->n_secrets; i++) {
		json_t *j = json_object_get(p->vars, p->secrets[i]);
		if (!j || json_is_null(j))
			continue;
		struct buf b = {0};
		value_to_text(j, &b);
		if (b.len == 0) {
			buf_free(&b);
			continue;
		}
		/* output is split into lines: each line of a multi-line secret is masked on its own */
		if (memchr(b.data, '\n', b.len)) {
			for (const char *p0 = b.data; *p0;) {
				size_t l = strcspn(p0, "\n");
				size_t t = l && p0[l - 1] == '\r' ? l - 1 : l;
				if (t >= 4) {
					v = xrealloc(v, (*n + 3) * sizeof *v);
					v[(*n)++] = xstrndup(p0, t);
				}
				p0 += l + (p0[l] == '\n');
			}
		}
		v = xrealloc(v, (*n + 2) * sizeof *v);
		v[(*n)++] = buf_detach(&b);
		v[*n] = NULL;
	}
	return v;
}

bool mask_secrets(const char *s, size_t len, const char *const *secrets, size_t n, struct buf *out)
{
	bool any = false;
	for (size_t k = 0; k < n && !any; k++)
		any = memmem(s, len, secrets[k], strlen(secrets[k])) != NULL;
	if (!any) {
		buf_add(out, s, len);
		return false;
	}
	size_t i = 0;
	while (i < len) {
		size_t best = 0;
		for (size_t k = 0; k < n; k++) {
			size_t sl = strlen(secrets[k]);
			if (sl > best && sl <= len - i && memcmp(s + i, secrets[k], sl) == 0)
				best = sl;
		}
		if (best) {
			buf_adds(out, "***");
			i += best;
		} else {
			buf_addc(out, s[i++]);
		}
	}
	if (!len)
		buf_add(out, "", 0);
	return any;
}
