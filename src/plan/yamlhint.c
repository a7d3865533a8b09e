/*
 * yamlhint.c — what a YAML error most likely means where users trip, said
 * in their words: a ': ' or a quote inside a plain value, a value starting
 * with a character YAML reserves, '${{ }}' inside [ ] or { }, text after a
 * '|', a key indented unlike the one above, and a ' #' that cuts a `run:`
 * command inside a quoted string. yaml.c calls it with libyaml's error mark
 * (or a command's end); it reads the raw text around it, once.
 */
#include <string.h>

#include "plan/internal.h"

/* One line of the text, without its line break. */
struct yline {
	const char *s;
	size_t len;
};

/* A line `KEY: VALUE` (after any '- '): where the key and the value start. */
struct ykv {
	const char *key;
	size_t klen;
	size_t kcol;  /* its column from 0: what comes before a key is ASCII (blanks, '- ') */
	size_t colon; /* byte offset of the ':' after the key */
	size_t voff;  /* byte offset of the value in the line (== len when empty) */
	size_t items; /* the '- ' before the key */
};

static bool is_break(char c)
{
	return c == '\n' || c == '\r';
}

static size_t bom_len(const char *data, size_t len)
{
	return len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

/* Line `line` (from 0; lines end at \n, \r\n or \r, as libyaml counts); false past the end. */
static bool line_at(const char *data, size_t len, size_t line, struct yline *out)
{
	size_t i = bom_len(data, len);
	for (size_t n = 0; n < line; n++) {
		while (i < len && !is_break(data[i]))
			i++;
		if (i >= len)
			return false;
		i += data[i] == '\r' && i + 1 < len && data[i + 1] == '\n' ? 2 : 1;
	}
	size_t e = i;
	while (e < len && !is_break(data[e]))
		e++;
	out->s = data + i;
	out->len = e - i;
	return true;
}

/* The byte offset in l of character column col (UTF-8 sequences are one), at most l->len. */
static size_t col_byte(const struct yline *l, size_t col)
{
	size_t i = 0;
	for (size_t c = 0; i < l->len; i++) {
		if (((unsigned char)l->s[i] & 0xC0) == 0x80)
			continue;
		if (c++ == col)
			return i;
	}
	return l->len;
}

static size_t skip_blanks(const struct yline *l, size_t i)
{
	while (i < l->len && (l->s[i] == ' ' || l->s[i] == '\t'))
		i++;
	return i;
}

/* Where the text of l starts after its indentation and any '- ' (list items); *items: how many. */
static size_t after_dashes(const struct yline *l, size_t *items)
{
	size_t i = skip_blanks(l, 0);
	*items = 0;
	while (i < l->len && l->s[i] == '-' && (i + 1 == l->len || l->s[i + 1] == ' ' || l->s[i + 1] == '\t')) {
		i = skip_blanks(l, i + 1);
		++*items;
	}
	return i;
}

/* Reads `KEY: VALUE` on l, after any '- '; false when the line is no plain key of a block map. */
static bool line_key(const struct yline *l, struct ykv *kv)
{
	size_t i = after_dashes(l, &kv->items);
	if (i >= l->len || strchr("#\"'[]{}&*!|>%@`?:,", l->s[i]))
		return false;
	size_t k = i;
	for (size_t j = i; j < l->len; j++) {
		if (l->s[j] == '#' && (l->s[j - 1] == ' ' || l->s[j - 1] == '\t'))
			return false;
		if (l->s[j] == ':' && (j + 1 == l->len || l->s[j + 1] == ' ' || l->s[j + 1] == '\t')) {
			size_t e = j;
			while (e > k && (l->s[e - 1] == ' ' || l->s[e - 1] == '\t'))
				e--;
			kv->key = l->s + k;
			kv->klen = e - k;
			kv->kcol = k;
			kv->colon = j;
			kv->voff = skip_blanks(l, j + 1);
			return true;
		}
	}
	return false;
}

/* The line before cur; false at the first. */
static bool prev_line(const char *data, size_t len, const struct yline *cur, struct yline *out)
{
	const char *begin = data + bom_len(data, len), *e = cur->s;
	if (e <= begin)
		return false;
	/* back over the break that ends it: \n, \r\n or \r */
	if (e[-1] == '\n' && e - 1 > begin && e[-2] == '\r')
		e -= 2;
	else
		e--;
	const char *s = e;
	while (s > begin && !is_break(s[-1]))
		s--;
	out->s = s;
	out->len = (size_t)(e - s);
	return true;
}

/* The nearest line above cur with text, not a comment, indented less than ind (SIZE_MAX: any). */
static bool line_above(const char *data, size_t len, const struct yline *cur, size_t ind, struct yline *l)
{
	*l = *cur;
	while (prev_line(data, len, l, l)) {
		size_t i = skip_blanks(l, 0);
		if (i < l->len && l->s[i] != '#' && i < ind)
			return true;
	}
	return false;
}

/* The `KEY: VALUE` line a continuation line cur belongs to: the nearest less indented line above. */
static bool owner_key(const char *data, size_t len, const struct yline *cur, struct ykv *kv)
{
	struct yline l;
	return line_above(data, len, cur, skip_blanks(cur, 0), &l) && line_key(&l, kv) && kv->voff < l.len;
}

/* "; quote the whole value…" (lead: what comes before "quote"): the remedy, for a `run:` the block form too. */
static void remedy_after(struct buf *b, const struct ykv *kv, const char *lead)
{
	buf_printf(b, "%squote the whole value", lead);
	if (kv->klen == 3 && !memcmp(kv->key, "run", 3))
		buf_adds(b, ", or write 'run: |' and the command on the lines below it, indented");
}

static void remedy(struct buf *b, const struct ykv *kv)
{
	remedy_after(b, kv, "; ");
}

/* The value of 'KEY': the start of a hint about a key's value. */
static void value_of(struct buf *b, const struct ykv *kv)
{
	buf_printf(b, "the value of '%.*s'", (int)kv->klen, kv->key);
}

/* A value's first character that makes it something else than text: what YAML reads instead. */
static const char *reads_as(char c)
{
	switch (c) {
	case '"':
	case '\'':
		return "starts with a quote, so YAML reads a quoted string that ends at the closing quote";
	case '[':
		return "starts with '[', so YAML reads a list that ends at the ']'";
	case '{':
		return "starts with '{', so YAML reads a map that ends at the '}'";
	default:
		return NULL;
	}
}

/* True when the n bytes at s hold "${{". */
static bool has_template(const char *s, size_t n)
{
	return n >= 3 && memmem(s, n, "${{", 3) != NULL;
}

bool yaml_hint(struct buf *b, const char *data, size_t len, size_t line, size_t column, const char *problem)
{
	struct yline l;
	if (!problem || !line_at(data, len, line, &l))
		return false;
	size_t at = col_byte(&l, column);
	struct ykv kv;
	bool keyed = line_key(&l, &kv) && kv.voff < l.len && at >= kv.voff;
	const char *v = keyed ? l.s + kv.voff : NULL;
	if (!strcmp(problem, "did not find expected comment or line break") && keyed && at > kv.voff &&
	    (*v == '|' || *v == '>')) {
		buf_printf(b, "after '%c' (a block) the text of '%.*s' goes on the lines below it, indented", *v,
			   (int)kv.klen, kv.key);
		return true;
	}
	if (!strcmp(problem, "mapping values are not allowed in this context")) {
		struct ykv self;
		bool own = !keyed && line_key(&l, &self) && !self.items && self.colon == at &&
			   !memchr(self.key, ' ', self.klen) && !memchr(self.key, '\t', self.klen);
		if (!keyed && !owner_key(data, len, &l, &kv))
			return false;
		if (own) {
			/* `  run: echo` then `     env: x`: a key indented too far */
			buf_printf(b,
				   "'%.*s' is read as more of the value of '%.*s' above (a plain value goes on over "
				   "lines indented more than its key), and its ': ' as a key; if '%.*s' is a key of its "
				   "own, indent it as '%.*s' is, at column %zu",
				   (int)self.klen, self.key, (int)kv.klen, kv.key, (int)self.klen, self.key, (int)kv.klen,
				   kv.key, kv.kcol + 1);
			remedy_after(b, &kv, "; else ");
			return true;
		}
		value_of(b, &kv);
		buf_adds(b, " holds ': ', which YAML reads as a key");
		remedy(b, &kv);
		return true;
	}
	/* the mark is at a '{' of the "${{" or past it */
	if (!strncmp(problem, "did not find expected ',' or ", 29) && has_template(l.s, at + 2 < l.len ? at + 2 : l.len)) {
		buf_adds(b, "inside [ ] or { }, a '{' or '}' ends a plain value; quote a value that holds '${{ }}' "
			    "(\"${{ ... }}\")");
		return true;
	}
	if (!strcmp(problem, "did not find expected key") || !strcmp(problem, "did not find expected '-' indicator")) {
		size_t items, i = after_dashes(&l, &items);
		struct yline up;
		struct ykv me, above;
		if (line_key(&l, &me) && !me.items && at == me.kcol && line_above(data, len, &l, SIZE_MAX, &up) &&
		    line_key(&up, &above) && above.kcol != me.kcol) {
			/* `  - run: echo` then `   env: x` */
			buf_printf(b, "the keys of one map line up: '%.*s' is at column %zu, '%.*s' above at column %zu",
				   (int)me.klen, me.key, me.kcol + 1, (int)above.klen, above.key, above.kcol + 1);
			return true;
		}
		if (keyed && at > kv.voff && reads_as(*v)) {
			value_of(b, &kv);
			buf_printf(b, " %s, and no text may follow it", reads_as(*v));
			remedy(b, &kv);
			return true;
		}
		if (!keyed && items && i < l.len && at > i && reads_as(l.s[i])) {
			buf_printf(b, "the list item %s, and no text may follow it; quote the whole item", reads_as(l.s[i]));
			return true;
		}
	}
	if (!keyed || at != kv.voff)
		return false;
	if (!strcmp(problem, "found character that cannot start any token") && strchr("@`%", *v)) {
		value_of(b, &kv);
		buf_printf(b, " starts with '%c', which YAML reserves", *v);
		remedy(b, &kv);
		return true;
	}
	if (!strcmp(problem, "block sequence entries are not allowed in this context") && *v == '-') {
		value_of(b, &kv);
		buf_adds(b, " starts with '- ', which YAML reads as a list item");
		remedy(b, &kv);
		return true;
	}
	return false;
}

/* ---- a comment that cuts a `run:` command ---- */

/*
 * What a shell reading the n bytes at s would still be inside at their end:
 * a '…', "…" or $'…' string, or a ${{ }} (baton's, read before the shell);
 * NULL when nothing is open.
 */
static const char *shell_open(const char *s, size_t n)
{
	enum { NONE, SQ, DQ, ANSI } st = NONE;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '$' && i + 2 < n && s[i + 1] == '{' && s[i + 2] == '{') {
			const char *e = memmem(s + i + 3, n - i - 3, "}}", 2);
			if (!e)
				return "'${{ }}'";
			i = (size_t)(e - s) + 1;
			continue;
		}
		switch (st) {
		case NONE:
			if (c == '\\')
				i++;
			else if (c == '\'')
				st = i > 0 && s[i - 1] == '$' ? ANSI : SQ;
			else if (c == '"')
				st = DQ;
			break;
		case SQ:
			if (c == '\'')
				st = NONE;
			break;
		case ANSI:
		case DQ:
			if (c == '\\')
				i++;
			else if (c == (st == DQ ? '"' : '\''))
				st = NONE;
			break;
		}
	}
	return st == SQ ? "a '...' string" : st == DQ ? "a \"...\" string" : st == ANSI ? "a $'...' string" : NULL;
}

bool yaml_comment_cut(const char *data, size_t len, size_t end, const char *value, size_t vlen, bool item,
		      int *dline, int *dcol, struct buf *msg)
{
	size_t i = end;
	int lines = 0, col = 0;
	while (i < len && (data[i] == ' ' || data[i] == '\t' || is_break(data[i]))) {
		if (is_break(data[i])) {
			if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
				i++;
			lines++;
			col = 0;
		} else {
			col++;
		}
		i++;
	}
	if (i == end || i >= len || data[i] != '#')
		return false;
	const char *open = shell_open(value, vlen);
	if (!open)
		return false; /* the shell would read ' #' as a comment too */
	*dline += lines;
	*dcol = lines ? col + 1 : *dcol + col;
	buf_printf(msg,
		   "'#' after a space starts a YAML comment, which cuts the %s inside %s; quote the whole %s, or write "
		   "'run: |' and the command on the lines below it, indented",
		   item ? "step's command" : "'run' command", open, item ? "command" : "value");
	return true;
}
