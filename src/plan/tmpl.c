/*
 * tmpl.c — templates: strings with ${{ }} parts, parsed once at load time.
 * As text they give env values, cwd and argv elements. As a shell `run:`
 * script they never carry a value (plan-format.md section 6): each ${{ }}
 * becomes a reference to a variable that holds it ("${__baton_v1}"), in the
 * form shctx.c chose for where it stands, and the values travel beside the
 * script. A second rendering, with the values quoted in, is for people.
 */
#include <stdint.h>
#include <string.h>

#include "plan/internal.h"

/* What an expression part knows beyond its text: kept apart, so literal parts stay small. */
struct tslot {
	struct expr *expr;
	struct shslot slot; /* its form, in a prepared shell script */
	int line, col;      /* where it stands in the plan (0: unknown) */
};

struct tpart {
	/* literal text: its place in the template's source (not NUL-terminated there); an
	 * expression: its source "${{ … }}", a string of its own (messages print it) */
	char *text;
	uint32_t len;
	uint32_t src_off;   /* where the part starts in the template's source */
	struct tslot *x;    /* an expression's; NULL for literal text */
};

/*
 * One allocation: this, the parts, then the source. A plan holds one for
 * every run step (often a single literal part), all through the run.
 */
struct tmpl {
	const char *src; /* after parts[n] */
	uint32_t n;
	int line, col;
	bool shell; /* prepared as a shell script: parts carry their slot forms */
	struct tpart parts[];
};

/* The parts as parsing finds them, before the template is laid out. */
struct tparts {
	struct tpart *v;
	size_t n;
};

void tmpl_set_place(struct tmpl *t, int line, int col)
{
	t->line = line;
	t->col = col;
}

void tmpl_place(const struct tmpl *t, int *line, int *col)
{
	*line = t->line;
	*col = t->col;
}

/* text: an expression's own copy of its source; NULL for literal text, which the template's source holds. */
static void tpart_add(struct tparts *t, char *text, size_t len, struct expr *e, size_t src_off)
{
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	memset(&t->v[t->n], 0, sizeof *t->v);
	t->v[t->n].text = text;
	t->v[t->n].len = (uint32_t)len;
	t->v[t->n].src_off = (uint32_t)src_off;
	if (e) {
		t->v[t->n].x = xcalloc(1, sizeof *t->v[t->n].x);
		t->v[t->n].x->expr = e;
	}
	t->n++;
}

static void tpart_free(struct tpart *p)
{
	if (!p->x)
		return; /* literal text lives in the template's source */
	free(p->text);
	expr_free(p->x->expr);
	free(p->x);
}

/* Finds the "}}" closing an expression, skipping quoted strings. */
static const char *find_close(const char *p, const char *end)
{
	char q = 0;
	for (; p + 1 < end; p++) {
		if (q) {
			if (q == '"' && *p == '\\')
				p++;
			else if (*p == q)
				q = 0;
		} else if (*p == '\'' || *p == '"') {
			q = *p;
		} else if (p[0] == '}' && p[1] == '}') {
			return p;
		}
	}
	return NULL;
}

static void tparts_free(struct tparts *t)
{
	for (size_t i = 0; i < t->n; i++)
		tpart_free(&t->v[i]);
	free(t->v);
}

