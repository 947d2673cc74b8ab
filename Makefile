# orders-cdc: orders-api (HTTP -> Postgres outbox) and cdc-relay (pgoutput -> Kafka).
# GNU make, pkg-config, no autotools. `make help` lists the targets.

CC       ?= cc
PKG_CONFIG ?= pkg-config
PKGS     := libpq rdkafka jansson libmicrohttpd
# The Debian/Ubuntu package that brings each pkg-config module.
PKG_DEV  := libpq:libpq-dev rdkafka:librdkafka-dev jansson:libjansson-dev \
            libmicrohttpd:libmicrohttpd-dev
BUILD    ?= build
BIN      ?= bin
SAN      ?=
# Warnings are errors in the repository's own builds only: `make test`,
# `make asan` and CI (.ci/run exports WERROR=1) pass WERROR=1; a plain `make`
# (a user's or a packager's build, with whatever compiler is newer) warns
# and goes on. docs/deployment.md, "Building".
WERROR   ?= 0

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wundef -Wimplicit-fallthrough -Wpointer-arith
ifeq ($(WERROR),1)
WARN     += -Werror
endif
CSTD     := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT      ?= -O2 -g
ifeq ($(SAN),1)
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CFLAGS   += $(CSTD) $(OPT) $(WARN) -I. -Icommon $(PKG_CFLAGS) -MMD -MP
LDFLAGS  += $(OPT)
LDLIBS   += $(PKG_LIBS) -lpthread

