/*
 * inputs.c — the plan's `inputs:` (typed, required, defaulted, described,
 * with choices) and what the command line gives vars and inputs (--var,
 * --var-file): each value must name a var or an input and takes its type
 * (plan-format.md section 2). Runs at load time, after `vars:` and
 * `secrets:` are read and before secrets get their values; every error is
 * reported, so that a run starts only with all of its values right.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

static const char *const input_keys[] = {"type", "required", "default", "description", "choices"};
static const char *const type_names[] = {"string", "int", "bool", "list", "map"};

/* What a value must be: an input's type, or the type of a var's default. */
enum vtype { VT_ANY, VT_STRING, VT_INT, VT_NUMBER, VT_BOOL, VT_LIST, VT_MAP };

static const char *vtype_what(enum vtype t)
{
	static const char *const what[] = {"a value", "a string", "an int", "a number", "a bool (true or false)",
					   "a list", "a map"};
	return what[t];
}

static enum vtype input_vtype(enum input_type t)
{
	static const enum vtype v[] = {VT_STRING, VT_INT, VT_BOOL, VT_LIST, VT_MAP};
	return v[t];
}

/* A var takes the type of its default; a null default (or none, as for a secret) takes any. */
static enum vtype default_vtype(const json_t *def)
{
	switch (def ? json_typeof(def) : JSON_NULL) {
	case JSON_STRING:
		return VT_STRING;
	case JSON_INTEGER:
		return VT_INT;
	case JSON_REAL:
		return VT_NUMBER;
	case JSON_TRUE:
	case JSON_FALSE:
		return VT_BOOL;
	case JSON_ARRAY:
		return VT_LIST;
	case JSON_OBJECT:
		return VT_MAP;
	default:
		return VT_ANY;
	}
}

/* ---- typing ---- */

/* An integer written in full (optional sign, decimal digits), or NULL. */
static json_t *int_of_text(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || isspace((unsigned char)*s) || *end || errno)
		return NULL;
	return json_integer(v);
}

static json_t *number_of_text(const char *s)
{
	json_t *i = int_of_text(s);
	if (i)
		return i;
	char *end;
	double d = strtod(s, &end);
	if (!*s || isspace((unsigned char)*s) || *end || !isfinite(d))
		return NULL;
	return json_real(d);
}

static json_t *bool_of_text(const char *s)
{
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	return NULL;
}

/*
 * A YAML node typed as t: a string slot takes any scalar's text as written
 * (so 1.40 stays "1.40"), the others what YAML makes of it. NULL when it is
 * not of that type.
 */
static json_t *type_node(const struct ynode *n, enum vtype t)
{
	json_t *j;
	switch (t) {
	case VT_ANY:
		return ynode_to_json(n);
	case VT_STRING:
		if (n->kind != YNODE_SCALAR || ynode_is_null(n))
			return NULL;
		return json_stringn(n->str, n->len);
	case VT_LIST:
		return n->kind == YNODE_SEQ ? ynode_to_json(n) : NULL;
	case VT_MAP:
		return n->kind == YNODE_MAP ? ynode_to_json(n) : NULL;
	default:
		if (n->kind != YNODE_SCALAR || !n->plain)
			return NULL;
		j = ynode_to_json(n);
		if ((t == VT_INT && json_is_integer(j)) || (t == VT_NUMBER && json_is_number(j)) ||
		    (t == VT_BOOL && json_is_boolean(j)))
			return j;
		json_decref(j);
		/* what ynode_to_json keeps as text because it would not print back the same (1.50, 007) */
		return t == VT_INT ? int_of_text(n->str) : t == VT_NUMBER ? number_of_text(n->str) : NULL;
	}
}

/* A value given as JSON (load_options.overrides) typed as t, or NULL. */
static json_t *type_json(json_t *v, enum vtype t)
{
	bool ok = t == VT_ANY || (t == VT_STRING && json_is_string(v)) || (t == VT_INT && json_is_integer(v)) ||
		  (t == VT_NUMBER && json_is_number(v)) || (t == VT_BOOL && json_is_boolean(v)) ||
		  (t == VT_LIST && json_is_array(v)) || (t == VT_MAP && json_is_object(v));
	if (t == VT_STRING && (json_is_number(v) || json_is_boolean(v))) {
		struct buf b = {0};
		value_to_text(v, &b);
		json_t *s = json_string(b.data ? b.data : "");
		buf_free(&b);
		return s;
	}
	return ok ? json_incref(v) : NULL;
}

