/*
 * yaml.c — turns a YAML document into a small node tree with line:col marks,
 * using libyaml's event parser. Aliases are copied under a budget and nesting
 * is bounded, so no input can exhaust memory or the stack.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "plan/internal.h"

struct anchor {
	char *name;
	struct ynode *node;
};

/* Where libyaml's character count (a mark's index) stands in bytes; marks are asked for in order. */
struct ycursor {
	size_t byte;
	size_t chars;
};

struct yload {
	const char *file;
	const char *data;
	size_t len;
	bool utf16;         /* the input is UTF-16: marks count its units, not bytes; no look at the text */
	struct ycursor cur; /* for byte_at */
	struct diags *d;
	struct ynode **dropped; /* duplicate keys' nodes, freed at the end */
	size_t n_dropped;
	struct anchor *anchors;
	size_t n_anchors;
	size_t cap_anchors;
	size_t alias_nodes;
	size_t nodes;
	bool failed;
};

static size_t len_bom(const char *data, size_t len)
{
	return len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

/*
 * The indentation of a literal block scalar's content (whose '|' is at byte
 * `at`): the leading spaces of its first non-blank line; -1 if none.
 */
static int block_indent(const char *data, size_t len, size_t at)
{
	const char *nl = at < len ? memchr(data + at, '\n', len - at) : NULL;
	while (nl) {
		const char *p = nl + 1, *end = data + len;
		const char *q = p;
		while (q < end && *q == ' ')
			q++;
		if (q < end && *q != '\n' && *q != '\r')
			return q - p < INT16_MAX ? (int)(q - p) : -1;
		nl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
	}
	return -1;
}

/* The byte offset of character index (a mark's) in the input, walking on from the last one asked. */
static size_t byte_at(struct yload *L, size_t index)
{
	struct ycursor *c = &L->cur;
	size_t start = len_bom(L->data, L->len);
	if (index < c->chars || c->byte < start) {
		c->byte = start;
		c->chars = 0;
	}
	/* a character is a byte that does not continue a UTF-8 sequence */
	while (c->byte < L->len && c->chars < index) {
		c->byte++;
		while (c->byte < L->len && ((unsigned char)L->data[c->byte] & 0xC0) == 0x80)
			c->byte++;
		c->chars++;
	}
	return c->byte;
}

static struct ynode *ynode_new(struct yload *L, enum ynode_kind kind, yaml_mark_t mark)
{
	L->nodes++;
	struct ynode *n = xcalloc(1, sizeof *n);
	n->kind = kind;
	n->line = (int)mark.line + 1;
	n->col = (int)mark.column + 1;
	n->indent = -1;
	return n;
}

void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
}

static void ynode_push(struct ynode *parent, struct ynode *child)
{
	/* grow by powers of two */
	if ((parent->n & (parent->n - 1)) == 0)
		parent->items = xrealloc(parent->items, (parent->n ? parent->n * 2 : 1) * sizeof *parent->items);
	parent->items[parent->n++] = child;
}

/* Copies an anchored node for an alias, charging every copied node to the budget. */
static struct ynode *ynode_copy(struct yload *L, const struct ynode *src)
{
	if (++L->alias_nodes > YAML_ALIAS_BUDGET)
		return NULL;
	struct ynode *n = xcalloc(1, sizeof *n);
	*n = *src;
	n->items = NULL;
	n->n = 0;
	n->str = src->str ? xstrndup(src->str, src->len) : NULL;
	for (size_t i = 0; i < src->n; i++) {
		struct ynode *c = ynode_copy(L, src->items[i]);
		if (!c) {
			ynode_free(n);
			return NULL;
		}
		ynode_push(n, c);
	}
	return n;
}

static void anchor_add(struct yload *L, const char *name, struct ynode *node)
{
	if (L->n_anchors == L->cap_anchors) {
		L->cap_anchors = L->cap_anchors ? L->cap_anchors * 2 : 8;
		L->anchors = xrealloc(L->anchors, L->cap_anchors * sizeof *L->anchors);
	}
	L->anchors[L->n_anchors].name = xstrdup(name);
	L->anchors[L->n_anchors].node = node;
	L->n_anchors++;
}

static struct ynode *anchor_find(struct yload *L, const char *name)
{
	for (size_t i = L->n_anchors; i-- > 0;)
		if (strcmp(L->anchors[i].name, name) == 0)
			return L->anchors[i].node;
	return NULL;
}

