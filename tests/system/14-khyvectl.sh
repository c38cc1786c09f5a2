# khyvectl against live VMs: the lm-spin micro-guest runs until destroyed,
# and the control socket is asked everything khyvectl offers: --list,
# --get-stats (counts grow, and stand still while paused), --get-rip,
# --pause/--resume, --get-topology, --add-cpu up to maxcpus, --add-memory
# (placement above 4 GiB, the driver interface's map_changes in
# --get-stats, sizes refused), --destroy
# (bhyve's status 4, socket removed), and every way a request can fail:
# unknown vCPU, unknown VM, malformed requests, a peer of another uid, a
# name already in use, a stale socket. None of the failures may disturb
# the VM.
. "$(dirname "$0")/lib.sh"
set -e
SPIN=$KHYVE_GUESTS/lm-spin.bin
EXTRA=()
# For a quick look on a host whose KVM only emulates (kvm_pvm).
[ -n "${KHYVE_TEST_ALLOW_EMULATED:-}" ] && EXTRA=(-o kvm.allow_emulated=true)

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$KHYVE_TEST_TMP"
}
trap cleanup EXIT

# start_vm NAME KHYVE-ARGS... : khyve in the background, $VMPID; returns once
# the guest has printed its line and the VM is listed. (No timeout wrapper:
# $VMPID must be khyve's own pid; the EXIT trap kills what is left.)
start_vm() {
	local name=$1
	shift
	"$KHYVE" -m 64M -l com1,stdio -o boot.raw="$SPIN" \
		-o boot.raw.mode=long "${EXTRA[@]}" "$@" "$name" \
		</dev/null >"$KHYVE_TEST_TMP/$name.log" 2>&1 &
	VMPID=$!
	PIDS+=("$VMPID")
	for _ in $(seq 300); do
		if grep -q "spin: running" "$KHYVE_TEST_TMP/$name.log" 2>/dev/null &&
			"$KHYVECTL" --list | grep -q "^$name "; then
			return 0
		fi
		kill -0 "$VMPID" 2>/dev/null || fail "khyve $name died: $(cat "$KHYVE_TEST_TMP/$name.log")"
		sleep 0.1
	done
	fail "VM $name did not come up: $(cat "$KHYVE_TEST_TMP/$name.log")"
}

# Total exits of all vCPUs, from the table.
total_exits() {
	ctl_ok --vm="$1" --get-stats
	printf '%s\n' "$OUT" | awk '$1 ~ /^[0-9]+$/ { s += $NF } END { print s + 0 }'
}

expect_running() {
	ctl_ok --list
	printf '%s\n' "$OUT" | grep -Eq "^$1 +[0-9]+ +[0-9]+/[0-9]+ +running" ||
		fail "expected $1 listed as running: $OUT"
}

start_vm spin -c cpus=2,sockets=2,cores=2,threads=1,maxcpus=4
SPINPID=$VMPID

# --list: name, pid, vCPUs online/max, state.
ctl_ok --list
printf '%s\n' "$OUT" | grep -Eq "^spin +$SPINPID +2/4 +running\$" ||
	fail "--list should show spin, pid $SPINPID, 2/4, running: $OUT"
ctl_ok --list --json
expect_output "\"name\":\"spin\""
echo "--list: $(printf '%s\n' "$OUT")"

# --get-stats: both vCPUs exit (port writes), and keep doing so.
a=$(total_exits spin)
sleep 0.5
b=$(total_exits spin)
[ "$b" -gt "$a" ] || fail "exit counts did not grow: $a then $b"
ctl_ok --vm=spin --get-stats
[ "$(printf '%s\n' "$OUT" | awk '$1 ~ /^[0-9]+$/ && $2 > 0' | wc -l)" -eq 2 ] ||
	fail "expected I/O exits on both vCPUs: $OUT"
expect_output "unclaimed I/O ports: 0 reads,"
echo "--get-stats: $a then $b exits"