/*
 * The text of a --var typed as t: a string as typed, a number, true/false,
 * or YAML flow syntax for a list or a map. NULL when it is not of that type,
 * with *detail (caller frees) set when the text is not even YAML.
 */
static json_t *type_text(const char *text, enum vtype t, char **detail)
{
	switch (t) {
	case VT_ANY:
		return plan_scalar_json(text);
	case VT_STRING:
		return json_string(text);
	case VT_INT:
		return int_of_text(text);
	case VT_NUMBER:
		return number_of_text(text);
	case VT_BOOL:
		return bool_of_text(text);
	case VT_LIST:
	case VT_MAP:
		break;
	}
	struct diags d = {0};
	struct ynode *n = *text ? yaml_load("--var", text, strlen(text), &d) : NULL;
	json_t *j = NULL;
	if (n && n->kind == (t == VT_LIST ? YNODE_SEQ : YNODE_MAP))
		j = ynode_to_json(n);
	else if (d.n)
		*detail = xstrdup(d.v[0].msg);
	ynode_free(n);
	diags_free(&d);
	return j;
}

/* ---- declarations ---- */

static struct input_def *input_find(const struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_inputs; i++)
		if (!strcmp(p->input_defs[i].name, name))
			return &p->input_defs[i];
	return NULL;
}

