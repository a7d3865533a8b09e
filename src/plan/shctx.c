/*
 * shctx.c — follows where a shell script's text stands (bare, inside '...',
 * "...", $'...', a comment, $( ), backquotes, a here-document) so that an
 * interpolated value can be written to stay exactly one literal word there.
 * Where no safe form exists (inside backquotes) it refuses, rather than guess.
 */
#include <string.h>

#include "plan/internal.h"

static void push(struct shctx *c, enum shctx_kind k)
{
	if (c->depth + 1 < SHCTX_MAX_DEPTH)
		c->stack[++c->depth] = k;
	else
		c->overflow = true;
}

static void pop(struct shctx *c)
{
	if (c->depth > 0)
		c->depth--;
}

static enum shctx_kind top(const struct shctx *c)
{
	return c->stack[c->depth];
}

void shctx_init(struct shctx *c)
{
	memset(c, 0, sizeof *c);
	c->stack[0] = SHCTX_PLAIN;
	c->word_start = true;
}

static bool is_word_break(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == ';' || ch == '&' || ch == '|' || ch == '(' ||
	       ch == ')' || ch == '<' || ch == '>';
}

/* Reads a here-document delimiter word at s (after << or <<-). Returns bytes used. */
static size_t heredoc_word(struct shctx *c, const char *s, size_t n, bool strip_tabs)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	struct heredoc *h = c->n_pending < SHCTX_MAX_HEREDOCS ? &c->pending[c->n_pending] : NULL;
	size_t len = 0;
	bool quoted = false;
	char q = 0;
	for (; i < n; i++) {
		char ch = s[i];
		if (q) {
			if (ch == q) {
				q = 0;
				continue;
			}
		} else if (ch == '\'' || ch == '"') {
			q = ch;
			quoted = true;
			continue;
		} else if (ch == '\\') {
			quoted = true;
			continue;
		} else if (is_word_break(ch)) {
			break;
		}
		if (h && len + 1 < sizeof h->word)
			h->word[len++] = ch;
	}
	if (h) {
		h->word[len] = '\0';
		h->quoted = quoted;
		h->strip_tabs = strip_tabs;
		c->n_pending++;
	} else {
		c->overflow = true;
	}
	return i;
}

/* At a newline outside quotes: start the first pending here-document, if any. */
static void start_heredoc(struct shctx *c)
{
	if (!c->n_pending)
		return;
	c->body = c->pending[0];
	memmove(c->pending, c->pending + 1, (c->n_pending - 1) * sizeof *c->pending);
	c->n_pending--;
	c->line_len = 0;
	c->line_overflow = false;
	push(c, c->body.quoted ? SHCTX_HEREDOC_QUOTED : SHCTX_HEREDOC);
}

static bool line_is_delimiter(const struct shctx *c)
{
	const char *l = c->line;
	size_t n = c->line_len;
	if (c->body.strip_tabs)
		while (n && *l == '\t')
			l++, n--;
	return !c->line_overflow && n == strlen(c->body.word) && memcmp(l, c->body.word, n) == 0;
}

static void heredoc_char(struct shctx *c, char ch)
{
	if (ch != '\n') {
		if (c->line_len + 1 < sizeof c->line)
			c->line[c->line_len++] = ch;
		else
			c->line_overflow = true;
		return;
	}
	if (line_is_delimiter(c)) {
		pop(c);
		start_heredoc(c); /* the next one on the same command, if any */
	}
	c->line_len = 0;
	c->line_overflow = false;
}

