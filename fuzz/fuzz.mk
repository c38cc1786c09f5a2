# Fuzzing, included by the Makefile (see docs/hardening.md).
#
# Every fuzz/fuzz_NAME.c is a libFuzzer target (LLVMFuzzerTestOneInput) with a
# committed seed corpus in fuzz/corpus/NAME/. It is built two ways:
#
#   build/fuzz/fuzz_NAME     clang + libFuzzer + ASan/UBSan: `make fuzz` runs
#                            each for FUZZ_TIME seconds (scripts/run-fuzzers)
#   build/fuzz/replay_NAME   gcc + ASan/UBSan + fuzz/replay.c: replays the
#                            corpus once; part of `make unit-check`, so make
#                            check needs no clang
FUZZ_TIME    ?= 60
FUZZ_SRCS    := $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRCS:fuzz/fuzz_%.c=%)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)

SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/san/obj/%.o)
$(BUILD)/san/obj/%.o: src/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<
$(BUILD)/san/libkhyve.a: $(SAN_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h $(BUILD)/san/libkhyve.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -DFUZZ_TARGET='"$*"' -DFUZZ_CORPUS='"fuzz/corpus/$*"' \
		-o $@ fuzz/fuzz_$*.c fuzz/replay.c $(BUILD)/san/libkhyve.a $(LDLIBS) -ldl

FUZZ_CC    := clang
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=all
FUZZ_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/fuzz/obj/%.o)
$(BUILD)/.fuzz-deps: scripts/ensure-deps
	@mkdir -p $(BUILD)
	@scripts/ensure-deps fuzz
	@touch $@
$(BUILD)/fuzz/obj/%.o: src/%.c | $(DEPS_STAMP) $(BUILD)/.fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -c -o $@ $<
$(BUILD)/fuzz/libkhyve.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(BUILD)/fuzz/libkhyve.a
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< \
		$(BUILD)/fuzz/libkhyve.a $(LDLIBS) -ldl

.PHONY: fuzz fuzz-replay
fuzz: $(FUZZ_BINS)
	@FUZZ_TIME=$(FUZZ_TIME) scripts/run-fuzzers $(FUZZ_NAMES)
fuzz-replay: $(FUZZ_REPLAY_BINS)
	@scripts/run-unit-tests $(FUZZ_REPLAY_BINS)

-include $(wildcard $(BUILD)/san/obj/*.d $(BUILD)/fuzz/obj/*.d $(BUILD)/fuzz/*.d)