# --get-rip on vCPU 0: inside the guest image (loaded at 0x100000).
ctl_ok --vm=spin --get-rip --cpu=0
rip=$(printf '%s\n' "$OUT" | awk '/^rip\[0\]/ { print $2 }')
size=$(stat -c %s "$SPIN")
[ -n "$rip" ] && [ $((rip)) -ge $((0x100000)) ] && [ $((rip)) -lt $((0x100000 + size)) ] ||
	fail "rip of vCPU 0 should lie in [0x100000, 0x100000+$size): $OUT"
ctl_ok --vm=spin --get-rsp --get-rflags --get-cr0 --get-cr3 --get-cr4 --get-efer --get-activity
expect_output "efer[0]"
expect_output "activity[0]"
ctl_ok --vm=spin --get-all --cpu=1
expect_output "vCPU 1 (APIC ID 1)"
ctl_ok --vm=spin --get-all --json
expect_output "\"rip\":\"0x"
echo "--get-rip: $rip"

# --pause: nothing runs, so two looks agree exactly; --resume: it runs again.
ctl_ok --vm=spin --pause
ctl_ok --vm=spin --get-stats --json
s1=$OUT
sleep 0.5
ctl_ok --vm=spin --get-stats --json
[ "$OUT" = "$s1" ] || fail "stats changed while paused: $s1 then $OUT"
ctl_ok --list
printf '%s\n' "$OUT" | grep -Eq "^spin .* paused\$" || fail "--list should say paused: $OUT"
ctl_ok --vm=spin --get-rip --cpu=1   # a paused VM can be inspected
ctl_fails "already paused" --vm=spin --pause
p=$(total_exits spin)
ctl_ok --vm=spin --resume
sleep 0.5
q=$(total_exits spin)
[ "$q" -gt "$p" ] || fail "exit counts did not grow after --resume: $p then $q"
ctl_fails "not paused" --vm=spin --resume
echo "--pause/--resume: frozen at $p exits, $q after resuming"

# --get-topology matches -c.
ctl_ok --vm=spin --get-topology
expect_output "topology: 2 sockets x 2 cores x 1 threads; 2 of 4 vCPUs online (cpus=2, maxcpus=4)"
for row in "0 0 0 0 0" "1 1 0 1 0" "2 2 1 0 0 offline" "3 3 1 1 0 offline"; do
	printf '%s\n' "$OUT" | awk '{ $1 = $1; print }' | grep -q "^$row" ||
		fail "--get-topology: no row '$row': $OUT"
done
ctl_ok --vm=spin --get-topology --json
expect_output "\"maxcpus\":4"

# Failures that must not disturb the VM.
ctl_fails "no vCPU 99 (this VM has maxcpus 4)" --vm=spin --get-rip --cpu=99
ctl_fails "vCPU 3 is not online" --vm=spin --get-rip --cpu=3
ctl_fails "no VM named nope" --vm=nope --get-stats
ctl_fails "unknown option" --vm=spin --get-nothing
command -v python3 >/dev/null || fail "python3 is needed to send malformed requests"
RAW=$(python3 - "$KHYVE_RUNTIME_DIR/spin.sock" <<'PY'
import socket, sys
def ask(data):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sys.argv[1])
    s.sendall(data)
    out = b""
    while not out.endswith(b"\n"):
        b = s.recv(4096)
        if not b:
            break
        out += b
    s.close()
    return out.decode()
for req in [b"khyve/1 frobnicate\n", b"garbage\x00\xff\n", b"khyve/9 info\n",
            b"khyve/1 regs 0 0\n", b"x" * 300, b"khyve/1 regs 4294967296\n"]:
    print(ask(req).strip())
PY
)
echo "$RAW"
[ "$(printf '%s\n' "$RAW" | grep -c '^{"ok":false,"proto":1,.*"error":')" -eq 6 ] ||
	fail "every malformed request should get an error response: $RAW"
printf '%s\n' "$RAW" | grep -q "unknown verb 'frobnicate'" || fail "unknown verb not named: $RAW"
expect_running spin
a=$(total_exits spin)
sleep 0.3
b=$(total_exits spin)
[ "$b" -gt "$a" ] || fail "the VM stopped running after the malformed requests"

