# target-pg build.  `make` builds ./target-pg; see README.md for the rest.
# Object files live under build/<variant>/ so plain, asan and fuzz builds
# never mix.

PREFIX ?= /usr/local
CC ?= cc
VARIANT ?= release
BUILD := build/$(VARIANT)

# zlib: gzip-compressed input and BATCH files (the Singer SDK writes gzip)
PKGS := jansson libzstd zlib libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null || echo -I/usr/include/postgresql)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lzstd -lz -lpq)
# what the core alone needs (unit tests and fuzz replays link no libpq)
CORE_PKG_LIBS := $(shell pkg-config --libs jansson libzstd zlib 2>/dev/null || echo -ljansson -lzstd -lz)

WARN := -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wwrite-strings -Wvla -Wswitch-enum
DEFS := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT_release := -O2 -D_FORTIFY_SOURCE=2
OPT_asan := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
OPT_debug := -O0
CFLAGS_ALL := -std=c11 -g $(OPT_$(VARIANT)) $(WARN) $(DEFS) -Isrc -Idrivers $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
SAN_LDFLAGS_asan := -fsanitize=address,undefined
LDFLAGS_ALL := $(SAN_LDFLAGS_$(VARIANT)) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lodbc -lpthread -lm
CORE_LIBS := $(CORE_PKG_LIBS) -lpthread -lm

