# vCPU hot-add that an unmodified Linux guest sees: the reference guest
# boots with 2 of 4 possible vCPUs (-c cpus=2,sockets=1,cores=4,threads=1,
# maxcpus=4) and khyve.test=hotplug; each time it says it is waiting for a
# CPU, the test adds one (khyvectl --vm=NAME --add-cpu); the guest must see
# cpuN appear through ACPI (GED interrupt -> \_SB.CSCN -> Notify), online
# it, and count it in nproc: 2 -> 3 -> 4. A fifth add must fail cleanly,
# naming maxcpus, and the guest must still power off normally (status 1).
. "$(dirname "$0")/lib.sh"
reference_guest

name=linux-hotplug-$$
console=$KHYVE_TEST_TMP/console
: >"$console"
khyvectl=$KHYVE_ROOT/build/khyvectl
[ -x "$khyvectl" ] || fail "$khyvectl is not built (make)"
add_cpu() { "$khyvectl" --vm="$name" --add-cpu 2>&1; }

start=$(date +%s%N)
timeout --kill-after=5 900 "$KHYVE" -c cpus=2,sockets=1,cores=4,threads=1,maxcpus=4 \
	-m 256M -l com1,stdio \
	-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD" \
	-o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=hotplug" "$name" \
	</dev/null >"$console" 2>&1 &
pid=$!
# A failed check must not leave the VM running until the timeout.
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$KHYVE_TEST_TMP"' EXIT

added=()
for n in 2 3; do
	wait_log "$console" "KHYVE-GUEST: hotplug: waiting for cpu$n" 600 "$pid"
	t0=$(date +%s%N)
	set +e
	r=$(add_cpu)
	rc=$?
	set -e
	echo "add-cpu #$((n - 1)): exit $rc: $r"
	[ "$rc" -eq 0 ] || fail "adding cpu$n failed: $r"
	added+=("$r")
	if [ "$n" -eq 3 ]; then
		# maxcpus reached: a fifth vCPU is refused, and says why. (The guest
		# is still busy bringing cpu3 up, so the VM is certainly running.)
		set +e
		r5=$(add_cpu)
		rc5=$?
		set -e
		echo "add-cpu #3 (fifth vCPU): exit $rc5: $r5"
		[ "$rc5" -ne 0 ] || fail "a fifth vCPU beyond maxcpus=4 was accepted: $r5"
		printf '%s\n' "$r5" | grep -q maxcpus || fail "refusal does not mention maxcpus: $r5"
	fi
	wait_log "$console" "KHYVE-GUEST: hotplug: cpu$n appeared" 150 "$pid"
	echo "cpu$n: add-cpu to online in the guest: $((($(date +%s%N) - t0) / 1000000)) ms (host clock)"
done

set +e
wait "$pid"
STATUS=$?
set -e
OUT=$(cat "$console")
secs=$((($(date +%s%N) - start) / 1000000))
printf '%s\n' "$OUT" | grep KHYVE-GUEST || true
[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "khyve timed out; output: $OUT"
printf '%s\n' "${added[0]}" | grep -qw 2 || fail "first add-cpu did not report vCPU 2: ${added[0]}"
printf '%s\n' "${added[1]}" | grep -qw 3 || fail "second add-cpu did not report vCPU 3: ${added[1]}"
expect_output "KHYVE-GUEST: hotplug: before nproc=2 present=0-1 possible=0-3 online=0-1"
expect_output "online=1 nproc=3 present=0-2 online=0-2"
expect_output "online=1 nproc=4 present=0-3 online=0-3"
# Where the new vCPUs sit (CPUID and _MAT/MADT agree: one socket, cores 2 and 3;
# core_siblings lists the online ones).
expect_output "cpu2 package=0 core=2 core_siblings=0-2"
expect_output "cpu3 package=0 core=3 core_siblings=0-3"
expect_output "Booting Node 0 Processor 2 APIC 0x2"
expect_output "Booting Node 0 Processor 3 APIC 0x3"
# The GED's interrupt: IOAPIC pin 20, level-triggered (fasteoi).
expect_output "20-fasteoi ACPI:Ged"
expect_output "CPU2 has been hot-added"
expect_output "CPU3 has been hot-added"
expect_output "KHYVE-GUEST: powering off"
expect_status 1
echo "linux cpu hotplug: boot, two hot-adds, poweroff in $((secs / 1000)).$((secs % 1000 / 100)) s"
