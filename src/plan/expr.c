/*
 * expr.c — the ${{ }} expression language of plan-format.md section 6:
 * literals, context paths, comparisons, logic and a few functions, evaluated
 * to JSON values. Templates, strings with ${{ }} parts, are in tmpl.c.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

enum expr_op {
	E_LIT,
	E_PATH,
	E_MEMBER,
	E_INDEX,
	E_NOT,
	E_AND,
	E_OR,
	E_EQ,
	E_NE,
	E_LT,
	E_LE,
	E_GT,
	E_GE,
	E_CALL,
};

#define EXPR_MAX_DEPTH 64   /* nesting of ( ), [ ] and ! while parsing */
#define EXPR_MAX_NODES 4096 /* so evaluating and freeing a long && chain stays shallow enough */

struct expr {
	enum expr_op op;
	json_t *lit;      /* E_LIT */
	char *name;       /* E_PATH root, E_MEMBER key, E_CALL function */
	char **segs;      /* E_PATH: leading names after the root */
	size_t nsegs;
	struct expr **kids; /* operands, call arguments */
	size_t nkids;
};

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	char *err;
	int depth;
	size_t nodes;
};

static struct expr *enew(enum expr_op op)
{
	struct expr *e = xcalloc(1, sizeof *e);
	e->op = op;
	return e;
}

static bool too_big(struct parser *P)
{
	if (++P->nodes <= EXPR_MAX_NODES)
		return false;
	if (!P->err)
		P->err = xasprintf("expression longer than %d terms", EXPR_MAX_NODES);
	return true;
}

static void ekid(struct expr *e, struct expr *k)
{
	e->kids = xrealloc(e->kids, (e->nkids + 1) * sizeof *e->kids);
	e->kids[e->nkids++] = k;
}

void expr_free(struct expr *e)
{
	if (!e)
		return;
	json_decref(e->lit);
	free(e->name);
	for (size_t i = 0; i < e->nsegs; i++)
		free(e->segs[i]);
	free(e->segs);
	for (size_t i = 0; i < e->nkids; i++)
		expr_free(e->kids[i]);
	free(e->kids);
	free(e);
}

static void perr(struct parser *P, const char *fmt, const char *arg)
{
	if (!P->err)
		P->err = xasprintf(fmt, arg);
}

static void skip_ws(struct parser *P)
{
	while (P->pos < P->len && isspace((unsigned char)P->s[P->pos]))
		P->pos++;
}

static bool peek_str(struct parser *P, const char *t)
{
	skip_ws(P);
	size_t n = strlen(t);
	return P->pos + n <= P->len && memcmp(P->s + P->pos, t, n) == 0;
}

static bool accept(struct parser *P, const char *t)
{
	if (!peek_str(P, t))
		return false;
	P->pos += strlen(t);
	return true;
}

static bool is_ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool is_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static char *parse_ident(struct parser *P)
{
	skip_ws(P);
	size_t st = P->pos;
	if (P->pos < P->len && (is_ident_char(P->s[P->pos])))
		while (P->pos < P->len && is_ident_char(P->s[P->pos]))
			P->pos++;
	if (st == P->pos)
		return NULL;
	return xstrndup(P->s + st, P->pos - st);
}

static struct expr *parse_or(struct parser *P);

static struct expr *parse_string(struct parser *P)
{
	char q = P->s[P->pos++];
	struct buf b = {0};
	for (;;) {
		if (P->pos >= P->len) {
			perr(P, "unterminated string%s", "");
			buf_free(&b);
			return NULL;
		}
		char c = P->s[P->pos++];
		if (c == q) {
			if (q == '\'' && P->pos < P->len && P->s[P->pos] == '\'') {
				buf_addc(&b, '\'');
				P->pos++;
				continue;
			}
			break;
		}
		if (c == '\\' && q == '"' && P->pos < P->len) {
			char e = P->s[P->pos++];
			buf_addc(&b, e == 'n' ? '\n' : e == 't' ? '\t' : e);
			continue;
		}
		buf_addc(&b, c);
	}
	struct expr *e = enew(E_LIT);
	e->lit = json_stringn(b.data ? b.data : "", b.len);
	if (!e->lit)
		e->lit = json_string("");
	buf_free(&b);
	return e;
}

