/*
 * Private to src/sched: the runtime tree (nodes), tasks and the scheduler
 * state shared by node.c-side logic in sched.c and the task machinery in
 * task.c. Other modules see only sched.h.
 */
#ifndef BATON_SCHED_INTERNAL_H
#define BATON_SCHED_INTERNAL_H

#include "sched/sched.h"

enum nstate { N_PENDING, N_RUNNING, N_DONE };
enum tstate { T_QUEUED, T_PARKED, T_RUNNING, T_ENDED };

/* What a runtime node is for: a step as written, a fan-out over items, or one item's instance. */
enum role { ROLE_STEP, ROLE_FOREACH, ROLE_INSTANCE };

struct sched;
struct snode;

/* A node's own timer: a sleep, a retry's wait, a batch pause, a barrier's timeout. */
struct ntimer {
	uv_timer_t h;
	struct sched *S;
	struct snode *n;
	int next_attempt;
};

/* A queued task: a parallel of 10,000 steps queues 10,000 of these at once. */
struct task {
	struct qitem q; /* first: the heaps hold &task->q */
	struct sched *S;
	struct snode *node;
	int attempt;
	enum tstate state;
	bool cancelled;        /* dropped from the queues lazily */
	bool cancel_requested; /* a running task being stopped */
	bool timed_out;
	int kill_phase; /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
	struct limiter *promoted_from;
	struct task_run *run; /* from the moment it starts (T_RUNNING) */
};

/* Only running tasks need these, so a queue of thousands stays small. */
struct task_run {
	struct exec_proc *proc;
	struct exec_copy *copy; /* a copy or fetch running instead of a proc */
	struct executor *exec; /* the one running proc */
	uint64_t start_ms;
	uv_timer_t *timer;
	struct task *next, *prev; /* the running list */
	struct buf line[2];       /* partial lines */
	struct buf cap[2];        /* captures */
	char *label;              /* its for_each instance's label (node_label), or NULL */
	uint64_t xfer_bytes;      /* a copy: the bytes its last task.transfer told */
};

/* The batches of a for_each as they run. */
struct batches {
	struct batch_spec spec; /* the step's batch, its ${{ }} fields decided as the fan-out started (spec.sizes is
				 * owned when the step's size is an expression) */
	size_t *sizes;
	size_t n, current, first, end, done, failed, failed_total;
	bool starting; /* start_batch is starting items: a batch that ends meanwhile leaves the next to its loop */
	bool again;    /* one did: start the next when this one's items are started */
};

/* Arrivals at one barrier name among the participants of one fan-out. */
struct barrier {
	char *name;
	unsigned char *state; /* per participant: 0 not there, 1 waiting, 2 passed */
	struct snode **waiting;
	size_t n_waiting;
	struct barrier *next;
};

/* What a step's task wrote (and its $BATON_OUTPUT values), kept only for steps an expression reads: every byte, NULs included. */
struct capture {
	char *out, *err;
	size_t out_len, err_len;
	json_t *outputs; /* what it wrote to $BATON_OUTPUT: an object of strings, or NULL */
};

/*
 * One runtime node. Plain steps get one each; a for_each step gets a
 * ROLE_FOREACH node whose kids are ROLE_INSTANCE nodes, one per item, each
 * running the step's body. Handlers (on_success, on_failure, finally) run
 * as nodes whose parent is the step they belong to.
 *
 * A parallel of 10,000 steps makes 10,000 of these at once: what only some
 * nodes use is in the union (by role) or behind a pointer, and counts are 32
 * bits (a node with 2^32 kids would need a terabyte first).
 */