/* A name that ${{ inputs.NAME }} can read: a letter or '_', then letters, digits, '_' and '-'. */
static bool input_name_ok(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

/* "NAME" or "NAME (DESCRIPTION)", how messages name an input. */
static char *input_label(const struct input_def *in)
{
	return in->description ? xasprintf("input '%s' (%s)", in->name, in->description)
			       : xasprintf("input '%s'", in->name);
}

static void parse_type(struct loader *L, const struct ynode *n, struct input_def *in)
{
	if (!ld_want_scalar(L, n, "type", "string, int, bool, list or map"))
		return;
	for (size_t i = 0; i < ARRAY_LEN(type_names); i++)
		if (!strcmp(n->str, type_names[i])) {
			in->type = (enum input_type)i;
			return;
		}
	const char *hint = ld_closest(n->str, type_names, ARRAY_LEN(type_names));
	if (!hint && (!strcmp(n->str, "number") || !strcmp(n->str, "integer")))
		hint = "int";
	if (!hint && !strcmp(n->str, "boolean"))
		hint = "bool";
	if (hint)
		ERR(L, n, "input '%s': unknown type '%s'; did you mean '%s'?", in->name, n->str, hint);
	else
		ERR(L, n, "input '%s': unknown type '%s' (expected string, int, bool, list or map)", in->name, n->str);
}

static void parse_choices(struct loader *L, const struct ynode *n, struct input_def *in)
{
	if (in->type != INPUT_STRING && in->type != INPUT_INT) {
		ERR(L, n, "input '%s': 'choices' applies to string and int inputs, not to a %s", in->name,
		    type_names[in->type]);
		return;
	}
	if (n->kind != YNODE_SEQ || !n->n) {
		ERR(L, n, "input '%s': 'choices' must be a non-empty list of the values allowed", in->name);
		return;
	}
	json_t *c = json_array();
	bool bad = false;
	for (size_t i = 0; i < n->n; i++) {
		json_t *v = type_node(n->items[i], input_vtype(in->type));
		if (!v) {
			ERR(L, n->items[i], "input '%s': each choice must be %s, like the input", in->name,
			    vtype_what(input_vtype(in->type)));
			bad = true;
			continue;
		}
		json_array_append_new(c, v);
	}
	if (bad)
		json_decref(c);
	else
		in->choices = c;
}

static bool in_choices(const json_t *choices, const json_t *v)
{
	size_t i;
	json_t *c;
	json_array_foreach(choices, i, c) if (json_equal(c, (json_t *)v)) return true;
	return false;
}

/* "a, b or c": the choices as a message lists them (caller frees). */
static char *choices_text(const json_t *choices)
{
	struct buf b = {0};
	size_t i, n = json_array_size(choices);
	json_t *c;
	json_array_foreach(choices, i, c)
	{
		if (i)
			buf_adds(&b, i + 1 == n ? " or " : ", ");
		value_to_text(c, &b);
	}
	return buf_detach(&b);
}

/* The closest string choice to a string value, for "did you mean" (or NULL). */
static const char *closest_choice(const json_t *choices, const json_t *v)
{
	if (!json_is_string(v))
		return NULL;
	size_t n = json_array_size(choices);
	const char **names = xcalloc(n + 1, sizeof *names);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (json_is_string(json_array_get(choices, i)))
			names[k++] = json_string_value(json_array_get(choices, i));
	const char *hint = ld_closest(json_string_value(v), names, k);
	free(names);
	return hint;
}

static void parse_input(struct loader *L, const struct ynode *k, const struct ynode *v)
{
	struct plan *p = L->p;
	if (k->kind != YNODE_SCALAR) {
		ERR(L, k, "input names must be names, not %s", ld_type_name(k));
		return;
	}
	if (!input_name_ok(k->str)) {
		ERR(L, k, "bad input name '%s': use letters, digits, '_' and '-', starting with a letter or '_', so that "
			  "${{ inputs.NAME }} can read it",
		    k->str);
		return;
	}
	if (json_object_get(p->vars, k->str) || ld_in_set(k->str, (const char *const *)p->secrets, p->n_secrets)) {
		ERR(L, k, "'%s' is both a var and an input; a name is one or the other (rename one)", k->str);
		return;
	}
	p->input_defs = xrealloc(p->input_defs, (p->n_inputs + 1) * sizeof *p->input_defs);
	struct input_def *in = &p->input_defs[p->n_inputs++];
	*in = (struct input_def){.name = xstrdup(k->str), .type = INPUT_STRING, .line = k->line, .col = k->col};
	if (ynode_is_null(v))
		return; /* `NAME:` alone: an optional string */
	if (v->kind != YNODE_MAP) {
		ERR(L, v, "input '%s' must be a map of type, required, default, description and choices, not %s",
		    in->name, ld_type_name(v));
		return;
	}
	char *where = xasprintf("input '%s'", in->name);
	ld_check_keys(L, v, where, input_keys, ARRAY_LEN(input_keys), NULL, 0);
	free(where);
	const struct ynode *x;
	if ((x = ynode_get(v, "description")) && ld_want_scalar(L, x, "description", "a string"))
		in->description = xstrdup(x->str);
	if ((x = ynode_get(v, "type")))
		parse_type(L, x, in);
	if ((x = ynode_get(v, "required"))) {
		json_t *b = type_node(x, VT_BOOL);
		if (!b)
			ERR(L, x, "input '%s': 'required' must be true or false", in->name);
		else
			in->required = json_is_true(b);
		json_decref(b);
	}
	if ((x = ynode_get(v, "choices")))
		parse_choices(L, x, in);
	if ((x = ynode_get(v, "default")) && !ynode_is_null(x)) {
		json_t *d = type_node(x, input_vtype(in->type));
		if (!d)
			ERR(L, x, "input '%s': the default must be %s, like the input (type: %s)", in->name,
			    vtype_what(input_vtype(in->type)), type_names[in->type]);
		else if (in->choices && !in_choices(in->choices, d)) {
			char *list = choices_text(in->choices);
			ERR(L, x, "input '%s': the default is not one of its choices (%s)", in->name, list);
			free(list);
			json_decref(d);
		} else
			in->def = d;
	}
}

void inputs_parse(struct loader *L, const struct ynode *n)
{
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "'inputs' must be a map of NAME: {type, required, default, description, choices}, not %s",
		    ld_type_name(n));
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2)
		parse_input(L, n->items[i], n->items[i + 1]);
}

/* ---- values given on the command line ---- */

/* Where a given value came from, for messages: a --var, a --var-file's key, or the caller's overrides. */
struct origin {
	const char *file; /* "--var NAME=TEXT", the var file's path, or "--var" for overrides */
	int line, col;
};