struct tmpl *tmpl_parse(const char *src, size_t len, char **err, size_t *err_off)
{
	struct tparts t = {0};
	const char *p = src, *end = src + len;
	while (p < end) {
		const char *open = NULL;
		for (const char *q = p; q + 2 < end; q++)
			if (q[0] == '$' && q[1] == '{' && q[2] == '{') {
				open = q;
				break;
			}
		if (!open) {
			tpart_add(&t, NULL, (size_t)(end - p), NULL, (size_t)(p - src));
			break;
		}
		if (open > p)
			tpart_add(&t, NULL, (size_t)(open - p), NULL, (size_t)(p - src));
		const char *close = find_close(open + 3, end);
		if (!close) {
			*err = xstrdup("'${{' without a closing '}}'");
			*err_off = (size_t)(open - src);
			tparts_free(&t);
			return NULL;
		}
		char *perr_msg = NULL;
		struct expr *e = expr_parse(open + 3, (size_t)(close - open - 3), &perr_msg);
		if (!e) {
			int shown = (int)(close - open - 3) > 60 ? 60 : (int)(close - open - 3);
			*err = xasprintf("in '${{%.*s%s}}': %s", shown, open + 3, shown < (int)(close - open - 3) ? "…" : "",
					 perr_msg);
			free(perr_msg);
			*err_off = (size_t)(open - src);
			tparts_free(&t);
			return NULL;
		}
		tpart_add(&t, xstrndup(open, (size_t)(close + 2 - open)), (size_t)(close + 2 - open), e,
			  (size_t)(open - src));
		p = close + 2;
	}
	struct tmpl *r = xmalloc(sizeof *r + t.n * sizeof *r->parts + len + 1);
	char *own = (char *)(r->parts + t.n);
	memcpy(own, src, len);
	own[len] = '\0';
	*r = (struct tmpl){.src = own, .n = (uint32_t)t.n};
	for (size_t i = 0; i < t.n; i++) {
		r->parts[i] = t.v[i];
		if (!r->parts[i].x)
			r->parts[i].text = own + r->parts[i].src_off;
	}
	free(t.v);
	return r;
}

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		tpart_free(&t->parts[i]);
	free(t);
}

const char *tmpl_source(const struct tmpl *t)
{
	return t->src;
}

bool tmpl_is_literal(const struct tmpl *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].x)
			return false;
	return true;
}

void tmpl_walk_paths(const struct tmpl *t, expr_path_fn fn, void *ud)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].x)
			expr_walk_paths(t->parts[i].x->expr, fn, ud);
}

void tmpl_walk_slots(const struct tmpl *t, void (*fn)(void *ud, const struct expr *e, int line, int col), void *ud)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].x)
			fn(ud, t->parts[i].x->expr, t->parts[i].x->line, t->parts[i].x->col);
}

/* A part the shell gets a reference for (raw() is spliced as text, on purpose). */
static bool is_slot_part(const struct tpart *p)
{
	return p->x && !expr_is_raw(p->x->expr);
}

bool tmpl_shell_prepare(struct tmpl *t, char **err, size_t *err_off)
{
	if (tmpl_is_literal(t)) {
		t->shell = true; /* no slot: nothing to judge (a NUL byte was refused when it was read) */
		return true;
	}
	struct buf text = {0};
	size_t *off = xcalloc(t->n + 1, sizeof *off);
	struct shslot *slots = xcalloc(t->n + 1, sizeof *slots);
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct tpart *p = &t->parts[i];
		if (is_slot_part(p)) {
			off[n++] = text.len;
			buf_addc(&text, '\x01'); /* a word character to the tracker; slots are known by offset */
		} else if (!p->x) {
			buf_add(&text, p->text, p->len);
		}
	}
	size_t bad = 0;
	bool ok = shctx_analyze(text.data ? text.data : "", text.len, off, n, slots, err, &bad);
	if (ok) {
		size_t k = 0;
		for (size_t i = 0; i < t->n; i++)
			if (is_slot_part(&t->parts[i]))
				t->parts[i].x->slot = slots[k++];
		t->shell = true;
	} else {
		*err_off = (size_t)-1; /* the script as a whole */
		for (size_t i = 0, k = 0; i < t->n; i++)
			if (is_slot_part(&t->parts[i]) && k++ == bad)
				*err_off = t->parts[i].src_off;
	}
	free(off);
	free(slots);
	buf_free(&text);
	return ok;
}

/* The source text of the slot that bad (from tmpl_shell_prepare's error) points at, or NULL. */
const char *tmpl_part_at(const struct tmpl *t, size_t src_off)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].x && t->parts[i].src_off == src_off)
			return t->parts[i].text;
	return NULL;
}

