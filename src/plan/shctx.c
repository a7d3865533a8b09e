/*
 * shctx.c — reads a `run:` script as a POSIX shell (and bash) would, to tell
 * where each ${{ }} stands: at command level, inside "…", '…', $'…', a comment,
 * a here-document, ${…} or arithmetic. Values are never spliced into the
 * script (plan-format.md section 6): the context only picks the form of the
 * reference to the variable holding the value, or refuses the spot where no
 * form is safe. A wrong guess can at worst split words, never run a value.
 *
 * The script is read with every ${{ }} replaced by one placeholder byte at a
 * known offset (a "slot"), so that a construct can be judged as a whole.
 */
#include <stdarg.h>
#include <string.h>

#include "plan/internal.h"

/* Steps the scan of a script may take: a legitimate script needs a few per byte. */
#define SCAN_BUDGET_PER_BYTE 64
#define SCAN_BUDGET_MIN 100000
#define MAX_FRAMES 64
#define MAX_HEREDOCS 16
#define MAX_DELIM 256
#define ENV_HINT " pass the value through env: (env: {NAME: ${{ ... }}}) and write \"$NAME\" there"

enum fkind {
	F_CMD,      /* command level: the script, $( ), ( ), `…`, case … esac */
	F_DBRACKET, /* [[ … ]]: words, but < > ( ) are its own */
	F_DQ,       /* "…" */
	F_SQ,       /* '…' */
	F_ANSI,     /* $'…' */
	F_HEREDOC,  /* the body of an unquoted here-document */
	F_PARAM,    /* ${…} */
	F_ARITH,    /* $(( )), (( )), $[ ], a subscript */
	F_COMMENT,
};

/* Where a ${…} is: its name, the word after an operator, or an offset (arithmetic). */
enum pstate { P_NAME, P_WORD, P_ARITH };

/* case … esac: the subject and `in`, a pattern (until `)`), a body (until `;;`). */
enum cstate { CS_NONE, CS_SUBJECT, CS_PATTERN, CS_BODY };

/* What a command frame knows about the command it reads. */
enum {
	C_CODE_ALL = 1,    /* eval, trap: every word is code */
	C_SHELL = 2,       /* a shell is named: its -c argument is code, a here-document its script */
	C_CODE_NEXT = 4,   /* the next word is code (it follows -c) */
	C_CODE_WORD = 8,   /* the word being read is code */
	C_ARITH_ARGS = 16, /* let: the words are arithmetic */
	C_DECL = 32,       /* declare, typeset, local, export, readonly: NAME=VALUE words */
	C_DECL_INT = 64,   /* ... with -i: the values are arithmetic */
	C_DECL_REF = 128,  /* ... with -n: the values name variables */
	C_READ = 256,      /* read: its words that are not options name variables */
	C_VOPT = 512,      /* printf, test, [: a -v makes the next word a variable's name */
	C_NAME_NEXT = 1024, /* the next word names a variable */
	C_ARG_NEXT = 2048,  /* the next word is an option's argument */
};

#define MAX_INTS 32 /* names declared integer (declare -i) that baton remembers */

struct frame {
	enum fkind kind;
	char close;      /* F_CMD: ')' ( $( ) and ( ) ), 'e' (esac) or 0 (the script); F_ARITH: ')' or ']' */
	unsigned parens; /* F_ARITH: '(' still open inside */
	/* command frames */
	bool cmd_start; /* the next word is in command position */
	bool in_word;
	bool assign; /* the word being read is an assignment (NAME=…): the command word is still to come */
	bool eq;     /* the word being read has had its '=' */
	bool w_name; /* the word being read names a variable (bash evaluates a[...] in a name) */
	bool w_int;  /* the word being read assigns to a variable declared integer */
	unsigned flags;
	enum cstate cs;
	bool arith_op;   /* F_DBRACKET: the current primary compares numbers (-eq …) */
	size_t slots_at; /* F_DBRACKET: slots seen when the primary began; F_HEREDOC: when the body began */
	/* F_PARAM */
	enum pstate ps;
	bool in_quotes; /* the ${…} stands inside "…" or a here-document */
	bool in_heredoc; /* ... a here-document */
	bool pattern;   /* its word is a pattern (# % / ^ ,) */
	/* F_HEREDOC */
	size_t end, resume; /* where the body ends (its delimiter line begins), where reading goes on */
	bool to_shell;      /* fed to a shell as its script */
};

struct heredoc {
	char word[MAX_DELIM];
	bool quoted, strip_tabs, to_shell;
};

struct scan {
	const char *s;
	size_t len, i;
	const size_t *off; /* slot offsets, ascending */
	size_t n_slots, next;
	struct shslot *slots;
	struct frame st[MAX_FRAMES];
	int depth; /* st[0 .. depth] */
	struct heredoc pending[MAX_HEREDOCS];
	size_t n_pending;
	const char *unsure; /* why the rest of the script cannot be judged, or NULL */
	char escaper;       /* '\\' or '$' when that character stands right before the slot at S->i */
	char *err;
	size_t bad;
	const struct scan *parent; /* the script this one is the `…` of, or NULL */
	int nest;                  /* how many `…` deep */
	char (*ints)[64];          /* names declared integer: the outermost scan's */
	size_t *n_ints;
	size_t *work; /* steps taken, by this scan and every `…` in it: the outermost scan's */
	size_t budget; /* how many it may take */
};

