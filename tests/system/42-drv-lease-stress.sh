# Leases against memory-map changes (tests/system/drv_lease_stress.c):
# driver threads translate and read guest memory under leases while map
# changes break and renew them and the unmapped segments' memory is
# poisoned and released, plus synchronous unhook under a hammering guest
# and the VM's destruction under live leases. Under ThreadSanitizer (a race
# fails it), AddressSanitizer (a use after free fails it) and as the
# release build (a stale read is a SIGSEGV or a poisoned byte). The timeout
# catches a deadlock.
. "$(dirname "$0")/lib.sh"

run_stress() {
	run_sanitized "$@"
	expect_status 0
	expect_output "0 failed checks, 0 errors"
	expect_output "(0 after unhook)"
}

guest=$KHYVE_GUESTS/lm-stress.bin
run_stress "ThreadSanitizer, 2 vCPUs" "$KHYVE_ROOT/build/tsan/drv_lease_stress" "$guest" 5 2
run_stress "AddressSanitizer, 2 vCPUs" "$KHYVE_ROOT/build/asan/drv_lease_stress" "$guest" 5 2
run_stress "release build, 4 vCPUs" "$KHYVE_ROOT/build/tests/drv_lease_stress" "$guest" 5 4
