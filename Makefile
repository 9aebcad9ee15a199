# paved: build, test, bench, install. See README.md.
# Each variant builds under build/<variant>/ so flags never mix; build/paved is the
# release binary. `make test` and `make run` install missing Debian packages first.

CC       ?= cc
LUA_PC   ?= lua5.4
PKGS      = $(LUA_PC) libcjson yaml-0.1 libpcre2-8 sqlite3 libcrypto libmicrohttpd libcurl gnutls
PREFIX   ?= /usr/local
DESTDIR  ?=
V        ?= 0
T        ?=

# -Wmissing-prototypes: a function without a prototype in a header must be static.
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wwrite-strings -Wvla -Wformat=2 -Wimplicit-fallthrough -Wundef -Wcast-qual -fno-common

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmimalloc
INCLUDES   = -Iserver/base -Ilua -Iaudit -Iwebhooks -Iserver -I$(GEN)
BASE_FLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(INCLUDES) $(PKG_CFLAGS) -MMD -MP

VARIANT ?= release
ifeq ($(VARIANT),release)
  VFLAGS = -O2 -g
  VLDFLAGS =
else ifeq ($(VARIANT),asan)
  VFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  VLDFLAGS = -fsanitize=address,undefined
else ifeq ($(VARIANT),debug)
  VFLAGS = -O0 -g
  VLDFLAGS =
else
  $(error unknown VARIANT $(VARIANT))
endif

B   = build/$(VARIANT)
GEN = build/gen

ifeq ($(V),1)
  Q =
else
  Q = @
endif