void tmpl_place_slots(struct tmpl *t, void (*where)(const void *ud, size_t off, int *line, int *col),
		      const void *ud)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->parts[i].x)
			where(ud, t->parts[i].src_off, &t->parts[i].x->line, &t->parts[i].x->col);
}

/* ---- rendering ---- */

/* The value as text; false with *err when it holds a NUL byte, which no command can be given. */
static bool slot_text(const struct tpart *p, const json_t *v, struct buf *out, char **err)
{
	size_t at = out->len;
	value_to_text(v, out);
	if (out->len > at && memchr(out->data + at, '\0', out->len - at)) {
		out->len = at;
		out->data[at] = '\0';
		*err = xasprintf("the value of %s holds a NUL byte, which cannot be passed to a command faithfully",
				 p->text);
		return false;
	}
	return true;
}

/* A list's elements joined by spaces, as inside quotes; anything else as text. */
static bool joined_text(const struct tpart *p, const json_t *v, struct buf *out, char **err)
{
	if (!json_is_array(v))
		return slot_text(p, v, out, err);
	for (size_t i = 0; i < json_array_size(v); i++) {
		if (i)
			buf_addc(out, ' ');
		if (!slot_text(p, json_array_get(v, i), out, err))
			return false;
	}
	return true;
}

static void escaped(const char *s, size_t n, const char *specials, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] && strchr(specials, s[i]))
			buf_addc(out, '\\');
		buf_addc(out, s[i]);
	}
}

/* The value as people see it in the displayed command: quoted for where it stands. */
static void display_value(enum shref_form form, const json_t *v, const struct buf *joined, struct buf *out)
{
	const char *s = joined->data ? joined->data : "";
	switch (form) {
	case SHREF_WORD:
		if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++) {
				struct buf e = {0};
				value_to_text(json_array_get(v, i), &e);
				if (i)
					buf_addc(out, ' ');
				shell_quote(out, e.data ? e.data : "", e.len);
				buf_free(&e);
			}
		} else {
			shell_quote(out, s, joined->len);
		}
		break;
	case SHREF_QUOTED:
		escaped(s, joined->len, "$`\"\\", out);
		break;
	case SHREF_HEREDOC:
		escaped(s, joined->len, "$`\\", out);
		break;
	case SHREF_SINGLE:
	case SHREF_ANSI:
		buf_addc(out, '\'');
		shell_quote(out, s, joined->len);
		buf_adds(out, form == SHREF_ANSI ? "$'" : "'");
		break;
	case SHREF_COMMENT:
		for (size_t i = 0; i < joined->len; i++)
			buf_addc(out, s[i] == '\n' || s[i] == '\r' ? ' ' : s[i]);
		break;
	}
}

/*
 * A decimal integer as arithmetic reads it unchanged: an optional '-', then
 * 0 or a digit string without a leading 0 (which would be octal), at most 18
 * digits (no overflow).
 */
static bool is_integer_text(const struct buf *b)
{
	size_t i = b->len && b->data[0] == '-' ? 1 : 0;
	size_t digits = b->len - i;
	if (!digits || digits > 18 || (digits > 1 && b->data[i] == '0'))
		return false;
	for (; i < b->len; i++)
		if (b->data[i] < '0' || b->data[i] > '9')
			return false;
	return true;
}