static void dropped_add(struct yload *L, struct ynode *n)
{
	L->dropped = xrealloc(L->dropped, (L->n_dropped + 1) * sizeof *L->dropped);
	L->dropped[L->n_dropped++] = n;
}

/*
 * Reports duplicate keys in a finished map and drops all but the first, so
 * the loader never sees a key twice.
 */
static void map_check_dups(struct yload *L, struct ynode *map)
{
	size_t w = 0;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		struct ynode *k = map->items[i];
		bool dup = false;
		/* quadratic, but maps are bounded by YAML_MAX_MAP_KEYS */
		for (size_t j = 0; k->kind == YNODE_SCALAR && j < w && !dup; j += 2) {
			const struct ynode *o = map->items[j];
			if (o->kind == YNODE_SCALAR && o->len == k->len && memcmp(o->str, k->str, k->len) == 0) {
				diags_add(L->d, L->file, k->line, k->col, "duplicate key '%s' (first at line %d)", k->str,
					  o->line);
				dup = true;
			}
		}
		if (dup) {
			/* an alias may still name an anchor inside: free them with the tree */
			dropped_add(L, map->items[i]);
			dropped_add(L, map->items[i + 1]);
			continue;
		}
		map->items[w++] = map->items[i];
		map->items[w++] = map->items[i + 1];
	}
	if (map->n % 2)
		map->items[w++] = map->items[map->n - 1];
	map->n = w;
}

/*
 * Where byte `off` of data stands, as libyaml counts: lines end at \n, \r\n
 * or \r; columns count characters (UTF-8 sequences), from 0. libyaml gives
 * a reader error (a NUL, a control character, bytes that are not UTF-8)
 * only as a byte offset, its mark staying at the start of the file.
 */
static yaml_mark_t mark_at(const char *data, size_t len, size_t off)
{
	yaml_mark_t m = {0, 0, 0};
	if (off > len)
		off = len;
	size_t i = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) && off >= 3 ? 3 : 0; /* a BOM is no character */
	for (; i < off; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c == '\n' || (c == '\r' && (i + 1 >= len || data[i + 1] != '\n'))) {
			m.line++;
			m.column = 0;
		} else if (c != '\r' && (c & 0xC0) != 0x80) {
			m.column++;
		}
	}
	m.index = off;
	return m;
}

static void yaml_error(struct yload *L, yaml_parser_t *p, const char *data, size_t len)
{
	yaml_mark_t m = p->problem_mark;
	const char *what = p->problem ? p->problem : "syntax error";
	/* UTF-16 input counts offsets in its own units: keep libyaml's mark there */
	bool utf16 = L->utf16;
	if (p->error == YAML_READER_ERROR && !utf16) {
		size_t off = p->problem_offset, lead = off;
		if (!strcmp(what, "invalid trailing UTF-8 octet") && off > 0 && off <= len) {
			/* a sequence cut short: point at the byte that started it, before its continuations */
			lead = off - 1;
			while (lead > 0 && off - lead < 4 && ((unsigned char)data[lead] & 0xC0) == 0x80)
				lead--;
		}
		m = mark_at(data, len, lead);
		if (lead != off)
			diags_add(L->d, L->file, (int)m.line + 1, (int)m.column + 1,
				  "invalid YAML: byte 0x%02X starts a UTF-8 sequence that byte 0x%02X does not continue",
				  (unsigned char)data[lead], (unsigned)p->problem_value & 0xFF);
		else if (p->problem_value >= 0)
			diags_add(L->d, L->file, (int)m.line + 1, (int)m.column + 1, "invalid YAML: %s (byte 0x%02X)", what,
				  (unsigned)p->problem_value & 0xFF);
		else
			diags_add(L->d, L->file, (int)m.line + 1, (int)m.column + 1, "invalid YAML: %s", what);
		L->failed = true;
		return;
	}
	struct buf msg = {0};
	buf_printf(&msg, "invalid YAML: %s", what);
	if (p->context)
		buf_printf(&msg, " %s", p->context);
	if (!utf16) {
		/* where users trip (an unquoted ': ' in a value, ...): what it means and the fix */
		size_t plain = msg.len;
		buf_adds(&msg, ": ");
		if (!yaml_hint(&msg, data, len, m.line, m.column, p->problem)) {
			msg.len = plain;
			msg.data[plain] = '\0';
		}
	}
	diags_add(L->d, L->file, (int)m.line + 1, (int)m.column + 1, "%s", msg.data);
	buf_free(&msg);
	L->failed = true;
}