static struct expr *parse_number(struct parser *P)
{
	char *end;
	double v = strtod(P->s + P->pos, &end);
	size_t n = (size_t)(end - (P->s + P->pos));
	if (n == 0 || P->pos + n > P->len || !isfinite(v)) {
		perr(P, "bad number%s", "");
		return NULL;
	}
	P->pos += n;
	struct expr *e = enew(E_LIT);
	if (v == floor(v) && fabs(v) < 9e15)
		e->lit = json_integer((json_int_t)v);
	else
		e->lit = json_real(v);
	return e;
}

static struct expr *parse_primary(struct parser *P)
{
	if (too_big(P))
		return NULL;
	skip_ws(P);
	if (P->pos >= P->len) {
		perr(P, "expression ends too early%s", "");
		return NULL;
	}
	char c = P->s[P->pos];
	if (c == '(') {
		P->pos++;
		struct expr *e = parse_or(P);
		if (e && !accept(P, ")")) {
			perr(P, "expected ')'%s", "");
			expr_free(e);
			return NULL;
		}
		return e;
	}
	if (c == '\'' || c == '"')
		return parse_string(P);
	if (isdigit((unsigned char)c) || ((c == '-' || c == '.') && P->pos + 1 < P->len &&
					  isdigit((unsigned char)P->s[P->pos + 1])))
		return parse_number(P);
	if (!is_ident_start(c)) {
		char tmp[2] = {c, 0};
		perr(P, "unexpected '%s'", tmp);
		return NULL;
	}
	char *id = parse_ident(P);
	if (!strcmp(id, "true") || !strcmp(id, "false") || !strcmp(id, "null")) {
		struct expr *e = enew(E_LIT);
		e->lit = !strcmp(id, "true") ? json_true() : !strcmp(id, "false") ? json_false() : json_null();
		free(id);
		return e;
	}
	if (accept(P, "(")) {
		struct expr *e = enew(E_CALL);
		e->name = id;
		if (!accept(P, ")")) {
			do {
				struct expr *a = parse_or(P);
				if (!a) {
					expr_free(e);
					return NULL;
				}
				ekid(e, a);
			} while (accept(P, ","));
			if (!accept(P, ")")) {
				perr(P, "expected ')' after the arguments of %s()", e->name);
				expr_free(e);
				return NULL;
			}
		}
		static const char *const fns[] = {"contains", "starts_with", "ends_with", "len",
						  "default",  "json",        "from_json", "raw"};
		static const int arity[] = {2, 2, 2, 1, 2, 1, 1, 1};
		for (size_t i = 0; i < ARRAY_LEN(fns); i++)
			if (!strcmp(fns[i], e->name)) {
				if ((int)e->nkids != arity[i]) {
					char *m = xasprintf("%s() takes %d argument%s", fns[i], arity[i],
							    arity[i] == 1 ? "" : "s");
					perr(P, "%s", m);
					free(m);
					expr_free(e);
					return NULL;
				}
				return e;
			}
		perr(P,
		     "unknown function '%s' (known: contains, starts_with, ends_with, len, default, json, from_json, "
		     "raw)",
		     e->name);
		expr_free(e);
		return NULL;
	}
	struct expr *e = enew(E_PATH);
	e->name = id;
	/* leading .name segments belong to the path; the resolver may consume them */
	while (peek_str(P, ".")) {
		size_t save = P->pos;
		P->pos++;
		char *seg = parse_ident(P);
		if (!seg) {
			P->pos = save;
			break;
		}
		e->segs = xrealloc(e->segs, (e->nsegs + 1) * sizeof *e->segs);
		e->segs[e->nsegs++] = seg;
	}
	return e;
}

static struct expr *parse_postfix(struct parser *P)
{
	struct expr *e = parse_primary(P);
	while (e) {
		if (accept(P, "[")) {
			struct expr *idx = parse_or(P);
			if (!idx || !accept(P, "]")) {
				perr(P, "expected ']'%s", "");
				expr_free(idx);
				expr_free(e);
				return NULL;
			}
			struct expr *n = enew(E_INDEX);
			ekid(n, e);
			ekid(n, idx);
			e = n;
		} else if (peek_str(P, ".")) {
			P->pos++;
			char *seg = parse_ident(P);
			if (!seg) {
				perr(P, "expected a name after '.'%s", "");
				expr_free(e);
				return NULL;
			}
			struct expr *n = enew(E_MEMBER);
			n->name = seg;
			ekid(n, e);
			e = n;
		} else {
			break;
		}
	}
	return e;
}

static struct expr *parse_unary(struct parser *P)
{
	if (peek_str(P, "!") && !peek_str(P, "!=")) {
		P->pos++;
		if (++P->depth > EXPR_MAX_DEPTH) {
			perr(P, "expression nested too deeply%s", "");
			return NULL;
		}
		struct expr *k = parse_unary(P);
		P->depth--;
		if (!k)
			return NULL;
		struct expr *e = enew(E_NOT);
		ekid(e, k);
		return e;
	}
	return parse_postfix(P);
}

static struct expr *parse_cmp(struct parser *P)
{
	struct expr *l = parse_unary(P);
	if (!l)
		return NULL;
	static const struct {
		const char *t;
		enum expr_op op;
	} ops[] = {{"==", E_EQ}, {"!=", E_NE}, {"<=", E_LE}, {">=", E_GE}, {"<", E_LT}, {">", E_GT}};
	for (size_t i = 0; i < ARRAY_LEN(ops); i++)
		if (accept(P, ops[i].t)) {
			struct expr *r = parse_unary(P);
			if (!r) {
				expr_free(l);
				return NULL;
			}
			struct expr *e = enew(ops[i].op);
			ekid(e, l);
			ekid(e, r);
			return e;
		}
	return l;
}

static struct expr *parse_and(struct parser *P)
{
	struct expr *l = parse_cmp(P);
	while (l && accept(P, "&&")) {
		struct expr *r = parse_cmp(P);
		if (!r) {
			expr_free(l);
			return NULL;
		}
		struct expr *e = enew(E_AND);
		ekid(e, l);
		ekid(e, r);
		l = e;
	}
	return l;
}

static struct expr *parse_or(struct parser *P)
{
	if (++P->depth > EXPR_MAX_DEPTH) {
		perr(P, "expression nested too deeply%s", "");
		return NULL;
	}
	struct expr *l = parse_and(P);
	while (l && accept(P, "||")) {
		struct expr *r = parse_and(P);
		if (!r) {
			expr_free(l);
			l = NULL;
			break;
		}
		struct expr *e = enew(E_OR);
		ekid(e, l);
		ekid(e, r);
		l = e;
	}
	P->depth--;
	return l;
}

struct expr *expr_parse(const char *src, size_t len, char **err)
{
	struct parser P = {.s = src, .len = len};
	struct expr *e = parse_or(&P);
	skip_ws(&P);
	if (e && P.pos < P.len) {
		char tmp[24];
		size_t n = P.len - P.pos < 20 ? P.len - P.pos : 20;
		memcpy(tmp, P.s + P.pos, n);
		tmp[n] = 0;
		perr(&P, "unexpected '%s'", tmp);
		expr_free(e);
		e = NULL;
	}
	if (!e) {
		*err = P.err ? P.err : xstrdup("empty expression");
		return NULL;
	}
	free(P.err);
	return e;
}

bool expr_is_literal(const struct expr *e)
{
	return e->op == E_LIT;
}

bool expr_truthy(const json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_number(v))
		return json_number_value(v) != 0;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	return true;
}

/* Numbers and numeric strings compare as numbers. */
static bool as_number(const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (json_is_string(v) && json_string_length(v) > 0) {
		char *end;
		*out = strtod(json_string_value(v), &end);
		return *end == '\0';
	}
	return false;
}

static bool values_equal(const json_t *a, const json_t *b)
{
	double x, y;
	if ((json_is_number(a) || json_is_number(b)) && as_number(a, &x) && as_number(b, &y))
		return x == y;
	return json_equal((json_t *)a, (json_t *)b);
}

static json_t *eval(const struct expr *e, const struct expr_scope *S, char **err, int depth);

static void value_text(const json_t *v, struct buf *out);

/*
 * from_json(s): the value JSON text s stands for (any value, not only an
 * object or a list). NULL with *err saying where jansson stopped.
 */
static json_t *from_json(const json_t *s, char **err)
{
	if (!json_is_string(s)) {
		*err = xstrdup("from_json() takes a string of JSON text");
		return NULL;
	}
	json_error_t je;
	json_t *r = json_loadb(json_string_value(s), json_string_length(s), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!r)
		*err = xasprintf("from_json(): not JSON at line %d, column %d: %s", je.line, je.column, je.text);
	return r;
}