struct snode {
	const struct gnode *g;
	struct snode *parent;
	struct snode **kids;
	uint32_t nkids;
	uint32_t pos; /* its place among its parent's kids */
	uint32_t next_child;
	uint32_t n_done, n_ok, n_failed;
	uint64_t start_ms, end_ms;
	struct task *task;
	struct ntimer *timer;
	struct capture *cap; /* NULL until a step an expression reads ends */
	char *reason;
	char *id; /* the runtime id: full id, then #INDEX of each enclosing item */
	int exit_code;
	int signal;
	enum role role;
	enum nstate state;
	enum status status;
	enum status decided;
	bool started; /* it really began (not skipped or cancelled while pending) */
	bool kids_made;
	bool cancelling;
	bool advancing;
	bool decided_set;
	bool detached;     /* async: its parent went on without it */
	bool selected;     /* runs under --only / --from; else it is skipped (select.c) */
	bool reason_child; /* the reason only passes up a child's failure */
	bool in_handler;   /* inside on_success, on_failure or finally */
	bool is_handler;   /* one of those itself: it runs for its parent */
	bool id_owned;     /* else id is the step's full id, borrowed */
	bool continues;    /* `continue_on_error: ${{ }}` was true as it failed: its parent goes on */
	bool tolerated;    /* it failed, and continue_on_error or max_failures (its own or around it) absorbed it */

	union {
		/* ROLE_INSTANCE: its item (others inherit through parent), and its host: an index into
		 * inventory.hosts for an instance of an `on` step, else -1 */
		struct {
			json_t *item;
			long index;
			long host;
		};
		/* ROLE_FOREACH: batches, and how many of its instances are selected */
		struct {
			struct batches *bx;
			size_t n_selected;
		};
	};

	/* fan-outs: barriers met by their participants */
	struct barrier *barriers;

	/* handlers */
	int hphase; /* 0 none yet, 1 on_success/on_failure, 2 finally, 3 done */
	enum status final_status;
	struct snode *hnode;
	char *final_reason;
};

struct async_entry {
	const char *name;
	struct snode *node;
	bool joined;
};

struct sched {
	/* the task that resume carries over, while task_end records it (not in struct task: thousands wait) */
	const struct task *reused_task;
	const struct sched_reuse *reused;
	const struct graph *g;
	const struct plan *p;
	struct sched_options o;
	struct snode *root;
	struct snode **all; /* every runtime node, for teardown and a forced stop */
	size_t n_all, cap_all;
	struct limiter *limits;
	struct heap ready;
	uint64_t enqueued; /* tie-break for the ready heap */
	size_t max_secret;  /* the longest secret value, for cutting long lines */
	struct task *running;
	bool pumping;
	/* tasks (commands) only: not groups, fan-outs, items, barriers or the run; a tolerated failure is in
	 * n_tolerated, not in n_failed or counts */
	uint64_t n_running, n_waiting, n_done, n_failed, n_tolerated, total;
	uint64_t counts[ST__COUNT];
	uint64_t start_ms;
	int interrupted; /* the signal that interrupted the run, if any */
	int n_interrupts;
	bool plan_timed_out;
	bool stalled; /* nothing could wake the loop with work pending: an internal error */
	bool root_done;
	bool root_waiting; /* the root's steps ended; async steps still run */
	bool root_settled; /* and the async steps are over too */
	enum status root_pending;
	char *root_reason;
	struct async_entry *asyncs;
	size_t n_asyncs;
	struct snode **joins; /* join steps waiting */
	size_t n_joins;
	uv_signal_t sigint, sigterm;
	uv_timer_t plan_timer, progress_timer;
	const char *run_status;
	char **base_env; /* baton's environment without BATON_*: borrowed strings */
	size_t n_base_env;
	struct exec_host *xhosts;     /* per inventory host: what the SSH executor needs */
	struct limiter *host_limits;  /* per inventory host: its max_sessions */
	struct limiter max_hosts;     /* remote hosts with a task running: graph.max_hosts at most */
	struct heap fd_wait;          /* tasks an executor could not admit: no descriptor to spare */
	uv_timer_t fd_timer;          /* tries them again once descriptors came back */
	uv_timer_t xfer_timer;        /* every XFER_MS while copies run: their task.transfer events */
	size_t n_copies;              /* copies and fetches running */
	bool fd_warned;               /* the descriptor limit was said to hold tasks back */
	struct gates *gates;          /* approve gates reached and not ended (approve.c), or NULL */
	const struct step **label_warned; /* for_each steps whose failing label was said (label.c) */
	size_t n_label_warned;
};

