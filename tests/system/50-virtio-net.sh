# virtio-net (viona) end to end, for both datapaths (vhost-net in the
# kernel, and khyve's userspace thread): the reference Linux guest (Debian's
# kernel, virtio_pci + virtio_net modules) on a TAP inside a private network
# namespace (tests/system/lib-net.sh; only 10.0.2.0/24 in that namespace).
# Checked:
#   - the guest's driver binds, eth0 comes up, and ethtool shows checksum
#     offload and TSO on (the features khyve offered and the guest took);
#   - ping both ways;
#   - iperf3 both ways (the guest is the server, the host the client, then
#     -R) moves data and ends without error;
#   - during the second iperf3 run a memory-map change (khyvectl
#     --add-memory: a new RAM segment) breaks viona's lease; the transfer
#     completes, the stats show the lease expired and was signed again, and
#     a third run moves data on the new lease;
#   - poweroff ends khyve with status 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-net.sh"
set -e
reference_guest
net_setup || fail "cannot set up the test network namespace"

for backend in vhost user; do
	name=net-$backend
	log=$KHYVE_TEST_TMP/$name.log
	net_guest_serving "$name" "$backend" 3 "$log"
	pid=$NET_GUEST_PID
	wait_log "$log" "iperf server listening 1" 600 $pid
	net_exec ping -c 3 -W 2 "$NET_GUEST_IP" >"$KHYVE_TEST_TMP/ping" 2>&1 ||
		fail "$backend: host cannot ping the guest: $(cat "$KHYVE_TEST_TMP/ping"); khyve: $(cat "$log")"

	# host -> guest
	net_iperf_client 3 >"$KHYVE_TEST_TMP/h2g.json" || fail "$backend: iperf3 host->guest: $(cat "$KHYVE_TEST_TMP/h2g.json")"
	read -r h2g_bytes _ h2g_gbits < <(net_iperf_summary <"$KHYVE_TEST_TMP/h2g.json")
	[ "$h2g_bytes" -gt 0 ] || fail "$backend: iperf3 host->guest moved nothing"

	# guest -> host, with a memory-map change in the middle of it
	wait_log "$log" "iperf server listening 2" 120 $pid
	signed0=$(drv_stat "$name" leases_signed)
	expired0=$(drv_stat "$name" lease_expiries)
	net_iperf_client 6 -R >"$KHYVE_TEST_TMP/g2h.json" &
	client=$!
	sleep 2
	ctl_ok --vm="$name" --add-memory=64M
	wait $client || fail "$backend: iperf3 guest->host (with a map change): $(cat "$KHYVE_TEST_TMP/g2h.json")"
	read -r g2h_bytes _ g2h_gbits < <(net_iperf_summary <"$KHYVE_TEST_TMP/g2h.json")
	[ "$g2h_bytes" -gt 0 ] || fail "$backend: iperf3 guest->host moved nothing"
	# The guest now waits for a third run, so the VM is still there to ask.
	wait_log "$log" "iperf server listening 3" 120 $pid
	signed1=$(drv_stat "$name" leases_signed)
	expired1=$(drv_stat "$name" lease_expiries)
	[ "$expired1" -gt "$expired0" ] || fail "$backend: the map change did not expire viona's lease ($expired0 -> $expired1)"
	[ "$signed1" -gt "$signed0" ] || fail "$backend: viona did not sign a new lease after the map change ($signed0 -> $signed1)"
	# And traffic after the renewal, on the new lease alone.
	net_iperf_client 2 >"$KHYVE_TEST_TMP/after.json" || fail "$backend: iperf3 after the map change: $(cat "$KHYVE_TEST_TMP/after.json")"
	read -r after_bytes _ _ < <(net_iperf_summary <"$KHYVE_TEST_TMP/after.json")
	[ "$after_bytes" -gt 0 ] || fail "$backend: nothing moved after the map change"

	set +e
	wait $pid
	STATUS=$?
	set -e
	OUT=$(cat "$log")
	printf '%s\n' "$OUT" | grep -E "KHYVE-GUEST: (net|iperf)" || true
	expect_output "KHYVE-GUEST: net eth0 driver=virtio_net"
	expect_output "KHYVE-GUEST: net features tx-checksumming: on"
	expect_output "KHYVE-GUEST: net features tcp-segmentation-offload: on"
	expect_output "KHYVE-GUEST: net ping ok"
	expect_output "KHYVE-GUEST: net done rc=0"
	printf '%s\n' "$OUT" | grep -q "needs reset" && fail "$backend: the device asked for a reset: $OUT"
	expect_status 1
	echo "virtio-net $backend: host->guest $h2g_gbits Gbit/s, guest->host $g2h_gbits Gbit/s (lease renewed across a map change: signed $signed0 -> $signed1)"
done
