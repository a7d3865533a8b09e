/*
 * label.c — how an instance of a for_each is shown to people (plan-format.md
 * section 3, `label`): in prefixes, the live view, the summary, errors, batch
 * events and `results`. Task ids keep #INDEX; labels are for reading.
 */
#include <string.h>

#include "plan/plan.h"

#define LABEL_DEFAULT_MAX 40

char *step_label(const struct step *s, const json_t *item, size_t index, const struct expr_scope *scope)
{
	return step_label_err(s, item, index, scope, NULL);
}

char *step_label_err(const struct step *s, const json_t *item, size_t index, const struct expr_scope *scope,
		     char **err)
{
	if (s->fan->label && scope) {
		struct buf b = {0};
		char *why = NULL;
		bool ok = tmpl_render(s->fan->label, TMPL_TEXT, scope, &b, &why);
		if (ok && b.len) {
			char *out = xstrndup(b.data, b.len);
			buf_free(&b);
			return out;
		}
		/* an empty label is no label: the default, silently */
		if (!ok && err)
			*err = why ? why : xstrdup("it could not be rendered");
		else
			free(why);
		buf_free(&b);
	}
	if (item && (json_is_string(item) || json_is_number(item))) {
		struct buf b = {0};
		value_to_text(item, &b);
		if (b.len && b.len <= LABEL_DEFAULT_MAX && !memchr(b.data, '\n', b.len)) {
			char *out = xstrndup(b.data, b.len);
			buf_free(&b);
			return out;
		}
		buf_free(&b);
	}
	return xasprintf("%zu", index);
}
