# Bad input gets a one-line message and exit status 4, never a crash.
. "$(dirname "$0")/lib.sh"

check_error() {
	local needle=$1
	shift
	run_khyve 30 "$@"
	expect_status 4
	expect_output "$needle"
	[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "expected one line for $*, got: $OUT"
}

check_error "no VM name" -m 64M
check_error "unknown option" -Z vm
check_error "does not match" -c 4,sockets=3 vm
check_error "exceeds maxcpus" -c 8,maxcpus=4 vm
check_error "unknown suffix" -m 12Q vm
check_error "nothing to boot" -m 64M vm
check_error "No such file" -o boot.kernel=/nonexistent/bzImage vm
check_error "No such file" -k /nonexistent.conf vm
check_error "not key=value" -o novalue vm
check_error "only 'stdio'" -l com1,/dev/null vm
check_error "too small" -m 1M -o boot.raw="$KHYVE_GUESTS/lm-hello.bin" vm
check_error "expected real or long" -o boot.raw="$KHYVE_GUESTS/lm-hello.bin" -o boot.raw.mode=protected vm

# Not a kernel at all: a micro-guest binary given as boot.kernel.
check_error "neither a bzImage" -o boot.kernel="$KHYVE_GUESTS/lm-hello.bin" vm

# A config file supplies what the command line leaves out.
cat >"$KHYVE_TEST_TMP/vm.conf" <<CONF
# micro-guest from a file
boot.raw=$KHYVE_GUESTS/lm-hello.bin
lpc.com1.path=stdio
memory.size=64M
CONF
run_khyve 30 -k "$KHYVE_TEST_TMP/vm.conf" conf-vm
expect_status 1
expect_output "hello from long mode"

# --help is a manual and exits 0.
run_khyve 10 --help
expect_status 0
expect_output "EXIT STATUS"
expect_output "SYNOPSIS"
