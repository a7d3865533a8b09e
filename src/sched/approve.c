/*
 * approve.c — `approve` gates (plan-format.md section 3). A gate holds no
 * concurrency slot (like `sleep`): reached, it renders its message and joins
 * the queue of gates; gates are asked one at a time, in the order reached
 * (each instance of a gate in a fan-out asks on its own). The answer comes
 * from the approver the command line gives (sched.h): preset (--yes,
 * BATON_APPROVE=all, no terminal) or asked, without blocking the loop: other
 * tasks go on and timeouts fire meanwhile. `timeout` counts from when the
 * gate is reached.
 */
#include <string.h>

#include "sched/internal.h"

struct gate {
	struct snode *n;
	char *message;
};

struct gates {
	struct gate *waiting; /* reached, not asked yet: in the order reached */
	size_t n, cap;
	struct gate asking; /* asking.n: the gate a person is being asked, or NULL */
};

static void gates_pump(struct sched *S);

static void emit(struct sched *S, const struct gate *g, enum event_type t, bool approved, const char *by)
{
	struct event e = {.type = t, .step = g->n->id, .message = g->message, .approved = approved, .by = by};
	char *label = node_label(S, g->n);
	e.label = label;
	bus_emit(S->o.bus, &e);
	free(label);
}

/* g (out of every list) is decided: approve.end, and its step ends. */
static void gate_end(struct sched *S, struct gate g, bool approved, const char *by)
{
	emit(S, &g, EV_APPROVE_END, approved, by);
	enum status st = approved ? ST_SUCCESS : ST_FAILED;
	char *reason = NULL;
	if (!strcmp(by, "timeout")) {
		char d[32];
		duration_format(step_of(g.n)->approve_timeout_ms, d, sizeof d);
		reason = xasprintf("not approved within %s", d);
		st = ST_TIMEOUT;
	} else if (!strcmp(by, "cancelled")) {
		st = ST_CANCELLED;
	} else if (!approved) {
		reason = xstrdup(!strcmp(by, "no terminal") ? "no terminal to ask on: pass --yes or set BATON_APPROVE=all"
							    : "not approved at the prompt");
	}
	free(g.message);
	node_finish(S, g.n, st, reason);
	free(reason);
}

static void on_answer(void *ctx, bool approved)
{
	struct sched *S = ctx;
	struct gates *G = S->gates;
	if (!G || !G->asking.n)
		return;
	struct gate g = G->asking;
	G->asking = (struct gate){0};
	gate_end(S, g, approved, "tty");
	gates_pump(S);
	pump(S);
}

/* Asks the next gate in line, unless one is being asked; decides at once what needs nobody. */
static void gates_pump(struct sched *S)
{
	struct gates *G = S->gates;
	while (G && !G->asking.n && G->n) {
		struct gate g = G->waiting[0];
		memmove(G->waiting, G->waiting + 1, --G->n * sizeof *G->waiting);
		const struct sched_approver *a = S->o.approver;
		bool approved = false;
		const char *by = a ? a->preset(a->ud, &approved) : "no terminal";
		if (by) {
			gate_end(S, g, approved, by);
			continue;
		}
		/* reading starts first (what was typed before is dropped), then the question is shown */
		G->asking = g;
		char *shown = node_display(S, g.n);
		bool asking = a->ask(a->ud, shown, g.message, on_answer, S);
		free(shown);
		if (!asking) {
			G->asking = (struct gate){0};
			gate_end(S, g, false, "no terminal");
			continue;
		}
		emit(S, &g, EV_APPROVE_WAIT, false, NULL);
		bus_flush(S->o.bus);
	}
}

/* Takes n's gate out of the lists: true, with it in *out, when it was there. */
static bool gate_take(struct sched *S, struct snode *n, struct gate *out)
{
	struct gates *G = S->gates;
	if (!G)
		return false;
	if (G->asking.n == n) {
		*out = G->asking;
		G->asking = (struct gate){0};
		if (S->o.approver && S->o.approver->stop)
			S->o.approver->stop(S->o.approver->ud);
		return true;
	}
	for (size_t i = 0; i < G->n; i++)
		if (G->waiting[i].n == n) {
			*out = G->waiting[i];
			memmove(G->waiting + i, G->waiting + i + 1, (G->n - i - 1) * sizeof *G->waiting);
			G->n--;
			return true;
		}
	return false;
}

static void on_gate_timeout(uv_timer_t *h)
{
	struct ntimer *nt = h->data;
	struct sched *S = nt->S;
	struct gate g;
	if (gate_take(S, nt->n, &g))
		gate_end(S, g, false, "timeout");
	gates_pump(S);
	pump(S);
}

void gate_start(struct sched *S, struct snode *n)
{
	const struct step *s = step_of(n);
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, n);
	struct buf b = {0};
	char *err = NULL;
	if (!s->approve_message || !tmpl_render(s->approve_message, TMPL_TEXT, &scope, &b, &err)) {
		char *r = xasprintf("approve: %s", err ? err : "no message");
		free(err);
		buf_free(&b);
		node_finish(S, n, ST_FAILED, r);
		free(r);
		return;
	}
	if (!S->gates)
		S->gates = xcalloc(1, sizeof *S->gates);
	struct gates *G = S->gates;
	if (G->n == G->cap) {
		G->cap = G->cap ? 2 * G->cap : 4;
		G->waiting = xrealloc(G->waiting, G->cap * sizeof *G->waiting);
	}
	/* the question may reach the terminal through the approver too, not only through the bus: masked here */
	struct buf m = {0};
	const struct bus *bus = S->o.bus;
	if (bus->n_secrets && mask_secrets(b.data ? b.data : "", b.len, bus->secrets, bus->n_secrets, &m)) {
		buf_free(&b);
		b = m;
	}
	G->waiting[G->n++] = (struct gate){n, buf_detach(&b)};
	if (s->approve_timeout_ms) {
		n->timer = ntimer_new(S, n);
		uv_timer_start(&n->timer->h, on_gate_timeout, s->approve_timeout_ms, 0);
	}
	gates_pump(S);
}

void gate_cancel(struct sched *S, struct snode *n)
{
	struct gate g;
	if (gate_take(S, n, &g))
		gate_end(S, g, false, "cancelled");
	else
		node_finish(S, n, ST_CANCELLED, NULL);
	gates_pump(S);
}

void gates_free(struct sched *S)
{
	struct gates *G = S->gates;
	if (!G)
		return;
	if (G->asking.n && S->o.approver && S->o.approver->stop)
		S->o.approver->stop(S->o.approver->ud);
	free(G->asking.message);
	for (size_t i = 0; i < G->n; i++)
		free(G->waiting[i].message);
	free(G->waiting);
	free(G);
	S->gates = NULL;
}