static struct frame *top(struct scan *S)
{
	return &S->st[S->depth];
}

static bool is_cmd(const struct frame *f)
{
	return f->kind == F_CMD || f->kind == F_DBRACKET;
}

static struct frame *push(struct scan *S, enum fkind k)
{
	if (S->depth + 1 >= MAX_FRAMES) {
		S->unsure = "quotes, substitutions or here-documents nest too deeply";
		return NULL;
	}
	struct frame *f = &S->st[++S->depth];
	memset(f, 0, sizeof *f);
	f->kind = k;
	f->cmd_start = true;
	return f;
}

static void pop(struct scan *S)
{
	if (S->depth > 0)
		S->depth--;
}

static bool is_slot(const struct scan *S, size_t i)
{
	return S->next < S->n_slots && S->off[S->next] == i;
}

/* Refuses slot k: the first refusal is the one reported. */
static void refuse(struct scan *S, size_t k, const char *fmt, ...)
{
	if (S->err)
		return;
	va_list ap;
	va_start(ap, fmt);
	struct buf b = {0};
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	S->err = buf_detach(&b);
	S->bad = k;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Characters that end an unquoted word at command level. */
static bool is_break(char c)
{
	return is_blank(c) || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '<' ||
	       c == '>';
}

static const char *const shells[] = {"sh", "bash", "dash", "ksh", "mksh", "zsh", "ash", "yash", "posh", "busybox", "su"};

static bool word_is(const char *w, size_t n, const char *const *set, size_t nset)
{
	for (size_t k = 0; k < nset; k++)
		if (strlen(set[k]) == n && !memcmp(set[k], w, n))
			return true;
	return false;
}

static bool is_shell_name(const char *w, size_t n)
{
	const char *slash = NULL;
	for (size_t k = 0; k < n; k++)
		if (w[k] == '/')
			slash = w + k;
	if (slash) {
		n -= (size_t)(slash + 1 - w);
		w = slash + 1;
	}
	return word_is(w, n, shells, ARRAY_LEN(shells));
}

bool shctx_is_posix_shell(const char *shell)
{
	shell += strspn(shell, " \t");
	size_t n = strcspn(shell, " \t");
	if (n >= 3 && !memcmp(shell + n - 3, "env", 3) && (n == 3 || shell[n - 4] == '/'))
		return shctx_is_posix_shell(shell + n); /* /usr/bin/env bash */
	return n && is_shell_name(shell, n) && !(n == 2 && !memcmp(shell, "su", 2));
}

/* The length of the plain word at i (letters, digits and punctuation that quote nothing), 0 if none. */
static size_t plain_word(const struct scan *S, size_t i)
{
	size_t j = i;
	while (j < S->len && !is_break(S->s[j]) && !strchr("'\"`$\\", S->s[j]) && !is_slot(S, j))
		j++;
	/* a word that goes on with quotes or an expansion is not plain */
	if (j < S->len && !is_break(S->s[j]))
		return 0;
	return j - i;
}

/* ---- slots ---- */

/*
 * What the slot's surroundings make of it, from the innermost frame out and
 * through the scripts this one is the `…` of: text run as code (eval, trap,
 * a shell's -c), arithmetic, a variable's name, a shell's here-document. A
 * value that flows out of a $( ) into such a place is judged as if it stood
 * there itself.
 */
static bool code_frame(const struct frame *f)
{
	return is_cmd(f) && (f->flags & (C_CODE_ALL | C_CODE_WORD));
}

static bool arith_frame(const struct frame *f)
{
	return f->kind == F_ARITH || (f->kind == F_PARAM && f->ps == P_ARITH) ||
	       (is_cmd(f) && ((f->flags & C_ARITH_ARGS) || f->w_int || (f->eq && (f->flags & C_DECL_INT))));
}

static bool name_frame(const struct frame *f)
{
	return is_cmd(f) && (f->w_name || (f->eq && (f->flags & C_DECL_REF)));
}

static bool shell_heredoc_frame(const struct frame *f)
{
	return f->kind == F_HEREDOC && f->to_shell;
}

static bool any_frame(const struct scan *S, bool (*test)(const struct frame *))
{
	for (; S; S = S->parent)
		for (int d = 0; d <= S->depth; d++)
			if (test(&S->st[d]))
				return true;
	return false;
}

/* Records where slot S->next stands (the character at S->i is its placeholder). */
static void take_slot(struct scan *S, enum shref_form form)
{
	size_t k = S->next++;
	S->slots[k].form = form;
	S->slots[k].need_int = any_frame(S, arith_frame);
	S->slots[k].need_name = any_frame(S, name_frame);
	char escaper = S->escaper;
	S->escaper = 0;
	if (S->unsure)
		refuse(S, k, "stands where baton cannot tell how the shell reads it (%s);%s", S->unsure, ENV_HINT);
	else if (any_frame(S, code_frame))
		refuse(S, k, "stands in text the shell runs as code (an argument of eval or trap, or the script of a shell's -c), so its value would be code; pass the value through env: and write \"$NAME\" inside that code, or give it as an argument (sh -c '... \"$1\"' _ VALUE)");
	else if (any_frame(S, shell_heredoc_frame))
		refuse(S, k, "stands in a here-document that a shell reads as its script, so its value would be code; pass the value through env: and write \"$NAME\" in the script, under a quoted delimiter (<<'EOF')");
	else if (escaper == '\\')
		refuse(S, k, "follows a backslash, which would escape it; remove the backslash");
	else if (escaper == '$')
		refuse(S, k, "follows a '$', which would make it part of another expansion; remove the '$'");
	S->i++;
}

/* ---- here-documents ---- */

/* Reads the delimiter word after << or <<- at S->i. */
static void heredoc_word(struct scan *S, bool strip_tabs)
{
	while (S->i < S->len && is_blank(S->s[S->i]))
		S->i++;
	struct heredoc h = {.strip_tabs = strip_tabs, .to_shell = (top(S)->flags & C_SHELL) != 0};
	size_t n = 0;
	char q = 0;
	for (; S->i < S->len; S->i++) {
		char c = S->s[S->i];
		if (is_slot(S, S->i)) {
			refuse(S, S->next, "stands in a here-document's delimiter, which must be literal");
			S->next++;
			continue;
		}
		if (q) {
			if (c == q) {
				q = 0;
				continue;
			}
		} else if (c == '\'' || c == '"') {
			q = c;
			h.quoted = true;
			continue;
		} else if (c == '\\') {
			h.quoted = true;
			continue;
		} else if (is_break(c)) {
			break;
		}
		if (n + 1 >= sizeof h.word) {
			S->unsure = "a here-document delimiter too long to follow";
			return;
		}
		h.word[n++] = c;
	}
	if (!n && !h.quoted) {
		S->unsure = "a here-document without a delimiter";
		return;
	}
	if (S->n_pending == MAX_HEREDOCS) {
		S->unsure = "too many here-documents on one line";
		return;
	}
	S->pending[S->n_pending++] = h;
}

/* True when a slot stands in [a, b). */
static bool slot_within(const struct scan *S, size_t a, size_t b)
{
	for (size_t k = S->next; k < S->n_slots && S->off[k] < b; k++)
		if (S->off[k] >= a)
			return true;
	return false;
}

/* Finds where the body that starts at `from` ends: *end where its delimiter line starts, *resume after it. */
static void heredoc_extent(const struct scan *S, const struct heredoc *h, size_t from, size_t *end, size_t *resume)
{
	size_t wl = strlen(h->word);
	for (size_t ls = from; ls < S->len;) {
		const char *nl = memchr(S->s + ls, '\n', S->len - ls);
		size_t le = nl ? (size_t)(nl - S->s) : S->len;
		size_t p = ls;
		if (h->strip_tabs)
			while (p < le && S->s[p] == '\t')
				p++;
		if (le - p == wl && !memcmp(S->s + p, h->word, wl) && !slot_within(S, p, le)) {
			*end = ls;
			*resume = nl ? le + 1 : le;
			return;
		}
		ls = le + 1;
	}
	*end = *resume = S->len; /* delimited by the end of the script */
}

/* At a newline token with here-documents pending: reads the next body (S->i is at its start). */
static void heredoc_start(struct scan *S)
{
	while (S->n_pending) {
		struct heredoc h = S->pending[0];
		memmove(S->pending, S->pending + 1, (S->n_pending - 1) * sizeof *S->pending);
		S->n_pending--;
		size_t end, resume;
		heredoc_extent(S, &h, S->i, &end, &resume);
		if (!h.quoted) {
			struct frame *f = push(S, F_HEREDOC);
			if (!f)
				return;
			f->end = end;
			f->resume = resume;
			f->to_shell = h.to_shell;
			f->slots_at = S->next;
			return; /* the rest is started when this body ends */
		}
		while (S->next < S->n_slots && S->off[S->next] < end) {
			refuse(S, S->next, "stands in the body of a quoted here-document (<<'%s'), where nothing is expanded; unquote the delimiter (<<%s), or pass the value through env: and use an unquoted here-document", h.word, h.word);
			S->next++;
		}
		S->i = resume;
	}
}

/* The unquoted body being read has ended at S->i: back to the command after it. */
static void heredoc_end(struct scan *S, int d)
{
	struct frame *h = &S->st[d];
	if (d != S->depth && h->slots_at < S->next && !S->err)
		refuse(S, h->slots_at, "stands in a here-document whose body baton cannot follow (a substitution runs past its end);%s", ENV_HINT);
	S->i = h->resume;
	S->depth = d - 1;
	heredoc_start(S);
}

/* ---- command level ---- */

/*
 * A word begins at command level, its first character c: what it is to the
 * command (code after -c, a variable's name for read, printf -v, test -v,
 * declare), from what came before it.
 */
static void word_begin(struct frame *f, char c)
{
	if (f->in_word)
		return;
	f->in_word = true;
	f->eq = false;
	f->w_int = false;
	f->flags &= ~(unsigned)C_CODE_WORD;
	bool arg = f->flags & C_ARG_NEXT, name = f->flags & C_NAME_NEXT;
	f->flags &= ~(unsigned)(C_ARG_NEXT | C_NAME_NEXT);
	if (f->flags & C_CODE_NEXT) {
		/* sh -c -- CODE, sh -c -e CODE: options stand between */
		if (c != '-' && c != '+')
			f->flags = (f->flags & ~(unsigned)C_CODE_NEXT) | C_CODE_WORD;
	}
	f->w_name = name || (!arg && !f->cmd_start && c != '-' &&
			     ((f->flags & C_READ) || ((f->flags & C_DECL) && c != '+')));
}

static void word_end(struct frame *f)
{
	f->in_word = false;
	f->assign = false;
	f->eq = false;
	f->w_name = false;
	f->w_int = false;
}

static void command_end(struct frame *f)
{
	word_end(f);
	f->cmd_start = true;
	f->flags = 0;
}

/* Remembers a name declared integer (declare -i NAME): a later NAME=VALUE is arithmetic. */
static void int_declared(struct scan *S, const char *w, size_t n)
{
	size_t nl = 0;
	while (nl < n && is_name_char(w[nl]))
		nl++;
	if (!nl || nl >= sizeof *S->ints || *S->n_ints == MAX_INTS)
		return;
	memcpy(S->ints[*S->n_ints], w, nl);
	S->ints[*S->n_ints][nl] = '\0';
	(*S->n_ints)++;
}

static bool int_name(const struct scan *S, const char *w, size_t n)
{
	for (size_t k = 0; k < *S->n_ints; k++)
		if (strlen(S->ints[k]) == n && !memcmp(S->ints[k], w, n))
			return true;
	return false;
}

/* Ends the current primary of a [[ ]]: its slots are arithmetic if it compared numbers. */
static void primary_end(struct scan *S, struct frame *f)
{
	if (f->arith_op)
		for (size_t k = f->slots_at; k < S->next; k++)
			S->slots[k].need_int = true;
	f->arith_op = false;
	f->slots_at = S->next;
}

/*
 * A plain argument word w (n bytes) of the command f reads: options that
 * make the next word code (a shell's -c), a variable's name (-v, read -a) or
 * an option's argument (read -p), and the names declare -i makes integer.
 */
static void argument_seen(struct scan *S, struct frame *f, const char *w, size_t n)
{
	bool opt = n >= 2 && w[0] == '-' && w[1] != '-';
	if ((f->flags & C_SHELL) && opt && memchr(w, 'c', n))
		f->flags |= C_CODE_NEXT;
	if ((f->flags & C_DECL) && opt) {
		if (memchr(w, 'i', n))
			f->flags |= C_DECL_INT;
		if (memchr(w, 'n', n))
			f->flags |= C_DECL_REF;
	} else if ((f->flags & C_DECL_INT) && !opt) {
		int_declared(S, w, n);
	}
	if ((f->flags & C_VOPT) && n == 2 && !memcmp(w, "-v", 2))
		f->flags |= C_NAME_NEXT;
	if ((f->flags & C_READ) && opt) {
		if (w[n - 1] == 'a')
			f->flags |= C_NAME_NEXT;
		else if (strchr("dinNptu", w[n - 1]))
			f->flags |= C_ARG_NEXT;
	}
	if (is_shell_name(w, n))
		f->flags |= C_SHELL;
}

static const char *const keeps_start[] = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "}"};

