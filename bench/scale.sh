#!/bin/bash
# Scale: create, start and destroy a VM of N vCPUs, and boot Linux on many.
#
# 1. Wall time of a whole khyve process (start to exit) running
#    tests/guests/lm-poweroff: the boot vCPU powers off at once and the
#    others stay parked waiting for INIT/SIPI, so the figure is the cost of
#    N vCPUs as such. The peer is QEMU/KVM with -smp N and a 64 KiB "BIOS"
#    whose reset vector writes to an isa-debug-exit port (exits at once; its
#    APs are parked too): -M pc up to 255 vCPUs, -M q35 with an x2APIC-capable
#    IOMMU above (QEMU 7.2 stops at 288, so larger N has no peer).
#    Median of KHYVE_BENCH_SCALE_RUNS (default 3).
# 2. The same through libkhyve (build/bench/scale-phases): assemble / run /
#    teardown, then, for the largest N, each kind of KVM call on its own.
# 3. Linux with KHYVE_BENCH_SCALE_LINUX vCPUs (default 64) and 512 MiB: time
#    to /init, khyve and QEMU -M pc.
# N: KHYVE_BENCH_SCALE (default "1 64 256 1024").
#
# KHYVE_BENCH_SCALE_KVM=emulated (bench/scale-host.sh sets it): this KVM
# emulates guest code (kvm_pvm) -- khyve runs with kvm.allow_emulated=true,
# which the micro-guest needs and nothing else; QEMU is tried once and left
# out when it cannot run on this KVM; part 3 (Linux) is skipped.
. "$(dirname "$0")/lib.sh"
khyve_kvm=()
emulated=
if [ "${KHYVE_BENCH_SCALE_KVM:-}" = emulated ]; then
	emulated=1
	khyve_kvm=(-o kvm.allow_emulated=true)
	export KHYVE_TEST_ALLOW_EMULATED=1
fi
# One fd per vCPU and then some.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
guest=$KHYVE_ROOT/build/bench/lm-poweroff.bin
[ -r "$guest" ] || fail "$guest is missing (make)"
sizes=(${KHYVE_BENCH_SCALE:-1 64 256 1024})
runs=${KHYVE_BENCH_SCALE_RUNS:-3}

bios=$BENCH_TMP/exit.bios
python3 - "$bios" <<'PY' 2>/dev/null || {
import sys
b = bytearray(b'\xf4' * 65536)  # hlt everywhere
code = bytes([0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd])  # mov al,0; out 0xf4,al; hlt; jmp $-1
b[0xfff0:0xfff0 + len(code)] = code  # the reset vector, F000:FFF0
open(sys.argv[1], 'wb').write(b)
PY
	# No python: the same 64 KiB with printf/head.
	{ head -c 65520 /dev/zero | tr '\0' '\364'; printf '\260\000\346\364\364\353\375'; head -c 9 /dev/zero | tr '\0' '\364'; } >"$bios"
}
qemu_max=288
qemu_exit() { # N QEMU-MACHINE-ARGS...: runwatch's result line
	local n=$1
	shift
	"$RUNWATCH" -t 600 -- qemu-system-x86_64 -enable-kvm -cpu host "$@" \
		-smp "$n" -m 64M -nodefaults -no-user-config -display none \
		-bios "$bios" -device isa-debug-exit,iobase=0xf4,iosize=1 || true
}
if [ -n "$emulated" ]; then
	res=$(qemu_exit 1 -M pc 2>&1)
	if [ "$(kv status "$res")" != 1 ]; then
		echo "QEMU cannot run on this KVM (its exit: $(kv status "$res"); kvm_pvm refuses the MSRs it sets up): khyve alone"
		qemu_max=0
	fi
fi