static bool is_key(const struct ynode *k, const char *name)
{
	return k->kind == YNODE_SCALAR && !strcmp(k->str, name);
}

/*
 * Whether the scalar about to be attached is a shell command: the value of
 * a step's `run` (a map in a list), or a step written as a string (an item
 * of a list of steps). 0: no; 'r': run's value; 'i': a list item.
 */
static int command_scalar(struct ynode **stack, size_t depth)
{
	const struct ynode *top = depth >= 2 ? stack[depth - 1] : NULL;
	if (top && top->kind == YNODE_MAP && top->n % 2 == 1 && stack[depth - 2]->kind == YNODE_SEQ)
		return is_key(top->items[top->n - 1], "run") ? 'r' : 0;
	if (top && top->kind == YNODE_SEQ && stack[depth - 2]->kind == YNODE_MAP && stack[depth - 2]->n >= 2) {
		const struct ynode *k = stack[depth - 2]->items[stack[depth - 2]->n - 2];
		static const char *const lists[] = {"steps", "parallel", "on_success", "on_failure", "finally"};
		for (size_t i = 0; i < ARRAY_LEN(lists); i++)
			if (is_key(k, lists[i]))
				return 'i';
	}
	return 0;
}

/*
 * Reports a comment right after plain command n (`run`'s value, or a list
 * item) that cuts it inside a quoted string or a ${{ }}.
 */
static void check_run_comment(struct yload *L, const yaml_event_t *ev, const struct ynode *n, bool item)
{
	int line = (int)ev->end_mark.line + 1, col = (int)ev->end_mark.column + 1;
	struct buf msg = {0};
	if (yaml_comment_cut(L->data, L->len, byte_at(L, ev->end_mark.index), n->str, n->len, item, &line, &col, &msg))
		diags_add(L->d, L->file, line, col, "%s", msg.data);
	buf_free(&msg);
}

/* Attaches a finished node to the open container on top of the stack, or as the root. */
static void attach(struct ynode **stack, size_t depth, struct ynode **root, struct ynode *n)
{
	if (depth == 0)
		*root = n;
	else
		ynode_push(stack[depth - 1], n);
}