/* A plain word w (n bytes) at S->i in command frame f: keywords and what they mean for later words. */
static void plain_word_seen(struct scan *S, struct frame *f, const char *w, size_t n)
{
	if (f->kind == F_DBRACKET) {
		static const char *const ops[] = {"-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v"};
		if (n == 2 && !memcmp(w, "]]", 2)) {
			primary_end(S, f);
			pop(S);
			word_end(top(S));
		} else if (word_is(w, n, ops, ARRAY_LEN(ops))) {
			f->arith_op = true;
		}
		return;
	}
	if (f->cs == CS_SUBJECT) {
		if (n == 2 && !memcmp(w, "in", 2))
			f->cs = CS_PATTERN;
		return;
	}
	if (f->cs == CS_PATTERN || (f->cs == CS_BODY && f->cmd_start)) {
		if (n == 4 && !memcmp(w, "esac", 4)) {
			pop(S);
			f = top(S);
			f->cmd_start = false;
			return;
		}
		if (f->cs == CS_PATTERN)
			return;
	}
	if (n == 1 && w[0] == '{') {
		f->cmd_start = true; /* a group, or a function's body after f() */
		return;
	}
	if (!f->cmd_start) {
		argument_seen(S, f, w, n);
		return;
	}
	/* command position */
	if (word_is(w, n, (const char *const[]){"command", "builtin"}, 2))
		return; /* command eval ...: the command word is the next one */
	size_t nl = 0;
	while (nl < n && is_name_char(w[nl]))
		nl++;
	if (nl && nl < n && w[nl] == '=' && !(w[0] >= '0' && w[0] <= '9'))
		return; /* an assignment: the command word is still to come */
	if (word_is(w, n, keeps_start, ARRAY_LEN(keeps_start)))
		return;
	f->cmd_start = false;
	if (n == 4 && !memcmp(w, "case", 4)) {
		struct frame *c = push(S, F_CMD);
		if (c) {
			c->close = 'e';
			c->cs = CS_SUBJECT;
			c->cmd_start = false;
		}
	} else if ((n == 4 && !memcmp(w, "eval", 4)) || (n == 4 && !memcmp(w, "trap", 4))) {
		f->flags |= C_CODE_ALL;
	} else if (n == 3 && !memcmp(w, "let", 3)) {
		f->flags |= C_ARITH_ARGS;
	} else if (word_is(w, n, (const char *const[]){"declare", "typeset", "local", "export", "readonly"}, 5)) {
		f->flags |= C_DECL;
	} else if (n == 4 && !memcmp(w, "read", 4)) {
		f->flags |= C_READ;
	} else if (word_is(w, n, (const char *const[]){"printf", "test", "["}, 3)) {
		f->flags |= C_VOPT;
	} else if (word_is(w, n, (const char *const[]){".", "source"}, 2)) {
		f->flags |= C_SHELL; /* . /dev/stdin <<EOF reads a here-document as a script */
	} else if (n == 2 && !memcmp(w, "[[", 2)) {
		struct frame *d = push(S, F_DBRACKET);
		if (d) {
			d->cmd_start = false;
			d->slots_at = S->next;
		}
	} else if (is_shell_name(w, n)) {
		f->flags |= C_SHELL;
	}
}

