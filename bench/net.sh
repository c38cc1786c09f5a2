#!/bin/bash
# Net: iperf3 throughput and host CPU per byte of virtio-net over a TAP,
# khyve (viona: -s 3,virtio-net,tap0,backend=vhost|user) against QEMU/KVM
# (-device virtio-net-pci with -netdev tap, vhost=on and vhost=off), with the
# same kernel, initramfs, memory and one vCPU, in the same run (one testbox
# boot). See bench/README.md, "net".
#
# Each peer boots the reference guest once with khyve.test=net
# khyve.iperf=s:2 khyve.offload=on,off (tests/guest-linux/init): for each
# offload setting (as negotiated; then ethtool -K eth0 tx off tso off gso
# off) the guest serves 2 x KHYVE_BENCH_NET_ROUNDS iperf3 runs, which the host side, inside a
# private network namespace with tap0 = 10.0.2.1/24 (tests/system/lib-net.sh),
# drives as a client: host->guest, then guest->host (-R). Around each run the
# host's busy CPU time (every CPU's user+nice+system+irq+softirq+steal from
# /proc/stat: the vCPU thread with the guest's time, vhost or datapath
# threads, the TAP, the host-side iperf3) is sampled, and divided by the
# bytes the receiver got.
#
# KHYVE_BENCH_NET_SECS (default 5): seconds per iperf3 run.
# KHYVE_BENCH_NET_ROUNDS (default 3): runs per (offload, direction) within a
# boot, alternating directions; the table shows the median (this shared
# host's load moves single runs by tens of per cent).
# KHYVE_BENCH_NET_PEERS (default "qemu-vhost qemu-user khyve-vhost khyve-user").
# QEMU rows must produce numbers (else the benchmark failed); a khyve row
# whose VM does not start or whose guest gets no working eth0 prints "n/a"
# with khyve's first error line.
. "$(dirname "$0")/lib.sh"
. "$KHYVE_ROOT/tests/system/lib-net.sh"
load_guest
SECS=${KHYVE_BENCH_NET_SECS:-5}
ROUNDS=${KHYVE_BENCH_NET_ROUNDS:-3}
read -r -a peers <<<"${KHYVE_BENCH_NET_PEERS:-qemu-vhost qemu-user khyve-vhost khyve-user}"
offloads=(on off)
dirs=(host-guest guest-host)
if [ "$(id -u)" != 0 ]; then
	echo "net: not measured: needs root (a network namespace and a TAP device)"
	exit 0
fi
command -v iperf3 >/dev/null || fail "iperf3 is not installed (scripts/ensure-deps check)"
net_setup || fail "cannot set up the network namespace"
hz=$(getconf CLK_TCK)
cmdline="console=ttyS0 quiet panic=-1 khyve.test=net khyve.iperf=s:$((2 * ROUNDS)) khyve.offload=on,off"

# busy: the host's busy CPU time so far, in clock ticks.
busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

net_cmd() { # PEER: sets CMD
	case "$1" in
	qemu-vhost | qemu-user)
		local vhost=on
		[ "$1" = qemu-user ] && vhost=off
		qemu_linux pc 1 256M "$cmdline"
		CMD+=(-device virtio-net-pci,netdev=n0
			-netdev "tap,id=n0,ifname=$NET_TAP,script=no,downscript=no,vhost=$vhost")
		;;
	khyve-vhost | khyve-user)
		CMD=("$KHYVE" -c 1 -m 256M -l com1,stdio -s 3,virtio-net,"$NET_TAP",backend="${1#khyve-}"
			-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD"
			-o boot.cmdline="$cmdline" bench-net)
		;;
	*) fail "unknown peer $1" ;;
	esac
}

# wait_marker LOG TEXT PID SECS: 0 once LOG has TEXT; 1 if PID ended or time ran out.
wait_marker() {
	local t=0
	while ! grep -qaF -- "$2" "$1" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || { grep -qaF -- "$2" "$1" 2>/dev/null; return; }
		[ $t -lt $(($4 * 10)) ] || return 1
		sleep 0.1
		t=$((t + 1))
	done
}

# why LOG: the first line saying what went wrong.
why() {
	local l
	l=$(grep -av KHYVE-GUEST "$1" | grep -a . | head -n 1)
	[ -n "$l" ] || l=$(grep -aE 'KHYVE-GUEST: (net no|net .*FAILED|iperf .*error)' "$1" | head -n 1)
	[ -n "$l" ] || l="no iperf3 server came up; last guest line: $(grep -a KHYVE-GUEST "$1" | tail -n 1)"
	printf '%s\n' "$l" | tr -d '\r' | cut -c1-120
}

