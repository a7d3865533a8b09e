/*
 * scope.c — the parts of the expression context that a plan alone decides
 * (vars, inputs, env), shared by the dry run and the scheduler.
 */
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

/* BATON_SECRET_* is baton's input for a secret, not the commands' environment: say what to read instead. */
static char *secret_env_error(const struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_secrets; i++) {
		char *e = plan_secret_env_name(p->secrets[i]);
		bool same = !strcmp(e, name);
		free(e);
		if (same)
			return xasprintf("env.%s is how baton is given secret '%s', not part of the environment: read it "
					 "as vars.%s",
					 name, p->secrets[i], p->secrets[i]);
	}
	return xasprintf("env.%s is how baton is given a secret, not part of the environment (and the plan lists "
			 "no secret read from it)",
			 name);
}

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
	if (!strcmp(root, "inputs")) {
		*used = nsegs ? 1 : 0;
		if (!nsegs)
			return json_incref(p->inputs);
		json_t *v = json_object_get(p->inputs, segs[0]);
		if (v)
			return json_incref(v);
		for (size_t i = 0; i < p->n_inputs; i++)
			if (!strcmp(p->input_defs[i].name, segs[0]))
				return json_null(); /* optional, neither given nor defaulted */
		*err = xasprintf("inputs.%s is not declared (declare it under 'inputs:')", segs[0]);
		return NULL;
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
		if (str_has_prefix(segs[0], "BATON_SECRET_")) {
			*err = secret_env_error(p, segs[0]);
			return NULL;
		}
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
