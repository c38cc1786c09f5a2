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
	run_sanitized "$@"
	expect_status 0
	expect_output "0 failed checks, 0 errors"
}

run_stress "ThreadSanitizer" ip netns exec "$NET_NS" "$KHYVE_ROOT/build/tsan/viona_stress" "$NET_TAP" 20
run_stress "AddressSanitizer" ip netns exec "$NET_NS" "$KHYVE_ROOT/build/asan/viona_stress" "$NET_TAP" 10
run_stress "release build" ip netns exec "$NET_NS" "$KHYVE_ROOT/build/tests/viona_stress" "$NET_TAP" 10
