#!/bin/bash
# Instructions per port-I/O dispatch: valgrind --tool=callgrind counts the
# user-space instructions khyve executes to handle one KVM_EXIT_IO, from
# ioport_dispatch() into the device (build/bench/ioport-dispatch drives it
# N times on a VM without KVM; only the driving loop is counted). Exact and
# repeatable, unlike a timing: a change to the exit path shows up here as a
# number of instructions. Runs on the host, needs no KVM.
# KHYVE_BENCH_CALLGRIND_N dispatches per scenario (default 100000).
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install valgrind (skipped)"; exit 0; }
n=${KHYVE_BENCH_CALLGRIND_N:-100000}
drv=$KHYVE_ROOT/build/bench/ioport-dispatch
echo "instructions per dispatch (callgrind, $n iterations each)"
printf '  %-12s %-52s %14s\n' scenario "what" "instr/dispatch"
while read -r s per what; do
	out=$BENCH_TMP/cg.$s
	valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="bench_$s" "$drv" "$s" "$n" \
		>"$BENCH_TMP/vg.$s" 2>&1 || fail "callgrind on $s: $(grep -v '^==' "$BENCH_TMP/vg.$s" | tail -n 5)"
	ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$BENCH_TMP/vg.$s")
	[ -n "$ir" ] && [ "$ir" -gt 0 ] || fail "callgrind counted nothing for $s"
	printf '  %-12s %-52s %14s\n' "$s" "$what" "$(awk -v i="$ir" -v n="$n" -v p="$per" 'BEGIN {printf "%.1f", i/n/p}')"
done <<'LIST'
lsr 1 UART LSR read (a polling guest's spin)
thr 1 UART THR write, COM1 unconnected
thr_devnull 1 UART THR write to /dev/null (+ write(2) wrapper)
pci_cfg 2 PCI config address write + data read
unclaimed 1 read of an unclaimed port (bus miss)
LIST
echo "  where an LSR read's instructions go (inclusive per dispatch):"
callgrind_annotate --inclusive=yes "$BENCH_TMP/cg.lsr" 2>/dev/null |
	sed -n 's/^ *\([0-9,][0-9,]*\) ([ 0-9.]*%) *\([^ ]*\) \[.*/\1 \2/p' |
	grep -v -E ':main$|below main|libc_start|bench_lsr|\?\?\?' | head -n 6 |
	awk -v n="$n" '{ir=$1; gsub(",", "", ir); f=$2; sub(/.*\//, "", f); sub(/@@.*/, "", f); printf "    %8.1f  %s\n", ir/n, f}'

# The device side of one virtqueue round trip (pop, push, interrupt
# decision): the per-packet/per-request cost every virtio device pays on top
# of moving the bytes (build/bench/vq-cycle; bench/README.md).
vq=$KHYVE_ROOT/build/bench/vq-cycle
echo "instructions per virtqueue round trip, device side (callgrind, $n iterations each)"
printf '  %-12s %-52s %14s\n' scenario "what" "instr/trip"
while read -r s what; do
	out=$BENCH_TMP/cg.vq.$s
	valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect=bench_vq_device "$vq" "$s" "$n" \
		>"$BENCH_TMP/vg.vq.$s" 2>&1 || fail "callgrind on vq-cycle $s: $(grep -v '^==' "$BENCH_TMP/vg.vq.$s" | tail -n 5)"
	ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$BENCH_TMP/vg.vq.$s")
	[ -n "$ir" ] && [ "$ir" -gt 0 ] || fail "callgrind counted nothing for vq-cycle $s"
	printf '  %-12s %-52s %14s\n' "$s" "$what" "$(awk -v i="$ir" -v n="$n" 'BEGIN {printf "%.1f", i/n}')"
done <<'LIST'
tx2 2 readable descriptors (net header + frame)
rx1_event 1 writable buffer, EVENT_IDX interrupt test
indirect4 indirect table of 4 (blk header, 2 data, status)
LIST
