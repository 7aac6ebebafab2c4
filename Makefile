# redraft build. `make` builds build/redraft; `make SANITIZE=1` builds with ASan+UBSan into the
# same tree (the flag is remembered in build/.flags so objects never mix).
#
# Boundaries the linker keeps: raftlog/raft*.c (the consensus core) is its own static library,
# libraftcore.a, compiled with no include path beyond libc; the simulator links only that and
# liblincheck.a (tests/lincheck, the linearizability checker, libc only as well).

CC       ?= cc
BUILD    ?= build
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT      ?= -O2 -g
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
  OPT    := -O1 -g -fno-omit-frame-pointer
  SANFL  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(SANFL) $(EXTRA_CFLAGS) -MMD -MP
INCLUDES   = -I. -I/usr/include/hiredis
LIBS       = -lrocksdb -lhiredis -lev -lm -lpthread
LDFLAGS_ALL = $(SANFL) $(EXTRA_LDFLAGS)

CORE_SRC  := $(sort $(wildcard raftlog/raft*.c))
LIB_SRC   := $(sort $(wildcard common/*.c) $(filter-out proxy/main.c,$(wildcard proxy/*.c)) \
               $(wildcard backend/*.c) $(filter-out $(CORE_SRC),$(wildcard raftlog/*.c)))
SIM_SRC   := $(sort $(wildcard tests/sim/*.c))
LINCHECK_SRC := tests/lincheck/lincheck.c tests/lincheck/history.c tests/lincheck/gen.c
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))

CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SIM_OBJ   := $(SIM_SRC:%.c=$(BUILD)/obj/%.o)
LINCHECK_OBJ := $(LINCHECK_SRC:%.c=$(BUILD)/obj/%.o)
LINCHECK_MAIN_OBJ := $(BUILD)/obj/tests/lincheck/main.o $(BUILD)/obj/tests/lincheck/gen_main.o
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# How many simulator seeds `make test` runs (kept under two minutes on a 2-core machine).
SIM_TEST_COUNT ?= 10000
SEEDS ?= 100000


.PHONY: docs
.PHONY: all deps test test-unit test-sim test-integration sim compat demo demo-stop clean format \
        check-format bench bench-reader chaos lincheck fuzz fuzz-build fuzz-replay deps-fuzz
all: $(BUILD)/redraft

# Rebuild everything when the flag set changes (SANITIZE=0 <-> 1).
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CFLAGS_ALL) $(LDFLAGS_ALL)' | cmp -s - $@ || echo '$(CFLAGS_ALL) $(LDFLAGS_ALL)' > $@
FORCE:

# The core sees no include path but its own (a static pattern: raft.c has an empty stem).
$(CORE_OBJ): $(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I. -c $< -o $@

# The checker, too, sees nothing but libc and its own headers.
$(LINCHECK_OBJ) $(LINCHECK_MAIN_OBJ): $(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I. -c $< -o $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(INCLUDES) -c $< -o $@

$(BUILD)/libraftcore.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libredraft.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/redraft: $(BUILD)/obj/proxy/main.o $(BUILD)/libredraft.a $(BUILD)/libraftcore.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/liblincheck.a: $(LINCHECK_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/raft-sim: $(SIM_OBJ) $(BUILD)/liblincheck.a $(BUILD)/libraftcore.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lm

# The checker and the history generator (tests/lincheck/README.md).
$(BUILD)/lincheck: $(BUILD)/obj/tests/lincheck/main.o $(BUILD)/liblincheck.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^

$(BUILD)/lincheck-gen: $(BUILD)/obj/tests/lincheck/gen_main.o $(BUILD)/liblincheck.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^

lincheck: $(BUILD)/lincheck $(BUILD)/lincheck-gen

# Tests of the Raft core link the core alone, as the simulator does.
RAFT_UNIT_BIN  := $(filter $(BUILD)/tests/test_raft%,$(UNIT_BIN))
LIN_UNIT_BIN   := $(filter $(BUILD)/tests/test_lincheck%,$(UNIT_BIN))
OTHER_UNIT_BIN := $(filter-out $(RAFT_UNIT_BIN) $(LIN_UNIT_BIN),$(UNIT_BIN))
$(RAFT_UNIT_BIN): $(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libraftcore.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I. -o $@ $< $(BUILD)/libraftcore.a $(LDFLAGS_ALL) -lcmocka

# Tests of the checker link the checker alone.
$(LIN_UNIT_BIN): $(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liblincheck.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I. -o $@ $< $(BUILD)/liblincheck.a $(LDFLAGS_ALL) -lcmocka

$(OTHER_UNIT_BIN): $(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libredraft.a $(BUILD)/libraftcore.a \
                   $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(INCLUDES) -o $@ $< $(BUILD)/libredraft.a $(BUILD)/libraftcore.a \
	  $(LDFLAGS_ALL) $(LIBS) -lcmocka

deps:
	@scripts/deps.sh

# The power-loss filesystem of the chaos harness: only where libfuse3 is installed (the chaos
# harness skips power-loss faults, saying so, without it). Not part of `all`.
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null)
ifneq ($(FUSE_LIBS),)
POWERFS := $(BUILD)/powerfs
$(POWERFS): tests/chaos/powerfs.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(FUSE_CFLAGS) -o $@ $< $(LDFLAGS_ALL) $(FUSE_LIBS)
endif

# ---- fuzzing (tests/fuzz/, docs/testing.md) ----
# `make fuzz FUZZ_SECONDS=N` builds every target with clang and libFuzzer (ASan + UBSan) into
# $(FUZZ_BUILD), a tree of its own (objects never mix with $(BUILD)'s), then runs the targets one
# after another for N seconds each, starting from the committed seeds in tests/fuzz/corpus/T/.
# New inputs go to $(FUZZ_BUILD)/corpus/T/, crashes to $(FUZZ_BUILD)/crashes/.
# The same harnesses, built with $(CC) and tests/fuzz/replay.c as main, replay the committed
# corpus once under `make test` ($(BUILD)/tests/test_fuzz_T): no clang needed there.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := resp entry raft_msg bus rdb reader
FUZZ_SRC_resp     := proxy/resp.c common/buf.c
FUZZ_SRC_entry    := backend/entry.c common/buf.c
FUZZ_SRC_raft_msg := raftlog/raft_msg.c
FUZZ_SRC_bus      := raftlog/bus.c common/buf.c common/log.c common/map.c common/md.c common/sha256.c
FUZZ_LIBS_bus     := -lev
FUZZ_SRC_rdb      := backend/snapshot.c common/buf.c common/log.c common/netaddr.c
FUZZ_LIBS_rdb     := -lev
FUZZ_SRC_reader   := backend/reader.c common/buf.c
FUZZ_CFLAGS  := $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined -MMD -MP
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
REPLAY_BIN   := $(FUZZ_TARGETS:%=$(BUILD)/tests/test_fuzz_%)

FUZZ_STAMP := $(FUZZ_BUILD)/.flags
$(FUZZ_STAMP): FORCE
	@mkdir -p $(FUZZ_BUILD)
	@echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' | cmp -s - $@ || echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' > $@

$(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(INCLUDES) -c $< -o $@

define FUZZ_RULES
$(FUZZ_BUILD)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1):%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_STAMP)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(INCLUDES) -o $$@ $$< \
	  $(FUZZ_SRC_$(1):%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_LIBS_$(1))
$(BUILD)/tests/test_fuzz_$(1): tests/fuzz/fuzz_$(1).c tests/fuzz/replay.c tests/fuzz/fuzz.h \
                               $(BUILD)/libredraft.a $(BUILD)/libraftcore.a $(FLAGS_STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_ALL) $(INCLUDES) -DFUZZ_CORPUS='"tests/fuzz/corpus/$(1)"' -o $$@ \
	  tests/fuzz/fuzz_$(1).c tests/fuzz/replay.c $(BUILD)/libredraft.a $(BUILD)/libraftcore.a \
	  $$(LDFLAGS_ALL) $(LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

deps-fuzz:
	@scripts/deps.sh fuzz

fuzz-build: deps-fuzz
	@FUZZ_CC=$(FUZZ_CC) scripts/fuzz.sh check
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The committed corpus once through the libFuzzer builds (make test does it with $(CC)).
fuzz-replay: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) scripts/fuzz.sh replay $(FUZZ_TARGETS)

RUN_TESTS = BUILD=$(BUILD) SIM_TEST_COUNT=$(SIM_TEST_COUNT) scripts/run-tests.sh

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/raft-sim $(BUILD)/lincheck $(BUILD)/lincheck-gen \
	  $(UNIT_BIN) $(REPLAY_BIN) $(POWERFS)
	@$(RUN_TESTS)

test-unit: $(UNIT_BIN) $(REPLAY_BIN)
	@$(RUN_TESTS) unit

test-sim: $(BUILD)/raft-sim
	@$(RUN_TESTS) sim

test-integration: all
	@$(RUN_TESTS) integration

# The chaos harness (tests/chaos, docs/testing.md): CHAOS_SECONDS of faults (default 300),
# CHAOS_SEED to replay a schedule, CHAOS_NODES=3|5, CHAOS_FAULTS=kind,kind to narrow it.
chaos: deps all $(BUILD)/lincheck $(POWERFS)
	@BUILD=$(BUILD) /usr/bin/python3 tests/chaos/chaos.py

sim: $(BUILD)/raft-sim
	$(BUILD)/raft-sim --start 1 --count $(SEEDS)

compat: deps all
	@tests/compat/run.sh

# Throughput and latency of raw Redis, one redraft and a 3-node cluster, side by side
# (contrib/bench/bench.sh; BENCH_N, BENCH_ROUNDS, BENCH_QUICK=1; docs/benchmarks.md).
bench: deps all
	@BUILD=$(BUILD) contrib/bench/bench.sh

demo: deps all
	@scripts/demo.sh start

demo-stop:
	@scripts/demo.sh stop

# The reply reader against hiredis's on an apply-path stream (tests/tools/bench_reader.c).
$(BUILD)/bench-reader: tests/tools/bench_reader.c $(BUILD)/libredraft.a $(BUILD)/libraftcore.a
	$(CC) $(CFLAGS_ALL) $(INCLUDES) -o $@ $< $(BUILD)/libredraft.a $(BUILD)/libraftcore.a \
	  $(LDFLAGS_ALL) $(LIBS)

bench-reader: $(BUILD)/bench-reader
	$(BUILD)/bench-reader

$(BUILD)/gen-commands-doc: tests/tools/gen_commands_doc.c $(BUILD)/libredraft.a $(BUILD)/libraftcore.a
	$(CC) $(CFLAGS_ALL) $(INCLUDES) -o $@ $< $(BUILD)/libredraft.a $(BUILD)/libraftcore.a \
	  $(LDFLAGS_ALL) $(LIBS)

# Regenerates docs/commands.md from the captured COMMAND reply and our overrides.
docs: $(BUILD)/gen-commands-doc
	$(BUILD)/gen-commands-doc tests/unit/data/command-7.0.15.resp > docs/commands.md

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
