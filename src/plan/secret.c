/*
 * secret.c — the plan's `secrets`: where each gets its value at load time
 * (--secret-file, BATON_SECRET_NAME, then `vars`), every form in which baton
 * may write a value, and the masking the event bus and the dry run apply.
 */
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

/* A line (or NUL-free run) of a longer secret is masked on its own only from this length on. */
#define SECRET_PIECE_MIN 4

/* ---- where values come from ---- */

char *plan_secret_env_name(const char *name)
{
	char *e = xasprintf("BATON_SECRET_%s", name);
	for (char *c = e + strlen("BATON_SECRET_"); *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	return e;
}

/* Reports each --secret-file NAME that the plan does not list in `secrets`. */
static void unknown_secret_files(struct loader *L)
{
	const struct plan *p = L->p;
	const char *name;
	json_t *v;
	json_object_foreach(L->opts->secret_files, name, v) {
		if (ld_in_set(name, (const char *const *)p->secrets, p->n_secrets))
			continue;
		const char *hint = ld_closest(name, (const char *const *)p->secrets, p->n_secrets);
		if (hint)
			diags_add(L->d, "--secret-file", 0, 0, "'%s' is not one of the plan's secrets; did you mean '%s'?",
				  name, hint);
		else if (p->n_secrets)
			diags_add(L->d, "--secret-file", 0, 0, "'%s' is not one of the plan's secrets", name);
		else
			diags_add(L->d, "--secret-file", 0, 0, "'%s': the plan lists no secrets", name);
	}
}

/* Gives secret `x` its value, or reports why it has none. */
static void secret_resolve(struct loader *L, const struct ynode *x, const char *env)
{
	const char *name = x->str;
	json_t *vars = L->p->vars;
	if (L->opts->cli_vars && json_object_get(L->opts->cli_vars, name)) {
		ERR(L, x,
		    "secret '%s' cannot be set with --var, which other users see in ps and shells keep in their "
		    "history; use --secret-file %s=PATH or the environment variable %s",
		    name, name, env);
		return;
	}
	json_t *f = L->opts->secret_files ? json_object_get(L->opts->secret_files, name) : NULL;
	if (f) {
		json_object_set(vars, name, f);
		return;
	}
	const char *e = getenv(env);
	if (e && *e) {
		json_t *j = json_string(e);
		if (!j)
			ERR(L, x, "secret '%s': %s is not valid UTF-8", name, env);
		else
			json_object_set_new(vars, name, j);
		return;
	}
	json_t *v = json_object_get(vars, name);
	if ((!v || json_is_null(v)) && L->opts->secrets_optional)
		json_object_set_new(vars, name, json_string("***")); /* nothing runs: the value is never needed */
	else if (!v || json_is_null(v))
		ERR(L, x,
		    "secret '%s' has no value: give it with --secret-file %s=PATH or the environment variable %s "
		    "(or a default under 'vars')",
		    name, name, env);
}

void secrets_resolve(struct loader *L, const struct ynode *list)
{
	if (L->opts->secret_files)
		unknown_secret_files(L);
	if (!list || list->kind != YNODE_SEQ)
		return;
	/* names seen and environment names taken (-> index in list): hashed, so a long list costs O(n) */
	json_t *seen = json_object(), *envs = json_object();
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *x = list->items[i];
		if (x->kind != YNODE_SCALAR || json_object_get(seen, x->str))
			continue; /* listed twice: resolved once */
		json_object_set_new(seen, x->str, json_true());
		char *env = plan_secret_env_name(x->str);
		json_t *t = json_object_get(envs, env);
		if (t) {
			const struct ynode *twin = list->items[json_integer_value(t)];
			ERR(L, x, "secrets '%s' (line %d) and '%s' would both be read from %s; rename one", twin->str,
			    twin->line, x->str, env);
		} else {
			json_object_set_new(envs, env, json_integer((json_int_t)i));
			secret_resolve(L, x, env);
		}
		free(env);
	}
	json_decref(seen);
	json_decref(envs);
}