# A peer of another uid is refused even when the filesystem lets it in.
cp "$KHYVECTL" "$KHYVE_TEST_TMP/khyvectl"
chmod 755 "$KHYVE_TEST_TMP/khyvectl"
chmod 711 "$KHYVE_TEST_TMP" "$KHYVE_RUNTIME_DIR"
chmod 666 "$KHYVE_RUNTIME_DIR/spin.sock"
set +e
OUT=$(timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$KHYVE_TEST_TMP/khyvectl" --vm=spin --get-stats 2>&1)
STATUS=$?
set -e
chmod 700 "$KHYVE_TEST_TMP" "$KHYVE_RUNTIME_DIR"
chmod 600 "$KHYVE_RUNTIME_DIR/spin.sock"
[ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || fail "uid 65534 was not refused ($STATUS): $OUT"
expect_output "permission denied: uid 65534 is neither the VM's owner (uid 0) nor root"
echo "other uid: $OUT"
expect_running spin

# One VM per name: a second 'spin' is refused while the first lives.
run_khyve 30 -m 64M -o boot.raw="$SPIN" "${EXTRA[@]}" spin
expect_status 4
expect_output "a VM named 'spin' is already running"
expect_running spin

# --add-cpu on -c 1,maxcpus=2: once, then maxcpus says no.
start_vm grow -c 1,maxcpus=2
GROWPID=$VMPID
ctl_ok --vm=grow --add-cpu
expect_output "vCPU 1 (APIC ID 1) added: 2 of 2 vCPUs online"
ctl_fails "maxcpus" --vm=grow --add-cpu
ctl_ok --vm=grow --get-topology
expect_output "2 of 2 vCPUs online"
ctl_ok --list
printf '%s\n' "$OUT" | grep -Eq "^grow +[0-9]+ +2/2 +running\$" || fail "--list should show grow 2/2: $OUT"

# --add-memory: a memory-map change under the running guest (which is not
# told, so it spins on). Each add lands on the first 1 GiB boundary at or
# above 4 GiB and the top of RAM (the 64 MiB of boot RAM end far below);
# the driver interface counts every map change.
map_changes() {
	ctl_ok --vm=grow --get-stats
	printf '%s\n' "$OUT" | awk '$1 == "map_changes" { print $2 }'
}
gpa_of() {
	printf '%s\n' "$OUT" | sed -n 's/^added 64 MiB of memory at \(0x[0-9a-f]*\) ([0-9]* segments)$/\1/p'
}
ctl_ok --vm=grow --get-stats
expect_output "driver interface:"
m0=$(map_changes)
[ -n "$m0" ] || fail "--get-stats shows no map_changes: $OUT"
ctl_ok --vm=grow --add-memory=64M
expect_output "(2 segments)"
gpa1=$(gpa_of)
ctl_ok --vm=grow --add-memory=67108864   # a bare number is bytes
expect_output "(3 segments)"
gpa2=$(gpa_of)
[ -n "$gpa1" ] && [ -n "$gpa2" ] || fail "--add-memory did not say where: $gpa1 $gpa2 $OUT"
[ $((gpa1)) -ge $((1 << 32)) ] && [ $((gpa2)) -ge $((1 << 32)) ] && [ $((gpa1)) -ne $((gpa2)) ] ||
	fail "two adds should land at two places at or above 4 GiB: $gpa1 and $gpa2"
[ $((gpa1)) -eq $((4 << 30)) ] && [ $((gpa2)) -eq $((5 << 30)) ] ||
	fail "expected the adds at 4 GiB and 5 GiB: $gpa1 and $gpa2"
m1=$(map_changes)
[ "$m1" -ge $((m0 + 2)) ] || fail "map_changes should grow by 2 with two adds: $m0 then $m1"
ctl_ok --vm=grow --add-memory=2M --json
expect_output '"verb":"add-memory","gpa":"0x0000000180000000","size":2097152,"segments":4'
# Sizes it cannot add: one line, status 1, and the map stays as it was.
ctl_fails "the size must be a multiple of 2 MiB" --vm=grow --add-memory=3M
[ "$STATUS" -eq 1 ] || fail "--add-memory=3M: status $STATUS, expected 1"
ctl_fails "the size must be 2 MiB to 64 GiB" --vm=grow --add-memory=65G
[ "$STATUS" -eq 1 ] || fail "--add-memory=65G: status $STATUS, expected 1"
ctl_fails "malformed size '12X'" --vm=grow --add-memory=12X
[ "$STATUS" -eq 2 ] || fail "--add-memory=12X is a usage error: status $STATUS, expected 2"
m2=$(map_changes)
[ "$m2" -eq $((m1 + 1)) ] || fail "refused adds changed the map: $m1, then $m2 after one add"
a=$(total_exits grow)
sleep 0.3
b=$(total_exits grow)
[ "$b" -gt "$a" ] || fail "the guest stopped running after --add-memory"
expect_running grow
echo "--add-memory: at $gpa1 and $gpa2; map changes $m0 -> $m2"

# --destroy: khyvectl returns once khyve is gone; status 4 as bhyve; no socket.
for vm in spin:$SPINPID grow:$GROWPID; do
	pid=${vm#*:} vm=${vm%:*}
	ctl_ok --vm=$vm --destroy
	expect_output "VM $vm destroyed (khyve exits with status 4)"
	[ ! -e "$KHYVE_RUNTIME_DIR/$vm.sock" ] || fail "$vm's socket is still there after --destroy"
	set +e
	wait "$pid"
	st=$?
	set -e
	[ "$st" -eq 4 ] || fail "khyve $vm exited with $st after --destroy, expected 4: $(cat "$KHYVE_TEST_TMP/$vm.log")"
	grep -q "destroyed" "$KHYVE_TEST_TMP/$vm.log" || fail "khyve $vm did not say why it stopped"
	echo "--destroy $vm: khyve exited 4"
done
ctl_fails "no VM named spin" --vm=spin --get-stats

# Something that is not a good khyve on the other end: khyvectl gives up in
# bounded time, or refuses what it got, with one line.
python3 - "$KHYVE_RUNTIME_DIR" <<'PY' &
import os, socket, sys, threading
def serve(name, answer):
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(sys.argv[1], name + ".sock"))
    s.listen(8)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)
        if answer is not None:
            c.recv(4096)
            c.sendall(answer)
            if not answer.endswith(b"\n"):
                c.close()   # half an answer, then gone
for name, answer in [("mute", None), ("junk", b"not json\n"),
                     ("other", b'{"ok":true,"proto":2}\n'), ("cut", b'{"ok":true,')]:
    threading.Thread(target=serve, args=(name, answer), daemon=True).start()
threading.Event().wait(120)
PY
FAKE=$!
PIDS+=("$FAKE")
for _ in $(seq 100); do [ -S "$KHYVE_RUNTIME_DIR/cut.sock" ] && break; sleep 0.1; done
start=$(date +%s)
ctl_fails "VM mute did not answer within 1000 ms" --vm=mute --get-stats --timeout=1
[ $(($(date +%s) - start)) -le 5 ] || fail "--timeout=1 took $(($(date +%s) - start)) s"
ctl_fails "malformed response from VM junk" --vm=junk --get-stats
ctl_fails "VM other speaks control protocol 2" --vm=other --get-stats
ctl_fails "malformed response from VM cut" --vm=cut --get-stats
ctl_ok --list --timeout=1
printf '%s\n' "$OUT" | grep -q "^mute .*unreachable: VM mute did not answer" ||
	fail "--list should show mute as unreachable: $OUT"
kill "$FAKE"
{ wait "$FAKE"; } 2>/dev/null || true
rm -f "$KHYVE_RUNTIME_DIR"/{mute,junk,other,cut}.sock
echo "fake VMs: timeout, malformed and foreign responses refused"

# A khyve killed outright leaves a stale socket: not listed, not a VM, and
# the name is free again.
start_vm stale
kill -9 "$VMPID"
{ wait "$VMPID"; } 2>/dev/null || true
[ -S "$KHYVE_RUNTIME_DIR/stale.sock" ] || fail "expected a stale socket after kill -9"
ctl_fails "stale control socket" --vm=stale --get-stats
ctl_ok --list
printf '%s\n' "$OUT" | grep -q "^stale " && fail "a stale socket is listed: $OUT"
start_vm stale
ctl_ok --vm=stale --destroy
echo "stale socket: replaced by a new VM of that name"
echo "khyvectl: all checks passed"
