/*
 * live.c — the live area of the tty sink: the rows under the scrolling
 * output that say what runs now (fleets, running tasks, waits) and the
 * progress bar, erased before each line of output and drawn again after it.
 */
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
		size_t keep = room - 2 - min_head;
		buf_printf(b, "%.*s…%.*s…", (int)head_bytes(id, min_head), id, (int)head_bytes(tail, keep), tail);
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

/* Draws the live area: fleets, running tasks with elapsed time, then the progress bar. */
void live_draw(struct human *H)
{
	if (!H->tty || H->live_rows)
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
		buf_printf(&b, "  %s▸%s ", col(H, "\033[36m"), col(H, "\033[0m"));
		live_cut_id(&b, H->run[i].shown, room > 10 ? (size_t)room : 10);
		buf_printf(&b, " %s%8s%s", col(H, "\033[2m"), t, col(H, "\033[0m"));
		live_row(H, &b);
	}
	if (n_plain > shown) {
		buf_printf(&b, "  %s… and %zu more running%s", col(H, "\033[2m"), n_plain - shown, col(H, "\033[0m"));
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
