# viona under memory-map churn: many lease renewals while traffic flows.
# 50-virtio-net makes one map change per datapath; a renewal that loses a
# ring position, a kick or an interrupt shows there only by chance. Here,
# for each datapath, the reference guest serves iperf3 while the host adds
# memory every RENEW_EVERY s (khyvectl --add-memory, 2 MiB each: a new RAM
# segment, so viona's lease expires and is signed again) during a transfer
# each way. Each transfer must end (bounded: a stalled ring fails it) with
# data moved, the renewals must show in the driver stats, and after them a
# last short transfer must still move data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-net.sh"
set -e
env_file=${KHYVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/khyve}/guest/env
[ -r "$env_file" ] || fail "no reference guest: run tests/guest-linux/prepare on the host first ($env_file)"
. "$env_file"
export KHYVE_RUNTIME_DIR=$KHYVE_TEST_TMP/run
mkdir -p "$KHYVE_RUNTIME_DIR"
[ -e /dev/vhost-net ] || modprobe vhost_net 2>/dev/null || true
net_setup || fail "cannot set up the test network namespace"

TRANSFER_SECS=${TRANSFER_SECS:-8}
RENEW_EVERY=${RENEW_EVERY:-1}
# vhost takes at most 16 memory regions; the guest starts with one or two.
RENEWALS_EACH_WAY=${RENEWALS_EACH_WAY:-6}

wait_log() {
	local t=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null; do
		kill -0 "$4" 2>/dev/null || fail "khyve exited before '$2': $(cat "$1")"
		[ $t -lt $(($3 * 10)) ] || fail "no '$2' within $3 s: $(cat "$1")"
		sleep 0.1
		t=$((t + 1))
	done
}

drv_stat() {
	ctl --vm="$1" --get-stats --json
	[ "$STATUS" -eq 0 ] || fail "khyvectl --get-stats: $OUT"
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
print(r["drv"][sys.argv[1]])' "$2"
}

# transfer_with_churn N IPERF-ARGS...: one iperf3 run, with N map changes during it.
transfer_with_churn() {
	local n=$1 i=0
	shift
	net_iperf_client "$TRANSFER_SECS" "$@" >"$KHYVE_TEST_TMP/iperf.json" &
	local client=$!
	sleep 1
	while [ $i -lt "$n" ]; do
		ctl --vm="$name" --add-memory=2M
		[ "$STATUS" -eq 0 ] || fail "$backend: khyvectl --add-memory (change $((i + 1))): $OUT"
		sleep "$RENEW_EVERY"
		i=$((i + 1))
	done
	wait $client || fail "$backend: iperf3 $* across $n map changes: $(cat "$KHYVE_TEST_TMP/iperf.json"); khyve: $(cat "$log")"
	read -r bytes _ gbits < <(net_iperf_summary <"$KHYVE_TEST_TMP/iperf.json")
	[ "$bytes" -gt 0 ] || fail "$backend: iperf3 $* moved nothing"
	echo "$backend: iperf3 $* across $n map changes: $gbits Gbit/s"
}

for backend in vhost user; do
	name=churn-$backend
	log=$KHYVE_TEST_TMP/$name.log
	net_exec timeout --kill-after=5 400 "$KHYVE" -m 256M -l com1,stdio \
		-s 3,virtio-net,"$NET_TAP",backend=$backend \
		-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD" \
		-o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=net khyve.iperf=s:3" \
		"$name" </dev/null >"$log" 2>&1 &
	pid=$!
	wait_log "$log" "iperf server listening 1" 300 $pid
	signed0=$(drv_stat "$name" leases_signed)
	transfer_with_churn "$RENEWALS_EACH_WAY" -R
	wait_log "$log" "iperf server listening 2" 60 $pid
	transfer_with_churn "$RENEWALS_EACH_WAY"
	wait_log "$log" "iperf server listening 3" 60 $pid
	signed1=$(drv_stat "$name" leases_signed)
	[ $((signed1 - signed0)) -ge $((2 * RENEWALS_EACH_WAY)) ] ||
		fail "$backend: $((2 * RENEWALS_EACH_WAY)) map changes, but leases signed went $signed0 -> $signed1"
	transfer_with_churn 0
	set +e
	wait $pid
	STATUS=$?
	set -e
	OUT=$(cat "$log")
	expect_output "KHYVE-GUEST: net done rc=0"
	printf '%s\n' "$OUT" | grep -q "needs reset" && fail "$backend: the device asked for a reset: $OUT"
	expect_status 1
	echo "$backend: leases signed $signed0 -> $signed1"
done