static json_t *call(const struct expr *e, const struct expr_scope *S, char **err, int depth)
{
	if (!strcmp(e->name, "default")) {
		char *ignored = NULL;
		json_t *a = eval(e->kids[0], S, &ignored, depth);
		free(ignored);
		if (a && !json_is_null(a))
			return a;
		json_decref(a);
		return eval(e->kids[1], S, err, depth);
	}
	json_t *a[2] = {NULL, NULL};
	for (size_t i = 0; i < e->nkids; i++) {
		a[i] = eval(e->kids[i], S, err, depth);
		if (!a[i]) {
			json_decref(a[0]);
			return NULL;
		}
	}
	json_t *r = NULL;
	if (!strcmp(e->name, "raw")) {
		r = json_incref(a[0]);
	} else if (!strcmp(e->name, "json")) {
		char *s = json_dumps(a[0], JSON_ENCODE_ANY | JSON_COMPACT);
		r = json_string(s ? s : "null");
		free(s);
	} else if (!strcmp(e->name, "from_json")) {
		r = from_json(a[0], err);
	} else if (!strcmp(e->name, "len")) {
		if (json_is_string(a[0]))
			r = json_integer((json_int_t)json_string_length(a[0]));
		else if (json_is_array(a[0]))
			r = json_integer((json_int_t)json_array_size(a[0]));
		else if (json_is_object(a[0]))
			r = json_integer((json_int_t)json_object_size(a[0]));
		else
			*err = xstrdup("len() takes a string, list or map");
	} else if (!strcmp(e->name, "contains")) {
		if (json_is_array(a[0])) {
			bool found = false;
			for (size_t i = 0; i < json_array_size(a[0]) && !found; i++)
				found = values_equal(json_array_get(a[0], i), a[1]);
			r = json_boolean(found);
		} else {
			struct buf h = {0}, n = {0};
			value_text(a[0], &h);
			value_text(a[1], &n);
			r = json_boolean(strstr(h.data ? h.data : "", n.data ? n.data : "") != NULL);
			buf_free(&h);
			buf_free(&n);
		}
	} else { /* starts_with, ends_with */
		struct buf h = {0}, n = {0};
		value_text(a[0], &h);
		value_text(a[1], &n);
		bool ok = h.len >= n.len;
		if (ok && n.len) /* an empty needle matches; its buffer may be NULL */
			ok = !strcmp(e->name, "starts_with") ? memcmp(h.data, n.data, n.len) == 0
							     : memcmp(h.data + h.len - n.len, n.data, n.len) == 0;
		r = json_boolean(ok);
		buf_free(&h);
		buf_free(&n);
	}
	json_decref(a[0]);
	json_decref(a[1]);
	return r;
}

static json_t *member(json_t *v, const char *key, char **err)
{
	if (!json_is_object(v)) {
		*err = xasprintf("cannot read '.%s' of a %s", key,
				 json_is_array(v) ? "list" : json_is_string(v) ? "string" : "non-map value");
		return NULL;
	}
	json_t *r = json_object_get(v, key);
	if (!r) {
		*err = xasprintf("no key '%s'", key);
		return NULL;
	}
	return json_incref(r);
}

static json_t *eval_path(const struct expr *e, const struct expr_scope *S, char **err)
{
	if (!S || !S->lookup) {
		*err = xasprintf("'%s' is not available here", e->name);
		return NULL;
	}
	size_t used = 0;
	json_t *v = S->lookup(S->ud, e->name, (const char *const *)e->segs, e->nsegs, &used, err);
	if (!v)
		return NULL;
	for (size_t i = used; i < e->nsegs; i++) {
		json_t *n = member(v, e->segs[i], err);
		json_decref(v);
		if (!n) {
			struct buf path = {0};
			buf_adds(&path, e->name);
			for (size_t k = 0; k < i; k++)
				buf_printf(&path, ".%s", e->segs[k]);
			char *m = xasprintf("%s: %s", path.data, *err);
			buf_free(&path);
			free(*err);
			*err = m;
			return NULL;
		}
		v = n;
	}
	return v;
}

static int compare(const json_t *a, const json_t *b, char **err, bool *ok)
{
	double x, y;
	*ok = true;
	if (as_number(a, &x) && as_number(b, &y) && (json_is_number(a) || json_is_number(b)))
		return x < y ? -1 : x > y;
	if (json_is_string(a) && json_is_string(b))
		return strcmp(json_string_value(a), json_string_value(b));
	*ok = false;
	*err = xstrdup("< <= > >= compare two numbers or two strings");
	return 0;
}