void shctx_feed(struct shctx *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		enum shctx_kind k = top(c);
		bool was_start = c->word_start;
		c->word_start = false;
		switch (k) {
		case SHCTX_HEREDOC:
		case SHCTX_HEREDOC_QUOTED:
			heredoc_char(c, ch);
			c->word_start = true;
			continue;
		case SHCTX_COMMENT:
			if (ch == '\n') {
				pop(c);
				c->word_start = true;
				start_heredoc(c);
			}
			continue;
		case SHCTX_SINGLE:
			if (ch == '\'')
				pop(c);
			continue;
		case SHCTX_ANSI:
			if (ch == '\\')
				i++;
			else if (ch == '\'')
				pop(c);
			continue;
		case SHCTX_DOUBLE:
			if (ch == '\\')
				i++;
			else if (ch == '"')
				pop(c);
			else if (ch == '`')
				push(c, SHCTX_BACKQUOTE);
			else if (ch == '$' && i + 1 < n && s[i + 1] == '(') {
				push(c, SHCTX_SUBST);
				c->word_start = true;
				i++;
			}
			continue;
		default: /* PLAIN, SUBST, BACKQUOTE: command level */
			break;
		}
		if (ch == '\\') {
			i++;
		} else if (ch == '\'') {
			push(c, SHCTX_SINGLE);
		} else if (ch == '"') {
			push(c, SHCTX_DOUBLE);
		} else if (ch == '$' && i + 1 < n && s[i + 1] == '\'') {
			push(c, SHCTX_ANSI);
			i++;
		} else if (ch == '$' && i + 1 < n && s[i + 1] == '(') {
			push(c, SHCTX_SUBST);
			c->word_start = true;
			i++;
		} else if (ch == '`') {
			if (k == SHCTX_BACKQUOTE)
				pop(c);
			else
				push(c, SHCTX_BACKQUOTE);
		} else if (ch == '(' && k == SHCTX_SUBST) {
			c->parens[c->depth]++;
			c->word_start = true;
		} else if (ch == ')' && k == SHCTX_SUBST) {
			if (c->parens[c->depth])
				c->parens[c->depth]--;
			else
				pop(c);
		} else if (ch == '#' && was_start) {
			push(c, SHCTX_COMMENT);
		} else if (ch == '<' && i + 1 < n && s[i + 1] == '<' && !(i + 2 < n && s[i + 2] == '<')) {
			bool strip = i + 2 < n && s[i + 2] == '-';
			i += strip ? 3 : 2;
			i += heredoc_word(c, s + i, n - i, strip);
			i--; /* the loop's i++ */
		} else if (ch == '\n') {
			c->word_start = true;
			start_heredoc(c);
		} else if (is_word_break(ch)) {
			c->word_start = true;
		}
	}
}

static void text_of(const json_t *v, struct buf *t)
{
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				buf_addc(t, ' ');
			value_to_text(json_array_get(v, i), t);
		}
	} else {
		value_to_text(v, t);
	}
}

/* Bare: one shell word per list element, each single-quoted as needed. */
static void bare_words(const json_t *v, struct buf *out)
{
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				buf_addc(out, ' ');
			bare_words(json_array_get(v, i), out);
		}
		return;
	}
	struct buf t = {0};
	value_to_text(v, &t);
	shell_quote(out, t.data ? t.data : "", t.len);
	buf_free(&t);
}

static void escaped(const struct buf *t, const char *specials, struct buf *out)
{
	for (size_t i = 0; i < t->len; i++) {
		if (t->data[i] && strchr(specials, t->data[i]))
			buf_addc(out, '\\');
		buf_addc(out, t->data[i]);
	}
}

/* True when some line of t would end the here-document early. */
static bool ends_heredoc(const struct shctx *c, const struct buf *t)
{
	const char *p = t->data ? t->data : "";
	const char *end = p + t->len;
	size_t wl = strlen(c->body.word);
	/* the value continues the current line first */
	bool first = true;
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (!first || c->line_len == 0) {
			const char *l = p;
			if (c->body.strip_tabs)
				while (l < le && *l == '\t')
					l++;
			if (nl && (size_t)(le - l) == wl && memcmp(l, c->body.word, wl) == 0)
				return true;
		}
		if (!nl)
			break;
		first = false;
		p = nl + 1;
	}
	return false;
}

bool shctx_insert(struct shctx *c, const json_t *v, struct buf *out, char **err)
{
	if (c->overflow) {
		*err = xstrdup("the script nests quotes, substitutions or here-documents too deeply to interpolate safely");
		return false;
	}
	struct buf t = {0};
	bool ok = true;
	switch (top(c)) {
	case SHCTX_PLAIN:
	case SHCTX_SUBST:
		bare_words(v, out);
		break;
	case SHCTX_SINGLE:
		buf_addc(out, '\'');
		bare_words(v, out);
		buf_addc(out, '\'');
		break;
	case SHCTX_ANSI:
		buf_addc(out, '\'');
		bare_words(v, out);
		buf_adds(out, "$'");
		break;
	case SHCTX_DOUBLE:
		text_of(v, &t);
		escaped(&t, "$`\"\\", out);
		break;
	case SHCTX_COMMENT:
		/* a newline would end the comment: fold the value onto one line */
		text_of(v, &t);
		for (size_t i = 0; i < t.len; i++)
			buf_addc(out, t.data[i] == '\n' || t.data[i] == '\r' ? ' ' : t.data[i]);
		break;
	case SHCTX_HEREDOC:
	case SHCTX_HEREDOC_QUOTED:
		text_of(v, &t);
		if (ends_heredoc(c, &t)) {
			*err = xasprintf("the value has a line '%s' that would end the here-document", c->body.word);
			ok = false;
			break;
		}
		if (top(c) == SHCTX_HEREDOC)
			escaped(&t, "$`\\", out);
		else
			buf_add(out, t.data ? t.data : "", t.len);
		shctx_feed(c, t.data ? t.data : "", t.len);
		break;
	case SHCTX_BACKQUOTE:
		*err = xstrdup("${{ }} inside `backquotes` cannot be quoted safely; use $( ) instead");
		ok = false;
		break;
	}
	buf_free(&t);
	return ok;
}
