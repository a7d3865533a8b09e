/*
 * live.c — the live area of the tty sink: the rows under the scrolling
 * output that say what runs now (fleets, running tasks, waits) and the
 * progress bar, erased before each line of output and drawn again after it.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "event/human_int.h"

/* The fleet whose instance is `id` (STEP@HOST), or NULL; *host points at HOST. */
struct fleet *fleet_of_instance(struct human *H, const char *id, const char **host)
{
	for (size_t i = 0; i < H->n_fleets; i++) {
		size_t n = strlen(H->fleets[i].id);
		if (!strncmp(id, H->fleets[i].id, n) && id[n] == '@' && !strpbrk(id + n + 1, "@#")) {
			*host = id + n + 1;
			return &H->fleets[i];
		}
	}
	return NULL;
}

/* True when a task (or step) id lies inside a fleet: FLEET[.STEP...]@HOST. */
bool in_fleet(const struct human *H, const char *id)
{
	const char *at = strchr(id, '@');
	if (!at)
		return false;
	size_t len = (size_t)(at - id);
	for (size_t i = 0; i < H->n_fleets; i++) {
		size_t n = strlen(H->fleets[i].id);
		if (n <= len && !strncmp(id, H->fleets[i].id, n) && (n == len || id[n] == '.'))
			return true;
	}
	return false;
}

void fleet_free(struct fleet *f)
{
	for (size_t i = 0; i < f->n_run; i++)
		free(f->run[i].host);
	free(f->run);
	free(f->id);
}

/* The terminal's width in columns. */
int term_cols(const struct human *H)
{
	return H->o.width > 20 ? H->o.width : 80;
}

/*
 * Removes the live area from the screen so ordinary output can scroll. After
 * the terminal narrowed, a row wider than it was wrapped onto several lines
 * (terminals reflow their lines), and all of them go.
 */
void live_erase(struct human *H)
{
	if (!H->tty || !H->live_rows)
		return;
	int width = term_cols(H), lines = 0;
	for (int i = 0; i < H->live_rows; i++)
		lines += H->live_cols[i] > width ? (H->live_cols[i] + width - 1) / width : 1;
	fprintf(H->f, "\r\033[%dA\033[J", lines);
	H->live_rows = 0;
}

/* Columns that text takes on a terminal: colour codes take none, a UTF-8 character one. */
static int columns(const char *s, size_t len, size_t *fit, int max)
{
	int cols = 0;
	*fit = len;
	for (size_t i = 0; i < len;) {
		if (s[i] == '\033') { /* our own colour codes: ESC [ ... m */
			while (i < len && s[i] != 'm')
				i++;
			i++;
			continue;
		}
		if (cols == max && *fit == len)
			*fit = i;
		cols++;
		for (i++; i < len && ((unsigned char)s[i] & 0xc0) == 0x80; i++)
			;
	}
	return cols;
}

/* Bytes of s's first n columns (UTF-8 characters). */
static size_t head_bytes(const char *s, size_t n)
{
	size_t i = 0;
	for (; s[i] && n; n--)
		for (i++; s[i] && ((unsigned char)s[i] & 0xc0) == 0x80; i++)
			;
	return i;
}