static json_t *eval(const struct expr *e, const struct expr_scope *S, char **err, int depth)
{
	if (depth > 2 * EXPR_MAX_NODES) {
		*err = xstrdup("expression nested too deeply");
		return NULL;
	}
	depth++;
	json_t *a, *b, *r;
	switch (e->op) {
	case E_LIT:
		return json_incref(e->lit);
	case E_PATH:
		return eval_path(e, S, err);
	case E_MEMBER:
		a = eval(e->kids[0], S, err, depth);
		if (!a)
			return NULL;
		r = member(a, e->name, err);
		json_decref(a);
		return r;
	case E_INDEX:
		a = eval(e->kids[0], S, err, depth);
		if (!a)
			return NULL;
		b = eval(e->kids[1], S, err, depth);
		r = NULL;
		if (b && json_is_array(a)) {
			double d;
			if (as_number(b, &d) && d >= 0 && d == floor(d) && d < (double)json_array_size(a))
				r = json_incref(json_array_get(a, (size_t)d));
			else
				*err = xstrdup("list index out of range");
		} else if (b && json_is_object(a) && json_is_string(b)) {
			r = member(a, json_string_value(b), err);
		} else if (b) {
			*err = xstrdup("[ ] takes a list with a number or a map with a string");
		}
		json_decref(a);
		json_decref(b);
		return r;
	case E_NOT:
		a = eval(e->kids[0], S, err, depth);
		if (!a)
			return NULL;
		r = json_boolean(!expr_truthy(a));
		json_decref(a);
		return r;
	case E_AND:
	case E_OR:
		a = eval(e->kids[0], S, err, depth);
		if (!a && e->op == E_OR) {
			/* like GitHub Actions, `x || 'fallback'` covers an undefined x */
			free(*err);
			*err = NULL;
			return eval(e->kids[1], S, err, depth);
		}
		if (!a)
			return NULL;
		if (expr_truthy(a) == (e->op == E_OR))
			return a;
		json_decref(a);
		return eval(e->kids[1], S, err, depth);
	case E_CALL:
		return call(e, S, err, depth);
	default:
		break;
	}
	a = eval(e->kids[0], S, err, depth);
	if (!a)
		return NULL;
	b = eval(e->kids[1], S, err, depth);
	if (!b) {
		json_decref(a);
		return NULL;
	}
	bool ok = true;
	int c = 0;
	if (e->op == E_EQ || e->op == E_NE) {
		bool eq = values_equal(a, b);
		r = json_boolean(e->op == E_EQ ? eq : !eq);
	} else {
		c = compare(a, b, err, &ok);
		r = !ok ? NULL
			: json_boolean(e->op == E_LT ? c < 0 : e->op == E_LE ? c <= 0 : e->op == E_GT ? c > 0 : c >= 0);
	}
	json_decref(a);
	json_decref(b);
	return r;
}

json_t *expr_eval(const struct expr *e, const struct expr_scope *scope, char **err)
{
	*err = NULL;
	json_t *v = eval(e, scope, err, 0);
	if (!v && !*err)
		*err = xstrdup("expression failed");
	return v;
}

void expr_walk_paths(const struct expr *e, expr_path_fn fn, void *ud)
{
	if (!e)
		return;
	if (e->op == E_PATH)
		fn(ud, e->name, (const char *const *)e->segs, e->nsegs);
	for (size_t i = 0; i < e->nkids; i++)
		expr_walk_paths(e->kids[i], fn, ud);
}

/* ---- values as text ---- */

static void value_text(const json_t *v, struct buf *out)
{
	char tmp[64];
	switch (json_typeof(v)) {
	case JSON_STRING:
		buf_add(out, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		buf_adds(out, tmp);
		break;
	case JSON_REAL: {
		double d = json_real_value(v);
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(tmp, sizeof tmp, "%.*g", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
		buf_adds(out, tmp);
		break;
	}
	case JSON_TRUE:
		buf_adds(out, "true");
		break;
	case JSON_FALSE:
		buf_adds(out, "false");
		break;
	case JSON_NULL:
		break;
	default: {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (s)
			buf_adds(out, s);
		free(s);
	}
	}
}

void value_to_text(const json_t *v, struct buf *out)
{
	value_text(v, out);
}

bool expr_is_raw(const struct expr *e)
{
	return e && e->op == E_CALL && !strcmp(e->name, "raw");
}
