#!/bin/bash
# Boot: wall time from process start to the guest's "reached /init" line on
# the UART, khyve against QEMU/KVM (qemu-system-x86_64 -enable-kvm -cpu host,
# direct kernel boot) with the same kernel, initramfs, command line, memory
# and vCPUs, in the same run. QEMU runs as -M pc and -M microvm; the ratio
# is taken against the faster of the two (by median).
#
# Each monitor runs with bench/preload/first-kvm-run.so preloaded, which
# marks its first KVM_RUN: "to guest" is the monitor's own start-up (process
# start to the first guest instruction), "then" the rest to /init. For khyve
# "then" is the guest kernel alone -- a floor no monitor can go below with
# this kernel, shown as the best ratio khyve could reach even with no
# start-up at all; for QEMU it also holds its firmware, the fw_cfg copy of
# kernel and initrd, and the kernel's decompressor.
#
# KHYVE_BENCH_RUNS (default 5) runs each, interleaved; KHYVE_BENCH_BOOT
# lists the configurations as CPUS:MEM (default "1:128M 2:256M").
# The guest is left at its shell and stopped with SIGTERM at the marker.
. "$(dirname "$0")/lib.sh"
load_guest
cmdline="console=ttyS0 quiet panic=-1"
marker="KHYVE-GUEST: reached /init"
monitors=(khyve qemu-pc qemu-microvm)
preload=$KHYVE_ROOT/build/bench/first-kvm-run.so
[ -r "$preload" ] || fail "$preload is missing (scripts/run-benchmarks builds it)"
event="KHYVE-BENCH: first KVM_RUN"

for conf in ${KHYVE_BENCH_BOOT:-1:128M 2:256M}; do
	cpus=${conf%%:*} mem=${conf#*:}
	declare -A wall=() up=() cpu=() entry=() after=()
	for ((i = 1; i <= RUNS; i++)); do
		for mon in "${monitors[@]}"; do
			case "$mon" in
			khyve) khyve_linux "$cpus" "$mem" "$cmdline" ;;
			qemu-*) qemu_linux "${mon#qemu-}" "$cpus" "$mem" "$cmdline" ;;
			esac
			log=$BENCH_TMP/$mon.$i.log
			res=$("$RUNWATCH" -t 300 -m "$marker" -e "$event" -l "$log" -- \
				env LD_PRELOAD="$preload" "${CMD[@]}") ||
				fail "$mon ($cpus vCPU, $mem) did not reach /init: $res; output: $(tail -n 20 "$log")"
			wall[$mon]+="$(kv marker_ms "$res") "
			up[$mon]+="$(sed -n 's/.*reached \/init after \([0-9.]*\) s.*/\1/p' "$log" | head -n1) "
			cpu[$mon]+="$(kv cpu_ms "$res") "
			entry[$mon]+="$(kv event_ms "$res") "
			after[$mon]+="$(awk -v m="$(kv marker_ms "$res")" -v e="$(kv event_ms "$res")" \
				'BEGIN {printf "%.1f", m - e}') "
		done
	done
	echo "boot to /init: $cpus vCPU, $mem, $RUNS runs each (wall ms from process start; guest uptime at /init in s)"
	printf '  %-14s %9s %9s %9s %9s %12s %12s   %s\n' monitor median min "to guest" "then" "uptime@init" "cpu ms" "all runs (ms)"
	best= best_med=
	declare -A med=() mn=()
	for mon in "${monitors[@]}"; do
		med[$mon]=$(median_of "${wall[$mon]}")
		mn[$mon]=$(minimum_of "${wall[$mon]}")
		printf '  %-14s %9s %9s %9s %9s %12s %12s   %s\n' "$mon" "${med[$mon]}" "${mn[$mon]}" \
			"$(median_of "${entry[$mon]}")" \
			"$(median_of "${after[$mon]}")" \
			"$(median_of "${up[$mon]}")" \
			"$(median_of "${cpu[$mon]}")" "${wall[$mon]}"
		if [ "$mon" != khyve ] && { [ -z "$best" ] || awk -v a="${med[$mon]}" -v b="$best_med" 'BEGIN{exit !(a<b)}'; }; then
			best=$mon best_med=${med[$mon]}
		fi
	done
	echo "  khyve / $best (the faster QEMU): median $(ratio "${med[khyve]}" "${med[$best]}"), min $(ratio "${mn[khyve]}" "${mn[$best]}")  (issue target: <= 0.33)"
	floor=$(median_of "${after[khyve]}")
	echo "  the guest kernel alone under khyve (first KVM_RUN to /init): median $floor ms;" \
		"with no start-up at all khyve / $best would be $(ratio "$floor" "${med[$best]}")"
	for mon in qemu-pc qemu-microvm; do
		[ "$mon" = "$best" ] || echo "  khyve / $mon: median $(ratio "${med[khyve]}" "${med[$mon]}")"
	done
	# CPU time (guest included) does not grow while a busy host keeps the
	# process waiting for a CPU, so it is the steadier ratio in the testbox.
	echo "  CPU time khyve / $best: median $(ratio "$(median_of "${cpu[khyve]}")" "$(median_of "${cpu[$best]}")")"
	unset wall up cpu entry after med mn
done
