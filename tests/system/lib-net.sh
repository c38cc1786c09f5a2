# shellcheck shell=bash
# lib-net.sh — a private network for a virtio-net test, sourced by system
# tests and bench/net.sh (after their lib.sh). Needs root, iproute2 and, for
# the iperf3 helpers, iperf3 (scripts/ensure-deps check).
#
# Each user gets its own network namespace, khyve-tPID, holding a TAP
# device tap0 with 10.0.2.1/24 (the guest is 10.0.2.2, tests/guest-linux/init
# khyve.test=net's defaults). Nothing outside the namespace is touched and
# only the private 10.0.2.0/24 test net is used; the namespace (with tap0 and
# every process left in it) goes away on exit.
#
#   net_setup [USER]     create the namespace and tap0 (up, 10.0.2.1/24),
#                        owned by USER when given (ip tuntap ... user USER:
#                        the TAP an administrator prepares for an
#                        unprivileged monitor); loads tun and vhost_net if
#                        they are modules not loaded yet (both datapaths
#                        are tested and measured); sets NET_NS, NET_TAP,
#                        NET_HOST_IP, NET_GUEST_IP, NET_PREFIX and installs
#                        the exit trap
#   net_exec CMD...      run CMD inside the namespace (the VM monitor, so
#                        that it can open tap0 by name; iperf3 clients)
#   net_guest_serving NAME BACKEND N LOG [SECS]
#                        start khyve NAME inside the namespace, in the
#                        background (NET_GUEST_PID): the reference guest
#                        (reference_guest, 256 MiB, virtio-net on tap0 with
#                        datapath BACKEND) serving N iperf3 runs
#                        (khyve.iperf=s:N), its output in LOG, killed after
#                        SECS (default 900)
#   net_iperf_server     start iperf3 -s on 10.0.2.1 inside the namespace,
#                        in the background (NET_IPERF_PID); the guest's
#                        khyve.iperf=c:SECS connects to it
#   net_iperf_client SECS [-R] [IPERF3 ARGS...]
#                        iperf3 -c 10.0.2.2 -t SECS -J inside the namespace,
#                        retrying the connection for up to
#                        NET_CONNECT_TIMEOUT s (default 120: the guest's
#                        khyve.iperf=s server may still be starting); the
#                        JSON result goes to stdout; non-zero status when
#                        it failed (its JSON with "error" on stdout) or did
#                        not end within SECS + 60 s
#   net_iperf_summary    read iperf3 -J output on stdin, print
#                        "BYTES SECONDS GBITS" of what the receiver got
#   net_teardown         kill what runs in the namespace and delete it
#                        (the exit trap calls it; calling it twice is fine)
#
# The exit trap keeps a trap that was there before (lib.sh's removal of
# $KHYVE_TEST_TMP, bench/lib.sh's of $BENCH_TMP) and runs it afterwards.

NET_NS=khyve-t$$
NET_TAP=tap0
NET_HOST_IP=10.0.2.1
NET_GUEST_IP=10.0.2.2
NET_PREFIX=24
NET_IPERF_PID=
export NET_IPERF_PID
NET_GUEST_PID=
_net_up=

net_setup() {
	local owner=${1:-}
	# What was trapped on EXIT before us: trap -p prints "trap -- 'CMD'
	# EXIT", quoted for eval; it runs after the teardown.
	_net_prev_trap=
	eval "set -- $(trap -p EXIT)"
	[ $# -lt 3 ] || _net_prev_trap=$3
	trap 'net_teardown; eval "$_net_prev_trap"' EXIT
	[ -e /dev/net/tun ] || modprobe tun 2>/dev/null || true
	[ -e /dev/vhost-net ] || modprobe vhost_net 2>/dev/null || true
	ip netns add "$NET_NS" || { echo "lib-net: ip netns add $NET_NS failed" >&2; return 1; }
	_net_up=1
	ip -n "$NET_NS" link set lo up &&
		ip -n "$NET_NS" tuntap add dev "$NET_TAP" mode tap ${owner:+user "$owner"} &&
		ip -n "$NET_NS" addr add "$NET_HOST_IP/$NET_PREFIX" dev "$NET_TAP" &&
		ip -n "$NET_NS" link set "$NET_TAP" up || { echo "lib-net: creating $NET_TAP in $NET_NS failed" >&2; return 1; }
}

net_exec() {
	ip netns exec "$NET_NS" "$@"
}

net_guest_serving() {
	net_exec timeout --kill-after=5 "${5:-900}" "$KHYVE" -m 256M -l com1,stdio \
		-s 3,virtio-net,"$NET_TAP",backend="$2" \
		-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD" \
		-o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=net khyve.iperf=s:$3" \
		"$1" </dev/null >"$4" 2>&1 &
	NET_GUEST_PID=$!
}

net_iperf_server() {
	# -B: bound to the test address only. Its own output is of no use
	# (the guest prints the client's view).
	net_exec iperf3 -s -B "$NET_HOST_IP" >/dev/null 2>&1 &
	NET_IPERF_PID=$!
	# Wait (bounded) until it listens.
	local n=0
	while [ $n -lt 50 ] && ! net_exec ss -ltn 2>/dev/null | grep -q ":5201 "; do
		sleep 0.1
		n=$((n + 1))
	done
}

net_iperf_client() {
	local secs=$1 deadline out rc
	shift
	deadline=$(($(date +%s) + ${NET_CONNECT_TIMEOUT:-120}))
	while :; do
		# --connect-timeout: a SYN to a guest that is not up yet.
		# iperf3 3.12 -J exits 0 even when it failed: its JSON then has "error".
		# timeout: a transfer that stalls must fail, not hang the caller
		# (iperf3 waits for the server's results for ever).
		rc=0
		out=$(net_exec timeout --kill-after=5 $((secs + 60)) \
			iperf3 -c "$NET_GUEST_IP" -t "$secs" -J --connect-timeout 3000 "$@" 2>&1) || rc=$?
		if [ "$rc" -eq 0 ] && ! printf '%s\n' "$out" | grep -q '^[[:space:]]*"error":'; then
			printf '%s\n' "$out"
			return 0
		fi
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "iperf3 -c $NET_GUEST_IP -t $secs${*:+ $*} did not end within $((secs + 60)) s (a stalled transfer?)"
			return 1
		fi
		case "$out" in
		*"unable to connect"* | *"Connection refused"* | *"No route to host"* | *"timed out"*)
			[ "$(date +%s)" -lt "$deadline" ] || { printf '%s\n' "$out"; return 1; }
			sleep 0.5
			;;
		*) printf '%s\n' "$out"; return 1 ;;
		esac
	done
}

net_iperf_summary() {
	python3 -c '
import json, sys
r = json.load(sys.stdin)
s = r["end"]["sum_received"]
print(s["bytes"], "%.3f" % s["seconds"], "%.3f" % (s["bits_per_second"] / 1e9))'
}

net_teardown() {
	[ -n "$_net_up" ] || return 0
	_net_up=
	local pids
	# Everything still running in the namespace (VM monitors, iperf3).
	pids=$(ip netns pids "$NET_NS" 2>/dev/null)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill $pids 2>/dev/null
	sleep 0.2
	pids=$(ip netns pids "$NET_NS" 2>/dev/null)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null
	ip netns delete "$NET_NS" 2>/dev/null || true
}