static void oerr(struct loader *L, const struct origin *o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void oerr(struct loader *L, const struct origin *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct buf b = {0};
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	diags_add(L->d, o->file, o->line, o->col, "%s", b.data);
	buf_free(&b);
}

/* Every var and input name (secrets included), for "did you mean"; caller frees the array only. */
static const char **known_names(const struct plan *p, size_t *n)
{
	const char **v = xcalloc(json_object_size(p->vars) + p->n_inputs + p->n_secrets + 1, sizeof *v);
	size_t k = 0;
	const char *name;
	json_t *val;
	json_object_foreach(p->vars, name, val) v[k++] = name;
	for (size_t i = 0; i < p->n_inputs; i++)
		v[k++] = p->input_defs[i].name;
	for (size_t i = 0; i < p->n_secrets; i++)
		v[k++] = p->secrets[i];
	*n = k;
	return v;
}

static void unknown_name(struct loader *L, const struct origin *o, const char *name)
{
	size_t n;
	const char **names = known_names(L->p, &n);
	const char *hint = ld_closest(name, names, n);
	if (hint)
		oerr(L, o, "the plan has no var or input '%s'; did you mean '%s'?", name, hint);
	else
		oerr(L, o, "the plan has no var or input '%s' (declare it under 'vars:' or 'inputs:')", name);
	free(names);
}

/* What a name must be given as: an input's type or its var's default type; false when the plan has no such name. */
static bool target_of(const struct loader *L, const char *name, struct input_def **in, enum vtype *t)
{
	const struct plan *p = L->p;
	*in = input_find(p, name);
	if (*in) {
		*t = input_vtype((*in)->type);
		return true;
	}
	json_t *def = json_object_get(p->vars, name);
	*t = default_vtype(def);
	return def || ld_in_set(name, (const char *const *)p->secrets, p->n_secrets);
}

/* Checks a typed value against an input's choices, then sets it in vars or inputs (v is stolen). */
static void set_value(struct loader *L, const struct origin *o, const char *name, struct input_def *in, json_t *v,
		      const char *as_typed)
{
	struct plan *p = L->p;
	if (in && in->choices && !in_choices(in->choices, v)) {
		char *label = input_label(in), *list = choices_text(in->choices);
		const char *hint = closest_choice(in->choices, v);
		struct buf shown = {0};
		value_to_text(v, &shown);
		if (hint)
			oerr(L, o, "%s must be one of %s, not '%s'; did you mean '%s'?", label, list,
			     as_typed ? as_typed : shown.data ? shown.data : "", hint);
		else
			oerr(L, o, "%s must be one of %s, not '%s'", label, list,
			     as_typed ? as_typed : shown.data ? shown.data : "");
		buf_free(&shown);
		free(label);
		free(list);
		json_decref(v);
		json_object_set_new(p->inputs, name, json_null()); /* given, though wrong: not reported as missing */
		return;
	}
	json_object_set_new(in ? p->inputs : p->vars, name, json_incref(v));
	if (!ld_in_set(name, (const char *const *)p->secrets, p->n_secrets))
		json_object_set_new(p->given, name, v); /* what a run records: never a secret's value */
	else
		json_decref(v);
}

/*
 * Reports a value that is not of its var's or input's type: `shown` is what
 * was given ("'abc'", "a list"), `flow` says a --var gave it (a list or map
 * is then written in YAML flow syntax), `detail` why YAML refused it, or NULL.
 */
static void type_error(struct loader *L, const struct origin *o, const char *name, struct input_def *in,
		       enum vtype t, const char *shown, bool flow, const char *detail)
{
	char *subject = in ? input_label(in) : xasprintf("var '%s'", name);
	struct buf like = {0};
	if (!in && (t == VT_LIST || t == VT_MAP)) {
		buf_adds(&like, " like its default");
	} else if (!in) {
		buf_adds(&like, " like its default (");
		value_to_text(json_object_get(L->p->vars, name), &like);
		buf_adds(&like, ")");
	}
	char *syntax = flow && (t == VT_LIST || t == VT_MAP)
			       ? xasprintf(", in YAML flow syntax as in --var '%s=%s'", name,
					   t == VT_LIST ? "[a, b]" : "{key: value}")
			       : xstrdup("");
	char *why = detail ? xasprintf(" (%s)", detail) : xstrdup("");
	oerr(L, o, "%s must be %s%s%s, not %s%s", subject, vtype_what(t), like.data ? like.data : "", syntax, shown,
	     why);
	/* given, though wrong: not reported again as missing (the load fails anyway) */
	if (in)
		json_object_set_new(L->p->inputs, name, json_null());
	free(subject);
	buf_free(&like);
	free(syntax);
	free(why);
}

/* A --var NAME=TEXT: "--var NAME=TEXT" for messages, long values cut short. */
static char *var_origin(const char *arg)
{
	size_t len = strlen(arg);
	if (len <= 80)
		return xasprintf("--var %s", arg);
	size_t cut = 72;
	while (cut > 0 && ((unsigned char)arg[cut] & 0xC0) == 0x80)
		cut--; /* not inside a UTF-8 sequence */
	return xasprintf("--var %.*s...", (int)cut, arg);
}

static void apply_var(struct loader *L, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *file = var_origin(arg);
	struct origin o = {file, 0, 0};
	if (!eq || eq == arg) {
		oerr(L, &o, "expected NAME=VALUE");
		free(file);
		return;
	}
	char *name = xstrndup(arg, (size_t)(eq - arg));
	struct input_def *in;
	enum vtype t;
	json_t *utf8 = json_string(arg); /* NULL when not UTF-8 */
	if (!utf8) {
		oerr(L, &o, "the value is not valid UTF-8");
	} else if (!target_of(L, name, &in, &t)) {
		unknown_name(L, &o, name);
	} else if (!in && ld_in_set(name, (const char *const *)L->p->secrets, L->p->n_secrets)) {
		/* secrets_resolve says why a secret is never set with --var */
	} else {
		char *detail = NULL;
		json_t *v = type_text(eq + 1, t, &detail);
		if (v) {
			set_value(L, &o, name, in, v, eq + 1);
		} else {
			char *shown = xasprintf("'%s'", eq + 1);
			type_error(L, &o, name, in, t, shown, true, detail);
			free(shown);
		}
		free(detail);
	}
	json_decref(utf8);
	free(name);
	free(file);
}

static void apply_var_file(struct loader *L, const char *path)
{
	if (L->opts->no_files) {
		diags_add(L->d, path, 0, 0, "this load reads no files (--var-file)");
		return;
	}
	size_t len = 0;
	char *data = ld_read_file(path, &len, L->d);
	if (!data)
		return;
	struct ynode *root = yaml_load(path, data, len, L->d);
	free(data);
	if (!root)
		return;
	if (root->kind != YNODE_MAP) {
		diags_add(L->d, path, root->line, root->col, "a var file must be a map of name: value, not %s",
			  ld_type_name(root));
		ynode_free(root);
		return;
	}
	for (size_t i = 0; i + 1 < root->n; i += 2) {
		const struct ynode *k = root->items[i], *v = root->items[i + 1];
		if (k->kind != YNODE_SCALAR) {
			diags_add(L->d, path, k->line, k->col, "keys in a var file must be names, not %s", ld_type_name(k));
			continue;
		}
		struct origin ok = {path, k->line, k->col}, ov = {path, v->line, v->col};
		struct input_def *in;
		enum vtype t;
		if (!target_of(L, k->str, &in, &t)) {
			unknown_name(L, &ok, k->str);
			continue;
		}
		json_t *j = type_node(v, t);
		if (j) {
			set_value(L, &ov, k->str, in, j, NULL);
			continue;
		}
		char *shown = v->kind != YNODE_SCALAR ? xstrdup(ld_type_name(v))
			      : ynode_is_null(v)       ? xstrdup("null")
						       : xasprintf("'%s'", v->str);
		type_error(L, &ov, k->str, in, t, shown, false, NULL);
		free(shown);
	}
	ynode_free(root);
}

/* The caller's typed values (load_options.overrides): held to the same rules as a var file's. */
static void apply_overrides(struct loader *L, json_t *over)
{
	const char *name;
	json_t *v;
	struct origin o = {"--var", 0, 0};
	json_object_foreach(over, name, v) {
		struct input_def *in;
		enum vtype t;
		if (!target_of(L, name, &in, &t)) {
			unknown_name(L, &o, name);
			continue;
		}
		json_t *j = type_json(v, t);
		if (j)
			set_value(L, &o, name, in, j, NULL);
		else
			type_error(L, &o, name, in, t, "a value of another type", false, NULL);
	}
}

void inputs_apply_given(struct loader *L)
{
	struct plan *p = L->p;
	const struct load_options *o = L->opts;
	if (o->overrides)
		apply_overrides(L, o->overrides);
	for (size_t i = 0; i < o->n_var_sources; i++) {
		if (o->var_sources[i].file)
			apply_var_file(L, o->var_sources[i].text);
		else
			apply_var(L, o->var_sources[i].text);
	}
	for (size_t i = 0; i < p->n_inputs; i++) {
		const struct input_def *in = &p->input_defs[i];
		if (json_object_get(p->inputs, in->name))
			continue;
		if (in->def) {
			json_object_set(p->inputs, in->name, in->def);
		} else if (in->required && !o->inputs_optional) {
			char *label = input_label(in);
			diags_add(L->d, L->file, in->line, in->col, "%s is required and was not given: give it with --var %s=VALUE",
				  label, in->name);
			free(label);
		}
	}
}