COMMON_SRC := $(wildcard common/*.c)
CDC_SRC    := $(filter-out cdc/main.c,$(wildcard cdc/*.c))
API_SRC    := $(filter-out api/main.c,$(wildcard api/*.c))
SUPPORT_SRC:= $(wildcard tests/support/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
MIGRATIONS := $(sort $(wildcard sql/[0-9]*.sql))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIBCOMMON := $(BUILD)/libcommon.a
LIBCDC    := $(BUILD)/libcdc.a
LIBAPI    := $(BUILD)/libapi.a
LIBTEST   := $(BUILD)/libtestsupport.a
GEN_MIGR  := $(BUILD)/gen/migrations.c
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TEST_LIBS := $(LIBTEST) $(LIBCDC) $(LIBAPI) $(LIBCOMMON)
LIB_OBJS  := $(call obj,$(COMMON_SRC) $(CDC_SRC) $(API_SRC) $(SUPPORT_SRC)) $(BUILD)/gen/migrations.o

.PHONY: all clean test test-unit test-integration test-faults run fmt format format-check lint \
        asan fuzz deps help valgrind docs-images install uninstall man check-libs FORCE \
        fresh-check compose-images compose-test
.DEFAULT_GOAL := all

all: $(BIN)/orders-api $(BIN)/cdc-relay

help:
	@echo "make              build bin/orders-api and bin/cdc-relay (warnings do not stop it;"
	@echo "                  WERROR=1 makes them errors, as make test, make asan and CI do)"
	@echo "make install      binaries, systemd units, man pages, docs, sample config under"
	@echo "                  PREFIX (/usr/local) and SYSCONFDIR (/etc), staged in DESTDIR"
	@echo "make uninstall    remove what make install put there (not /etc/orders-cdc/*.env)"
	@echo "make test         unit + integration tests (installs what is missing; ASan+UBSan builds;"
	@echo "                  PostgreSQL 15 and 18 all tests, 16 and 17 a subset; PG_VERSION=N: N only)"
	@echo "make test-unit    unit tests only (no servers; CHECK_FILTER=name, UNIT_TAP=file)"
	@echo "make test-faults  fault suite under load, table of lost/duplicates (~10 min)"
	@echo "make run          Postgres + Kafka + api + relay on loopback; prints curl and kcat lines"
	@echo "make valgrind     memcheck of api and relay through an integration scenario"
	@echo "make bench        benchmarks against pg_recvlogical, Debezium, polling (not in make test;"
	@echo "                  BENCH_ARGS=--quick for a few minutes); writes docs/benchmarks.md"
	@echo "make fuzz         short libFuzzer runs of the pgoutput decoder and request parser"
	@echo "make fmt          apply clang-format;  make format-check  check it"
	@echo "make lint         cppcheck, clang-format check, module dependency rule"
	@echo "make deps         install build/test dependencies (apt, Kafka jars, PostgreSQL 16-18)"
	@echo "make fresh-check  both README commands in a bare Debian 12 container, on the committed"
	@echo "                  tree (Docker engine started if needed; ~16 min)"
	@echo "make compose-images  the compose stack's images, built here without a registry"
	@echo "make compose-test the offline compose stack: images, up, the integration suite inside"
	@echo "                  it, four container faults checked against Postgres, down -v (~16 min)"
	@echo "make docs-images  re-render docs/*.png from docs/*.dot (needs Graphviz)"
	@echo "make clean"

# Early and clear when a library's development files are missing: pkg-config's
# own message and the package to install (otherwise the build would die later
# on "libpq-fe.h: No such file or directory").
check-libs:
	@if ! command -v $(PKG_CONFIG) >/dev/null 2>&1; then \
	    echo "make: $(PKG_CONFIG) not found: install pkg-config (Debian/Ubuntu: apt-get install pkg-config), or run make deps" >&2; \
	    exit 1; \
	fi; \
	missing=""; \
	for m in $(PKG_DEV); do \
	    $(PKG_CONFIG) --exists $${m%%:*} 2>/dev/null || missing="$$missing $${m#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	    $(PKG_CONFIG) --print-errors --exists $(PKGS) 2>&1 | sed 's/^/make: pkg-config: /' >&2; \
	    echo "make: missing development files: install$$missing (Debian/Ubuntu: sudo apt-get install$$missing), or run make deps" >&2; \
	    exit 1; \
	fi

# Everything is rebuilt when the compiler or its flags change (WERROR=1 after
# a plain build, another CC): this file holds the last ones.
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)' | cmp -s - $@ 2>/dev/null || \
	    echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)' > $@
FORCE:

$(BUILD)/%.o: %.c $(FLAGS_STAMP) | check-libs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(GEN_MIGR): $(MIGRATIONS) tools/embed_sql.sh
	@mkdir -p $(dir $@)
	sh tools/embed_sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(GEN_MIGR) $(FLAGS_STAMP) | check-libs
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	$(AR) rcs $@ $^
$(LIBCDC): $(call obj,$(CDC_SRC))
	$(AR) rcs $@ $^
$(LIBAPI): $(call obj,$(API_SRC)) $(BUILD)/gen/migrations.o
	$(AR) rcs $@ $^
$(LIBTEST): $(call obj,$(SUPPORT_SRC))
	$(AR) rcs $@ $^

$(BIN)/cdc-relay: $(BUILD)/cdc/main.o $(LIBCDC) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/orders-api: $(BUILD)/api/main.o $(LIBAPI) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit-test binaries link the whole archives, but depend only on the archive
# members the linker took (tools/link_deps.sh writes them to a .link.d), so
# a change to one module relinks only the tests that use it.
$(BUILD)/tests/unit/%.o: CFLAGS += -Itests
$(UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o | $(TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIBS) $(LDLIBS) -Wl,-t,-t > $@.trace
	@sh tools/link_deps.sh $@ $(LIB_OBJS) < $@.trace > $@.link.d
	@rm -f $@.trace

# Test-only programs (not installed): the librdkafka mock cluster harness.
KAFKA_MOCK := $(BUILD)/tools/kafka_mock
$(KAFKA_MOCK): tests/tools/kafka_mock.c $(FLAGS_STAMP) | check-libs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# Unit tests: no servers, a few seconds. Each binary prints TAP and its
# counts; tests/run_unit.sh adds them up into "unit: N passed, N failed"
# (tests). CHECK_FILTER=substr[,substr] runs only the tests whose
# "file:test" name contains one; UNIT_TAP=FILE also writes one TAP stream.
test-unit: $(UNIT_BINS)
	@sh tests/run_unit.sh $(UNIT_BINS)

# PostgreSQL versions of the integration tests (docs/testing.md#postgresql-versions):
# every test on 15 and 18, the @pytest.mark.matrix subset on 16 and 17, all
# at once, 15 and 18 each by two processes sharing the tests (tests/run_matrix.py).
# PG_VERSION=15|16|17|18 runs every test on that one version only.
PG_VERSION ?=
PG_MATRIX  ?= 15/2 18/2 16:matrix 17:matrix
IT_ENV = PG_VERSION=$(PG_VERSION) PG_MATRIX="$(PG_MATRIX)"

# The README's test command. Sanitizer builds live in build/asan and bin/asan
# so they never mix with the normal objects.
test:
	@sh tests/harness/deps.sh test
	$(MAKE) all $(KAFKA_MOCK)
	$(MAKE) SAN=1 BUILD=build/asan BIN=bin/asan WERROR=1 all test-unit
	$(IT_ENV) BIN_DIR=bin/asan sh tests/run_integration.sh

test-integration: all $(KAFKA_MOCK)
	$(IT_ENV) BIN_DIR=$(BIN) sh tests/run_integration.sh

# Fault suite (docs/reliability.md): faults injected under load, checked
# against a shadow slot; one table, then "N passed, N failed"; about 10 min.
test-faults: all $(KAFKA_MOCK)
	PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -q -p no:cacheprovider tests/faults/test_oracle.py
	BIN_DIR=$(BIN) python3 tests/faults/suite.py

asan:
	$(MAKE) SAN=1 BUILD=build/asan BIN=bin/asan WERROR=1 all test-unit

# valgrind memcheck of both binaries through an integration scenario.
valgrind: all
	python3 tests/valgrind.py

deps:
	@sh tests/harness/deps.sh

# Container checks (docs/testing.md, docs/deployment.md). They start Debian's Docker engine when
# none answers and need no registry: images start from a debootstrap'ed
# Debian 12, cached in ~/.cache/orders-cdc.
fresh-check:
	@sh tests/fresh_check.sh

compose-images:
	@sh deploy/offline/build.sh

compose-test:
	@sh tests/compose/run.sh

run:
	@sh tests/harness/deps.sh run
	$(MAKE) all
	@sh deploy/local/run.sh

# Benchmarks (docs/benchmarks.md): real Postgres and Kafka, several minutes,
# so not part of `make test`. BENCH_ARGS: tests/bench/bench.py --help.
BENCH_PY ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
BENCH_ARGS ?=
.PHONY: bench
bench:
	@sh tests/harness/deps.sh
	@sh tests/bench/setup.sh
	$(MAKE) all
	$(BENCH_PY) tests/bench/bench.py $(BENCH_ARGS)

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
fuzz:
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

C_FILES = $(wildcard common/*.[ch] cdc/*.[ch] api/*.[ch] tests/unit/*.[ch] tests/support/*.[ch] tests/fuzz/*.c tests/tools/*.c)

fmt format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run --Werror $(C_FILES)

# Module rule: common/ is libc only; each I/O library stays in its one module.
lint: format-check
	cppcheck --std=c11 --enable=warning,style,performance,portability --inline-suppr \
	    --suppress=missingIncludeSystem --error-exitcode=1 -q -Icommon common cdc api
	@sh tools/check_deps.sh
	@sh tools/check_deploy.sh

# The rendered PNGs are committed beside their sources, so neither CI nor a
# reader needs Graphviz; run this after editing a docs/*.dot.
DOC_IMAGES := docs/architecture.png
docs-images: $(DOC_IMAGES)
docs/%.png: docs/%.dot
	dot -Tpng -Gdpi=110 $< -o $@

# ---- install ------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=/staging] [SYSCONFDIR=/etc] ...
# The units' ExecStart, Documentation and EnvironmentFile paths follow BINDIR,
# DOCDIR and SYSCONFDIR. /etc/orders-cdc gets the sample only, never an .env
# file (that one holds the database password: the operator writes it).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
DOCDIR     ?= $(DATADIR)/doc/orders-cdc
MANDIR     ?= $(DATADIR)/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install
UNITS      := orders-api.service cdc-relay.service
MAN_PAGES  := $(BUILD)/man/orders-api.1 $(BUILD)/man/cdc-relay.1

# Man pages from each binary's own --help and --version.
man: $(MAN_PAGES)
$(BUILD)/man/%.1: $(BIN)/% tools/gen_man.sh
	@mkdir -p $(dir $@)
	sh tools/gen_man.sh $< > $@.tmp && mv $@.tmp $@

install: $(BIN)/orders-api $(BIN)/cdc-relay $(MAN_PAGES)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(DOCDIR)/prometheus $(DESTDIR)$(SYSCONFDIR)/orders-cdc
	$(INSTALL) -m 0755 $(BIN)/orders-api $(BIN)/cdc-relay $(DESTDIR)$(BINDIR)/
	for u in $(UNITS); do \
	    sed -e 's#/usr/local/bin/#$(BINDIR)/#g' \
	        -e 's#/usr/local/share/doc/orders-cdc#$(DOCDIR)#g' \
	        -e 's#/etc/orders-cdc/#$(SYSCONFDIR)/orders-cdc/#g' \
	        deploy/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	    mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	$(INSTALL) -m 0644 deploy/systemd/orders-cdc.env.sample $(DESTDIR)$(SYSCONFDIR)/orders-cdc/
	$(INSTALL) -m 0644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 README.md docs/*.md docs/*.png docs/openapi.yaml $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 deploy/prometheus/alerts.yml $(DESTDIR)$(DOCDIR)/prometheus/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/orders-api $(DESTDIR)$(BINDIR)/cdc-relay \
	    $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS)) \
	    $(DESTDIR)$(MANDIR)/man1/orders-api.1 $(DESTDIR)$(MANDIR)/man1/cdc-relay.1 \
	    $(DESTDIR)$(SYSCONFDIR)/orders-cdc/orders-cdc.env.sample
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