static void backquote(struct scan *S);

/* `$` at S->i (outside '…'): what it starts. */
static void dollar(struct scan *S)
{
	struct frame *f = top(S);
	const char *s = S->s;
	size_t i = S->i;
	char n1 = i + 1 < S->len ? s[i + 1] : 0;
	bool quoted = f->kind == F_DQ || f->kind == F_HEREDOC || (f->kind == F_PARAM && f->in_quotes);
	if (is_slot(S, i + 1)) {
		S->i++;
		S->escaper = '$'; /* take_slot refuses it */
		return;
	}
	if (n1 == '(' && i + 2 < S->len && s[i + 2] == '(') {
		struct frame *a = push(S, F_ARITH);
		if (a)
			a->close = ')';
		S->i += 3;
	} else if (n1 == '(') {
		struct frame *c = push(S, F_CMD);
		if (c)
			c->close = ')';
		S->i += 2;
	} else if (n1 == '{') {
		struct frame *p = push(S, F_PARAM);
		if (p) {
			p->ps = P_NAME;
			p->in_quotes = quoted;
			p->in_heredoc = f->kind == F_HEREDOC || (f->kind == F_PARAM && f->in_heredoc);
		}
		S->i += 2;
		/* ${#name}, ${!name}: a prefix, unless it is the whole name (${#}) */
		if (S->i + 1 < S->len && (s[S->i] == '#' || s[S->i] == '!') && s[S->i + 1] != '}')
			S->i++;
	} else if (n1 == '[') {
		struct frame *a = push(S, F_ARITH);
		if (a)
			a->close = ']';
		S->i += 2;
	} else if (n1 == '\'' && !quoted) {
		push(S, F_ANSI);
		S->i += 2;
	} else if (n1 == '"' && !quoted) {
		push(S, F_DQ);
		S->i += 2;
	} else if (n1 && strchr("#?$!@*-0123456789", n1)) {
		S->i += 2;
	} else {
		S->i++;
	}
}

/* A backslash at S->i: escapes the next character (a newline: a line continuation). */
static void backslash(struct scan *S)
{
	if (is_slot(S, S->i + 1)) {
		S->i++;
		S->escaper = '\\'; /* take_slot refuses it */
		return;
	}
	S->i += 2;
}

/* Redirection operators at S->i (< or >). */
static void redirection(struct scan *S, struct frame *f)
{
	const char *s = S->s;
	size_t i = S->i;
	word_end(f);
	if (s[i] == '<' && i + 2 < S->len && s[i + 1] == '<' && s[i + 2] == '<') {
		S->i += 3; /* a here-string: the next word is a plain word, or a shell's script */
		if (f->flags & C_SHELL)
			f->flags |= C_CODE_NEXT;
		return;
	}
	if (s[i] == '<' && i + 1 < S->len && s[i + 1] == '<') {
		bool strip = i + 2 < S->len && s[i + 2] == '-';
		S->i += strip ? 3 : 2;
		heredoc_word(S, strip);
		return;
	}
	if (i + 1 < S->len && s[i + 1] == '(') {
		struct frame *c = push(S, F_CMD); /* <( ) and >( ) */
		if (c)
			c->close = ')';
		S->i += 2;
		return;
	}
	S->i++;
	while (S->i < S->len && strchr("<>&|", s[S->i]))
		S->i++;
}

/*
 * A word begins at S->i in command frame f. Judges it: an array subscript in
 * command position (NAME[…]=, arithmetic in bash), an assignment, or a plain
 * word (keywords, eval, a shell and its -c). True when it consumed the word.
 */