/* ---- the forms baton writes ---- */

struct forms {
	char **v;
	size_t n, cap;
};

static void forms_push(struct forms *F, const char *s, size_t len)
{
	if (F->n + 2 > F->cap) {
		F->cap = F->cap ? F->cap * 2 : 16;
		F->v = xrealloc(F->v, F->cap * sizeof *F->v);
	}
	F->v[F->n++] = xstrndup(s, len);
	F->v[F->n] = NULL;
}

/*
 * Adds s, and each of its lines (output is masked line by line) and each of
 * its NUL-free runs (the list holds C strings) of at least SECRET_PIECE_MIN
 * bytes. Empty strings are never added: they would mask nothing.
 */
static void forms_add(struct forms *F, const char *s, size_t len)
{
	if (!len)
		return;
	if (!memchr(s, '\0', len))
		forms_push(F, s, len);
	if (!memchr(s, '\n', len) && !memchr(s, '\0', len))
		return;
	for (size_t i = 0; i < len;) {
		size_t l = 0;
		while (i + l < len && s[i + l] != '\n' && s[i + l] != '\0')
			l++;
		size_t t = l && s[i + l - 1] == '\r' ? l - 1 : l;
		if (t >= SECRET_PIECE_MIN && t < len)
			forms_push(F, s + i, t);
		i += l + 1;
	}
}

/* t with a backslash before each byte of `specials`. */
static void escaped(const char *t, size_t len, const char *specials, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (t[i] && strchr(specials, t[i]))
			buf_addc(out, '\\');
		buf_addc(out, t[i]);
	}
}

/*
 * A text as it stands in a shell script: bare, single-quoted as one word
 * (shell_quote), its body inside single quotes (' as '\''), escaped inside
 * double quotes (\ before $ ` " \), escaped in an unquoted here-document
 * (\ before $ ` \), and folded onto one line in a comment.
 */
static void shell_forms(struct forms *F, const char *t, size_t len)
{
	struct buf b = {0};
	forms_add(F, t, len);
	shell_quote(&b, t, len);
	forms_add(F, b.data, b.len);
	buf_reset(&b);
	for (size_t i = 0; i < len; i++) {
		if (t[i] == '\'')
			buf_adds(&b, "'\\''");
		else
			buf_addc(&b, t[i]);
	}
	forms_add(F, b.data, b.len);
	buf_reset(&b);
	escaped(t, len, "$`\"\\", &b);
	forms_add(F, b.data, b.len);
	buf_reset(&b);
	escaped(t, len, "$`\\", &b);
	forms_add(F, b.data, b.len);
	buf_reset(&b);
	if (memchr(t, '\n', len) || memchr(t, '\r', len)) {
		for (size_t i = 0; i < len; i++)
			buf_addc(&b, t[i] == '\n' || t[i] == '\r' ? ' ' : t[i]);
		forms_add(F, b.data, b.len);
	}
	buf_free(&b);
}

/*
 * A text's forms, and those of its JSON string body (how it stands inside
 * JSON text: json(x), a map). An empty text has none: its quoted forms ('')
 * would hide nothing secret and garble everything else.
 */
static void text_forms(struct forms *F, const char *t, size_t len)
{
	if (!len)
		return;
	shell_forms(F, t, len);
	json_t *j = json_stringn(t, len); /* NULL when not UTF-8: then it is never JSON text either */
	char *s = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	size_t sl = s ? strlen(s) : 0;
	if (sl >= 2 && (sl - 2 != len || memcmp(s + 1, t, len)))
		shell_forms(F, s + 1, sl - 2);
	free(s);
	json_decref(j);
}

/*
 * A value's forms: its text (numbers and booleans as text, a list or map as
 * JSON), then each element's. An empty list or map holds nothing to hide.
 */
