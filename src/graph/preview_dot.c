/*
 * preview_dot.c — `baton plan --output dot`: the steps as a Graphviz
 * digraph, for `dot -Tsvg`. One node per step (its id, kind, fan-out and
 * task count); a sequence's steps follow each other (solid edges), a
 * parallel, stages or stage fans out to its members, a step's on_success,
 * on_failure and finally hang from it by dashed edges. A step the preview
 * knows is skipped is grey and dotted. Labels are masked.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

struct dw {
	const struct preview *pv;
	FILE *out;
};

/* s as a DOT quoted string's body: masked, quotes and backslashes escaped, control characters visible. */
static void quoted(const struct dw *D, const char *s, struct buf *b)
{
	struct buf v = {0};
	preview_masked_text(D->pv, s, strlen(s), &v);
	for (size_t i = 0; i < v.len; i++) {
		if (v.data[i] == '"' || v.data[i] == '\\')
			buf_addc(b, '\\');
		buf_addc(b, v.data[i]);
	}
	buf_free(&v);
}

static void node_id(const struct gnode *n, struct buf *b)
{
	buf_printf(b, "n%zu", n->index);
}

static void on_step(void *ud, const struct pv_step *st)
{
	struct dw *D = ud;
	const struct gnode *n = st->node;
	const struct step *s = n->step;
	struct buf label = {0}, t = {0};
	quoted(D, s->full_id, &label);
	buf_adds(&t, step_kind_word(s));
	if (s->fan->for_each) {
		buf_printf(&t, ", for_each %zu item%s", json_array_size(s->fan->for_each),
			   json_array_size(s->fan->for_each) == 1 ? "" : "s");
	} else if (s->fan->for_each_expr) {
		struct expr_scope scope = {preview_lookup, (void *)D->pv};
		char *err = NULL;
		json_t *v = expr_eval(s->fan->for_each_expr, &scope, &err);
		if (v && json_is_array(v))
			buf_printf(&t, ", for_each %zu item%s", json_array_size(v), json_array_size(v) == 1 ? "" : "s");
		else
			buf_adds(&t, ", for_each (known at run time)");
		json_decref(v);
		free(err);
	}
	if (s->fan->on)
		buf_printf(&t, ", on %zu host%s", s->fan->n_hosts, s->fan->n_hosts == 1 ? "" : "s");
	buf_adds(&label, "\\n");
	quoted(D, t.data, &label);
	if (s->mods->when_src) {
		buf_adds(&label, "\\nwhen: ");
		quoted(D, s->mods->when_src, &label);
	}
	char *slug = s->name ? str_slug(s->name) : NULL;
	if (s->name && strcmp(slug ? slug : "", s->id)) { /* a name the id does not already say */
		buf_adds(&label, "\\n");
		quoted(D, s->name, &label);
	}
	free(slug);
	buf_free(&t);
	struct buf id = {0};
	node_id(n, &id);
	const char *shape = s->kind == STEP_RUN	      ? "box"
			    : s->kind == STEP_BARRIER || s->kind == STEP_JOIN ? "diamond"
			    : s->kind == STEP_SLEEP			     ? "ellipse"
			    : s->kind == STEP_APPROVE			     ? "octagon"
									     : "folder";
	fprintf(D->out, "  %s [shape=%s, label=\"%s\"%s];\n", id.data, shape, label.data,
		st->skipped ? ", style=dotted, color=gray50, fontcolor=gray50" : "");
	/* how it hangs from its parent */
	const struct gnode *p = n->parent;
	struct buf pid = {0};
	node_id(p, &pid);
	if (st->handler >= 0) {
		fprintf(D->out, "  %s -> %s [style=dashed, label=\"%s\"];\n", pid.data, id.data,
			handler_name((enum handler_kind)st->handler));
	} else if (p->parent || p->step->kind != STEP_STEPS) {
		size_t at = 0;
		while (at < p->nkids && p->kids[at] != n)
			at++;
		bool seq = p->step->kind == STEP_STEPS || p->step->kind == STEP_STAGES;
		if (seq && at > 0) {
			struct buf prev = {0};
			node_id(p->kids[at - 1], &prev);
			fprintf(D->out, "  %s -> %s;\n", prev.data, id.data);
			buf_free(&prev);
		} else {
			fprintf(D->out, "  %s -> %s [arrowhead=%s];\n", pid.data, id.data, seq ? "normal" : "crow");
		}
	} else {
		/* the plan's own steps: one after another from the start */
		size_t at = 0;
		while (at < p->nkids && p->kids[at] != n)
			at++;
		struct buf prev = {0};
		if (at)
			node_id(p->kids[at - 1], &prev);
		else
			buf_adds(&prev, "n0");
		fprintf(D->out, "  %s -> %s;\n", prev.data, id.data);
		buf_free(&prev);
	}
	buf_free(&pid);
	buf_free(&id);
	buf_free(&label);
}

void preview_dot(const struct preview *pv, FILE *out)
{
	struct dw D = {pv, out};
	struct buf name = {0};
	quoted(&D, preview_plan_name(pv), &name);
	fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n", name.data);
	fprintf(out, "  n0 [shape=circle, label=\"start\"];\n"); /* the plan: its steps follow, its handlers hang from it */
	struct pv_visitor v = {on_step, NULL, NULL, 0, &D};
	preview_walk(pv, &v);
	fputs("}\n", out);
	buf_free(&name);
}