static bool word_start(struct scan *S, struct frame *f)
{
	const char *s = S->s;
	size_t i = S->i;
	word_begin(f, s[i]);
	bool cmd_pos = f->cmd_start && f->cs != CS_PATTERN && f->cs != CS_SUBJECT && f->kind == F_CMD;
	size_t j = i;
	while (j < S->len && is_name_char(s[j]) && !is_slot(S, j))
		j++;
	bool name = j > i && !(s[i] >= '0' && s[i] <= '9');
	if (cmd_pos && name && j < S->len && s[j] == '[' && !is_slot(S, j)) {
		S->i = j + 1;
		f->assign = true;
		struct frame *a = push(S, F_ARITH);
		if (a)
			a->close = ']';
		return true;
	}
	if (cmd_pos && name && j < S->len && (s[j] == '=' || (s[j] == '+' && j + 1 < S->len && s[j + 1] == '=')) &&
	    !is_slot(S, j)) {
		f->assign = true;
		f->w_int = int_name(S, s + i, j - i); /* declare -i NAME earlier: NAME=VALUE is arithmetic */
	}
	size_t n = is_slot(S, i) ? 0 : plain_word(S, i);
	if (!n)
		return false;
	if (!f->assign)
		plain_word_seen(S, f, s + i, n);
	S->i += n;
	return true;
}

/* One step at command level (F_CMD, F_DBRACKET). */
static void step_cmd(struct scan *S, struct frame *f)
{
	const char *s = S->s;
	size_t i = S->i;
	char c = s[i];
	char n1 = i + 1 < S->len ? s[i + 1] : 0;
	if (is_slot(S, i)) {
		word_start(S, f);
		take_slot(S, SHREF_WORD);
		if (!f->assign && f->cs != CS_PATTERN && f->cs != CS_SUBJECT)
			f->cmd_start = false;
		return;
	}
	if (is_blank(c)) {
		word_end(f);
		S->i++;
		return;
	}
	if (c == '\n') {
		S->i++;
		if (f->kind == F_DBRACKET) {
			word_end(f);
		} else {
			if (f->cs == CS_SUBJECT || f->cs == CS_PATTERN)
				word_end(f);
			else
				command_end(f);
		}
		heredoc_start(S);
		return;
	}
	if (c == '#' && !f->in_word) {
		push(S, F_COMMENT);
		return;
	}
	if (f->kind == F_DBRACKET && (c == '&' || c == '|' || c == '(' || c == ')' || c == '<' || c == '>')) {
		if (c == '&' || c == '|' || c == '(' || c == ')')
			primary_end(S, f);
		word_end(f);
		S->i += (c == '&' || c == '|') && n1 == c ? 2 : 1;
		return;
	}
	switch (c) {
	case '\\':
		word_begin(f, c);
		backslash(S);
		return;
	case '\'':
		word_begin(f, c);
		push(S, F_SQ);
		S->i++;
		return;
	case '"':
		word_begin(f, c);
		push(S, F_DQ);
		S->i++;
		return;
	case '`':
		word_begin(f, c);
		backquote(S);
		return;
	case '$':
		word_begin(f, c);
		dollar(S);
		return;
	case ';':
		if (n1 == ';' || n1 == '&') {
			S->i += 2;
			if (i + 2 < S->len && s[i + 2] == '&')
				S->i++;
			if (f->cs == CS_BODY) {
				f->cs = CS_PATTERN;
				word_end(f);
				return;
			}
		} else {
			S->i++;
		}
		command_end(f);
		return;
	case '&':
		if (n1 == '>') {
			redirection(S, f);
			return;
		}
		S->i += n1 == '&' ? 2 : 1;
		command_end(f);
		return;
	case '|':
		S->i += (n1 == '|' || n1 == '&') ? 2 : 1;
		if (f->cs == CS_PATTERN) {
			word_end(f);
			return;
		}
		command_end(f);
		return;
	case '<':
	case '>':
		redirection(S, f);
		return;
	case '(':
		S->i++;
		if (f->cs == CS_PATTERN)
			return;
		if (f->cmd_start && n1 == '(') {
			struct frame *a = push(S, F_ARITH);
			if (a)
				a->close = ')';
			S->i++;
			return;
		}
		word_end(f);
		{
			struct frame *sub = push(S, F_CMD);
			if (sub)
				sub->close = ')';
		}
		return;
	case ')':
		S->i++;
		if (f->cs == CS_PATTERN) {
			f->cs = CS_BODY;
			command_end(f);
			return;
		}
		if (f->close == ')') {
			pop(S);
			return;
		}
		S->unsure = "a ')' that closes nothing baton followed";
		return;
	default:
		break;
	}
	if (!f->in_word && word_start(S, f))
		return;
	word_begin(f, c);
	if (c == '=') {
		f->eq = true;
		if (f->flags & C_DECL)
			f->w_name = false; /* declare NAME=VALUE: the value */
	}
	S->i++;
}

/* ---- inside quotes, ${…}, arithmetic ---- */

static void step_dq(struct scan *S, struct frame *f)
{
	char c = S->s[S->i];
	if (is_slot(S, S->i)) {
		take_slot(S, f->kind == F_HEREDOC ? SHREF_HEREDOC : SHREF_QUOTED);
		return;
	}
	if (c == '"' && f->kind == F_DQ) {
		pop(S);
		S->i++;
	} else if (c == '\\') {
		backslash(S);
	} else if (c == '$') {
		dollar(S);
	} else if (c == '`') {
		backquote(S);
	} else {
		S->i++;
	}
}