struct ynode *yaml_load(const char *file, const char *data, size_t len, struct diags *d)
{
	struct yload L = {.file = file, .d = d, .data = data, .len = len};
	/* UTF-16 input (a BOM says so) counts marks in its own units */
	L.utf16 = len >= 2 && (!memcmp(data, "\xFE\xFF", 2) || !memcmp(data, "\xFF\xFE", 2));
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p)) {
		diags_add(d, file, 1, 1, "cannot initialise the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	struct ynode *stack[YAML_MAX_DEPTH + 1];
	size_t depth = 0;
	struct ynode *root = NULL;
	int docs = 0;
	bool done = false;
	while (!done && !L.failed) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			yaml_error(&L, &p, data, len);
			break;
		}
		struct ynode *n = NULL;
		const char *anchor = NULL;
		int cmd;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
					  "a plan is one YAML document; found a second one");
				L.failed = true;
			}
			break;
		case YAML_SCALAR_EVENT:
			n = ynode_new(&L, YNODE_SCALAR, ev.start_mark);
			n->str = xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			n->quoted = ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
				    ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
			if (ev.data.scalar.style == YAML_LITERAL_SCALAR_STYLE && !L.utf16)
				n->indent = (int16_t)block_indent(data, len, byte_at(&L, ev.start_mark.index));
			else if (n->plain && !L.utf16 && (cmd = command_scalar(stack, depth)) != 0)
				check_run_comment(&L, &ev, n, cmd == 'i');
			anchor = (const char *)ev.data.scalar.anchor;
			if (anchor)
				anchor_add(&L, anchor, n);
			attach(stack, depth, &root, n);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth >= YAML_MAX_DEPTH) {
				diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
					  "nesting deeper than %d levels", YAML_MAX_DEPTH);
				L.failed = true;
				break;
			}
			n = ynode_new(&L, ev.type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQ : YNODE_MAP, ev.start_mark);
			anchor = ev.type == YAML_SEQUENCE_START_EVENT ? (const char *)ev.data.sequence_start.anchor
								      : (const char *)ev.data.mapping_start.anchor;
			attach(stack, depth, &root, n);
			if (anchor)
				anchor_add(&L, anchor, n);
			stack[depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0 && stack[depth - 1]->kind == YNODE_MAP && stack[depth - 1]->n > 2 * YAML_MAX_MAP_KEYS) {
				diags_add(d, file, stack[depth - 1]->line, stack[depth - 1]->col, "a map has more than %d keys",
					  YAML_MAX_MAP_KEYS);
				L.failed = true;
				break;
			}
			if (depth > 0) {
				if (stack[depth - 1]->kind == YNODE_MAP)
					map_check_dups(&L, stack[depth - 1]);
				depth--;
			}
			break;
		case YAML_ALIAS_EVENT: {
			struct ynode *src = anchor_find(&L, (const char *)ev.data.alias.anchor);
			if (!src) {
				diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
					  "unknown alias '*%s'", ev.data.alias.anchor);
				L.failed = true;
				break;
			}
			/* an alias to a container still open would recurse forever */
			for (size_t i = 0; i < depth; i++)
				if (stack[i] == src) {
					diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
						  "alias '*%s' refers to a node that contains it", ev.data.alias.anchor);
					L.failed = true;
				}
			if (L.failed)
				break;
			n = ynode_copy(&L, src);
			if (!n) {
				diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
					  "aliases expand to more than %d nodes", YAML_ALIAS_BUDGET);
				L.failed = true;
				break;
			}
			n->line = (int)ev.start_mark.line + 1;
			n->col = (int)ev.start_mark.column + 1;
			attach(stack, depth, &root, n);
			break;
		}
		default:
			break;
		}
		if (!L.failed && L.nodes > YAML_MAX_NODES) {
			diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
				  "document has more than %d nodes", YAML_MAX_NODES);
			L.failed = true;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	for (size_t i = 0; i < L.n_anchors; i++)
		free(L.anchors[i].name);
	free(L.anchors);
	for (size_t i = 0; i < L.n_dropped; i++)
		ynode_free(L.dropped[i]);
	free(L.dropped);
	if (L.failed) {
		ynode_free(root);
		return NULL;
	}
	if (!root) {
		diags_add(d, file, 1, 1, "the plan is empty");
		return NULL;
	}
	return root;
}

struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	if (!map || map->kind != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (map->items[i]->kind == YNODE_SCALAR && strcmp(map->items[i]->str, key) == 0)
			return map->items[i + 1];
	return NULL;
}

/* A plain scalar becomes a number only when it prints back the same, so "1.40" stays text. */
static json_t *scalar_to_json(const struct ynode *n)
{
	const char *s = n->str;
	if (!n->plain) {
		json_t *j = json_stringn(s, n->len);
		return j ? j : json_string("");
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	if (!strcmp(s, "null") || !strcmp(s, "~") || !strcmp(s, "") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return json_null();
	char *end;
	long long iv = strtoll(s, &end, 10);
	if (*s && *end == '\0') {
		char back[32];
		snprintf(back, sizeof back, "%lld", iv);
		if (!strcmp(back, s))
			return json_integer(iv);
	}
	double dv = strtod(s, &end);
	if (*s && *end == '\0' && isfinite(dv)) {
		char back[64];
		snprintf(back, sizeof back, "%.17g", dv);
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(back, sizeof back, "%.*g", prec, dv);
			if (strtod(back, NULL) == dv)
				break;
		}
		if (!strcmp(back, s))
			return json_real(dv);
	}
	json_t *j = json_stringn(s, n->len);
	return j ? j : json_string("");
}

json_t *plan_scalar_json(const char *s)
{
	struct ynode n = {.kind = YNODE_SCALAR, .plain = true, .str = (char *)s, .len = strlen(s)};
	return scalar_to_json(&n);
}

json_t *ynode_to_json(const struct ynode *n)
{
	json_t *j;
	switch (n->kind) {
	case YNODE_SCALAR:
		return scalar_to_json(n);
	case YNODE_SEQ:
		j = json_array();
		for (size_t i = 0; i < n->n; i++)
			json_array_append_new(j, ynode_to_json(n->items[i]));
		return j;
	case YNODE_MAP:
		j = json_object();
		for (size_t i = 0; i + 1 < n->n; i += 2)
			if (n->items[i]->kind == YNODE_SCALAR)
				json_object_set_new(j, n->items[i]->str, ynode_to_json(n->items[i + 1]));
		return j;
	}
	return json_null();
}
