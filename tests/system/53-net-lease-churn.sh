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
reference_guest
net_setup || fail "cannot set up the test network namespace"

TRANSFER_SECS=${TRANSFER_SECS:-8}
RENEW_EVERY=${RENEW_EVERY:-1}
# vhost takes at most 16 memory regions; the guest starts with one or two.
RENEWALS_EACH_WAY=${RENEWALS_EACH_WAY:-6}

# transfer_with_churn N IPERF-ARGS...: one iperf3 run, with N map changes during it.
transfer_with_churn() {
	local n=$1 i=0
	shift
	net_iperf_client "$TRANSFER_SECS" "$@" >"$KHYVE_TEST_TMP/iperf.json" &
	local client=$!
	sleep 1
	while [ $i -lt "$n" ]; do
		ctl_ok --vm="$name" --add-memory=2M
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
	net_guest_serving "$name" "$backend" 3 "$log" 400
	pid=$NET_GUEST_PID
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