/* A variable's name: a letter or _, then letters, digits and _. */
static bool is_name_text(const struct buf *b)
{
	if (!b->len || (b->data[0] >= '0' && b->data[0] <= '9'))
		return false;
	for (size_t i = 0; i < b->len; i++) {
		char c = b->data[i];
		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static void add_var(struct shell_cmd *c, const char *name, const char *val, size_t len)
{
	c->env = xrealloc(c->env, (c->n_env + 2) * sizeof *c->env);
	char *kv = xasprintf("%s=%.*s", name, (int)len, val);
	c->env[c->n_env++] = kv;
	c->env[c->n_env] = NULL;
}

/* The reference to variable `name` in form f, appended to the script. */
static void add_reference(struct buf *script, enum shref_form f, const char *name)
{
	switch (f) {
	case SHREF_WORD:
	case SHREF_COMMENT:
		buf_adds(script, "\"${");
		buf_adds(script, name);
		buf_adds(script, "}\"");
		break;
	case SHREF_QUOTED:
	case SHREF_HEREDOC:
		buf_adds(script, "${");
		buf_adds(script, name);
		buf_addc(script, '}');
		break;
	case SHREF_SINGLE:
	case SHREF_ANSI:
		buf_adds(script, "'\"${");
		buf_adds(script, name);
		buf_adds(script, f == SHREF_ANSI ? "}\"$'" : "}\"'");
		break;
	}
}

/* One slot: its variables, its reference in the script and its display. */
static bool render_slot(const struct tpart *p, size_t k, const json_t *v, struct shell_cmd *c, struct buf *script,
			struct buf *display, char **err)
{
	struct buf joined = {0};
	bool ok = joined_text(p, v, &joined, err);
	if (ok && p->x->slot.need_name && (json_is_array(v) || !is_name_text(&joined))) {
		*err = xasprintf("%s stands where the shell takes a variable's name (line %d, column %d of the plan), and "
				 "bash evaluates what a name's [...] holds, so only a plain name (letters, digits, _) is "
				 "safe there, and its value is not one; pass it through env: and check it first",
				 p->text, p->x->line, p->x->col);
		ok = false;
	} else if (ok && p->x->slot.need_int && (json_is_array(v) || !is_integer_text(&joined))) {
		*err = xasprintf("%s stands in shell arithmetic (line %d, column %d of the plan), where the shell "
				 "evaluates a value as an expression, so only an integer is safe there, and its value is "
				 "not one; pass it through env: and check it is a number before the shell computes with it",
				 p->text, p->x->line, p->x->col);
		ok = false;
	}
	if (ok) {
		char name[48];
		if (p->x->slot.form == SHREF_WORD && json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v) && ok; i++) {
				struct buf e = {0};
				ok = slot_text(p, json_array_get(v, i), &e, err);
				snprintf(name, sizeof name, "__baton_v%zu_%zu", k, i + 1);
				add_var(c, name, e.data ? e.data : "", e.len);
				if (i)
					buf_addc(script, ' ');
				add_reference(script, SHREF_WORD, name);
				buf_free(&e);
			}
		} else {
			snprintf(name, sizeof name, "__baton_v%zu", k);
			add_var(c, name, joined.data ? joined.data : "", joined.len);
			add_reference(script, p->x->slot.form, name);
		}
		display_value(p->x->slot.form, v, &joined, display);
	}
	buf_free(&joined);
	return ok;
}

bool tmpl_render_shell(const struct tmpl *t, const struct expr_scope *scope, struct shell_cmd *c, char **err)
{
	memset(c, 0, sizeof *c);
	struct buf script = {0}, display = {0};
	bool ok = true;
	size_t k = 0;
	for (size_t i = 0; i < t->n && ok; i++) {
		const struct tpart *p = &t->parts[i];
		if (!p->x) {
			buf_add(&script, p->text, p->len);
			buf_add(&display, p->text, p->len);
			continue;
		}
		json_t *v = expr_eval(p->x->expr, scope, err);
		if (!v) {
			ok = false;
			break;
		}
		if (!is_slot_part(p)) {
			/* raw(): the text itself, in both */
			struct buf r = {0};
			ok = slot_text(p, v, &r, err);
			buf_add(&script, r.data ? r.data : "", r.len);
			buf_add(&display, r.data ? r.data : "", r.len);
			buf_free(&r);
		} else if (!t->shell) {
			*err = xstrdup("internal error: a shell command rendered before it was prepared");
			ok = false;
		} else {
			ok = render_slot(p, ++k, v, c, &script, &display, err);
		}
		json_decref(v);
	}
	c->script = buf_detach(&script);
	c->display = buf_detach(&display);
	if (!c->script)
		c->script = xstrdup("");
	if (!c->display)
		c->display = xstrdup("");
	if (!ok) {
		shell_cmd_free(c);
		return false;
	}
	return true;
}