declare -A gbit=() cpugb=() note=() gbit_runs=() cpugb_runs=()
for peer in "${peers[@]}"; do
	net_cmd "$peer"
	log=$BENCH_TMP/$peer.log
	net_exec "${CMD[@]}" </dev/null >"$log" 2>&1 &
	pid=$!
	err=
	for o in "${offloads[@]}"; do
		i=0
		for _ in $(seq "$ROUNDS"); do
		for d in "${dirs[@]}"; do
			i=$((i + 1))
			k="$peer|$o|$d"
			if [ -n "$err" ]; then note[$k]=$err; continue; fi
			if ! wait_marker "$log" "iperf server listening $i offload=$o" $pid 600; then
				err="n/a ($peer error: $(why "$log"))"
				note[$k]=$err
				continue
			fi
			r=()
			[ "$d" = guest-host ] && r=(-R)
			b0=$(busy)
			if NET_CONNECT_TIMEOUT=60 net_iperf_client "$SECS" "${r[@]}" >"$BENCH_TMP/$k.json" 2>&1 &&
				read -r bytes _ g < <(net_iperf_summary <"$BENCH_TMP/$k.json" 2>/dev/null) && [ "${bytes:-0}" -gt 0 ]; then
				b1=$(busy)
				gbit_runs[$k]+=" $g"
				cpugb_runs[$k]+=" $(awk -v t=$((b1 - b0)) -v hz="$hz" -v b="$bytes" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')"
				gbit[$k]=$(printf '%s\n' ${gbit_runs[$k]} | median)
				cpugb[$k]=$(printf '%s\n' ${cpugb_runs[$k]} | median)
			else
				note[$k]="n/a (iperf3: $(grep -aoE '"error":[^,}]*' "$BENCH_TMP/$k.json" | head -n 1 || true))"
			fi
			# Let the guest restart its server before the next marker check.
			sleep 0.5
		done
		done
	done
	# The guest powers off after its last run; give it a moment, then stop it.
	t=0
	while kill -0 $pid 2>/dev/null && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
	kill $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	grep -aE 'KHYVE-GUEST: net (features (tx-checksumming|tcp-segmentation-offload)|ping ok|ping FAILED|done)' "$log" |
		tr -d '\r' | sed "s/^/  [$peer] /" | sort -u || true
	case "$peer" in
	qemu-*)
		for o in "${offloads[@]}"; do
			for d in "${dirs[@]}"; do
				[ -n "${gbit[$peer|$o|$d]:-}" ] ||
					fail "$peer offload=$o $d: no measurement (${note[$peer|$o|$d]:-}); output: $(tail -n 30 "$log")"
			done
		done
		;;
	esac
done

echo
echo "iperf3 over a TAP in a network namespace, median of $ROUNDS runs of ${SECS} s, 1 vCPU, 256 MiB (host CPU: busy time of the whole host per GB the receiver got)"
printf '  %-12s %-8s %-11s %8s %14s\n' peer offload direction Gbit/s "CPU s/GB"
for o in "${offloads[@]}"; do
	for d in "${dirs[@]}"; do
		for peer in "${peers[@]}"; do
			k="$peer|$o|$d"
			if [ -n "${gbit[$k]:-}" ]; then
				printf '  %-12s %-8s %-11s %8s %14s\n' "$peer" "$o" "$d" "${gbit[$k]}" "${cpugb[$k]}"
			else
				printf '  %-12s %-8s %-11s %s\n' "$peer" "$o" "$d" "${note[$k]:-n/a}"
			fi
		done
	done
done
echo "ratios (throughput: >1 is khyve faster; CPU per GB: <1 is khyve cheaper)"
printf '  %-26s %-8s %-11s %10s %10s\n' pair offload direction Gbit/s "CPU s/GB"
for pair in khyve-vhost:qemu-vhost khyve-user:qemu-user; do
	a=${pair%%:*} b=${pair#*:}
	for o in "${offloads[@]}"; do
		for d in "${dirs[@]}"; do
			if [ -n "${gbit[$a|$o|$d]:-}" ] && [ -n "${gbit[$b|$o|$d]:-}" ]; then
				printf '  %-26s %-8s %-11s %10s %10s\n' "$a / $b" "$o" "$d" \
					"$(ratio "${gbit[$a|$o|$d]}" "${gbit[$b|$o|$d]}")" "$(ratio "${cpugb[$a|$o|$d]}" "${cpugb[$b|$o|$d]}")"
			else
				printf '  %-26s %-8s %-11s %10s\n' "$a / $b" "$o" "$d" n/a
			fi
		done
	done
done
