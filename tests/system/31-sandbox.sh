# The seccomp sandbox (src/sandbox.c): a vCPU thread that makes a system call
# outside the allow-list kills khyve with SIGSYS, by default; --no-sandbox
# turns the filter off. The forbidden call comes from the test hook
# debug.forbidden-syscall-port, a port whose handler calls execve().
# (Every other system test, the Linux boot included, runs sandboxed.)
. "$(dirname "$0")/lib.sh"
ulimit -c 0  # SIGSYS dumps core by default: not here
hook="-o debug.forbidden-syscall-port=0x510"
sigsys=$((128 + $(kill -l SYS)))

run_guest 30 lm-sandbox-probe $hook
expect_status "$sigsys"
expect_output "writing the forbidden-syscall port"
printf '%s\n' "$OUT" | grep -q survived && fail "the guest survived a forbidden system call: $OUT"
echo "sandbox on: a forbidden system call from a vCPU thread killed khyve with SIGSYS ($STATUS)"

run_guest 30 lm-sandbox-probe $hook --no-sandbox
expect_status 1
expect_output "sandbox-probe: survived"
run_guest 30 lm-sandbox-probe $hook -o sandbox=false
expect_status 1
expect_output "sandbox-probe: survived"
echo "sandbox off (--no-sandbox, sandbox=false): the same guest runs on and powers off"

# Without the hook the port is nobody's: sandboxed, the guest runs normally.
run_guest 30 lm-sandbox-probe
expect_status 1
expect_output "sandbox-probe: survived"

# Bad settings are one-line errors.
run_guest 30 lm-sandbox-probe -o sandbox=perhaps
expect_status 4
expect_output "sandbox=perhaps is not a boolean"
run_guest 30 lm-sandbox-probe -o debug.forbidden-syscall-port=0x10000
expect_status 4
expect_output "debug.forbidden-syscall-port=0x10000"
run_guest 30 lm-sandbox-probe -o debug.forbidden-syscall-port=0x3f8
expect_status 4
expect_output "overlaps uart"