/* sched.c */
const struct step *step_of(const struct snode *n);
void node_finish(struct sched *S, struct snode *n, enum status st, const char *reason);
/* True when n succeeding cannot change what runs next beside it. */
bool node_success_is_quiet(const struct snode *n);
/* The expression scope seen from node n; c holds it and must outlive its use. */
struct scope_ctx {
	struct sched *S;
	struct snode *n;
};
struct expr_scope scope_of(struct scope_ctx *c, struct sched *S, struct snode *n);
json_t *node_item(const struct snode *n, long *index);
/* The host a node runs on (inventory index), or -1 for local. */
long node_host(const struct snode *n);

/* label.c: how for_each instances are shown to people */
/* The for_each instance n is or lies in (the innermost with an item), or NULL. */
const struct snode *node_instance(const struct snode *n);
/* The label of that instance (a failing `label:` gives the default, said once per step); NULL outside any. Caller frees. */
char *node_label(struct sched *S, const struct snode *n);
/* n's id as people see it: "ID (LABEL)", or ID (event_display_id). Caller frees. */
char *node_display(struct sched *S, const struct snode *n);

/* select.c: --only / --from ids that name instances */
/* Sets n->selected; an instance's once its host and item are set. */
void sel_mark(struct sched *S, struct snode *n);
/*
 * Before fan-out f makes its instances (n_items items on n_hosts hosts):
 * fails f and returns false when an id names an item its list lacks; else
 * counts the tasks of a list known only now into the run's total.
 */
bool sel_fanout_begin(struct sched *S, struct snode *f, size_t n_items, size_t n_hosts);
/* The tasks the run's total holds for fan-out f, which never made its instances: they end uncounted else. */
size_t sel_fanout_counted(struct sched *S, const struct snode *f);
/* f's batches as spans of its instances, sized by its selected ones (batch_sizes otherwise). */
size_t sel_batches(const struct snode *f, const struct batch_spec *b, size_t *sizes);
/* An amount (min_success, max_failures) of the instances a fan-out counts: its selected ones. */
size_t sel_amount(const struct snode *p, const struct amount *a);
/* The instances a fan-out counts: a for_each's or an on:'s selected ones; every branch of the others. */
size_t sel_fan_size(const struct snode *p);

/* True when n is a task the run counts (a command; a handler's only once it started). */
bool node_is_counted_task(const struct snode *n);
/*
 * A failure (or time-out) of n, as it ends with st, is tolerated: continue_on_error
 * on n or a step around it, or the max_failures of a batched for_each around it,
 * absorbs it before it fails anything that is not.
 */
bool node_failure_tolerated(struct sched *S, struct snode *n, enum status st);

/* approve.c: `approve` gates, asked one at a time; none holds a concurrency slot */
void gate_start(struct sched *S, struct snode *n);
void gate_cancel(struct sched *S, struct snode *n);
void gates_free(struct sched *S);

/* task.c */
struct ntimer *ntimer_new(struct sched *S, struct snode *n);
void ntimer_drop(struct ntimer **tp);
void task_enqueue(struct sched *S, struct snode *n, int attempt);
void task_free(struct task *t);
void task_kill(struct task *t);
void pump(struct sched *S);
/* Descriptors were given back: the tasks waiting for them go back to the ready queue. */
void fds_room(void *ud);
void hard_kill(struct sched *S);
/* preamble.c: runs o.preamble's commands on their hosts and waits for them (resume of a crashed run). */
void preamble_run(struct sched *S);

/*
 * remote.c: appends to cmd the part of a remote command line that takes the
 * environment env (n "K=V" strings) from stdin, and sets *input to what
 * stdin must carry (NULL: no environment, nothing appended). The command
 * runs only if that input arrived whole; cut short, the shell exits 125.
 * False with *err: a name a shell cannot export.
 */
struct buf;
bool remote_env(struct buf *cmd, const char *const *env, size_t n, char **input, char **err);

#endif