void shell_cmd_free(struct shell_cmd *c)
{
	free(c->script);
	free(c->display);
	for (size_t i = 0; i < c->n_env; i++)
		free(c->env[i]);
	free(c->env);
	memset(c, 0, sizeof *c);
}

/* Text rendering; `preview`: what cannot be evaluated yet stays as written. */
static bool render_text(const struct tmpl *t, enum tmpl_quote q, const struct expr_scope *scope, struct buf *out,
			char **err, bool preview)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tpart *p = &t->parts[i];
		if (!p->x) {
			buf_add(out, p->text, p->len);
			continue;
		}
		char *e = NULL;
		json_t *v = expr_eval(p->x->expr, scope, &e);
		if (!v && preview) {
			free(e);
			buf_add(out, p->text, p->len);
			continue;
		}
		if (!v) {
			*err = e;
			return false;
		}
		bool ok = true;
		if (q == TMPL_SHELL && is_slot_part(p)) {
			struct buf joined = {0};
			ok = joined_text(p, v, &joined, &e);
			if (ok)
				display_value(t->shell ? p->x->slot.form : SHREF_WORD, v, &joined, out);
			buf_free(&joined);
		} else {
			ok = slot_text(p, v, out, &e);
		}
		json_decref(v);
		if (!ok && preview) {
			free(e);
			buf_add(out, p->text, p->len);
			continue;
		}
		if (!ok) {
			*err = e;
			return false;
		}
	}
	return true;
}

bool tmpl_render(const struct tmpl *t, enum tmpl_quote q, const struct expr_scope *scope, struct buf *out,
		 char **err)
{
	return render_text(t, q, scope, out, err, false);
}

void tmpl_preview(const struct tmpl *t, enum tmpl_quote q, const struct expr_scope *scope, struct buf *out)
{
	char *err = NULL;
	render_text(t, q, scope, out, &err, true);
	free(err);
}

/* ---- the loader's part ---- */

void ld_scalar_place(const struct ynode *n, size_t off, int *line, int *col)
{
	*line = n->line;
	*col = n->col;
	if (off > n->len)
		return;
	if (n->indent >= 0) {
		size_t nl = 0, ls = 0;
		for (size_t i = 0; i < off; i++)
			if (n->str[i] == '\n') {
				nl++;
				ls = i + 1;
			}
		*line = n->line + 1 + (int)nl;
		*col = n->indent + 1 + (int)(off - ls);
		return;
	}
	if (memchr(n->str, '\n', n->len))
		return;
	if (n->plain)
		*col = n->col + (int)off;
	else if (n->quoted)
		*col = n->col + 1 + (int)off; /* escapes before off shift this */
}

static void place_in_scalar(const void *ud, size_t off, int *line, int *col)
{
	ld_scalar_place(ud, off, line, col);
}

void ld_tmpl_place(struct tmpl *t, const struct ynode *n)
{
	tmpl_set_place(t, n->line, n->col);
	tmpl_place_slots(t, place_in_scalar, n);
}

void ld_prepare_run(struct loader *L, const struct ynode *n, struct tmpl *t)
{
	if (!t)
		return;
	char *err = NULL;
	size_t off = 0;
	if (tmpl_shell_prepare(t, &err, &off)) {
		return;
	}
	int line, col;
	ld_scalar_place(n, off, &line, &col);
	const char *what = tmpl_part_at(t, off);
	if (what)
		diags_add(L->d, L->file, line, col, "'run': %s %s", what, err);
	else
		diags_add(L->d, L->file, line, col, "'run': %s", err);
	free(err);
}
