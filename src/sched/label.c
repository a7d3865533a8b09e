/*
 * label.c — the labels of for_each instances as the run shows them
 * (plan-format.md section 3, `label`). A label is computed when something
 * shows its instance (a task starting, a step's event, a failure's reason,
 * a batch event, `results`) and kept only by a running task (task_run), so a
 * for_each over a million items never holds a million labels. A `label:`
 * that cannot be rendered shows the default instead, said once per step.
 */
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

const struct snode *node_instance(const struct snode *n)
{
	for (; n; n = n->parent)
		if (n->role == ROLE_INSTANCE && n->item)
			return n;
	return NULL;
}

/* Says once per step that its label failed (the bus masks secrets in it). */
static void label_warn(struct sched *S, const struct snode *inst, const char *why)
{
	const struct step *s = step_of(inst);
	for (size_t i = 0; i < S->n_label_warned; i++)
		if (S->label_warned[i] == s)
			return;
	S->label_warned = xrealloc(S->label_warned, (S->n_label_warned + 1) * sizeof *S->label_warned);
	S->label_warned[S->n_label_warned++] = s;
	bus_warn(S->o.bus, false, NULL,
		 "%s: its label could not be rendered (%s); instances of %s whose label fails are shown by their item "
		 "or index",
		 inst->id, why, s->full_id);
}

char *node_label(struct sched *S, const struct snode *n)
{
	const struct snode *inst = node_instance(n);
	if (!inst)
		return NULL;
	const struct step *s = step_of(inst);
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, (struct snode *)inst);
	char *why = NULL;
	char *label = step_label_err(s, inst->item, (size_t)inst->index, s->fan->label ? &scope : NULL, &why);
	if (why)
		label_warn(S, inst, why);
	free(why);
	return label;
}

char *node_display(struct sched *S, const struct snode *n)
{
	char *label = node_label(S, n);
	struct buf b = {0};
	event_display_id(&b, n->id, label);
	free(label);
	return buf_detach(&b);
}
