# A vCPU hot-add that fails half-way can be retried. KVM cannot delete a
# vCPU, so one left behind by a failed add-cpu must be picked up by the next
# attempt, and it must not count as online before its thread runs.
#
# The failure is a real one: khyve runs as user nobody (whose process limit
# applies; root's does not), the lm-spin micro-guest with -c 1,maxcpus=2,
# and once it runs, prlimit lowers its RLIMIT_NPROC to the threads it has.
# Then:
#   - add-cpu fails with one line ("starting the thread of vCPU 1: Resource
#     temporarily unavailable") and the VM still says 1 of 2 vCPUs online;
#   - with the limit lifted, add-cpu succeeds for vCPU 1 (before the fix:
#     "all 2 vCPUs are already online", vCPU 1 counted but without a
#     thread), and vCPU 1's registers can be read;
#   - the VM is destroyed normally (status 4).
# /dev/kvm for nobody: a fresh node with an ACL in a private mount
# namespace, as in 32-unprivileged.sh.
. "$(dirname "$0")/lib.sh"
set -e
command -v setfacl >/dev/null || fail "setfacl is missing: scripts/ensure-deps check installs acl"
command -v prlimit >/dev/null || fail "prlimit is missing (util-linux)"
id nobody >/dev/null 2>&1 || fail "this system has no user nobody"
chmod 755 "$KHYVE_TEST_TMP"
bin=$KHYVE_TEST_TMP/bin
mkdir "$bin"
cp "$KHYVE" "$KHYVE_GUESTS/lm-spin.bin" "$bin/"
chmod -R a+rX "$bin"
mkdir -m 700 "$KHYVE_RUNTIME_DIR"
chown nobody "$KHYVE_RUNTIME_DIR"
log=$KHYVE_TEST_TMP/grow.log

as_nobody_cmd --dev /dev/kvm 0600 yes -- "$bin/khyve" -c 1,maxcpus=2 -m 64M -l com1,stdio \
	-o boot.raw="$bin/lm-spin.bin" -o boot.raw.mode=long grow
"${AS_NOBODY[@]}" </dev/null >"$log" 2>&1 &
pid=$!   # khyve's own (as_nobody_cmd)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$KHYVE_TEST_TMP"' EXIT
for _ in $(seq 300); do
	grep -q "spin: running" "$log" 2>/dev/null && "$KHYVECTL" --list | grep -q "^grow " && break
	kill -0 $pid 2>/dev/null || fail "khyve died: $(cat "$log")"
	sleep 0.1
done
grep -q "spin: running" "$log" || fail "the VM did not come up: $(cat "$log")"
[ "$(stat -c %U /proc/$pid)" = nobody ] || fail "khyve does not run as nobody"

threads=$(ls /proc/$pid/task | wc -l)
prlimit --pid $pid --nproc="$threads:$threads"
ctl_fails "starting the thread of vCPU 1" --vm=grow --add-cpu
echo "thread limit reached: $OUT"
ctl_ok --vm=grow --get-topology
expect_output "1 of 2 vCPUs online"

prlimit --pid $pid --nproc=unlimited:unlimited
ctl_ok --vm=grow --add-cpu
expect_output "vCPU 1 (APIC ID 1) added: 2 of 2 vCPUs online"
echo "limit lifted: $OUT"
ctl_ok --vm=grow --get-rip --cpu=1
[ -d /proc/$pid/task ] && [ "$(ls /proc/$pid/task | wc -l)" -gt "$threads" ] ||
	fail "no new thread for vCPU 1"

ctl_ok --vm=grow --destroy
set +e
wait $pid
STATUS=$?
set -e
OUT=$(cat "$log")
expect_status 4
echo "vCPU 1 added on the second attempt; destroyed with status 4"