static void value_forms(struct forms *F, const json_t *v)
{
	if ((json_is_array(v) && !json_array_size(v)) || (json_is_object(v) && !json_object_size(v)))
		return;
	struct buf t = {0};
	value_to_text(v, &t);
	text_forms(F, t.data ? t.data : "", t.len);
	buf_free(&t);
	size_t i;
	const char *k;
	json_t *x;
	if (json_is_array(v))
		json_array_foreach(v, i, x)
			value_forms(F, x);
	else if (json_is_object(v))
		json_object_foreach((json_t *)v, k, x)
			value_forms(F, x);
}

/* Bytewise (strcmp) order: the strings that share a prefix stand together, as in a trie. */
static int bytewise(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char **plan_secret_values(const struct plan *p, size_t *n)
{
	struct forms F = {xcalloc(1, sizeof(char *)), 0, 1}; /* NULL-terminated even when empty */
	for (size_t i = 0; i < p->n_secrets; i++) {
		const json_t *v = json_object_get(p->vars, p->secrets[i]);
		if (v && !json_is_null(v))
			value_forms(&F, v);
	}
	qsort(F.v, F.n, sizeof *F.v, bytewise);
	size_t w = 0;
	for (size_t i = 0; i < F.n; i++) {
		if (w && !strcmp(F.v[w - 1], F.v[i]))
			free(F.v[i]);
		else
			F.v[w++] = F.v[i];
	}
	F.v[w] = NULL;
	*n = w;
	return F.v;
}

/* ---- masking ---- */

/*
 * The first index in [lo, hi) whose string's byte at d is above c (upper)
 * or not below c (!upper); the strings of the range share d bytes.
 */
static size_t bound_at(const char *const *v, size_t lo, size_t hi, size_t d, unsigned char c, bool upper)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		unsigned char m = (unsigned char)v[mid][d];
		if (m < c || (upper && m == c))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Length of the longest secret that starts at s (of len bytes), 0 if none.
 * The secrets are sorted bytewise, so those that share s's first d bytes
 * form one range; each byte of s narrows it with two binary searches, and a
 * secret exactly d bytes long heads the range when it matches. Cost: the
 * bytes s shares with some secret, times log n, however many secrets.
 */
static size_t match_at(const char *s, size_t len, const char *const *v, size_t n)
{
	unsigned char c0 = (unsigned char)s[0];
	if (!n || c0 < (unsigned char)v[0][0] || c0 > (unsigned char)v[n - 1][0])
		return 0; /* no secret starts with this byte: the common case, in O(1) */
	size_t lo = 0, hi = n, best = 0;
	for (size_t d = 0; d < len && lo < hi; d++) {
		unsigned char c = (unsigned char)s[d];
		if (!c)
			break; /* no secret holds a NUL */
		lo = bound_at(v, lo, hi, d, c, false);
		hi = bound_at(v, lo, hi, d, c, true);
		if (lo < hi && v[lo][d + 1] == '\0')
			best = d + 1;
	}
	return best;
}

/*
 * Every byte inside some occurrence of some secret is hidden, overlapping
 * occurrences included (so no part of a secret shows next to another, and a
 * longer form is hidden whole with the shorter ones it contains); each run
 * of hidden bytes that starts with a secret becomes ***.
 */
bool mask_secrets(const char *s, size_t len, const char *const *secrets, size_t n, struct buf *out)
{
	bool any = false;
	size_t cover = 0; /* bytes before this are hidden or copied */
	size_t copied = 0;
	for (size_t i = 0; i < len; i++) {
		size_t m = match_at(s + i, len - i, secrets, n);
		if (!m)
			continue;
		if (i >= cover) {
			buf_add(out, s + copied, i - copied);
			buf_adds(out, "***");
			any = true;
		}
		if (i + m > cover)
			cover = i + m;
		copied = cover;
	}
	buf_add(out, s + copied, len - copied);
	return any;
}
