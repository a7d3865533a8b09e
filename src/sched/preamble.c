/*
 * preamble.c — commands run on hosts before the graph starts, and waited
 * for: `resume` of a crashed run ends there what the run left running (its
 * recorded remote process groups). A command that fails is a warning: the
 * run goes on.
 */
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"
#include "util/util.h"

struct pre {
	struct sched *S;
	size_t *left;
	const char *host;
};

static void pre_output(void *ud, int stream, const char *data, size_t len)
{
	(void)ud;
	(void)stream;
	(void)data;
	(void)len;
}

static void pre_done(void *ud, const struct exec_status *st)
{
	struct pre *p = ud;
	if (st->error || st->exit_code != 0)
		bus_warn(p->S->o.bus, false, NULL, "could not end what the crashed run left on %s: %s", p->host,
			 st->error ? st->error : "the command failed");
	(*p->left)--;
	free(p);
}

void preamble_run(struct sched *S)
{
	const struct inventory *inv = &S->p->inventory;
	size_t left = 0;
	for (size_t i = 0; i < S->o.n_preamble; i++) {
		const struct sched_preamble *c = &S->o.preamble[i];
		size_t h = 0;
		while (h < inv->n_hosts && strcmp(inv->hosts[h].name, c->host))
			h++;
		if (h == inv->n_hosts || inv->hosts[h].local || !S->o.ssh) {
			bus_warn(S->o.bus, false, NULL, "could not end what the crashed run left on %s: %s", c->host,
				 h == inv->n_hosts ? "the plan no longer names that host" : "no SSH");
			continue;
		}
		struct exec_spec spec = {.host = &S->xhosts[h], .command = c->command};
		struct exec_callbacks cb = {pre_output, pre_done, NULL};
		struct pre *p = xcalloc(1, sizeof *p);
		*p = (struct pre){S, &left, inv->hosts[h].name};
		char *err = NULL;
		if (S->o.ssh->ops->start(S->o.ssh, &spec, &cb, p, &err)) {
			left++;
		} else {
			bus_warn(S->o.bus, false, NULL, "could not end what the crashed run left on %s: %s", c->host,
				 err ? err : "it could not start");
			free(err);
			free(p);
		}
	}
	/* bounded: each command ends, or its connection times out */
	while (left && uv_run(S->o.loop, UV_RUN_ONCE))
		;
}
