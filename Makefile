# khyve — a bhyve-style hypervisor for Linux/KVM.
#
#   make          build khyve (installs missing Debian build packages first)
#   make check    unit tests on the host, system tests on real KVM or in the testbox
#   make bench    benchmarks (ratios against a peer measured in the same run)
#
# Every C file under src/ except the program entry points is part of
# libkhyve.a, so a new device or subsystem is one new file and nothing else.

CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror=implicit-function-declaration \
           -Wno-unused-parameter -fno-strict-aliasing -Isrc -MMD -MP
LDLIBS  := -lpthread -llz4 -lz -llzma -lzstd -lseccomp

BUILD   := build
PROGS   := khyve khyvectl
PROG_SRCS := src/main.c src/khyvectl.c
LIB_SRCS  := $(filter-out $(PROG_SRCS),$(wildcard src/*.c))
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# C programs that system tests drive (they create VMs, so they are not unit tests).
SYSTEST_SRCS := $(wildcard tests/system/*.c)
SYSTEST_BINS := $(SYSTEST_SRCS:tests/system/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
GUEST_SRCS := $(wildcard tests/guests/*.S)
GUEST_BINS := $(GUEST_SRCS:tests/guests/%.S=$(BUILD)/guests/%.bin)

DEPS_STAMP := $(BUILD)/.build-deps

.PHONY: all check unit-check system-check bench clean testbox-shell deps
all: $(DEPS_STAMP) $(PROGS:%=$(BUILD)/%) $(GUEST_BINS) $(SYSTEST_BINS) $(BENCH_BINS)

# Build dependencies come from Debian; scripts/ensure-deps installs the
# missing ones (apt-get) so that `make` works on a fresh machine.
$(DEPS_STAMP): scripts/ensure-deps
	@mkdir -p $(BUILD)
	@scripts/ensure-deps build
	@touch $@

$(BUILD)/obj/%.o: src/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libkhyve.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/khyve: $(BUILD)/obj/main.o $(BUILD)/libkhyve.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/khyvectl: $(BUILD)/obj/khyvectl.o $(BUILD)/libkhyve.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Micro-guests: flat binaries from tests/guests/*.S, linked at the address
# khyve loads them (tests/guests/README.md): rm-* real mode, lm-* long mode.
GUEST_LDFLAGS := -nostdlib -static -Wl,--build-id=none -Wl,--oformat=binary -Itests/guests
$(BUILD)/guests/rm-%.bin: tests/guests/rm-%.S tests/guests/common.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_LDFLAGS) -Wl,-Ttext=0x8000 -o $@ $<
$(BUILD)/guests/lm-%.bin: tests/guests/lm-%.S tests/guests/common.h tests/guests/lm-lib.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_LDFLAGS) -Wl,-Ttext=0x100000 -o $@ $<
# The lm-drv-* guests share helpers and the test device's register map.
$(filter $(BUILD)/guests/lm-drv-%,$(GUEST_BINS)): tests/guests/drv.h tests/guests/lm-drv-lib.h \
	src/pci_testdev.h

# ThreadSanitizer builds of the library and of the concurrency stress tests.
TSAN_FLAGS := -O1 -g -fsanitize=thread
TSAN_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/tsan/obj/%.o)
TSAN_BINS  := $(BUILD)/tsan/lock_stress $(BUILD)/tsan/drv_lease_stress $(BUILD)/tsan/viona_stress
$(BUILD)/tsan/obj/%.o: src/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -c -o $@ $<
$(BUILD)/tsan/%: tests/system/%.c $(TSAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -o $@ $< $(TSAN_OBJS) $(LDLIBS)

# AddressSanitizer builds of the same kind (use after free/unmap of what a
# stress test releases under the other threads' feet).
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address
ASAN_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/asan/obj/%.o)
ASAN_BINS  := $(BUILD)/asan/drv_lease_stress $(BUILD)/asan/viona_stress
# Keep the sanitizer objects: they are intermediates of a pattern chain,
# which make would otherwise delete after every build and redo next time.
.SECONDARY: $(TSAN_OBJS) $(ASAN_OBJS)
$(BUILD)/asan/obj/%.o: src/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -c -o $@ $<
$(BUILD)/asan/%: tests/system/%.c $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_OBJS) $(LDLIBS)

# viona_stress reads the counters of the device's viona, which only viona_create
# returns: it wraps that function to learn the pointer (tests/system/viona_stress.c).
$(BUILD)/tsan/viona_stress $(BUILD)/asan/viona_stress $(BUILD)/tests/viona_stress: \
	LDLIBS += -Wl,--wrap=viona_create

# Benchmark programs (bench/*.c), driven by bench/*.sh.
$(BUILD)/bench/%: bench/%.c $(BUILD)/libkhyve.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libkhyve.a $(LDLIBS)

$(BUILD)/tests/%: tests/system/%.c $(BUILD)/libkhyve.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libkhyve.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libkhyve.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libkhyve.a $(LDLIBS) -lcmocka

# Fuzz targets: `make fuzz` (libFuzzer), corpus replays for unit-check.
include fuzz/fuzz.mk

check: all $(TSAN_BINS) $(ASAN_BINS)
	@scripts/ensure-deps check
	$(MAKE) --no-print-directory unit-check
	@scripts/run-system-tests

# The fuzz targets' corpora replay under ASan/UBSan as unit tests (fuzz/fuzz.mk).
unit-check: $(UNIT_BINS) $(FUZZ_REPLAY_BINS)
	@scripts/run-unit-tests $(UNIT_BINS) $(FUZZ_REPLAY_BINS)

bench: all
	@scripts/run-benchmarks

testbox-shell: all
	@tests/testbox/testbox-run --interactive

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d $(BUILD)/tsan/obj/*.d \
	$(BUILD)/asan/obj/*.d)