static void step_param(struct scan *S, struct frame *f)
{
	const char *s = S->s;
	char c = s[S->i];
	char n1 = S->i + 1 < S->len ? s[S->i + 1] : 0;
	if (is_slot(S, S->i)) {
		if (f->ps == P_NAME) {
			refuse(S, S->next, "stands inside ${…} where a variable's name goes; a value cannot name a variable");
			S->next++;
			S->i++;
			return;
		}
		if (f->ps == P_WORD && f->pattern && f->in_heredoc) {
			/* dash takes quotes there literally, bash does not: no form means the same to both */
			refuse(S, S->next, "stands in a pattern of ${…} inside a here-document, which dash and bash read "
					   "differently;%s", ENV_HINT);
			S->next++;
			S->i++;
			return;
		}
		/* in a pattern (${x#…}), a quoted reference matches the value as text, not as a glob */
		take_slot(S, f->ps == P_WORD && (f->pattern || !f->in_quotes) ? SHREF_WORD : SHREF_QUOTED);
		return;
	}
	if (c == '}') {
		pop(S);
		S->i++;
		return;
	}
	if (f->ps == P_NAME) {
		if (is_name_char(c) || strchr("#?$!@*-", c)) {
			/* a name, or one special parameter; then an operator */
			size_t j = S->i;
			if (is_name_char(c))
				while (j < S->len && is_name_char(s[j]))
					j++;
			else
				j++;
			S->i = j;
			if (S->i >= S->len)
				return;
			c = s[S->i];
			n1 = S->i + 1 < S->len ? s[S->i + 1] : 0;
			if (c == '}' || is_slot(S, S->i))
				return;
		}
		if (c == '[') {
			struct frame *a = push(S, F_ARITH);
			if (a)
				a->close = ']';
			S->i++;
			return;
		}
		if (c == ':' && n1 && strchr("-=?+", n1)) {
			f->ps = P_WORD;
			S->i += 2;
		} else if (c == ':') {
			f->ps = P_ARITH;
			S->i++;
		} else if (strchr("-=?+#%/^,@", c)) {
			f->ps = P_WORD;
			f->pattern = strchr("#%/^,", c) != NULL;
			S->i++;
		} else {
			S->unsure = "a ${…} baton does not know";
			f->ps = P_WORD;
			S->i++;
		}
		return;
	}
	if (f->ps == P_ARITH) {
		if (c == '$')
			dollar(S);
		else if (c == '`')
			backquote(S);
		else if (c == '\\')
			backslash(S);
		else
			S->i++;
		return;
	}
	/* the word after an operator */
	if (c == '\\')
		backslash(S);
	else if (c == '$')
		dollar(S);
	else if (c == '`')
		backquote(S);
	else if (c == '"') {
		push(S, F_DQ);
		S->i++;
	} else if (c == '\'' && !f->in_quotes) {
		push(S, F_SQ);
		S->i++;
	} else if (c == '{') {
		S->unsure = "a '{' inside ${…}, which shells count differently";
		S->i++;
	} else {
		S->i++;
	}
}

static void step_arith(struct scan *S, struct frame *f)
{
	const char *s = S->s;
	char c = s[S->i];
	char n1 = S->i + 1 < S->len ? s[S->i + 1] : 0;
	if (is_slot(S, S->i)) {
		take_slot(S, SHREF_QUOTED);
		return;
	}
	switch (c) {
	case '(':
		f->parens++;
		S->i++;
		return;
	case ')':
		if (f->parens) {
			f->parens--;
			S->i++;
		} else if (f->close == ')' && n1 == ')') {
			pop(S);
			S->i += 2;
		} else {
			S->unsure = "arithmetic that does not end with '))'";
			pop(S);
			S->i++;
		}
		return;
	case ']':
		S->i++;
		if (f->close == ']' && !f->parens)
			pop(S);
		return;
	case '$':
		dollar(S);
		return;
	case '`':
		backquote(S);
		return;
	case '\\':
		backslash(S);
		return;
	case '"':
		push(S, F_DQ);
		S->i++;
		return;
	case '\'':
		push(S, F_SQ);
		S->i++;
		return;
	default:
		S->i++;
	}
}

static void step_single(struct scan *S, struct frame *f)
{
	char c = S->s[S->i];
	if (is_slot(S, S->i)) {
		take_slot(S, f->kind == F_SQ ? SHREF_SINGLE : SHREF_ANSI);
		return;
	}
	if (c == '\\' && f->kind == F_ANSI) {
		backslash(S);
		return;
	}
	if (c == '\'')
		pop(S);
	S->i++;
}

static void step_comment(struct scan *S)
{
	if (is_slot(S, S->i)) {
		take_slot(S, SHREF_COMMENT);
		return;
	}
	if (S->s[S->i] == '\n') {
		pop(S); /* the newline itself ends the command */
		return;
	}
	S->i++;
}

/* The innermost unquoted here-document body that has ended at S->i, or -1. */
static int ended_heredoc(const struct scan *S)
{
	for (int d = S->depth; d > 0; d--)
		if (S->st[d].kind == F_HEREDOC)
			return S->i >= S->st[d].end ? d : -1;
	return -1;
}

