/*
 * fieldexpr.c — fields that may be written as ${{ EXPR }} instead of a plain
 * value: `continue_on_error` and the fields of `batch` (plan-format.md
 * sections 3 and 4). The loader keeps the expression; the scheduler
 * evaluates it when the run gets there (batch: as the fan-out starts;
 * continue_on_error: as the step, or each instance, fails) and a value of
 * the wrong type fails the step with the reason.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

bool ld_field_expr(struct loader *L, const struct ynode *v, const char *key, struct field_expr *out)
{
	if (v->kind != YNODE_SCALAR || !strstr(v->str, "${{"))
		return false;
	const char *src = v->str;
	size_t len = v->len;
	while (len && (*src == ' ' || *src == '\t'))
		src++, len--;
	while (len && (src[len - 1] == ' ' || src[len - 1] == '\t' || src[len - 1] == '\n'))
		len--;
	if (len < 5 || memcmp(src, "${{", 3) || memcmp(src + len - 2, "}}", 2) || memmem(src + 3, len - 5, "${{", 3)) {
		ERR(L, v, "'%s' is a value or one ${{ expression }} alone, not text around one", key);
		return true;
	}
	char *err = NULL;
	struct expr *e = expr_parse(src + 3, len - 5, &err);
	if (!e) {
		ERR(L, v, "'%s': %s", key, err);
		free(err);
		return true;
	}
	expr_free(out->e);
	out->e = e;
	out->line = v->line;
	out->col = v->col;
	return true;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	case JSON_ARRAY:
		return "a list";
	default:
		return "a map";
	}
}

/* A count or "P%" (min: the least count) from a value; false with *err. */
static bool amount_value(const json_t *v, const char *key, double min, struct amount *a, char **err)
{
	if (json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))) {
		double d = json_number_value(v);
		if (d < min || d > 2147483647.0) {
			*err = xasprintf("'%s': the expression gave %g; expected a count of at least %g or a percentage", key, d,
					 min);
			return false;
		}
		*a = (struct amount){.set = true, .percent = false, .value = d};
		return true;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = strlen(s);
		char *end;
		double d = strtod(s, &end);
		bool pct = n > 1 && s[n - 1] == '%' && end == s + n - 1;
		bool count = n && end == s + n && d == floor(d);
		if ((pct && isfinite(d) && d >= 0 && d <= 100 && (min == 0 || d > 0)) ||
		    (count && d >= min && d <= 2147483647.0)) {
			*a = (struct amount){.set = true, .percent = pct, .value = d};
			return true;
		}
		*err = xasprintf("'%s': the expression gave '%s'; expected a count%s or a percentage like \"25%%\"", key, s,
				 min > 0 ? " of at least 1" : "");
		return false;
	}
	*err = xasprintf("'%s': the expression gave %s; expected a count or a percentage like \"25%%\"", key,
			 type_name(v));
	return false;
}

static json_t *eval_field(const struct field_expr *f, const char *key, const struct expr_scope *scope, char **err)
{
	char *e = NULL;
	json_t *v = expr_eval(f->e, scope, &e);
	if (!v) {
		*err = xasprintf("'%s': %s", key, e);
		free(e);
	}
	return v;
}

static bool resolve_sizes(const struct batch_spec *b, const struct expr_scope *scope, struct batch_spec *out, char **err)
{
	json_t *v = eval_field(&b->size_x, "batch.size", scope, err);
	if (!v)
		return false;
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	if (!n) {
		*err = xstrdup("'batch.size': the expression gave an empty list");
		json_decref(v);
		return false;
	}
	out->sizes = xcalloc(n, sizeof *out->sizes);
	out->n_sizes = n;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++)
		ok = amount_value(json_is_array(v) ? json_array_get(v, i) : v, "batch.size", 1, &out->sizes[i], err);
	json_decref(v);
	if (!ok) {
		free(out->sizes);
		out->sizes = NULL;
	}
	return ok;
}

static bool resolve_pause(const struct batch_spec *b, const struct expr_scope *scope, struct batch_spec *out, char **err)
{
	json_t *v = eval_field(&b->pause_x, "batch.pause", scope, err);
	if (!v)
		return false;
	bool ok = false;
	if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 1e9) {
		out->pause_ms = (uint64_t)(json_number_value(v) * 1000.0 + 0.5);
		ok = true;
	} else if (json_is_string(v)) {
		ok = duration_parse(json_string_value(v), &out->pause_ms);
	}
	if (!ok) {
		struct buf t = {0};
		value_to_text(v, &t);
		*err = xasprintf("'batch.pause': the expression gave %s%s%s%s; expected a duration like 5s or 1m30s",
				 type_name(v), json_is_string(v) ? " '" : "", json_is_string(v) && t.data ? t.data : "",
				 json_is_string(v) ? "'" : "");
		buf_free(&t);
	}
	json_decref(v);
	return ok;
}

bool batch_resolve(const struct batch_spec *b, const struct expr_scope *scope, struct batch_spec *out, char **err)
{
	*out = *b;
	*err = NULL;
	if (b->size_x.e) {
		out->sizes = NULL;
		out->n_sizes = 0;
		if (!resolve_sizes(b, scope, out, err))
			return false;
	}
	bool ok = !b->pause_x.e || resolve_pause(b, scope, out, err);
	if (ok && b->max_failures_x.e) {
		json_t *v = eval_field(&b->max_failures_x, "batch.max_failures", scope, err);
		ok = v && amount_value(v, "batch.max_failures", 0, &out->max_failures, err);
		json_decref(v);
	}
	if (!ok && b->size_x.e) {
		free(out->sizes);
		out->sizes = NULL;
	}
	return ok;
}

int continue_on_error_eval(const struct step *s, const struct expr_scope *scope, char **err)
{
	*err = NULL;
	json_t *v = eval_field(&s->mods->continue_x, "continue_on_error", scope, err);
	if (!v)
		return -1;
	int r = json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1;
	if (r < 0)
		*err = xasprintf("'continue_on_error': the expression gave %s, not true or false", type_name(v));
	json_decref(v);
	return r;
}
