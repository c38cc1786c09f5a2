# viona's concurrency under stress (tests/system/viona_stress.c): the test
# program is the guest's virtio-net driver (backend=user, on a TAP in a
# private network namespace, tests/system/lib-net.sh) and the host at the
# TAP's other end. Frames flow both ways, checked end to end, while
# memory-map changes expire viona's lease (halt, re-sign, resume) and the
# driver resets and re-initializes the device with changing
# configurations; then exact accounting against viona's counters, and the
# teardown with the datapath running. Under ThreadSanitizer (a race fails
# it), AddressSanitizer with leak checking (a use after free or a leak
# fails it) and as the release build. The timeout catches a deadlock.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-net.sh"
net_setup || fail "cannot set up the test network namespace"

run_stress() {
	local what=$1
	shift
	set +e
	# net_exec is a shell function: timeout needs the command itself.
	OUT=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
		ASAN_OPTIONS="halt_on_error=1 exitcode=67 detect_leaks=1" \
		timeout --kill-after=5 300 ip netns exec "$NET_NS" "$@" </dev/null 2>&1)
	STATUS=$?
	set -e
	echo "== $what"
	echo "$OUT"
	[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "$what: hung (deadlock?)"
	[ "$STATUS" -ne 66 ] || fail "$what: ThreadSanitizer found a race"
	[ "$STATUS" -ne 67 ] || fail "$what: AddressSanitizer found a bad access or a leak"
	expect_status 0
	expect_output "0 failed checks, 0 errors"
}

run_stress "ThreadSanitizer" "$KHYVE_ROOT/build/tsan/viona_stress" "$NET_TAP" 20
run_stress "AddressSanitizer" "$KHYVE_ROOT/build/asan/viona_stress" "$NET_TAP" 10
run_stress "release build" "$KHYVE_ROOT/build/tests/viona_stress" "$NET_TAP" 10
