# The harness itself: a failing system test must make run-all fail, name
# the test, show its log, and count it. Runs first, wherever the system
# tests run (host or testbox), at no extra boot. Together with the status
# sentinel in scripts/run-system-tests (every testbox run must bring back
# a non-zero status, 42, for a pass), this covers "a failure cannot be
# lost on the way to make check". tests/testbox/selftest checks more, at
# the price of a few more testbox boots.
set -eu
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
root=${KHYVE_ROOT:?run through tests/system/run-all}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Probe tests with names no real test has: run-all writes their logs to
# build/system-logs/NAME.log, next to the real ones.
cat >"$dir/01-harness-probe-fails.sh" <<'EOF'
echo "probe: this line must appear in run-all's report"
echo "FAIL: probe: the reason, for the digest at the end"
echo "probe: an unrelated last line"
exit 7
EOF
cat >"$dir/02-harness-probe-passes.sh" <<'EOF'
exit 0
EOF
# A hung test: its own sleep, and a child that timeout(1) put in a process
# group of its own (as run_khyve's are). Both must be reported and killed.
marker=$((900000 + $$))
cat >"$dir/03-harness-probe-hangs.sh" <<EOF
timeout $marker sleep $marker &
sleep $marker
EOF
# A test that passes but leaves a process behind: named, and the process killed.
cat >"$dir/04-harness-probe-leaves.sh" <<EOF
sleep $((marker + 1)) &
exit 0
EOF

# env -u: the outer run's filter must not filter the probes away.
rc=0
start=$(date +%s)
out=$(env -u KHYVE_SYSTEM_TEST_FILTER KHYVE_SYSTEM_TEST_DIR="$dir" KHYVE_SYSTEM_TEST_TIMEOUT=3 \
	"$root/tests/system/run-all" 2>&1) || rc=$?
took=$(($(date +%s) - start))
printf '%s\n' "$out"
[ "$rc" -ne 0 ] || fail "run-all exited 0 although a test failed"
for want in "FAIL 01-harness-probe-fails (exit 7" \
	"| probe: this line must appear in run-all's report" \
	"ok   02-harness-probe-passes" \
	"FAIL 03-harness-probe-hangs (timed out after 3 s" \
	"| run-all: 3 s are up" \
	"timeout $marker sleep $marker" \
	"ok   04-harness-probe-leaves (" \
	"  01-harness-probe-fails (exit 7): FAIL: probe: the reason, for the digest at the end" \
	"  03-harness-probe-hangs: timed out after 3 s; its processes then:" \
	"sleep: waits in" \
	"but it left processes running (killed" \
	"failed: 01-harness-probe-fails 03-harness-probe-hangs" \
	"system: 2 passed, 2 failed"; do
	printf '%s\n' "$out" | grep -qF -- "$want" || fail "run-all's output lacks '$want'"
done
[ "$took" -lt 60 ] || fail "run-all took $took s over a test that should have been stopped after 3 s"
! pgrep -f "sleep $marker" >/dev/null || fail "the hung test's processes outlived it: $(pgrep -af "sleep $marker")"
! pgrep -f "sleep $((marker + 1))" >/dev/null || fail "a process a test left behind outlived it: $(pgrep -af "sleep $((marker + 1))")"

# No test at all must not pass either ("ran nothing" is not success).
rm -f "$dir"/*.sh
rc=0
out=$(env -u KHYVE_SYSTEM_TEST_FILTER KHYVE_SYSTEM_TEST_DIR="$dir" "$root/tests/system/run-all" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "run-all exited 0 with no test to run; output: $out"

# In the testbox, the point of it all must hold: a hardware-style KVM.
if [ "${KHYVE_TESTBOX:-}" = 1 ]; then
	[ -c /dev/kvm ] || fail "no /dev/kvm in the testbox"
	[ -d /sys/module/kvm_amd ] || [ -d /sys/module/kvm_intel ] || fail "/dev/kvm in the testbox is not kvm_amd/kvm_intel"
fi
echo "harness: a failing test fails run-all, loudly"
