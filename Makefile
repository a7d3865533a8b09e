# baton — a non-recursive Makefile. `make demo` and `make check` first install
# any missing Debian packages (`make deps`), then build and run. `make mutants`
# (not part of check: it is slow) breaks the engine on purpose, one patch of
# tests/mutants/ at a time, and fails if the suite stays green on one.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
CLANG ?= clang

# Debian packages the build needs (`make demo` installs only these), then
# those the tests and the benchmarks add (`make check` installs them all).
BUILD_DEBS := gcc make pkg-config libyaml-dev libuv1-dev libjansson-dev libssh2-1-dev libsqlite3-dev nettle-dev
DEBS := $(BUILD_DEBS) libcriterion-dev bats clang libclang-rt-14-dev valgrind parallel python3 \
	procps bsdutils openssh-server openssh-client pssh ansible-core patch \
	tmux libxml2-utils chromium zsh fish

# libssh2 and nettle are only compiled against: src/exec/ssh.c loads libssh2
# (and libcrypto with it) when a plan first needs SSH, so local runs do not
# carry it; src/store/db.c loads nettle for the sha256 of a run's files as
# the run begins, and lets it go.
PKGS := yaml-0.1 libuv jansson sqlite3
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) libssh2 nettle)
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

CFLAGS ?= -O2 -g
WARN := -std=c11 -Wall -Wextra -Wpedantic -Werror -D_GNU_SOURCE
ALL_CFLAGS = $(WARN) $(CFLAGS) -Isrc -Icmd -Ibuild/gen $(PKG_CFLAGS) -MMD -MP
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRC := $(sort $(wildcard src/*/*.c))
CMD := $(sort $(wildcard cmd/*.c))
UNIT := $(sort $(wildcard tests/unit/*.c))

OBJ := $(SRC:%.c=build/obj/%.o)
CMD_OBJ := $(CMD:%.c=build/obj/%.o)
ASAN_OBJ := $(SRC:%.c=build/asan/%.o)
ASAN_CMD_OBJ := $(CMD:%.c=build/asan/%.o)

.PHONY: all deps deps-build demo check test unit unit-asan e2e e2e-asan fuzz-regress valgrind install bench fuzz fuzz-interp mutants clean

all: build/baton

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c $< -o $@

# The HTML report's page (src/report/page.css and page.js) as C string
# literals, one per line (src/report/embed.awk), for src/report/html.c.
build/gen/report_page.h: src/report/embed.awk src/report/page.css src/report/page.js
	@mkdir -p $(dir $@)
	awk -f src/report/embed.awk src/report/page.css src/report/page.js > $@.tmp && mv $@.tmp $@

build/obj/src/report/html.o build/asan/src/report/html.o: build/gen/report_page.h

build/baton: $(OBJ) $(CMD_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lm

build/baton-asan: $(ASAN_OBJ) $(ASAN_CMD_OBJ)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(PKG_LIBS) -lm

build/unit-tests: $(OBJ) $(UNIT:%.c=build/obj/%.o)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion -lm

build/unit-tests-asan: $(ASAN_OBJ) $(UNIT:%.c=build/asan/%.o)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(PKG_LIBS) -lcriterion -lm

# Test helper: runs a command and reports its peak RSS (maxrss_kib=N on stderr).
build/maxrss: tests/bench/maxrss.c
	@mkdir -p build
	$(CC) $(WARN) -O2 -o $@ $<

# Test helper: the HTML report of a report data document (JSON file), for
# the browser tests (tests/e2e/report_html.bats).
build/report-html: tests/report/write_html.c $(OBJ)
	$(CC) $(WARN) $(CFLAGS) -Isrc $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# An LD_PRELOAD library that makes chosen calls fail, for the fault tests
# (tests/fault/inject.c; BATON_FAULT says which).
build/fault.so: tests/fault/inject.c
	@mkdir -p build
	$(CC) $(WARN) -O2 -shared -fPIC $(shell pkg-config --cflags libuv) -o $@ $< -ldl

# The loader's fuzz target, linked with a plain driver that replays files
# (regression corpus) or with libFuzzer (`make fuzz`).
build/fuzz-replay: tests/fuzz/fuzz_plan.c tests/fuzz/replay.c $(ASAN_OBJ)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $^ $(PKG_LIBS) -lm

build/fuzz-plan: tests/fuzz/fuzz_plan.c $(SRC) | build/gen/report_page.h
	@mkdir -p build
	$(CLANG) $(WARN) -g -O1 -Isrc -Ibuild/gen $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS) -lm

# Installs the Debian packages that are missing (as root, with apt-get).
define install_debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "$@: all present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "$@: missing Debian packages:$$missing"; \
		echo "$@: run 'make $@' as root, or: sudo apt-get install$$missing"; exit 1; fi; \
	echo "$@: installing$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing
endef

deps:
	$(call install_debs,$(DEBS))

deps-build:
	$(call install_debs,$(BUILD_DEBS))

demo: deps-build
	$(MAKE) --no-print-directory all
	./build/baton run plans/demo.yaml

check: deps
	$(MAKE) --no-print-directory test

test: unit unit-asan e2e fuzz-regress valgrind

unit: build/unit-tests
	./build/unit-tests --jobs 2

unit-asan: build/unit-tests-asan
	ASAN_OPTIONS=detect_leaks=1 ./build/unit-tests-asan --jobs 2

e2e: build/baton build/baton-asan build/maxrss build/fault.so build/report-html
	BATON=$(CURDIR)/build/baton BATON_ASAN=$(CURDIR)/build/baton-asan MAXRSS=$(CURDIR)/build/maxrss \
		FAULT_SO=$(CURDIR)/build/fault.so REPORT_HTML=$(CURDIR)/build/report-html sh tests/e2e/run.sh --timing tests/e2e

fuzz-regress: build/fuzz-replay
	./build/fuzz-replay tests/fuzz/corpus tests/fuzz/regressions

valgrind: build/baton
	BATON=$(CURDIR)/build/baton sh tests/valgrind.sh

bench: build/baton
	BATON=$(CURDIR)/build/baton bash tests/bench/run.sh

# fuzz-interp: FUZZ_CASES (default 10000) generated scripts, a new seed (or
# FUZZ_SEED), proving that no ${{ }} value runs as shell code
# (tests/interp/gen.py); failing cases land in build/interp-fuzz as plans.
# fuzz runs it, then fuzzes the plan loader for FUZZ_SECONDS (default 600;
# findings in build/fuzz-findings), and fails if either found something.
FUZZ_SECONDS ?= 600
FUZZ_CASES ?= 10000
fuzz-interp: build/baton
	BATON=$(CURDIR)/build/baton FUZZ_CASES=$(FUZZ_CASES) sh tests/interp/fuzz.sh

fuzz: build/baton build/fuzz-plan
	@rm -f build/fuzz-interp.failed
	$(MAKE) --no-print-directory fuzz-interp || touch build/fuzz-interp.failed
	@mkdir -p build/fuzz-corpus build/fuzz-findings
	cp -n tests/fuzz/corpus/* build/fuzz-corpus/ 2>/dev/null || true
	./build/fuzz-plan -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=build/fuzz-findings/ -dict=tests/fuzz/plan.dict build/fuzz-corpus
	@if [ -e build/fuzz-interp.failed ]; then echo "fuzz: fuzz-interp failed (build/interp-fuzz)"; exit 1; fi

# mutants: each tests/mutants/NAME.patch applied to a scratch copy of the
# tree (build/mutants/NAME), built, and run against its Killed-by tests, then
# the unit and e2e suites, up to the first failure; fails if one survives or
# no longer applies. MUTANTS="a b" picks some; MUTANT_TIMEOUT (seconds, 1200)
# bounds each. See tests/mutants/run.sh.
mutants: deps
	MUTANTS="$(MUTANTS)" MUTANT_TIMEOUT="$(MUTANT_TIMEOUT)" bash tests/mutants/run.sh

install: build/baton
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 build/baton $(DESTDIR)$(PREFIX)/bin/baton
	install -m 644 man/baton.1 $(DESTDIR)$(PREFIX)/share/man/man1/baton.1
	install -m 644 man/baton-plan.5 $(DESTDIR)$(PREFIX)/share/man/man5/baton-plan.5
	install -m 644 man/baton-events.7 $(DESTDIR)$(PREFIX)/share/man/man7/baton-events.7
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	./build/baton completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/baton
	./build/baton completion zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_baton
	./build/baton completion fish >$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/baton.fish
	chmod 644 $(DESTDIR)$(PREFIX)/share/bash-completion/completions/baton \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_baton $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/baton.fish

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(ASAN_CMD_OBJ:.o=.d) \
	$(UNIT:%.c=build/obj/%.d) $(UNIT:%.c=build/asan/%.d)
