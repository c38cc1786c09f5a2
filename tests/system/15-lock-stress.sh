# The locking model under stress (tests/system/lock_stress.c): map readers,
# map changes, register reads on random vCPUs, pause/resume and hot-add, all
# concurrent with spinning vCPUs. Once under ThreadSanitizer (any race fails
# it), once as the release build with many more vCPUs. The timeout catches a
# deadlock.
. "$(dirname "$0")/lib.sh"

run_stress() {
	local what=$1
	shift
	set +e
	OUT=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
		timeout --kill-after=5 300 "$@" </dev/null 2>&1)
	STATUS=$?
	set -e
	echo "== $what"
	echo "$OUT"
	[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "$what: hung (deadlock?)"
	[ "$STATUS" -ne 66 ] || fail "$what: ThreadSanitizer found a race"
	expect_status 0
	expect_output "0 failed checks"
}

run_stress "ThreadSanitizer, 2 -> 8 vCPUs" \
	"$KHYVE_ROOT/build/tsan/lock_stress" "$KHYVE_GUESTS/lm-stress.bin" 5 2 8
run_stress "release build, 4 -> 64 vCPUs" \
	"$KHYVE_ROOT/build/tests/lock_stress" "$KHYVE_GUESTS/lm-stress.bin" 5 4 64