# CORE_OBJ: src/ without main.c, no driver (drivers/driver.h is the boundary);
# DRIVER_OBJ: the warehouses the binary ships; FAKE_OBJ: the in-memory
# driver the unit tests load through (drivers/fake/, never in the binary).
CORE_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
DRIVER_SRC := drivers/registry.c $(wildcard drivers/postgres/*.c) $(wildcard drivers/odbc/*.c)
DRIVER_OBJ := $(DRIVER_SRC:%.c=$(BUILD)/%.o)
FAKE_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard drivers/fake/*.c))
# The PostgreSQL row encoder, limits and type spellings need no libpq: the
# unit tests and the fuzz targets link them on their own.
PG_ENCODE_OBJ := $(BUILD)/drivers/postgres/pg_encode.o $(BUILD)/drivers/postgres/pg_encode_binary.o \
                 $(BUILD)/drivers/postgres/pg_binary.o $(BUILD)/drivers/postgres/pg_caps.o \
                 $(BUILD)/drivers/postgres/pg_types.o
# The ODBC row writer calls no ODBC function, and the MariaDB dialect's
# digit check is pure as well: the unit tests link them alone.
UNIT_DRIVER_OBJ := $(PG_ENCODE_OBJ) $(BUILD)/drivers/odbc/odbc_rows.o \
                   $(BUILD)/drivers/odbc/odbc_mariadb_number.o
MAIN_OBJ := $(BUILD)/src/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BIN_release := target-pg
BIN := $(if $(filter release,$(VARIANT)),target-pg,$(BUILD)/target-pg)

.PHONY: all deps test test-meltano unit asan valgrind demo bench bench-smoke bench-growth install fmt fmt-check clean \
        check-build check-layers

all: $(BIN)

$(BIN): $(CORE_OBJ) $(DRIVER_OBJ) $(MAIN_OBJ)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ) $(FAKE_OBJ) $(UNIT_DRIVER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -o $@ $< $(CORE_OBJ) $(FAKE_OBJ) $(UNIT_DRIVER_OBJ) \
	    $(LDFLAGS_ALL) \
	    $(CORE_LIBS) -lcmocka

unit-bins: $(UNIT_BIN)

# The benchmark's Singer stream generator (bench/gen_stream.c, standalone).
GEN := $(BUILD)/gen_stream
GEN_OBJ := $(BUILD)/bench/gen_stream.o

$(GEN): $(GEN_OBJ)
	$(CC) $(LDFLAGS_ALL) -o $@ $^

# Every Debian package the build, the tests, the demo and the benchmark need,
# plus those of Meltano (make test-meltano) when it is beside the repository.
MELTANO_HOME ?= ../shared/meltano
DEPS_PKGS := build-essential pkg-config libjansson-dev libzstd-dev zstd zlib1g-dev libpq-dev postgresql-15 \
             postgresql-client-15 unixodbc-dev libsqliteodbc sqlite3 libcmocka-dev python3 valgrind clang clang-format \
             libclang-rt-14-dev time man-db
# MariaDB through ODBC (tests/mariadb.sh starts a throwaway server)
DEPS_PKGS += mariadb-server mariadb-client odbc-mariadb
deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	 $$SUDO apt-get update -qq && \
	 DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEPS_PKGS) \
	     $$(cat $(MELTANO_HOME)/apt-packages.txt 2>/dev/null)

# Unit tests, golden CLI cases, integration and conformance against a
# throwaway PostgreSQL started by the test scripts.
test: $(BIN) unit-bins
	TARGET_PG=$(abspath $(BIN)) UNIT_DIR=$(abspath $(BUILD)/tests) tests/run_all.sh

# target-pg as a loader under real Meltano 2.20 from ../shared/meltano (a
# "skip meltano" line when it is absent); see tests/meltano/run.sh.
test-meltano: $(BIN)
	TARGET_PG=$(abspath $(BIN)) MELTANO_HOME=$(MELTANO_HOME) tests/meltano/run.sh

unit: unit-bins
	@for t in $(UNIT_BIN); do $$t || exit 1; done

asan:
	$(MAKE) VARIANT=asan test

VALGRIND = valgrind -q --leak-check=full --error-exitcode=99
valgrind: all unit-bins
	TARGET_PG_WRAPPER="$(VALGRIND)" UNIT_WRAPPER="$(VALGRIND)" \
	TARGET_PG=$(abspath $(BIN)) UNIT_DIR=$(abspath $(BUILD)/tests) tests/run_all.sh

# WAREHOUSE=sqlite: into a SQLite file through the ODBC driver, no server;
# WAREHOUSE=mariadb: into a throwaway MariaDB (tests/mariadb.sh) through the ODBC driver
WAREHOUSE ?= postgres
demo: $(BIN)
	WAREHOUSE=$(WAREHOUSE) scripts/demo.sh

# Loads generated streams into a throwaway PostgreSQL and compares with psql \copy
# (BENCH_ROWS rows, default 1000000), then into SQLite through the ODBC driver
# against the sqlite3 shell's .import, then into MariaDB against LOAD DATA LOCAL
# INFILE (scripts/bench_mariadb.sh); bench-smoke is the small size CI runs.
bench: $(BIN) $(GEN)
	TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench.sh
	TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench_sqlite.sh
	TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench_mariadb.sh

bench-smoke: $(BIN) $(GEN)
	BENCH_ROWS=20000 TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench.sh
	BENCH_ROWS=20000 TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench_sqlite.sh
	BENCH_ROWS=20000 TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench_mariadb.sh

# Cost per row from 100,000 to 5,000,000 rows, zstd input (BENCH_GROWTH_ROWS).
bench-growth: $(BIN) $(GEN)
	TARGET_PG=$(abspath $(BIN)) GEN_STREAM=$(abspath $(GEN)) scripts/bench_growth.sh

# INSTALL_BIN: the binary to install (tests install the one under test)
INSTALL_BIN ?= $(BIN)
install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/target-pg
	install -m 0644 docs/target-pg.1 $(DESTDIR)$(PREFIX)/share/man/man1/target-pg.1

# No two files of src/ may depend on each other in a circle (calls read from
# the objects with nm, plus includes); see scripts/check_layers.py.
check-layers: $(CORE_OBJ) $(MAIN_OBJ)
	python3 scripts/check_layers.py $(BUILD)

# Every C file of the project, formatted by .clang-format: `make fmt` applies
# it, `make fmt-check` (CI) fails listing what differs.
FMT_FILES = $(wildcard src/*.c src/*.h drivers/*.c drivers/*.h drivers/*/*.c drivers/*/*.h \
                       tests/unit/*.c tests/fuzz/*.c tests/fuzz/*.h tests/integration/*.c bench/*.c)
fmt:
	clang-format -i $(FMT_FILES)

fmt-check:
	clang-format --dry-run --Werror $(FMT_FILES)

clean:
	rm -rf build target-pg

-include $(CORE_OBJ:.o=.d) $(DRIVER_OBJ:.o=.d) $(FAKE_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(GEN_OBJ:.o=.d)

# --- fuzzing (tests/fuzz/) ------------------------------------------------------
# tests/fuzz/fuzz_<name>.c holds a libFuzzer target over the core objects and
# fixtures/fuzz/<name>/ its seed corpus.  `make fuzz` builds the libFuzzer
# binaries build/fuzz/fuzz_<name> with clang (VARIANT=fuzz); `make fuzz-run`
# runs each of FUZZ_TARGETS for FUZZ_SECONDS on a fresh copy of its corpus in
# build/fuzz/corpus/<name> (crashes land in build/fuzz/artifacts/<name>/;
# fixtures/ is never written).  Every variant also builds replay binaries
# $(BUILD)/fuzz/replay_<name> (tests/fuzz/replay_main.c, any compiler, no
# libFuzzer), which `make test` runs over the corpora (tests/run_all.sh).
FUZZ_NAMES := message schema copy
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
# one process, in the foreground (-jobs would fork and log to ./fuzz-N.log)
FUZZ_FLAGS ?= -rss_limit_mb=2048 -max_len=65536 -timeout=30 -print_final_stats=1
ifeq ($(VARIANT),fuzz)
CFLAGS_ALL += -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=all
LDFLAGS_ALL += -fsanitize=fuzzer,address,undefined
endif
FUZZ_OBJ := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/replay_main.o
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)

.PHONY: fuzz fuzz-bins fuzz-run

fuzz:
	$(MAKE) VARIANT=fuzz CC=$(FUZZ_CC) fuzz-bins

fuzz-bins: $(FUZZ_NAMES:%=$(BUILD)/fuzz_%)

$(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(CORE_OBJ) $(PG_ENCODE_OBJ)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CORE_LIBS)

$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(CORE_OBJ) \
                       $(PG_ENCODE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CORE_LIBS)

unit-bins: $(REPLAY_BIN)

fuzz-run: fuzz
	@for n in $(FUZZ_TARGETS); do \
	    rm -rf build/fuzz/corpus/$$n && mkdir -p build/fuzz/corpus/$$n build/fuzz/artifacts/$$n && \
	    cp fixtures/fuzz/$$n/* build/fuzz/corpus/$$n/ && \
	    echo "fuzzing $$n for $(FUZZ_SECONDS) s" && \
	    build/fuzz/fuzz_$$n $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=build/fuzz/artifacts/$$n/ build/fuzz/corpus/$$n || exit 1; \
	done

-include $(FUZZ_OBJ:.o=.d)
.SECONDARY:
