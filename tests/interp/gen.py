#!/usr/bin/env python3
"""gen.py — the generative proof that no ${{ }} value in a shell `run:` string
is ever run as shell code (plan-format.md section 6).

A seeded generator writes shell scripts from a small grammar: a probe that puts
${{ vars.v }} in one context (bare word, "...", '...', $'...', heredoc bodies,
here-strings, case words and patterns, ${x:-...}, arithmetic, comments, eval /
trap / sh -c code, after a backslash, ...), nested in wrappers ($( ),
backquotes, subshells, groups, functions, if, case inside and outside $( ),
loops, pipelines, heredocs, line continuations), after confusing preambles.
Each script runs as a step of a baton plan, under dash and bash, locally and
(--side remote) over SSH, with hostile values of v.

The oracle does not depend on baton's tracker: the generator knows the context
it put the slot in, so it renders its own safe version of the script (its own
reference to an environment variable holding the value) and runs it under the
same shell. Every executed case must write exactly what the oracle wrote (the
file $OUT/ID, byte for byte) and exit as it did; no case may ever create a
canary; a refusal must be the one the design promises (load error mentioning
env: for a quoted heredoc, eval/trap/sh -c code or a backslash before ${{;
a run-time failure with nothing run for arithmetic with a non-integer).

Python 3 standard library only. `gen.py --help` for the options; exit status
0 when every case behaved, 1 when some did not (each printed as a plan file
ready to paste, and written to --report-dir), 2 on a usage or harness error.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

S = "@S@"  # where the slot goes in a template

# ---------------------------------------------------------------------------
# references the oracle writes in place of the slot, by context

REF = {
    "bare": '"${GEN_V}"',  # a word (or part of one) at command level
    "dq": "${GEN_V}",  # inside "..." (and "${x:-...}")
    "sq": "'\"${GEN_V}\"'",  # inside '...': close, reference, reopen
    "dsq": "'\"${GEN_V}\"$'",  # inside $'...' (bash)
    "hd": "${GEN_V}",  # in the body of an unquoted here-document
    "arith": "${GEN_V}",  # in arithmetic (only ever run with an integer)
    "comment": "${GEN_V}",  # in a comment: anything
    "none": None,  # must be refused: the oracle never runs it
}

# expectations
RUN = "run"  # runs; output and exit status equal the oracle's
REFUSE_LOAD = "refuse_load"  # baton check exits 2, FILE:LINE:COL: error: ... env: ...
ARITH = "arith"  # integer value: RUN; else refused at run time, nothing runs
NAME = "name"  # a variable's name (letters, digits, _): RUN; else refused at run time, nothing runs
MAY_REFUSE = "run_or_refuse"  # either RUN exactly, or refused (load or run time)


class Probe:
    """A command that writes what it received to stdout, with the slot in one context."""

    def __init__(self, name, text, ref, expect=RUN, bash=False, heredoc=False, advice="env:"):
        self.name, self.text, self.ref, self.expect = name, text, ref, expect
        self.bash, self.heredoc, self.advice = bash, heredoc, advice


def P(name, text, ref, expect=RUN, bash=False, advice="env:"):
    """A probe; it holds a here-document when its text has << (not <<<).
    advice: what its load error must say (a regex), when it is refused."""
    return Probe(name, text, ref, expect, bash, "<<" in text and "<<<" not in text, advice)


PROBES = [
    # bare words at command level: one word, byte for byte
    P("bare", "printf '[%s]' @S@", "bare"),
    P("bare-echo", "echo @S@", "bare"),
    P("bare-concat", "printf '[%s]' pre@S@post", "bare"),
    P("bare-twice", "printf '[%s]' @S@@S@ @S@", "bare"),
    P("bare-after-hash", "printf '[%s]' a#@S@", "bare"),
    P("bare-opt", "printf '[%s]' --opt=@S@ a=@S@", "bare"),
    P("bare-between-quotes", "printf '[%s]' 'a'@S@\"b\"", "bare"),
    P("bare-escaped-backslash", "printf '[%s]' a\\\\@S@", "bare"),
    P("bare-format", "printf @S@", "bare"),
    P("bare-redir-first", "printf '[%s]' 2>/dev/null @S@", "bare"),
    P("bare-continued", "printf '[%s]' a \\\n@S@ \\\n  b", "bare"),
    P("bare-continued-tight", "printf '[%s]' a\\\n@S@", "bare"),
    P("tilde-prefix", "printf '[%s]' ~@S@ a=~@S@", "bare"),
    P("strip-bare", "gen_s=\"$GEN_V-tail\"; printf '[%s]' ${gen_s##@S@}x", "bare"),
    P("assign", "gen_x=@S@; printf '[%s]' \"$gen_x\"", "bare"),
    P("assign-concat", "gen_x=a@S@b gen_y=@S@; printf '[%s]' \"$gen_x\" \"$gen_y\"", "bare"),
    P("export", "export gen_x=@S@; printf '[%s]' \"$gen_x\"", "bare"),
    P("for-list", "for gen_w in a @S@ \"b\"; do printf '[%s]' \"$gen_w\"; done", "bare"),
    P("test-eq", "[ @S@ = \"$GEN_V\" ] && printf same || printf diff", "bare"),
    P("test-n", "test -n @S@ && printf nonempty || printf empty", "bare"),
    P("case-word", "case @S@ in \"$GEN_V\") printf same;; *) printf diff;; esac", "bare"),
    P("case-pattern", "case \"$GEN_V\" in @S@) printf same;; *) printf diff;; esac", "bare"),
    P("case-pattern-paren", "case \"$GEN_V\" in (gen_no|@S@) printf same;; (*) printf diff;; esac", "bare"),
    P("case-pattern-multiline", "case \"$GEN_V\" in\n  @S@)\n    printf same\n    ;;\n  *) printf diff;;\nesac", "bare"),
    P("param-default-bare", "printf '[%s]' ${gen_unset:-@S@}", "bare"),
    P("param-alt-bare", "printf '[%s]' ${GEN_V:+@S@}", "bare"),
    P("param-assign", ": \"${gen_z:=@S@}\"; printf '[%s]' \"$gen_z\"", "dq"),
    P("sh-c-positional", "sh -c 'printf \"[%s]\" \"$1\"' gen_sh @S@", "bare"),
    P("bash-c-positional", "bash -c 'printf \"[%s]\" \"$@\"' gen_sh a @S@", "bare"),
    # inside double quotes
    P("dq", "printf '[%s]' \"<@S@>\"", "dq"),
    P("dq-echo", "echo \"@S@\"", "dq"),
    P("dq-mixed", "printf '[%s]' \"a'b @S@ \\\"c\\\" \\$d\"", "dq"),
    P("dq-twice", "printf '[%s]' \"@S@-@S@\"", "dq"),
    P("dq-continued", "printf '[%s]' \"a\\\n@S@\"", "dq"),
    P("dq-escaped-backslash", "printf '[%s]' \"a\\\\@S@\"", "dq"),
    P("dq-multiline", "printf '[%s]' \"line1\n@S@\nline3\"", "dq"),
    P("param-default-dq", "printf '[%s]' \"${gen_unset:-@S@}\"", "dq"),
    P("param-default-dq-nested", "printf '[%s]' \"${gen_unset:-a${gen_unset2:-@S@}b}\"", "dq"),
    P("param-alt-dq", "printf '[%s]' \"${GEN_V:+<@S@>}\"", "dq"),
    # inside single quotes
    P("sq", "printf '[%s]' 'a @S@ b'", "sq"),
    P("sq-with-dq-inside", "printf '[%s]' 'say \"@S@\"'", "sq"),
    P("sq-multiline", "printf '[%s]' 'x\n@S@\ny'", "sq"),
    P("sq-backslash", "printf '[%s]' 'a\\@S@'", "sq"),
    P("sq-in-dq", "printf '[%s]' \"it's @S@\"", "dq"),
    # comments
    P("comment-after", "printf marker # @S@\n:", "comment"),
    P("comment-line", "# it's @S@ \"odd\n printf marker", "comment"),
    P("comment-after-semicolon", "printf marker;# (@S@\n:", "comment"),
    # here-documents with an unquoted delimiter: no quote removal, expansions done
    P("heredoc", "cat <<EOF\n<@S@>\nEOF", "hd"),
    P("heredoc-quotes", "cat <<GEN_END\n\"@S@\" '@S@'\nGEN_END", "hd"),
    P("heredoc-dash", "cat <<-EOF\n\t<@S@>\n\tEOF", "hd"),
    P("heredoc-two", "cat <<A1; cat <<B1\n@S@\nA1\n[@S@]\nB1", "hd"),
    P("heredoc-then-cmd", "cat <<EOF; printf '[%s]' @S@\nbody\nEOF", "bare"),
    P("heredoc-subst", "cat <<EOF\n$(printf '[%s]' @S@)\nEOF", "bare"),
    P("heredoc-subst-dq", "cat <<EOF\n$(printf '[%s]' \"@S@\")\nEOF", "dq"),
    P("heredoc-after-dollar", "cat <<EOF\n$ @S@ ${gen_unset:-x}\nEOF", "hd"),
    # here-documents with a quoted delimiter: no reference is expanded there
    P("heredoc-quoted", "cat <<'EOF'\n@S@\nEOF", "none", REFUSE_LOAD),
    P("heredoc-dquoted", "cat <<\"EOF\"\na @S@\nEOF", "none", REFUSE_LOAD),
    P("heredoc-backslashed", "cat <<\\EOF\n@S@\nEOF", "none", REFUSE_LOAD),
    P("heredoc-partly-quoted", "cat <<E'O'F\n@S@\nEOF", "none", REFUSE_LOAD),
    P("heredoc-dash-quoted", "cat <<-'EOF'\n\t@S@\n\tEOF", "none", REFUSE_LOAD),
    # a $ or a backslash right before ${{, a variable's name, a delimiter
    P("after-dollar", "printf '[%s]' $@S@", "none", REFUSE_LOAD, advice="env:|'\\$'"),
    P("param-name", "printf '[%s]' ${@S@}", "none", REFUSE_LOAD, advice="env:|name"),
    P("heredoc-delimiter", "cat <<E@S@\nx\nEx", "none", REFUSE_LOAD, advice="env:|delimiter"),
    P("backslash-bare", "printf '[%s]' foo\\@S@", "none", REFUSE_LOAD, advice="env:|backslash"),
    P("backslash-dq", "printf '[%s]' \"foo\\@S@\"", "none", REFUSE_LOAD, advice="env:|backslash"),
    P("backslash-heredoc", "cat <<EOF\na\\@S@\nEOF", "none", REFUSE_LOAD, advice="env:|backslash"),
    # code the shell evaluates
    P("eval-dq", "eval \"printf '[%s]' @S@\"", "none", REFUSE_LOAD),
    P("eval-sq", "eval 'printf \"[%s]\" @S@'", "none", REFUSE_LOAD),
    P("eval-bare", "eval printf '[%s]' @S@", "none", REFUSE_LOAD),
    P("trap-dq", "trap \"printf '[%s]' @S@\" EXIT", "none", REFUSE_LOAD),
    P("trap-sq", "trap 'printf \"[%s]\" @S@' EXIT", "none", REFUSE_LOAD),
    P("sh-c-dq", "sh -c \"printf '[%s]' @S@\"", "none", REFUSE_LOAD),
    P("sh-c-sq", "sh -c 'printf \"[%s]\" @S@'", "none", REFUSE_LOAD),
    P("bash-c-dq", "bash -c \"echo @S@\"", "none", REFUSE_LOAD),
    # arithmetic: only an integer may go there
    P("arith", "printf '[%s]' \"$(( @S@ + 1 ))\"", "arith", ARITH),
    P("arith-tight", "printf '[%s]' $((@S@))", "arith", ARITH),
    P("arith-assign", ": $(( gen_n = 2 * @S@ )); printf '[%s]' \"$gen_n\"", "arith", ARITH),
    P("arith-shift", "printf '[%s]' \"$(( (@S@) << 1 ))\"", "arith", ARITH),
    # bash only
    P("dsq", "printf '[%s]' $'a\\t@S@\\x41'", "dsq", bash=True),
    P("dsq-escaped-quote", "printf '[%s]' $'it\\'s @S@'", "dsq", bash=True),
    P("herestring", "cat <<< @S@", "bare", bash=True),
    P("herestring-tight", "cat <<<@S@", "bare", bash=True),
    P("herestring-dq", "cat <<< \"a @S@\"", "dq", bash=True),
    P("herestring-sq", "cat <<< 'a @S@'", "sq", bash=True),
    P("dbracket-eq", "[[ @S@ == \"$GEN_V\" ]] && printf same || printf diff", "bare", bash=True),
    P("dbracket-pattern", "[[ \"$GEN_V\" == @S@ ]] && printf same || printf diff", "bare", bash=True),
    P("dbracket-regex", "[[ \"$GEN_V\" =~ @S@ ]] && printf same || printf diff", "bare", bash=True),
    P("brace-expansion", "printf '[%s]' {a,@S@}", "bare", bash=True),
    P("array-elem", "gen_a=(x @S@ \"y\"); printf '[%s]' \"${gen_a[@]}\"", "bare", bash=True),
    P("procsub", "cat <(printf '[%s]' @S@)", "bare", bash=True),
    P("dbracket-arith", "[[ @S@ -lt 5 ]] && printf lt || printf ge", "arith", ARITH, bash=True),
    P("arith-cmd", "(( gen_n = @S@ + 1 )); printf '[%s]' \"$gen_n\"", "arith", ARITH, bash=True),
    P("let", "let \"gen_n = @S@ * 3\"; printf '[%s]' \"$gen_n\"", "arith", ARITH, bash=True),
    P("array-index", "gen_a=(a b c); printf '[%s]' \"${gen_a[@S@]}\"", "arith", ARITH, bash=True),
    P("array-assign-index", "gen_a[@S@]=x; printf '[%s]' \"${gen_a[*]}\"", "arith", ARITH, bash=True),
    P("substring", "gen_s=abcdefgh; printf '[%s]' \"${gen_s:@S@}\"", "arith", ARITH, bash=True),
    P("substring-length", "gen_s=abcdefgh; printf '[%s]' \"${gen_s:1:@S@}\"", "arith", ARITH, bash=True),
    P("bash-c-sq", "bash -c 'printf \"[%s]\" @S@'", "none", REFUSE_LOAD, bash=True),
    # found by --explore, each now judged by baton
    # eval and a shell's -c script behind a prefix
    P("command-eval", "command eval \"printf '[%s]' @S@\"", "none", REFUSE_LOAD),
    P("builtin-eval", "builtin eval \"printf '[%s]' @S@\"", "none", REFUSE_LOAD, bash=True),
    P("sh-c-dashdash", "sh -c -- \"printf '[%s]' @S@\"", "none", REFUSE_LOAD),
    # a here-document or here-string that a shell reads as its script
    P("source-heredoc", ". /dev/stdin <<EOF\nprintf '[%s]' @S@\nEOF", "none", REFUSE_LOAD),
    P("sh-s-heredoc", "sh -s <<EOF\nprintf '[%s]' @S@\nEOF", "none", REFUSE_LOAD),
    P("sh-herestring", "sh <<< \"printf '[%s]' @S@\"", "none", REFUSE_LOAD, bash=True),
    # bash reads these words as variable names, evaluating a subscript
    # (a[$(cmd)]) as arithmetic: only a plain name may go there
    P("test-v", "test -v @S@ && printf set || printf unset", "bare", NAME, bash=True),
    P("printf-v", "printf -v @S@ %s x 2>/dev/null; printf '[%s]' \"$?\"", "bare", NAME, bash=True),
    P("read-name", "read @S@ <<< x 2>/dev/null; printf '[%s]' \"$?\"", "bare", NAME, bash=True),
    P("declare-name", "declare @S@=1 2>/dev/null; printf '[%s]' \"$?\"", "bare", NAME, bash=True),
    P("local-name", "gen_l() { local @S@=1; }; gen_l 2>/dev/null; printf '[%s]' \"$?\"", "bare", NAME, bash=True),
    P("declare-i", "declare -i gen_n; gen_n=@S@; printf '[%s]' \"$gen_n\"", "arith", ARITH, bash=True),
    # a pattern inside "${x#...}": the shell matches the reference's value as
    # a pattern unless the reference is quoted there too ("${x#"$v"}")
    P("strip-prefix-dq", "gen_s=\"$GEN_V-tail\"; printf '[%s]' \"${gen_s#@S@}\"", "bare"),
    P("strip-suffix-dq", "gen_s=\"head-$GEN_V\"; printf '[%s]' \"${gen_s%%@S@}\"", "bare"),
    P("replace-dq", "gen_s=\"<$GEN_V>\"; printf '[%s]' \"${gen_s/@S@/Q}\"", "bare", bash=True),
]

# Probes for --explore: places where a shell reads a value as code or as an
# expression that baton 0.x did not refuse when they were written (each was
# reported with a plan that reproduces it). `make fuzz-interp` includes them;
# `make check` does not until they are fixed, since it must pass.
EXPLORE = [
    # (none open: every place found so far is judged by baton and now in PROBES)
]

# ---------------------------------------------------------------------------
# harmless preambles that trip naive context trackers; they write nothing

CONFUSERS = [
    ('echo "$((1<<3))" >/dev/null', False),
    (": $(( 1 << 2 ))", False),
    (": $((2 > 1)) $((1>>1))", False),
    ("cat <<< hi >/dev/null", True),
    (": '(' \"((\"", False),
    ("# it's \"odd", False),
    (": # (", False),
    (": <<'GEN_Q'\n$(x `\n'\"\nGEN_Q", False),
    (": <<GEN_U\n'\n\"\nGEN_U", False),
    (": <<-GEN_T\n\tx '\n\tGEN_T", False),
    (": <<GEN_E\nGEN_EX\nGEN_E", False),
    (": <<GEN_A; : <<'GEN_B'\nx\nGEN_A\n$(y \"\nGEN_B", False),
    ("echo '$(' \"\\`\" >/dev/null", False),
    (': "${gen_c:-}" $# "${#gen_c}" ${gen_c#\\#} "${gen_c%\\"}"', False),
    (": a\\\\", False),
    ("gen_c='a'\\''b'", False),
    (": 'it''s' \\' \\\"", False),
    (": \"$(echo ')')\"", False),
    ("case x in x) : ;; esac", False),
    (": \"$(case x in (x) : ;; esac)\"", False),
    (": \"$(case x in x) : ;; esac)\"", False),
    ("gen_g() { :; }", False),
    (": '}' \"}\" \\}", False),
    ("echo \\$\\( \\` >/dev/null", False),
    (": \"\\\"'\"", False),
    (": $'\\''", True),
    ("[ 1 -lt 2 ]", False),
    (": \"a#b\" a#b", False),
    ("printf '%s' \"$(printf ')')\" >/dev/null", False),
    (": \"$(: \"$(: ')')\")\"", False),
    (": `echo '('`", False),
    (": $(( $(echo 1) + 1 ))", False),
    ("gen_c=$(cat <<'GEN_P'\n)\nGEN_P\n)", False),
    ("[[ a == a ]]", True),
    ("(( 1 < 2 ))", True),
    ("gen_arr=(1 \"2 3\"); : \"${gen_arr[@]}\"", True),
    (": {a,b} 'a'\"b\"'c'", False),
    (": $( (echo a) )", False),
    (": \"`echo \\\"(\\\"`\"", False),
    ("printf '%s\\n' \"'\" >/dev/null", False),
    (": \\\n  continued", False),
]

# ---------------------------------------------------------------------------
# wrappers: each turns a command that writes to stdout into another one


def close(inner, token):
    """inner then token: on the same line, or on a line of its own after a
    multi-line inner (a here-document's delimiter line must stand alone)."""
    return inner + ("\n" + token if "\n" in inner else token)


def subst(inner):
    """$(inner), with a space when inner starts with ( (not arithmetic)."""
    sp = " " if inner.startswith("(") else ""
    return "$(" + sp + close(inner, sp + ")")


def backq_escape(inner):
    """inner as the text of a backquoted substitution. Double quotes stay as
    they are, even inside "`...`": both shells take balanced ones literally
    there, and bash does not unescape \\" inside a $( ) nested in it."""
    return inner.replace("\\", "\\\\").replace("`", "\\`")


# Each w_NAME(t, v) returns a command that writes what command t writes, t
# wrapped in one construct; v is a number unique to the layer (for names).


def w_subst_dq(t, v):
    return "printf '%s' \"" + subst(t) + '"'


def w_subst_bare(t, v):
    return "printf '[%s]' " + subst(t)


def w_subst_assign(t, v):
    return "gen_o%d=%s; printf '%%s' \"$gen_o%d\"" % (v, subst(t), v)


def w_backq_dq(t, v):
    return "printf '%s' \"`" + close(backq_escape(t), "`") + '"'


def w_backq_bare(t, v):
    return "printf '[%s]' `" + close(backq_escape(t), "`")


def w_subshell(t, v):
    return "(" + close(t, ")") if not t.startswith("(") else "( " + close(t, " )")


def w_group(t, v):
    return "{\n" + t + "\n}" if "\n" in t else "{ " + t + "; }"


def w_func(t, v):
    return "gen_f%d() {\n%s\n}\ngen_f%d" % (v, t, v)


def w_func_oneline(t, v):
    if "\n" in t:
        return w_func(t, v)
    return "gen_f%d() { %s; }; gen_f%d" % (v, t, v)


def w_if(t, v):
    return "if true; then\n" + t + "\nfi"


def w_if_oneline(t, v):
    return "if :; then " + close(t, "; else :; fi") if "\n" not in t else w_if(t, v)


def w_case(t, v):
    return "case x in x) " + close(t, ";; esac") if "\n" not in t else "case x in\n(x)\n" + t + "\n;;\nesac"


def w_case_subst(t, v):
    if "\n" in t:
        return "printf '%s' \"$(case x in x)\n" + t + "\n;; esac)\""
    return "printf '%s' \"$(case x in x) " + t + ";; esac)\""


def w_case_subst_paren(t, v):
    return "printf '%s' \"$(case x in (x) " + close(t, "\n;; esac)") + '"' if "\n" in t else \
        "printf '%s' \"$(case x in (x) " + t + " ;; esac)\""


def w_for(t, v):
    return "for gen_i%d in 1; do\n%s\ndone" % (v, t)


def w_while(t, v):
    # the guard is set before t: a t that a bad rendering breaks cannot loop
    head = "while [ \"${gen_w%d:-}\" != 1 ]; do gen_w%d=1; " % (v, v)
    return head + close(t, "\ndone") if "\n" in t else head + t + "; done"


def w_pipe(t, v):
    return "{\n" + t + "\n} | cat" if "\n" in t else t + " | cat"


def w_andor(t, v):
    return ("true && " if v % 2 else "false || ") + t


def w_heredoc_subst(t, v):
    return "cat <<GEN_H%d\n%s\nGEN_H%d" % (v, subst(t), v)


def w_continued(t, v):
    return "printf '%s' \\\n  \"" + subst(t) + '"'


def w_param_default_dq(t, v):
    return "printf '%s' \"${gen_unset:-" + subst(t) + '}"'


def w_param_default_bare(t, v):
    return "printf '[%s]' ${gen_unset:-" + subst(t) + "}"


def w_procsub(t, v):
    return "cat <( " + close(t, " )")


# name, function, bash only, may wrap a here-document (not inside backquotes,
# a $( ) in a here-document's body, or <( ): bash 5.2 misreads some of those)
WRAPPERS = [
    ("subst-dq", w_subst_dq, False, True),
    ("subst-bare", w_subst_bare, False, True),
    ("subst-assign", w_subst_assign, False, True),
    ("backq-dq", w_backq_dq, False, False),
    ("backq-bare", w_backq_bare, False, False),
    ("subshell", w_subshell, False, True),
    ("group", w_group, False, True),
    ("func", w_func, False, True),
    ("func-oneline", w_func_oneline, False, True),
    ("if", w_if, False, True),
    ("if-oneline", w_if_oneline, False, True),
    ("case", w_case, False, True),
    ("case-in-subst", w_case_subst, False, True),
    ("case-paren-in-subst", w_case_subst_paren, False, True),
    ("for", w_for, False, True),
    ("while", w_while, False, True),
    ("pipe", w_pipe, False, True),
    ("andor", w_andor, False, True),
    ("heredoc-subst", w_heredoc_subst, False, False),
    ("continued", w_continued, False, True),
    ("param-default-dq", w_param_default_dq, False, True),
    ("param-default-bare", w_param_default_bare, False, True),
    ("procsub", w_procsub, True, False),
]
WRAP = {w[0]: w for w in WRAPPERS}
CONF_BASH = {c: b for c, b in CONFUSERS}
# Confusers after which baton may refuse every later ${{ }}: it cannot tell how
# the shell reads an escaped double quote inside backquotes (plan-format.md).
UNKNOWABLE = set()  # baton follows what a backquote's text is once unescaped
assert UNKNOWABLE <= set(CONF_BASH)

# ---------------------------------------------------------------------------
# hostile values; @K@ is a canary that names the step, @C@ a plain one


def long_value():
    """60 KiB of quoting trouble, with a canary at both ends and in the middle."""
    unit = "Lorem ipsum; $x `y` 'q' \"d\" \\ * # \u00e9 "
    body = (unit * (61440 // len(unit) + 1))[:61440 - 60]
    k = "$(touch @K@)"
    return k + body[:len(body) // 2] + k + body[len(body) // 2:] + k


FIXED_VALUES = [
    ("semicolon", "x; touch @K@"),
    ("subst", "$(touch @K@)"),
    ("backquote", "`touch @K@`"),
    ("sq-break", "'; touch @K@; '"),
    ("dq-break", "\"; touch @K@; \""),
    ("sq-escape", "'\\''"),
    ("sq-escape-cmd", "a'\\''b; touch @K@ #"),
    ("backslash", "\\"),
    ("trailing-backslash", "x; touch @K@ \\"),
    ("newlines", "a\ntouch @K@\nb\n"),
    ("hash", "x # touch @K@"),
    ("hash-close", "x; touch @K@ #"),
    ("globs", "* ? [a] ~ ~root $HOME ${IFS}"),
    ("star", "*"),
    ("bracket", "[a]"),
    ("tilde", "~"),
    ("arith-trick", "a[$(touch @K@)]"),
    ("arith-trick-var", "gen_x[$(touch @K@)]+1"),
    ("eof-line", "x\nEOF\ntouch @K@\nGEN_END\nA1\nB1\nGEN_H1\nGEN_H2\nGEN_H3\nEOF"),
    ("bang", "! !! !$ -n"),
    ("format", "%s %d %b \\n %%"),
    ("long", long_value()),
    ("invalid-utf8", "\udcff\udcfe; touch @K@ \udcc3( \udce9t\udce9 '\udc80\"$(touch @K@)\udcbf"),
    ("utf8", "\u00e9\u00fc \u65e5\u672c\u8a9e \U0001f389 e\u0301 \u05e9\u05dc\u05d5\u05dd \u2028 \u0085 \ufeff"),
    ("empty", ""),
    ("space", " a  b "),
    ("case-break", "x) touch @K@;; esac; case x in x"),
    ("esac", ";; esac; touch @K@; case x in (x"),
    ("paren", ") ; touch @K@ ; ("),
    ("brace", "} ; touch @K@ ; ${"),
    ("redirect", "x > @C@.redir"),
    ("and-pipe", "x && touch @K@ | touch @K@ & touch @K@"),
    ("control", "a\tb\rc\x01d\x1be\x7f"),
    ("quotes", "\"'\"'\"'`\\\"\\'"),
    ("baton-syntax", "${{ vars.v }} ${__baton_v0} ${__baton_v1}"),
    ("dollar-sq", "$'\\x41' $\"x\""),
    ("nested-subst", "${x:-$(touch @K@)} $((x=$(touch @K@)))"),
    ("heredoc-open", "<<EOF <<<x <<'E'"),
    ("int", "42"),
    ("int-negative", "-7"),
    ("int-zero", "0"),
    ("int-big", "123456789"),
    ("int-then-code", "1; touch @K@"),
    ("int-plus-subst", "1 + $(touch @K@)"),
    ("int-hex", "0x10"),
    ("int-octal", "010"),
    ("int-plus", "+5"),
    ("int-space", " 5"),
    ("int-huge", "99999999999999999999"),
]

# values the generator treats as canonical integers: arithmetic with them must run
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
CANON_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})\Z")
# values that look like integers to some: arithmetic may run them or refuse
INTISH = re.compile(r"\s*[-+]?[0-9][0-9a-fA-FxX]*\s*\Z")

FRAGMENTS = ["$(touch @K@)", "`touch @K@`", "; touch @K@;", "'", '"', "\\", "$", "`", "(", ")",
             "{", "}", "[", "]", "*", "?", "~", "#", "!", "&", "|", "<", ">", ";", "\n", "\t", " ",
             "'\\''", "$(", "${", "$((", "<<", "<<<", "EOF", "esac", ";;", "%s", "\u00e9", "\U0001f600",
             "\\\n", "a", "b", "0", "-", "=", "$HOME", "${IFS}", "\r"]


def random_value(rng):
    """A value of 1-12 hostile fragments, most with a canary in it."""
    n = rng.randint(1, 12)
    s = "".join(rng.choice(FRAGMENTS) for _ in range(n))
    if "@K@" not in s and rng.random() < 0.6:
        cut = rng.randint(0, len(s))
        s = s[:cut] + rng.choice(["$(touch @K@)", ";touch @K@;", "`touch @K@`", "\ntouch @K@\n"]) + s[cut:]
    return s


def value_class(v):
    """int (arithmetic must run it), intish (it may) or text (it must refuse)."""
    if CANON_INT.match(v):
        return "int"
    if INTISH.match(v):
        return "intish"
    return "text"


# ---------------------------------------------------------------------------
# cases


class Case:
    """One generated script: preambles, then the probe inside its wrappers."""

    def __init__(self, idx, probe, layers, top, post):
        self.idx = idx
        self.probe = probe
        self.layers = layers  # [(wrapper name, variant, confuser or None)], innermost first
        self.top = top  # confusers before the probe
        self.post = post  # confusers after it
        self.bash = probe.bash or any(WRAP[w][2] for w, _, _ in layers) or \
            any(CONF_BASH[c] for c in top + post + [c for _, _, c in layers if c])

    def shells(self):
        if getattr(self, "only", None):
            return self.only
        return ["bash"] if self.bash else ["dash", "bash"]

    def unknowable(self):
        """Whether baton may refuse the slot because it cannot tell how the
        shell reads it: after a preamble in UNKNOWABLE (none at present)."""
        before = self.top + [c for _, _, c in self.layers if c]
        return any(c in UNKNOWABLE for c in before)

    def expect(self):
        """What the design says of this case (before looking at the value)."""
        if self.probe.expect == RUN and self.unknowable():
            return MAY_REFUSE
        return self.probe.expect

    def describe(self):
        wr = "/".join(w for w, _, _ in reversed(self.layers)) or "-"
        return "%s in %s" % (self.probe.name, wr)

    def render(self, fill, key):
        """The script, with `fill` in place of each slot, writing to $OUT/key."""
        t = self.probe.text.replace(S, fill)
        for name, variant, conf in self.layers:
            if conf:
                t = conf + "\n" + t
            t = WRAP[name][1](t, variant)
        lines = [': > "$OUT/%s.pre"' % key, 'exec >"$OUT/%s"' % key]
        lines += self.top
        lines.append(t)
        lines += self.post
        return "\n".join(lines) + "\n"


def has_heredoc(text):
    """Whether text holds a here-document (<<, not <<<)."""
    return "<<" in text.replace("<<<", "")


def gen_case(rng, idx, bash, explore=False):
    """A random case; bash: it may use bash-only syntax (and runs only there);
    explore: the probes of EXPLORE too."""
    probe = rng.choice([p for p in PROBES + (EXPLORE if explore else []) if bash or not p.bash])
    confs = [c for c, b in CONFUSERS if bash or not b]
    # Inside wrappers, no confuser holds a here-document: bash 5.2 misreads a
    # $( ) that goes on after one (o=$(: <<E, x, E, i=$(echo in)) prints nothing).
    inner = [c for c in confs if not has_heredoc(c)]
    names = []
    heredoc = probe.heredoc
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 2, 3])):
        backq = any(n.startswith("backq") for n in names)
        ws = [w for w in WRAPPERS if (bash or not w[2]) and (w[3] or not heredoc)
              and not (backq and w[0].startswith("backq"))]
        w = rng.choice(ws)
        names.append(w[0])
        heredoc = heredoc or w[0] == "heredoc-subst"
    layers = []
    for i, n in enumerate(names):
        # nothing but the probe inside backquotes: bash scans "`...`" for $( and
        # quotes in ways dash does not, and such scripts fail under the oracle too
        inside_backq = any(m.startswith("backq") for m in names[i:])
        conf = rng.choice(inner) if rng.random() < 0.3 and not inside_backq else None
        layers.append((n, i + 1, conf))
    top = [rng.choice(confs) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
    post = [rng.choice(confs)] if rng.random() < 0.2 else []
    return Case(idx, probe, layers, top, post)


def generate(seed, n_cases, explore=False):
    """The values and, per value, its cases; at least n_cases in all."""
    rng = random.Random(seed)
    values = list(FIXED_VALUES)
    n_random = max(4, n_cases // 150)
    for i in range(n_random):
        values.append(("random%d" % i, random_value(rng)))
    per = -(-n_cases // len(values))
    plan = []
    idx = 0
    for name, v in values:
        cases = []
        for _ in range(per):
            cases.append(gen_case(rng, idx, rng.random() < 0.3, explore))
            idx += 1
        plan.append((name, v, cases))
    return plan


# ---------------------------------------------------------------------------
# YAML


def yq(s):
    """s as a YAML double-quoted scalar (line breaks and non-printables escaped)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0:
            out.append("\\x%02x" % o)
        elif o in (0x2028, 0x2029, 0xFEFF) or 0xD800 <= o < 0xE000 or o in (0xFFFE, 0xFFFF):
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Env:
    """Paths and settings of one side (local or remote) of a run."""

    def __init__(self, args, side, root, globdir):
        self.args, self.side, self.root, self.globdir = args, side, root, globdir
        self.remote = side == "remote"


def is_bytes(value):
    """Whether value holds bytes that are not UTF-8 (as surrogateescape
    characters): YAML cannot carry it, so it comes from a step's output."""
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def value_expr(value):
    """The expression that gives the value in a plan."""
    return "steps.src.stdout" if is_bytes(value) else "vars.v"


def src_step(value):
    """The plan lines of step src, which prints a value YAML cannot carry
    (its captured stdout loses the newline echo adds)."""
    esc = "".join(chr(b) if (b < 128 and chr(b).isalnum()) or chr(b) in " ,.:/_-" else "\\%03o" % b
                  for b in value.encode("utf-8", "surrogateescape"))
    return ["  - id: src", "    run: " + yq("printf '%s'; echo" % esc)]


def plan_text(env, value, steps, slot_expr, out_dir):
    """A plan holding `steps` [(step id, shell, script)]; returns (text, {line: step id})."""
    lines = ["# written by tests/interp/gen.py", "name: gen", "vars:",
             "  v: " + (yq("see step src") if is_bytes(value) else yq(value))]
    lines.append("env: {OUT: %s, GEN_V: %s, LC_ALL: C}" % (yq(out_dir), yq("${{ %s }}" % value_expr(value))))
    lines.append("defaults: {cwd: %s, timeout: 30s}" % yq(env.globdir))
    if env.remote:
        lines.append("ssh: {known_hosts_file: %s, max_sessions: 4}" % yq(env.args.known_hosts))
    lines.append("steps:")
    if is_bytes(value):
        lines += src_step(value)
    lines.append("  - id: p")
    lines.append("    mode: settle")
    lines.append("    parallel:")
    where = {}
    hosts = ["h1", "h2", "h3"]
    for i, (sid, shell, script) in enumerate(steps):
        on = ", on: %s" % hosts[i % 3] if env.remote else ""
        where[len(lines) + 1] = sid
        lines.append("      - {id: %s, shell: %s%s, continue_on_error: true, run: %s}" % (sid, shell, on, yq(script)))
    return "\n".join(lines) + "\n", where


# ---------------------------------------------------------------------------
# running


def fill_value(tmpl, canary):
    """The value of template tmpl, its canaries files named from prefix canary."""
    return tmpl.replace("@K@", canary + ".k.$BATON_STEP").replace("@C@", canary + ".plain")


def run_oracle(script, shell, value, out_dir, cwd):
    """Runs the oracle's script under shell with the value in GEN_V; returns
    its exit status (what it wrote is in out_dir)."""
    env = {b"PATH": os.environ.get("PATH", "/usr/bin:/bin").encode(), b"OUT": out_dir.encode(),
           b"GEN_V": value.encode("utf-8", "surrogateescape"), b"LC_ALL": b"C", b"HOME": cwd.encode()}
    try:
        r = subprocess.run([shell, "-c", script], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        code = r.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    return code


def read_result(out_dir, key):
    """(what case key wrote to $OUT/key or None, whether its script started)."""
    try:
        with open(os.path.join(out_dir, key), "rb") as f:
            out = f.read()
    except FileNotFoundError:
        out = None
    ran = os.path.exists(os.path.join(out_dir, key + ".pre"))
    return out, ran


def baton(env, argv, timeout):
    """Runs baton ARGV (with the inventory on the remote side): (status, stdout, stderr)."""
    cmd = [env.args.baton] + argv
    if env.remote:
        cmd += ["--inventory", env.args.inventory]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, cwd=env.root)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return "timeout", "", "baton did not end within %d s" % timeout


ERR_LINE = re.compile(r"^(.*?):(\d+):(\d+): error: (.*)$")


def load_errors(text, path):
    """{line: message} of the FILE:LINE:COL: error: lines about path; other lines."""
    errs, other = {}, []
    for line in text.splitlines():
        m = ERR_LINE.match(line)
        if m and m.group(1) == path:
            errs.setdefault(int(m.group(2)), []).append(m.group(4))
        elif line.strip():
            other.append(line)
    return errs, other


def read_events(path):
    """{step id: its last task.end event} from an events file."""
    ends = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("type") == "task.end":
                    step = e["task"].split("@")[0]
                    ends[step] = e
    except FileNotFoundError:
        pass
    return ends


class Result:
    """Counts, failures and refusal reasons of a run."""

    def __init__(self):
        self.counts = {}
        self.failures = []
        self.refusals = {}

    def count(self, k, n=1):
        self.counts[k] = self.counts.get(k, 0) + n


def exec_key(case, shell):
    """The step id and output file name of case under shell."""
    return "c%d%s" % (case.idx, shell[0])


def run_value(env, res, vname, vtmpl, cases, slot_expr):
    """Runs every case of one value on one side; records outcomes in res."""
    work = tempfile.mkdtemp(prefix="v-%s-" % re.sub(r"[^a-z0-9-]", "", vname)[:20], dir=env.root)
    out_dir = os.path.join(work, "out")
    ora_dir = os.path.join(work, "oracle")
    canary_dir = os.path.join(work, "canary")
    for d in (out_dir, ora_dir, canary_dir):
        os.mkdir(d)
        os.chmod(d, 0o1777)
    os.chmod(work, 0o755)
    value = fill_value(vtmpl, os.path.join(canary_dir, "c"))
    vclass = value_class(value)
    slot_expr = slot_expr.replace("vars.v", value_expr(value))
    fill = "${{ %s }}" % slot_expr
    execs = []  # (case, shell, key)
    for c in cases:
        for sh in c.shells():
            execs.append((c, sh, exec_key(c, sh)))
    # the oracle, where the case is expected to run
    jobs = []
    with ThreadPoolExecutor(max_workers=env.args.jobs) as pool:
        for c, sh, key in execs:
            if c.probe.ref != "none" and (c.expect() != ARITH or vclass != "text") and \
                    (c.expect() != NAME or NAME_RE.match(value)):
                script = c.render(REF[c.probe.ref], key)
                jobs.append((key, pool.submit(run_oracle, script, sh, value, ora_dir, env.globdir)))
    oracle = {}
    for key, fut in jobs:
        out, ran = read_result(ora_dir, key)
        oracle[key] = (fut.result(), out, ran)
    if os.listdir(canary_dir):
        res.failures.append(dict(kind="generator", what="the oracle created a canary: %s" % os.listdir(canary_dir),
                                 value=vname))
        return
    # baton check: which steps does it refuse at load time? (again without
    # them, in case it reports only some errors at a time)
    steps = [(key, sh, c.render(fill, key)) for c, sh, key in execs]
    plan_path = os.path.join(work, "plan.yaml")
    refused = {}
    for _ in range(5):
        left = [s for s in steps if s[0] not in refused]
        if not left:
            break
        text, where = plan_text(env, value, left, slot_expr, out_dir)
        with open(plan_path, "w", encoding="utf-8") as f:
            f.write(text)
        code, out, err = baton(env, ["check", "-q", plan_path], 120)
        if code == 0:
            break
        errs, other = load_errors(out + err, plan_path)
        if code != 2 or not errs:
            res.failures.append(dict(kind="harness", what="baton check exited %s: %s" % (code, (out + err)[-2000:]),
                                     value=vname, plan=text))
            return
        for line, msgs in errs.items():
            if line not in where:
                res.failures.append(dict(kind="harness", what="an error at line %d that is no step's: %s"
                                         % (line, msgs), value=vname, plan=text))
                return
            refused[where[line]] = msgs
    runnable = [s for s in steps if s[0] not in refused]
    ends = {}
    if runnable:
        text, _ = plan_text(env, value, runnable, slot_expr, out_dir)
        with open(plan_path, "w", encoding="utf-8") as f:
            f.write(text)
        ev = os.path.join(work, "events.jsonl")
        code, out, err = baton(env, ["run", plan_path, "--output", "quiet", "--events", ev], 600)
        if code not in (0, 1) or "the run stalled" in err:
            res.failures.append(dict(kind="harness", what="baton run exited %s: %s" % (code, (out + err)[-3000:]),
                                     value=vname, plan=text))
            return
        ends = read_events(ev)
    # a plan of only the refused steps must fail to load and run nothing
    if refused:
        rsteps = [s for s in steps if s[0] in refused]
        text, _ = plan_text(env, value, rsteps, slot_expr, out_dir)
        rpath = os.path.join(work, "refused.yaml")
        with open(rpath, "w", encoding="utf-8") as f:
            f.write(text)
        code, out, err = baton(env, ["run", rpath, "--output", "quiet"], 120)
        if code != 2:
            res.failures.append(dict(kind="refusal", what="baton run of a plan whose steps all fail to load "
                                     "exited %s, not 2" % code, value=vname, plan=text))
    canaries = sorted(os.listdir(canary_dir))
    by_step = {}
    for cn in canaries:
        m = re.match(r"c\.k\.p\.(c\d+[db])$", cn)
        by_step.setdefault(m.group(1) if m else None, []).append(cn)
    res.count("canaries", len(canaries))
    if None in by_step:
        # a canary that does not name its step: find the steps that make one
        scratch = os.path.join(work, "bisect")
        os.mkdir(scratch)
        os.chmod(scratch, 0o1777)
        for sid in bisect_canary(env, value, runnable, slot_expr, scratch, canary_dir, by_step[None]):
            by_step.setdefault(sid, []).append("%s (found by running the steps apart)" % by_step[None][0])
    first = len(res.failures)
    for c, sh, key in execs:
        judge(env, res, c, sh, key, value, vname, vclass, oracle.get(key), refused.get(key), ends.get("p." + key),
              read_result(out_dir, key), by_step.get(key), slot_expr)
    for f in res.failures[first:]:
        f["vtmpl"] = vtmpl
    if None in by_step and not any(b for k, b in by_step.items() if k is not None and
                                   any("found by running" in x for x in b)):
        res.failures.append(dict(kind="canary", what="canary files no step could be told from: %s" % by_step[None],
                                 value=vname, case=None))
    if not env.args.keep:
        shutil.rmtree(work, ignore_errors=True)


def bisect_canary(env, value, steps, slot_expr, out_dir, canary_dir, names, budget=None):
    """The ids of the steps that, run apart (halving the set), create one of
    the canary files `names`; at most 64 baton runs."""
    budget = budget if budget is not None else [64]
    if not steps or budget[0] <= 0:
        return []
    for n in os.listdir(canary_dir):
        os.unlink(os.path.join(canary_dir, n))
    text, _ = plan_text(env, value, steps, slot_expr, out_dir)
    path = os.path.join(out_dir, "bisect.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    budget[0] -= 1
    baton(env, ["run", path, "--output", "quiet"], 600)
    if not any(n in names for n in os.listdir(canary_dir)):
        return []
    if len(steps) == 1:
        return [steps[0][0]]
    half = len(steps) // 2
    return bisect_canary(env, value, steps[:half], slot_expr, out_dir, canary_dir, names, budget) + \
        bisect_canary(env, value, steps[half:], slot_expr, out_dir, canary_dir, names, budget)


def judge(env, res, c, sh, key, value, vname, vclass, oracle, refused, end, got, canaries, slot_expr):
    """Compares one execution with what the design and the oracle say."""
    side = env.side
    res.count("executed %s %s" % (sh, side))
    exp = c.expect()
    if exp == NAME:
        exp = RUN if NAME_RE.match(value) else "refuse_run"
    if exp == ARITH:
        exp = RUN if vclass == "int" else (MAY_REFUSE if vclass == "intish" else "refuse_run")
        if exp == RUN and c.unknowable():
            exp = MAY_REFUSE
    out, ran = got
    problems = []
    if canaries:
        problems.append("CANARY: the value ran as shell code (%s)" % ", ".join(canaries))
    if refused is not None:
        reason = "; ".join(refused)
        k = re.sub(r"\d+", "N", reason)[:100]
        res.refusals[k] = res.refusals.get(k, 0) + 1
        res.count("refused at load")
        if exp == RUN:
            problems.append("refused at load time, but the design says it runs: %s" % reason)
        elif exp == "refuse_run" and not c.unknowable():
            problems.append("refused at load time, but arithmetic with a non-integer must fail at run time: %s"
                            % reason)
        elif not re.search(c.probe.advice, reason) and not (exp == MAY_REFUSE and "env:" in reason):
            problems.append("the load error does not say /%s/: %s" % (c.probe.advice, reason))
        if ran or out is not None:
            problems.append("refused at load time, but the script ran")
    elif end is None:
        problems.append("no task.end event for the step")
    else:
        status, code = end.get("status"), end.get("exit_code")
        if not ran and status == "failed" and code is None:
            reason = end.get("reason") or ""
            res.count("refused at run time")
            k = "run time: " + re.sub(r"\d+", "N", reason)[:90]
            res.refusals[k] = res.refusals.get(k, 0) + 1
            if exp == RUN:
                problems.append("failed at run time without running, but the design says it runs: %s" % reason)
            elif exp == REFUSE_LOAD:
                problems.append("must be refused at load time (baton check), was refused at run time: %s" % reason)
            elif not reason:
                problems.append("refused at run time with no reason")
            if out is not None:
                problems.append("refused, but the probe wrote output")
        elif not ran:
            problems.append("the script did not start (status %s, exit %s, reason %s)"
                            % (status, code, end.get("reason")))
        else:
            res.count("ran")
            if exp in (REFUSE_LOAD, "refuse_run"):
                problems.append("ran, but must be refused (%s)" % exp)
            if oracle is None:
                if exp not in (REFUSE_LOAD, "refuse_run"):
                    problems.append("no oracle for a case that ran")
            else:
                ocode, oout, oran = oracle
                if not oran or oout is None:
                    problems.append("generator: the oracle did not write its output (exit %s)" % ocode)
                elif out != oout:
                    problems.append("MISMATCH: the command received other bytes than the oracle")
                elif code != ocode:
                    problems.append("exit status %s, the oracle's %s" % (code, ocode))
                else:
                    res.count("exact matches")
    if problems:
        res.failures.append(dict(kind="canary" if canaries else "mismatch", problems=problems, case=c, shell=sh,
                                 side=side, value=vname, value_text=value, got=out, oracle=oracle,
                                 slot=slot_expr, end=end))
    elif exp == MAY_REFUSE and (refused is not None or not ran):
        res.count("refused where the design allows it")


# ---------------------------------------------------------------------------
# minimizing a failure


def failure_sig(f):
    """The kind of a failure, to tell whether a smaller case still shows it."""
    return f["kind"], f["problems"][0].split(":")[0][:30]


def still_fails(env, f, case, vname, vtmpl):
    """Runs case alone (on f's shell and side) with value vtmpl; its failure
    of the same kind as f, or None."""
    case.only = [f["shell"]]
    res = Result()
    run_value(env, res, vname, vtmpl, [case], f["slot"])
    for g in res.failures:
        if g.get("case") is case and failure_sig(g) == failure_sig(f):
            return g
    return None


def smaller_cases(c):
    """Cases like c with one part less: a preamble, a confuser, a wrapper."""
    for i in range(len(c.top)):
        yield Case(c.idx, c.probe, c.layers, c.top[:i] + c.top[i + 1:], c.post)
    if c.post:
        yield Case(c.idx, c.probe, c.layers, c.top, [])
    for i, (n, v, conf) in enumerate(c.layers):
        if conf:
            yield Case(c.idx, c.probe, c.layers[:i] + [(n, v, None)] + c.layers[i + 1:], c.top, c.post)
    for i in range(len(c.layers)):
        yield Case(c.idx, c.probe, c.layers[:i] + c.layers[i + 1:], c.top, c.post)


def minimize(env, f, budget=40):
    """f, with its case and value made as small as still shows the failure
    (each try is one run of baton; at most `budget` of them)."""
    best = f
    progress = True
    while progress and budget > 0:
        progress = False
        for c in smaller_cases(best["case"]):
            if budget <= 0:
                break
            budget -= 1
            g = still_fails(env, f, c, best["value"], best["vtmpl"])
            if g:
                best = g
                progress = True
                break
    # a shorter value, from the fixed ones
    for name, v in sorted(FIXED_VALUES, key=lambda x: len(x[1])):
        if budget <= 0 or len(v) >= len(best["vtmpl"]):
            break
        if f["kind"] == "canary" and "@K@" not in v and "@C@" not in v:
            continue
        budget -= 1
        c = best["case"]
        g = still_fails(env, f, Case(c.idx, c.probe, c.layers, c.top, c.post), name, v)
        if g:
            best = g
            break
    best["minimized_from"] = f
    return best


# ---------------------------------------------------------------------------
# reports


def repro_plan(f, remote):
    """A plan file, ready to paste, that shows the failure f."""
    c, sh = f["case"], f["shell"]
    script = c.render("${{ %s }}" % f["slot"], "out")
    value = f["value_text"]
    d = "/tmp/gen-repro"
    value = re.sub(r"/[^ ]*/canary/c\.", d + "/PWNED.", value)
    lines = ["# tests/interp/gen.py: %s, value %s, shell %s, %s" % (c.describe(), f["value"], sh, f["side"])]
    if f.get("minimized_from"):
        m = f["minimized_from"]
        lines.append("# (minimized from case c%d: %s, value %s)" % (m["case"].idx, m["case"].describe(), m["value"]))
    for p in f["problems"]:
        lines.append("#   " + p.replace("\n", " ")[:300])
    def shown(b):
        return re.sub(r"/[^ '\\]*/canary/c\.", d + "/PWNED.", repr(b))[:400]
    if f.get("oracle"):
        lines.append("#   expected (oracle): %s" % shown(f["oracle"][1]))
    lines.append("#   got:               %s" % shown(f["got"]))
    lines.append("# mkdir -p %s/glob && touch %s/glob/a %s/glob/ab '%s/glob/x y' && chmod -R a+rwX %s" % (d, d, d, d, d))
    lines.append("# baton run THIS_FILE%s; cat %s/out; ls %s/PWNED*" % (" --inventory INV" if remote else "", d, d))
    lines.append("vars:")
    lines.append("  v: " + (yq("see step src") if is_bytes(value) else yq(value)))
    lines.append("env: {OUT: %s, GEN_V: %s, LC_ALL: C}" % (yq(d), yq("${{ %s }}" % value_expr(value))))
    lines.append("steps:")
    if is_bytes(value):
        lines += src_step(value)
    lines.append("  - shell: %s" % sh)
    lines.append("    cwd: %s/glob" % d)
    if remote:
        lines.append("    on: h1")
    lines.append("    run: " + yq(script))
    return "\n".join(lines) + "\n"


def report(res, args, seed, n_cases, elapsed, envs):
    """Prints the counts and each kind of failure (minimized, as a plan file)."""
    os.makedirs(args.report_dir, exist_ok=True)
    print("gen.py: seed %d, %d cases generated" % (seed, n_cases))
    for k in sorted(res.counts):
        print("  %-40s %d" % (k, res.counts[k]))
    if res.refusals:
        print("  refusals by reason:")
        for r, n in sorted(res.refusals.items(), key=lambda x: -x[1])[:25]:
            print("    %5d  %s" % (n, r))
    fails = res.failures
    kinds = {}
    for f in fails:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    print("  failures: %d %s" % (len(fails), json.dumps(kinds, sort_keys=True) if kinds else ""))
    groups = {}
    for f in fails:
        if f.get("case") is None:
            print("  FAIL (%s, value %s): %s" % (f["kind"], f.get("value"), f.get("what")))
            if f.get("plan"):
                path = os.path.join(args.report_dir, "harness-%d.yaml" % len(groups))
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(f["plan"])
                print("    plan: %s" % path)
            continue
        g = (f["kind"], f["case"].probe.name, f["problems"][0][:40])
        groups.setdefault(g, []).append(f)
    shown = 0
    for i, (g, fs) in enumerate(sorted(groups.items(), key=lambda x: (x[0][0] != "canary", -len(x[1])))):
        f = fs[0]
        if i < args.minimize:
            f = minimize(envs[f["side"]], f)
        c = f["case"]
        path = os.path.join(args.report_dir, "fail-%d-c%d-%s-%s.yaml" % (seed, c.idx, f["shell"], f["side"]))
        text = repro_plan(f, f["side"] == "remote")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        print("  FAIL x%d %s: %s (e.g. value %s, %s, %s) -> %s" % (len(fs), g[0], c.describe(), f["value"],
                                                                    f["shell"], f["side"], path))
        if shown < args.show:
            print("    " + text.replace("\n", "\n    "))
            shown += 1
    print("gen.py: %d cases, %s; canaries %d; %d failures; %.1f s" % (
        n_cases, ", ".join("%s %d" % (k, v) for k, v in sorted(res.counts.items()) if k.startswith("executed")),
        res.counts.get("canaries", 0), len(fails), elapsed))


def preflight(env):
    """A plan of one trivial step per shell (and host) writes its files where
    the cases will: else the harness, not baton, is at fault. Returns an error
    message or None."""
    d = tempfile.mkdtemp(prefix="preflight-", dir=env.root)
    os.chmod(d, 0o1777)
    steps = [("pf%d%s" % (i, sh[0]), sh, ': > "$OUT/pf%d%s.pre"; printf ok >"$OUT/pf%d%s"' % (i, sh[0], i, sh[0]))
             for i in range(3) for sh in ("dash", "bash")]
    text, _ = plan_text(env, "x", steps, "vars.v", d)
    path = os.path.join(d, "plan.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    code, out, err = baton(env, ["run", path, "--output", "plain"], 120)
    missing = [s[0] for s in steps if read_result(d, s[0]) != (b"ok", True)]
    shutil.rmtree(d, ignore_errors=True)
    if code != 0 or missing:
        return "a trivial plan on the %s side did not run (exit %s; no output from %s):\n%s" % (
            env.side, code, ", ".join(missing), (out + err)[-3000:])
    return None


def selfcheck(args, plan):
    """The generator's scripts are valid shell: with a plain value, the oracle
    of every case that should run exits 0 and writes its output. Returns the
    number of cases that do not."""
    work = tempfile.mkdtemp(prefix="baton-gen-self-")
    jobs, bad = [], 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for _, _, cases in plan:
            for c in cases:
                if c.probe.ref == "none":
                    continue
                for sh in c.shells():
                    key = exec_key(c, sh)
                    script = c.render(REF[c.probe.ref], key)
                    jobs.append((c, sh, key, script, pool.submit(run_oracle, script, sh, "42", work, work)))
    for c, sh, key, script, fut in jobs:
        code = fut.result()
        out, _ = read_result(work, key)
        if code != 0 or not out:
            bad += 1
            if bad <= args.show:
                print("selfcheck: %s under %s: exit %s, output %r\n%s" % (c.describe(), sh, code, out, script))
    shutil.rmtree(work, ignore_errors=True)
    print("selfcheck: %d oracle scripts, %d invalid" % (len(jobs), bad))
    return bad


def main():
    """Generates, runs and judges the cases; exit status 0, 1 (failures) or 2."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baton", default=os.environ.get("BATON", "build/baton"))
    ap.add_argument("--seed", type=int, default=None, help="default: a new random seed (printed)")
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--side", choices=["local", "remote", "both"], default="local")
    ap.add_argument("--inventory", help="for --side remote: hosts h1..h3 (tests/ssh/harness.sh)")
    ap.add_argument("--known-hosts", help="for --side remote")
    ap.add_argument("--slot", default="vars.v", help="the expression in each slot (raw(vars.v) for the self-test)")
    ap.add_argument("--work", default=None, help="scratch directory (default: a new one under /tmp)")
    ap.add_argument("--report-dir", default="build/interp-gen")
    ap.add_argument("--jobs", type=int, default=2, help="oracle processes at once")
    ap.add_argument("--show", type=int, default=5, help="failing plans printed in full")
    ap.add_argument("--minimize", type=int, default=10,
                    help="failures made minimal (first of each kind; up to 40 baton runs each)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch files")
    ap.add_argument("--list", action="store_true", help="print the generated cases and exit")
    ap.add_argument("--explore", action="store_true",
                    help="also the probes of EXPLORE (places baton did not refuse when they were found)")
    ap.add_argument("--selfcheck", action="store_true",
                    help="only check that every generated oracle script runs (value 42) and exit")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    plan = generate(seed, args.cases, args.explore)
    n_cases = sum(len(cs) for _, _, cs in plan)
    if args.list:
        for vname, _, cases in plan:
            for c in cases:
                print("=== c%d value %s (%s) %s" % (c.idx, vname, ",".join(c.shells()), c.describe()))
                print(c.render("${{ vars.v }}", "c%d" % c.idx), end="")
        return 0
    if args.selfcheck:
        return 1 if selfcheck(args, plan) else 0
    sides = ["local", "remote"] if args.side == "both" else [args.side]
    if "remote" in sides and not (args.inventory and args.known_hosts):
        print("gen.py: --side remote needs --inventory and --known-hosts", file=sys.stderr)
        return 2
    args.baton = os.path.abspath(args.baton)
    args.report_dir = os.path.abspath(args.report_dir)
    print("gen.py: seed %d (replay: --seed %d --cases %d%s)" % (seed, seed, args.cases,
                                                             " --explore" if args.explore else ""), flush=True)
    root = args.work or tempfile.mkdtemp(prefix="baton-gen-")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    globdir = os.path.join(root, "glob")
    os.makedirs(globdir, exist_ok=True)
    os.chmod(globdir, 0o755)
    for n in ("a", "ab", "x y"):
        open(os.path.join(globdir, n), "w").close()
    for f in os.listdir(args.report_dir) if os.path.isdir(args.report_dir) else []:
        if re.match(r"(fail|harness)-.*\.yaml$", f):
            os.unlink(os.path.join(args.report_dir, f))
    res = Result()
    t0 = time.time()
    envs = {}
    for side in sides:
        env = envs[side] = Env(args, side, root, globdir)
        why = preflight(env)
        if why:
            print("gen.py: " + why)
            return 2
        for vname, v, cases in plan:
            t1 = time.time()
            run_value(env, res, vname, v, cases, args.slot)
            if time.time() - t1 > 10:
                print("gen.py: value %s took %.1f s on the %s side" % (vname, time.time() - t1, side), flush=True)
    report(res, args, seed, n_cases, time.time() - t0, envs)
    if not args.keep and not args.work:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
