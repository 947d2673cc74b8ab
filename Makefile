# orders-cdc: orders-api (HTTP -> Postgres outbox) and cdc-relay (pgoutput -> Kafka).
# GNU make, pkg-config, no autotools. `make help` lists the targets.

CC       ?= cc
PKGS     := libpq rdkafka jansson libmicrohttpd
BUILD    ?= build
BIN      ?= bin
SAN      ?=

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wundef -Wimplicit-fallthrough -Wpointer-arith
CSTD     := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT      ?= -O2 -g
ifeq ($(SAN),1)
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
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
        asan fuzz deps help valgrind docs-images
.DEFAULT_GOAL := all

all: $(BIN)/orders-api $(BIN)/cdc-relay

help:
	@echo "make              build bin/orders-api and bin/cdc-relay"
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
	@echo "make docs-images  re-render docs/*.png from docs/*.dot (needs Graphviz)"
	@echo "make clean"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(GEN_MIGR): $(MIGRATIONS) tools/embed_sql.sh
	@mkdir -p $(dir $@)
	sh tools/embed_sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(GEN_MIGR)
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
$(KAFKA_MOCK): tests/tools/kafka_mock.c
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
	@sh tests/harness/deps.sh
	$(MAKE) all $(KAFKA_MOCK)
	$(MAKE) SAN=1 BUILD=build/asan BIN=bin/asan all test-unit
	$(IT_ENV) BIN_DIR=bin/asan sh tests/run_integration.sh

test-integration: all $(KAFKA_MOCK)
	$(IT_ENV) BIN_DIR=$(BIN) sh tests/run_integration.sh

# Fault suite (docs/reliability.md): faults injected under load, checked
# against a shadow slot; one table, then "N passed, N failed"; about 10 min.
test-faults: all $(KAFKA_MOCK)
	PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -q -p no:cacheprovider tests/faults/test_oracle.py
	BIN_DIR=$(BIN) python3 tests/faults/suite.py

asan:
	$(MAKE) SAN=1 BUILD=build/asan BIN=bin/asan all test-unit

# valgrind memcheck of both binaries through an integration scenario.
valgrind: all
	python3 tests/valgrind.py

deps:
	@sh tests/harness/deps.sh

run:
	@sh tests/harness/deps.sh
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

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