echo "create + start (APs parked) + destroy, whole process, median of $runs (ms)"
printf '  %6s %10s %10s %8s   %s\n' vCPUs khyve QEMU ratio "QEMU machine"
for n in "${sizes[@]}"; do
	k=() q=()
	for ((i = 0; i < runs; i++)); do
		res=$("$RUNWATCH" -t 600 -- "$KHYVE" -c "$n" -m 64M -l com1,stdio "${khyve_kvm[@]}" \
			-o boot.raw="$guest" -o boot.raw.mode=long scale) || true
		[ "$(kv status "$res")" = 1 ] || fail "khyve with $n vCPUs did not power off: $res"
		k+=("$(kv exit_ms "$res")")
		machine=-
		if [ "$n" -le "$qemu_max" ]; then
			if [ "$n" -le 255 ]; then
				machine=pc qm=(-M pc)
			else
				machine="q35+intel-iommu" qm=(-M q35,kernel-irqchip=split -device intel-iommu,intremap=on,eim=on)
			fi
			res=$(qemu_exit "$n" "${qm[@]}")
			# isa-debug-exit: status (0 << 1) | 1.
			[ "$(kv status "$res")" = 1 ] || fail "QEMU with $n vCPUs did not exit through isa-debug-exit: $res"
			q+=("$(kv exit_ms "$res")")
		fi
	done
	km=$(printf '%s\n' "${k[@]}" | median)
	qm_=-
	[ ${#q[@]} -gt 0 ] && qm_=$(printf '%s\n' "${q[@]}" | median)
	printf '  %6s %10s %10s %8s   %s\n' "$n" "$km" "$qm_" "$([ "$qm_" = - ] && echo - || ratio "$km" "$qm_")" "$machine"
done
echo "  (issue target: 1024 vCPUs in under 1 s)"

echo
echo "khyve's phases (libkhyve, one VM each, ms)"
printf '  %6s %10s %10s %10s %10s\n' vCPUs assemble run teardown total
out=$("$KHYVE_ROOT/build/bench/scale-phases" "$guest" "${sizes[@]}") || fail "scale-phases failed: $out"
while read -r line; do
	printf '  %6s %10s %10s %10s %10s\n' "$(kv n "$line")" "$(kv assemble_ms "$line")" \
		"$(kv run_ms "$line")" "$(kv teardown_ms "$line")" "$(kv total_ms "$line")"
done <<<"$out"

big=${sizes[-1]}
echo
echo "the KVM calls of $big vCPUs, each kind timed on its own (scale-phases --breakdown)"
out=$("$KHYVE_ROOT/build/bench/scale-phases" --breakdown "$big") || fail "breakdown failed: $out"
printf '  %-38s %10s %12s\n' step "total ms" "per vCPU us"
while read -r line; do
	case "$line" in
	*step=*) printf '  %-38s %10s %12s\n' "$(sed 's/.*step=\(.*\) ms=.*/\1/' <<<"$line")" \
		"$(kv ms "$line")" "$(kv per_vcpu_us "$line")" ;;
	*) echo "  $(sed 's/breakdown //' <<<"$line")" ;;
	esac
done <<<"$out"

lc=${KHYVE_BENCH_SCALE_LINUX:-64}
[ -z "$emulated" ] || lc=0
if [ "$lc" != 0 ]; then
	load_guest
	echo
	echo "Linux with $lc vCPUs, 512 MiB, on $(nproc) host CPU(s): wall ms to /init (guest uptime at /init)"
	cmdline="console=ttyS0 quiet panic=-1"
	declare -A w=()
	for mon in khyve qemu-pc; do
		case "$mon" in
		khyve) khyve_linux "$lc" 512M "$cmdline" ;;
		qemu-pc) qemu_linux pc "$lc" 512M "$cmdline" ;;
		esac
		log=$BENCH_TMP/linux-$lc-$mon.log
		res=$("$RUNWATCH" -t 1200 -m "KHYVE-GUEST: reached /init" -l "$log" -- "${CMD[@]}") ||
			fail "$mon with $lc vCPUs did not reach /init: $res; output: $(tail -n 20 "$log")"
		w[$mon]=$(kv marker_ms "$res")
		printf '  %-8s %10s ms (%s s of guest uptime)\n' "$mon" "${w[$mon]}" \
			"$(sed -n 's/.*reached \/init after \([0-9.]*\) s.*/\1/p' "$log" | head -n1)"
	done
	echo "  khyve / QEMU pc: $(ratio "${w[khyve]}" "${w[qemu-pc]}")"
fi