# Every .c of a module directory is part of the library; server/main.c is the entry.
BASE_SRC = $(sort $(wildcard server/base/*.c))
LUA_SRC  = $(sort $(wildcard lua/*.c))
AUDIT_SRC = $(sort $(wildcard audit/*.c))
WEBHOOK_SRC = $(sort $(wildcard webhooks/*.c))
APP_SRC  = $(filter-out server/main.c,$(sort $(wildcard server/*.c)))
MAIN_SRC = server/main.c
LIB_SRC  = $(BASE_SRC) $(LUA_SRC) $(AUDIT_SRC) $(WEBHOOK_SRC) $(APP_SRC)

EMBED_FILES = $(sort $(wildcard lua/*.lua)) $(sort $(wildcard policies/*.lua)) policies/default.yaml

LIB_OBJ  = $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/embedded.o
MAIN_OBJ = $(MAIN_SRC:%.c=$(B)/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_BIN = $(B)/tests/bench_engine

.PHONY: all paved deps deps-test deps-dev test test-only run demo asan check bench install clean valgrind

all: build/paved

# The release binary is build/paved; other variants link build/<variant>/paved.
build/paved: $(B)/paved
ifeq ($(VARIANT),release)
	$(Q)cp $< $@.tmp && mv $@.tmp $@
endif

$(B)/paved: $(MAIN_OBJ) $(LIB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(VLDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# paved-test: the same program with the test clock (server/base/clock.h) compiled in,
# for the expiry and reminder tests. Never installed.
TESTCLOCK_OBJ = $(B)/server/base/clock-testclock.o
$(B)/paved-test: $(MAIN_OBJ) $(filter-out $(B)/server/base/clock.o,$(LIB_OBJ)) $(TESTCLOCK_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(VLDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(TESTCLOCK_OBJ): server/base/clock.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_FLAGS) $(VFLAGS) -DPV_TEST_CLOCK -c -o $@ $<

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_FLAGS) $(VFLAGS) -c -o $@ $<

$(B)/gen/embedded.o: $(GEN)/embedded.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_FLAGS) $(VFLAGS) -c -o $@ $<

$(GEN)/embedded.c: build/embed $(EMBED_FILES)
	@mkdir -p $(GEN)
	@echo "  EMBED   $(words $(EMBED_FILES)) files"
	$(Q)build/embed $@ $(EMBED_FILES)

build/embed: tools/embed.c
	@mkdir -p build
	$(Q)$(CC) -O2 -o $@ $<

$(B)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_FLAGS) -Itests/unit $(VFLAGS) $(VLDFLAGS) -o $@ $< $(LIB_OBJ) $(PKG_LIBS) -lm

$(B)/tests/bench_engine: tests/bench/bench_engine.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_FLAGS) $(VFLAGS) -o $@ $< $(LIB_OBJ) $(PKG_LIBS) -lm

deps:
	@sh tools/deps.sh build
deps-test:
	@sh tools/deps.sh test
deps-dev:
	@sh tools/deps.sh dev

# Installs what is missing, builds, then runs unit, policy, CLI and corpus tests.
test: deps-test
	@$(MAKE) --no-print-directory build/paved test-only VARIANT=$(VARIANT)

test-only: $(B)/paved $(B)/paved-test $(UNIT_BIN)
	@sh tests/run.sh $(B) "$(T)"

asan: deps-test
	@$(MAKE) --no-print-directory test-only VARIANT=asan

valgrind: deps-test
	@$(MAKE) --no-print-directory $(B)/paved $(B)/paved-test $(UNIT_BIN)
	@PAVED_VALGRIND=1 sh tests/run.sh $(B) "$(T)"

# `make run`: development certificates under var/, then paved serve on
# https://127.0.0.1:8443 with the shipped bundle and var/paved.db.
run: deps
	@$(MAKE) --no-print-directory build/paved
	@sh tools/run.sh

# The gate on the sample manifests, without a server.
demo: build/paved
	@sh examples/demo.sh build/paved

check: deps-dev
	@sh tools/check.sh

# Engine and CLI (docs/BENCHMARKS.md), then the server against nginx under wrk
# (docs/BENCHMARKS-server.md).
bench: deps-test
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory build/paved $(BENCH_BIN)
	@sh tests/bench/run.sh $(B)
	@sh tests/bench/server.sh $(B)

install: build/paved
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/paved/policies
	install -m 0755 build/paved $(DESTDIR)$(PREFIX)/bin/paved
	install -m 0644 policies/*.lua policies/default.yaml $(DESTDIR)$(PREFIX)/share/paved/policies/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 docs/paved.1 $(DESTDIR)$(PREFIX)/share/man/man1/paved.1

clean:
	rm -rf build

# `make fuzz`: the libFuzzer targets tests/fuzz/fuzz_<target>.c, FUZZ_SECONDS each, on a
# working corpus under build/fuzz/corpus/ seeded from tests/fuzz/<target>/ (the crash-*
# inputs saved there are replayed first). The library is compiled again with clang under
# build/fuzz/ (fuzzer-no-link coverage plus ASan and UBSan), so its flags never mix with a
# VARIANT's; main.c is not linked, nor mimalloc (ASan must own malloc).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_B        = build/fuzz
FUZZ_FLAGS    = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=all
FUZZ_SRC      = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS  = $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN      = $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)
FUZZ_LIB_OBJ  = $(LIB_SRC:%.c=$(FUZZ_B)/%.o) $(FUZZ_B)/gen/embedded.o
FUZZ_LIBS     = $(filter-out -lmimalloc,$(PKG_LIBS))

.PHONY: fuzz fuzz-build
fuzz: deps-test
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz: $(FUZZ_CC) not found:" \
	    "apt-get install clang (and libclang-rt-14-dev if -fsanitize=fuzzer does not link)"; exit 1; }
	@$(MAKE) --no-print-directory fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BIN)

# Named here, not only in the pattern rule, so make keeps them (they are not intermediate).
$(FUZZ_BIN): $(FUZZ_LIB_OBJ)

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $<"
	$(Q)$(FUZZ_CC) $(BASE_FLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) \
	    $(FUZZ_LIBS) -lm

$(FUZZ_B)/gen/embedded.o: $(GEN)/embedded.c
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(BASE_FLAGS) $(FUZZ_FLAGS) -c -o $@ $<

$(FUZZ_B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	$(Q)$(FUZZ_CC) $(BASE_FLAGS) $(FUZZ_FLAGS) -c -o $@ $<

-include $(shell find build -name '*.d' 2>/dev/null)