/* Columns of s, one per UTF-8 character. */
static size_t text_cols(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/*
 * Appends id (a task as people see it, "STEP[@HOST][#N] (LABEL)") in exactly
 * room columns: padded, or cut in the middle with "…" so that what tells
 * instances apart — @HOST, #N and the label, at its end — stays; ids of
 * eight items of one long step must not all read the same.
 */
void live_cut_id(struct buf *b, const char *id, size_t room)
{
	size_t cols = text_cols(id);
	if (cols <= room) {
		buf_printf(b, "%s%*s", id, (int)(room - cols), "");
		return;
	}
	size_t idlen = strcspn(id, " ");
	size_t at = strcspn(id, "@#");
	const char *tail = at < idlen ? id + at : NULL; /* the instance: from its first @ or # */
	size_t min_head = room / 3 < 8 ? room / 3 : 8;
	size_t tail_cols = tail ? text_cols(tail) : (room - 1) / 3;
	if (!tail)
		tail = id + head_bytes(id, cols - tail_cols);
	if (tail_cols + 1 + min_head > room) {
		/* even the instance is too long: its start (@HOST#N, the label's start) and … */
		size_t head = min_head < at ? min_head : at;
		size_t keep = room - 2 - head;
		buf_printf(b, "%.*s…%.*s…", (int)head_bytes(id, head), id, (int)head_bytes(tail, keep), tail);
		return;
	}
	size_t head = room - 1 - tail_cols;
	buf_printf(b, "%.*s…%s", (int)head_bytes(id, head), id, tail);
}

/* Writes one row of the live area, cut to the terminal's width so that it never wraps. */
static void live_row(struct human *H, struct buf *b)
{
	int max = term_cols(H) - 1;
	size_t fit;
	int cols = columns(b->data ? b->data : "", b->len, &fit, max);
	if (cols > max) {
		fwrite(b->data, 1, fit, H->f);
		fputs(col(H, "\033[0m"), H->f);
		cols = max;
	} else {
		fwrite(b->data ? b->data : "", 1, b->len, H->f);
	}
	fputc('\n', H->f);
	if (H->live_rows < LIVE_MAX)
		H->live_cols[H->live_rows++] = cols;
	buf_reset(b);
}

/* The live row of a fleet: hosts done, failed and running, and the slowest ones. */
static void fleet_row(struct human *H, const struct fleet *f, uint64_t now, struct buf *b)
{
	buf_printf(b, "  %s▸%s %s on %zu hosts: %zu done", col(H, "\033[36m"), col(H, "\033[0m"), f->id, f->total,
		   f->ok + f->failed + f->other);
	if (f->failed)
		buf_printf(b, " · %s%zu failed%s", col(H, "\033[31m"), f->failed, col(H, "\033[0m"));
	buf_printf(b, " · %zu running", f->n_run);
	/* the slowest hosts still running: the ones holding the step up */
	size_t pickf[FLEET_SLOWEST], np = 0;
	for (; np < FLEET_SLOWEST && np < f->n_run; np++) {
		size_t best = SIZE_MAX;
		for (size_t j = 0; j < f->n_run; j++) {
			bool taken = false;
			for (size_t q = 0; q < np; q++)
				taken |= pickf[q] == j;
			if (!taken && (best == SIZE_MAX || f->run[j].start_ms < f->run[best].start_ms))
				best = j;
		}
		pickf[np] = best;
	}
	for (size_t k = 0; k < np; k++) {
		char t[32];
		duration_format(now - f->run[pickf[k]].start_ms, t, sizeof t);
		buf_printf(b, "%s %s %s", k ? "," : " · slowest:", f->run[pickf[k]].host, t);
	}
}

/* A wait's time left, in whole seconds rounded up: "25s", "2m05s". */
static void countdown(struct buf *b, uint64_t now, uint64_t until)
{
	uint64_t s = until > now ? (until - now + 999) / 1000 : 0;
	if (s >= 60)
		buf_printf(b, "%llum%02llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
	else
		buf_printf(b, "%llus", (unsigned long long)s);
}

void live_cancel_text(struct human *H, struct buf *b, size_t running)
{
	const char *again = H->cancel_signal == SIGINT ? "Ctrl-C" : "SIGTERM";
	if (H->cancel_kill)
		buf_printf(b, "killing — %zu task%s killed at once, no more handlers", running, running == 1 ? "" : "s");
	else
		buf_printf(b, "cancelling — %zu task%s stopping (%s again to kill)", running, running == 1 ? "" : "s",
			   again);
}

/* The rows of waits: fan-outs pausing between batches, instances at barriers. */
static void wait_rows(struct human *H, uint64_t now, struct buf *b)
{
	int rows = 0;
	for (size_t i = 0; i < H->n_pauses && rows < WAIT_ROWS; i++, rows++) {
		buf_printf(b, "  %s⏸%s %s: next batch in ", col(H, "\033[35m"), col(H, "\033[0m"), H->pauses[i].step);
		countdown(b, now, H->pauses[i].until_ms);
		live_row(H, b);
	}
	if (H->ask_shown) {
		uint64_t s = now > H->ask_since ? (now - H->ask_since) / 1000 : 0;
		buf_printf(b, "  %s⏸ approve %s: %s [y/N]%s ", col(H, "\033[1;35m"), H->ask_shown, H->ask_message,
			   col(H, "\033[0m"));
		if (H->ask_typed)
			buf_printf(b, "%s %s(waiting %llus)%s", H->ask_typed, col(H, "\033[2m"), (unsigned long long)s,
				   col(H, "\033[0m"));
		else
			buf_printf(b, "%stype y and Enter (waiting %llus)%s", col(H, "\033[2m"), (unsigned long long)s,
				   col(H, "\033[0m"));
		live_row(H, b);
		rows++;
	}
	/* one row per barrier: its count, then who waits there */
	for (size_t i = 0; i < H->n_waiters && rows < WAIT_ROWS; i++) {
		const struct waiter *w = &H->waiters[i];
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			seen |= !strcmp(H->waiters[j].barrier, w->barrier);
		if (seen)
			continue;
		uint64_t arrived = 0, expected = 0;
		for (size_t j = i; j < H->n_waiters; j++)
			if (!strcmp(H->waiters[j].barrier, w->barrier) && H->waiters[j].arrived >= arrived) {
				arrived = H->waiters[j].arrived;
				expected = H->waiters[j].expected;
			}
		buf_printf(b, "  %s⏸%s waiting at %s (%llu/%llu):", col(H, "\033[35m"), col(H, "\033[0m"), w->barrier,
			   (unsigned long long)arrived, (unsigned long long)expected);
		size_t named = 0;
		for (size_t j = i; j < H->n_waiters; j++)
			if (!strcmp(H->waiters[j].barrier, w->barrier) && named++ < 3)
				buf_printf(b, "%s %s", named > 1 ? "," : "", H->waiters[j].shown);
		if (named > 3)
			buf_printf(b, ", … %zu more", named - 3);
		live_row(H, b);
		rows++;
	}
}

static void pause_drop(struct human *H, const char *step)
{
	for (size_t i = 0; i < H->n_pauses; i++)
		if (!strcmp(H->pauses[i].step, step)) {
			free(H->pauses[i].step);
			H->pauses[i] = H->pauses[--H->n_pauses];
			return;
		}
}

static void waiter_drop(struct human *H, size_t i)
{
	free(H->waiters[i].id);
	free(H->waiters[i].shown);
	free(H->waiters[i].barrier);
	H->waiters[i] = H->waiters[--H->n_waiters];
}

void live_track(struct human *H, const struct event *e)
{
	switch (e->type) {
	case EV_BATCH_END:
		pause_drop(H, e->step);
		if (e->pause_ms) {
			H->pauses = xrealloc(H->pauses, (H->n_pauses + 1) * sizeof *H->pauses);
			H->pauses[H->n_pauses++] = (struct pause){xstrdup(e->step), clock_ms() + e->pause_ms};
		}
		break;
	case EV_BATCH_START:
		pause_drop(H, e->step);
		break;
	case EV_STEP_END:
		pause_drop(H, e->step);
		for (size_t i = 0; i < H->n_waiters; i++)
			if (!strcmp(H->waiters[i].id, e->step)) {
				waiter_drop(H, i);
				break;
			}
		break;
	case EV_BARRIER_WAIT:
		H->waiters = xrealloc(H->waiters, (H->n_waiters + 1) * sizeof *H->waiters);
		H->waiters[H->n_waiters++] = (struct waiter){xstrdup(e->step), xstrdup(display(H, e->step, e->label)),
							     xstrdup(e->barrier), e->arrived, e->expected};
		break;
	case EV_BARRIER_RELEASE:
		for (size_t i = H->n_waiters; i-- > 0;)
			if (!strcmp(H->waiters[i].barrier, e->barrier) && event_id_inside(H->waiters[i].id, e->step))
				waiter_drop(H, i);
		break;
	case EV_APPROVE_WAIT:
	case EV_APPROVE_END:
		free(H->ask_shown);
		free(H->ask_message);
		free(H->ask_typed);
		H->ask_shown = H->ask_message = H->ask_typed = NULL;
		if (e->type == EV_APPROVE_WAIT) {
			H->ask_shown = xstrdup(display(H, e->step, e->label));
			H->ask_message = xstrdup(e->message ? e->message : "");
			H->ask_since = clock_ms();
		}
		break;
	case EV_RUN_CANCEL:
		H->cancel_signal = e->signal;
		H->cancel_kill = e->kill;
		break;
	default:
		break;
	}
}

void live_free(struct human *H)
{
	while (H->n_pauses)
		pause_drop(H, H->pauses[0].step);
	free(H->pauses);
	while (H->n_waiters)
		waiter_drop(H, 0);
	free(H->waiters);
	free(H->ask_shown);
	free(H->ask_message);
	free(H->ask_typed);
}

void live_transfer(struct running *r, uint64_t bytes, int64_t total, uint64_t now_ms)
{
	/* the rate over the last interval, smoothed a little; the first one since the task started */
	uint64_t since = r->xfer ? r->xfer_ms : r->start_ms;
	uint64_t moved = r->xfer && bytes >= r->xfer_bytes ? bytes - r->xfer_bytes : bytes;
	if (now_ms > since) {
		double rate = (double)moved * 1000.0 / (double)(now_ms - since);
		r->xfer_rate = r->xfer && r->xfer_rate > 0 ? 0.5 * r->xfer_rate + 0.5 * rate : rate;
	}
	r->xfer = true;
	r->xfer_bytes = bytes;
	r->xfer_total = total;
	r->xfer_ms = now_ms;
}

/* A size as people read it: 512 B, 42.0 kB, 1.5 MB, 3.2 GB (powers of 1000). */
static void size_text(struct buf *b, double n)
{
	static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
	int u = 0;
	while (n >= 1000 && u < 4) {
		n /= 1000;
		u++;
	}
	if (u == 0)
		buf_printf(b, "%.0f %s", n, unit[u]);
	else
		buf_printf(b, n < 100 ? "%.1f %s" : "%.0f %s", n, unit[u]);
}

/* "copy  42.0 MB / 100 MB · 85.0 MB/s" for a copy's live row. */
static void transfer_text(const struct running *r, struct buf *b)
{
	size_t w = strcspn(r->command, " ");
	buf_printf(b, "%.*s  ", (int)(w < 8 ? w : 8), r->command);
	size_text(b, (double)r->xfer_bytes);
	if (r->xfer_total >= 0) {
		buf_adds(b, " / ");
		size_text(b, (double)r->xfer_total);
	}
	buf_adds(b, " · ");
	size_text(b, r->xfer_rate);
	buf_adds(b, "/s");
}

/* Draws the live area: fleets, running tasks with elapsed time, then the progress bar. */
void live_draw(struct human *H)
{
	if (!H->tty || H->live_rows || H->ended)
		return;
	int width = term_cols(H);
	uint64_t now = clock_ms();
	struct buf b = {0};
	for (size_t i = 0; i < H->n_fleets && i < FLEET_ROWS; i++) {
		fleet_row(H, &H->fleets[i], now, &b);
		live_row(H, &b);
	}
	size_t n_plain = 0;
	for (size_t j = 0; j < H->n_run; j++)
		n_plain += !in_fleet(H, H->run[j].task);
	size_t shown = n_plain < LIVE_ROWS ? n_plain : LIVE_ROWS;
	/* the longest-running first: they are the ones a person waits for */
	size_t pick[LIVE_ROWS];
	for (size_t k = 0; k < shown; k++) {
		size_t best = SIZE_MAX;
		for (size_t j = 0; j < H->n_run; j++) {
			bool taken = in_fleet(H, H->run[j].task);
			for (size_t q = 0; q < k; q++)
				taken |= pick[q] == j;
			if (!taken && (best == SIZE_MAX || H->run[j].start_ms < H->run[best].start_ms))
				best = j;
		}
		pick[k] = best;
	}
	for (size_t k = 0; k < shown; k++) {
		size_t i = pick[k];
		char t[32];
		duration_format(now - H->run[i].start_ms, t, sizeof t);
		int room = width - 14;
		struct buf x = {0};
		if (H->run[i].xfer) {
			transfer_text(&H->run[i], &x);
			size_t xc = text_cols(x.data);
			/* the id keeps 20 columns at least; the transfer goes when there is no room for both */
			if (room - (int)xc - 2 >= 20)
				room -= (int)xc + 2;
			else
				buf_reset(&x);
		}
		buf_printf(&b, "  %s▸%s ", col(H, "\033[36m"), col(H, "\033[0m"));
		live_cut_id(&b, H->run[i].shown, room > 10 ? (size_t)room : 10);
		if (x.len)
			buf_printf(&b, "  %s", x.data);
		buf_free(&x);
		buf_printf(&b, " %s%8s%s", col(H, "\033[2m"), t, col(H, "\033[0m"));
		live_row(H, &b);
	}
	if (n_plain > shown) {
		buf_printf(&b, "  %s… and %zu more running%s", col(H, "\033[2m"), n_plain - shown, col(H, "\033[0m"));
		live_row(H, &b);
	}
	wait_rows(H, now, &b);
	if (H->cancel_signal) {
		buf_printf(&b, "  %s⚠ ", col(H, "\033[33m"));
		live_cancel_text(H, &b, H->n_run);
		buf_adds(&b, col(H, "\033[0m"));
		live_row(H, &b);
	}
	progress_bar(H, &b, width);
	live_row(H, &b);
	buf_free(&b);
	fflush(H->f);
}

/* An instance of a fleet ended (counted), or the fleet itself (one line for it all). */
void fleet_step_end(struct human *H, const struct event *e)
{
	const char *host;
	struct fleet *f = fleet_of_instance(H, e->step, &host);
	if (f) {
		for (size_t i = 0; i < f->n_run; i++)
			if (!strcmp(f->run[i].host, host)) {
				free(f->run[i].host);
				f->run[i] = f->run[--f->n_run];
				break;
			}
		if (e->status == ST_SUCCESS)
			f->ok++;
		else if (e->status == ST_FAILED || e->status == ST_TIMEOUT)
			f->failed++;
		else
			f->other++;
		return;
	}
	for (size_t i = 0; i < H->n_fleets; i++) {
		f = &H->fleets[i];
		if (strcmp(f->id, e->step))
			continue;
		live_erase(H);
		char t[32];
		duration_format(e->duration_ms, t, sizeof t);
		size_t ended = f->ok + f->failed + f->other;
		fprintf(H->f, "%s[%s]%s %s%s on %zu hosts: %zu succeeded, %zu failed, %zu cancelled or skipped, %zu not "
			      "started, in %s%s\n",
			col(H, "\033[2m"), f->id, col(H, "\033[0m"), col(H, status_color(e->status)), status_mark(e->status),
			f->total, f->ok, f->failed, f->other, f->total > ended ? f->total - ended : 0, t, col(H, "\033[0m"));
		fleet_free(f);
		H->fleets[i] = H->fleets[--H->n_fleets];
		return;
	}
}
