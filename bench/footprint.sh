#!/bin/bash
# Footprint: what the monitor itself costs in memory. The Linux guest boots
# to its busybox shell (the reference init without khyve.test=1) and idles;
# 3 s later /proc/PID/smaps is read. The guest's RAM is the one anonymous
# mapping of exactly the -m size; its Rss is what the guest has touched.
#   overhead      = process Rss - guest RAM Rss   (libraries' shared pages included)
#   anon overhead = anonymous Rss - guest RAM Rss (heap, stacks, private data)
# For khyve and for QEMU (pc and microvm) with the same guest. Also shown:
# how much guest RAM sits in transparent huge pages, and the RAM mapping's
# host address modulo 2 MiB: KVM maps guest RAM with 2 MiB stage-2 pages
# only where guest-physical and host-virtual addresses agree modulo 2 MiB,
# so anything but 0x0 means 4 KiB stage-2 mappings throughout.
# Configurations: KHYVE_BENCH_FOOTPRINT (default "1:128M 2:256M").
. "$(dirname "$0")/lib.sh"
load_guest
cmdline="console=ttyS0 quiet panic=-1"
marker="busybox shell on the console"
monitors=(khyve qemu-pc qemu-microvm)

bytes() { # 128M -> bytes (M and G only: the configurations here)
	case "$1" in
	*M) echo $((${1%M} << 20)) ;;
	*G) echo $((${1%G} << 30)) ;;
	*) fail "size $1: use M or G" ;;
	esac
}
kib2mib() { awk -v k="$1" 'BEGIN {printf "%.1f\n", k/1024}'; }

echo "footprint with the guest idle at its shell (MiB; guest RAM = what the guest touched)"
printf '  %-8s %-13s %9s %10s %10s %14s %10s %11s\n' config monitor RSS "guest RAM" overhead "anon overhead" "guest THP" "RAM % 2MiB"
for conf in ${KHYVE_BENCH_FOOTPRINT:-1:128M 2:256M}; do
	cpus=${conf%%:*} mem=${conf#*:}
	declare -A ov=()
	for mon in "${monitors[@]}"; do
		case "$mon" in
		khyve) khyve_linux "$cpus" "$mem" "$cmdline" ;;
		qemu-*) qemu_linux "${mon#qemu-}" "$cpus" "$mem" "$cmdline" ;;
		esac
		log=$BENCH_TMP/$mon.log
		res=$("$RUNWATCH" -t 300 -m "$marker" -w 3 -s "$(bytes "$mem")" -l "$log" -- "${CMD[@]}") ||
			fail "$mon ($cpus vCPU, $mem): no idle shell or no guest RAM mapping: $res; output: $(tail -n 20 "$log")"
		ov[$mon]=$(kv overhead_kib "$res")
		printf '  %-8s %-13s %9s %10s %10s %14s %10s %11s\n' "$cpus/$mem" "$mon" \
			"$(kib2mib "$(kv rss_kib "$res")")" "$(kib2mib "$(kv guest_kib "$res")")" \
			"$(kib2mib "${ov[$mon]}")" "$(kib2mib "$(kv anon_overhead_kib "$res")")" \
			"$(kib2mib "$(kv guest_thp_kib "$res")")" "$(kv guest_addr_2m_offset "$res")"
	done
	echo "  $cpus/$mem: khyve overhead / QEMU overhead: $(ratio "${ov[khyve]}" "${ov[qemu-pc]}") (pc), $(ratio "${ov[khyve]}" "${ov[qemu-microvm]}") (microvm); issue target: khyve <= 5 MiB"
	unset ov
done
