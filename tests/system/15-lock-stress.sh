# The locking model under stress (tests/system/lock_stress.c): map readers,
# map changes, register reads on random vCPUs, pause/resume and hot-add, all
# concurrent with spinning vCPUs. Once under ThreadSanitizer (any race fails
# it), once as the release build with many more vCPUs. The timeout catches a
# deadlock.
. "$(dirname "$0")/lib.sh"

run_stress() {
	run_sanitized "$@"
	expect_status 0
	expect_output "0 failed checks"
}

run_stress "ThreadSanitizer, 2 -> 8 vCPUs" \
	"$KHYVE_ROOT/build/tsan/lock_stress" "$KHYVE_GUESTS/lm-stress.bin" 5 2 8
run_stress "release build, 4 -> 64 vCPUs" \
	"$KHYVE_ROOT/build/tests/lock_stress" "$KHYVE_GUESTS/lm-stress.bin" 5 4 64