/* Reads S's script to its end, judging every slot in it. */
static void scan_run(struct scan *S)
{
	S->st[0].kind = F_CMD;
	S->st[0].cmd_start = true;
	while (S->i < S->len && !S->err) {
		/*
		 * Here-documents send the scan back to the line that opened them,
		 * so a hostile script could make it read the same text again and
		 * again: past a budget, the script is too tangled to judge.
		 */
		if (++*S->work > S->budget) {
			refuse(S, S->n_slots, "the script is too tangled for baton to follow how the shell reads its ${{ }} parts;%s",
			       ENV_HINT);
			break;
		}
		int h = ended_heredoc(S);
		if (h > 0) {
			heredoc_end(S, h);
			continue;
		}
		/* slots in a quoted body or a delimiter were judged where they were jumped over */
		if (S->next < S->n_slots && S->off[S->next] < S->i) {
			refuse(S, S->next, "stands where baton cannot tell how the shell reads it;%s", ENV_HINT);
			break;
		}
		struct frame *f = top(S);
		switch (f->kind) {
		case F_CMD:
		case F_DBRACKET:
			step_cmd(S, f);
			break;
		case F_DQ:
		case F_HEREDOC:
			step_dq(S, f);
			break;
		case F_SQ:
		case F_ANSI:
			step_single(S, f);
			break;
		case F_PARAM:
			step_param(S, f);
			break;
		case F_ARITH:
			step_arith(S, f);
			break;
		case F_COMMENT:
			step_comment(S);
			break;
		}
	}
	if (!S->err && S->next < S->n_slots)
		refuse(S, S->next, "stands where baton cannot tell how the shell reads it;%s", ENV_HINT);
	/* [[ … ]] left open at the end: its last primary still counts */
	for (int d = S->depth; d >= 0 && !S->err; d--)
		if (S->st[d].kind == F_DBRACKET)
			primary_end(S, &S->st[d]);
}

/*
 * `…` at S->i. Before reading its text as a script the shell unescapes it
 * (\\ \$ \` become \ $ `, and inside "…" also \" becomes "), so baton
 * does the same and reads the result as a script of its own, whose slots
 * are S's and whose surroundings are where the backquote stands.
 */
static void backquote(struct scan *S)
{
	bool in_dq = false;
	for (int d = S->depth; d >= 0 && !in_dq; d--)
		if (S->st[d].kind == F_DQ)
			in_dq = true;
		else if (is_cmd(&S->st[d]))
			break;
	size_t start = S->i + 1, end = start;
	while (end < S->len && S->s[end] != '`')
		end += S->s[end] == '\\' && end + 1 < S->len && !is_slot(S, end + 1) ? 2 : 1;
	if (end > S->len)
		end = S->len;
	if (S->nest >= 16) {
		S->unsure = "backquotes nested too deeply";
		S->i = end < S->len ? end + 1 : end;
		return;
	}
	struct buf t = {0};
	size_t first = S->next, n = 0;
	size_t *off = xcalloc(S->n_slots - first + 1, sizeof *off);
	for (size_t i = start; i < end; i++) {
		if (is_slot(S, i)) {
			off[n++] = t.len;
			S->next++;
			buf_addc(&t, S->s[i]);
			continue;
		}
		char c1 = i + 1 < end ? S->s[i + 1] : 0;
		if (S->s[i] == '\\' && !is_slot(S, i + 1) && (strchr("$`\\", c1) || (in_dq && c1 == '"')) && c1)
			i++; /* the backslash goes; a backslash before a slot stays, to be refused there */
		buf_addc(&t, S->s[i]);
	}
	struct scan *C = xcalloc(1, sizeof *C);
	C->s = t.data ? t.data : "";
	C->len = t.len;
	C->off = off;
	C->n_slots = n;
	C->slots = S->slots + first;
	C->parent = S;
	C->nest = S->nest + 1;
	C->ints = S->ints;
	C->n_ints = S->n_ints;
	C->work = S->work;
	C->budget = S->budget;
	scan_run(C);
	if (C->err && !S->err) {
		S->err = C->err;
		S->bad = first + C->bad;
	} else {
		free(C->err);
	}
	free(C);
	free(off);
	buf_free(&t);
	S->next = first + n;
	S->i = end < S->len ? end + 1 : end;
}

bool shctx_analyze(const char *script, size_t len, const size_t *off, size_t n, struct shslot *slots, char **err,
		   size_t *bad)
{
	for (size_t k = 0; k < n; k++)
		slots[k] = (struct shslot){SHREF_WORD, false, false};
	if (memchr(script, '\0', len)) {
		*err = xstrdup("the command holds a NUL byte, which a shell cannot be given");
		*bad = n;
		return false;
	}
	struct scan *S = xcalloc(1, sizeof *S);
	char ints[MAX_INTS][64];
	size_t n_ints = 0;
	S->s = script;
	S->len = len;
	S->off = off;
	S->n_slots = n;
	S->slots = slots;
	S->ints = ints;
	S->n_ints = &n_ints;
	size_t work = 0;
	S->work = &work;
	S->budget = SCAN_BUDGET_PER_BYTE * len + SCAN_BUDGET_MIN;
	scan_run(S);
	bool ok = !S->err;
	if (!ok) {
		*err = S->err;
		*bad = S->bad;
	}
	free(S);
	return ok;
}
