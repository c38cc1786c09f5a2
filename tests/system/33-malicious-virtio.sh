# Malicious virtio driver (tests/guests/lm-evil-virtio.S) against a
# virtio-net at slot 3 and a virtio-blk at slot 4, once with each virtio-net
# datapath (khyve's userspace thread, then the kernel's vhost-net). What the
# devices promise a hostile guest: a ring that breaks the protocol (a
# descriptor loop, a chain longer than the queue, a buffer outside RAM or
# 4 GiB long, the avail index far ahead, an indirect table outside RAM,
# rings outside RAM) makes the device set DEVICE_NEEDS_RESET and stop,
# says so on stderr in one line, and a reset gives a working device back;
# a request that is merely wrong (virtio-blk: a short header, sectors past
# the end) completes with an I/O error and the device keeps working;
# garbage in the common config changes nothing it must not; a virtio-net
# whose BAR4 the guest moves while it runs takes its transmit doorbell at
# the new address (and nothing at the old one). Never a crash:
# khyve ends with the guest's power-off (status 1), sandboxed as always
# (a device path that strays outside the allow-list would die of SIGSYS).
# With vhost the ring errors come from the kernel, through the rings'
# error eventfds (viona_vhost.c): each must reach NEEDS_RESET too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-net.sh"
[ -e /dev/vhost-net ] || modprobe vhost_net 2>/dev/null || true
[ -e /dev/vhost-net ] || fail "no /dev/vhost-net (modprobe vhost_net)"
net_setup || fail "cannot set up the test network namespace"

# A small disk whose first bytes the guest's valid read must return.
img=$KHYVE_TEST_TMP/evil.img
truncate -s 1M "$img"
printf 'khyve-evil-virtio' | dd of="$img" conv=notrunc status=none
sum=$(md5sum <"$img")

# khyve inside the namespace (to open tap0 by name), its stderr apart from
# the guest's COM1 output so that the two cannot interleave within a line.
err=$KHYVE_TEST_TMP/stderr
wrapper=$KHYVE_TEST_TMP/khyve-in-netns
printf '#!/bin/sh\nexec ip netns exec %s %s "$@" 2>%s\n' "$NET_NS" "$KHYVE" "$err" >"$wrapper"
chmod +x "$wrapper"

rings="descriptor-loop chain-longer-than-queue buffer-outside-ram length-0xffffffff
	avail-index-ahead indirect-outside-ram rings-outside-ram used-ring-past-ram-end"
requests="short-header read-beyond-end read-straddling-end read-sector-2^64-1"

for backend in user vhost; do
	start=$(date +%s%N)
	KHYVE=$wrapper run_guest 600 lm-evil-virtio -m 256M \
		-s 3,virtio-net,"$NET_TAP",backend=$backend -s 4,virtio-blk,"$img"
	ms=$((($(date +%s%N) - start) / 1000000))
	OUT="$OUT
--- stderr ---
$(cat "$err")"
	printf '%s\n' "$OUT" | grep -q "FAIL" && fail "$backend: the guest failed: $OUT"
	expect_status 1
	expect_output "evil-virtio: done"
	for dev in net blk; do
		expect_output "evil-virtio: $dev garbage: registers sane"
		for c in $rings; do
			expect_output "evil-virtio: $dev $c: NEEDS_RESET"
		done
	done
	for r in $requests; do
		expect_output "evil-virtio: blk $r: IOERR"
	done
	expect_output "evil-virtio: blk valid-read: OK"
	# BAR4 moved under the running device: the doorbell follows it.
	expect_output "evil-virtio: net bar-move: OK"
	# stderr: one line per broken session and device, nothing else.
	n_net=$(grep -c "^khyve: virtio-net@3: device needs reset: ." "$err")
	n_blk=$(grep -c "^khyve: virtio-blk@4: device needs reset: ." "$err")
	if [ "$n_net" -ne 8 ] || [ "$n_blk" -ne 8 ]; then
		fail "$backend: expected 8 'device needs reset' lines per device, got $n_net (net) and $n_blk (blk): $OUT"
	fi
	other=$(grep -v "device needs reset: " "$err" || true)
	[ -z "$other" ] || fail "$backend: unexpected stderr: $other"
	if [ $backend = vhost ]; then
		# The kicked cases reach NEEDS_RESET through vhost's error eventfd.
		[ "$(grep -c "device needs reset: vhost-net: ring 1 error" "$err")" -eq 6 ] ||
			fail "vhost: expected 6 ring errors reported by vhost-net: $(cat "$err")"
	fi
	[ "$(md5sum <"$img")" = "$sum" ] || fail "$backend: the image changed (the guest only reads)"
	echo "$backend: every hostile ring set NEEDS_RESET, every bad request failed cleanly, in $ms ms"
	grep "device needs reset" "$err" | sed "s/^/    $backend: /"
done
echo "malicious virtio driver: both datapaths and virtio-blk survived"
