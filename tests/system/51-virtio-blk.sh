# virtio-blk end to end: the reference Linux guest (khyve.test=disk,
# tests/guest-linux/init) mounts an ext4 image on /dev/vda, writes a 1 MiB
# file whose content follows from khyve.disk.seed plus a small seed file,
# syncs, unmounts, remounts and checks them; then tries to write the second,
# read-only disk /dev/vdb, which must fail. The host checks, with debugfs on
# the image (no mount needed), that exactly the expected bytes landed in the
# file system, and that the read-only image did not change by one bit. A
# second boot with another seed must find the first boot's seed file: the
# data really is in the image, not in a guest cache.
. "$(dirname "$0")/lib.sh"
reference_guest
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null ||
	PATH=$PATH:/sbin:/usr/sbin
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || fail "need e2fsprogs (mkfs.ext4, debugfs)"

img=$KHYVE_TEST_TMP/disk.img
img2=$KHYVE_TEST_TMP/ro.img
truncate -s 64M "$img"
mkfs.ext4 -q -F "$img" || fail "mkfs.ext4 $img"
# The read-only disk: 8 MiB of a recognizable pattern, never to change.
awk 'BEGIN { for (i = 0; i < 131072; i++) printf "%-63s\n", "read-only line " i }' >"$img2"
sum2=$(md5sum <"$img2")

# The guest's pattern (tests/guest-linux/init, disk_pattern).
pattern() {
	awk -v s="$1" 'BEGIN { for (i = 0; i < 16384; i++) printf "%-63s\n", "khyve seed=" s " line=" i }'
}

# boot SEED: one guest run over both disks; checks the guest's report.
boot() {
	local seed=$1
	echo "virtio-blk: booting with seed $seed"
	run_khyve 900 -c 1 -m 256M -l com1,stdio \
		-s 4,virtio-blk,"$img" -s 5,virtio-blk,"$img2",ro \
		-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD" \
		-o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=disk khyve.disk.seed=$seed" \
		linux-virtio-blk
	printf '%s\n' "$OUT" | grep -E 'KHYVE-GUEST|khyve:' || true
	printf '%s\n' "$OUT" | grep -q "needs reset" && fail "a virtio-blk queue broke: $OUT"
	expect_output "KHYVE-GUEST: disk mounted /dev/vda size=131072 ro=0"
	expect_output "KHYVE-GUEST: disk verify ok"
	expect_output "KHYVE-GUEST: disk vdb present ro=1 size=16384"
	expect_output "KHYVE-GUEST: disk vdb write failed"
	expect_output "KHYVE-GUEST: disk done rc=0"
	expect_output "KHYVE-GUEST: powering off"
	expect_status 1
}

# check SEED: the image holds exactly what the guest wrote with SEED.
check() {
	local seed=$1 got want
	echo "virtio-blk: checking the image for seed $seed"
	got=$(debugfs -R 'cat /khyve-data.bin' "$img" 2>/dev/null | md5sum)
	want=$(pattern "$seed" | md5sum)
	[ "$got" = "$want" ] || fail "seed $seed: /khyve-data.bin in the image has md5 $got, expected $want"
	got=$(debugfs -R 'cat /khyve-seed.txt' "$img" 2>/dev/null)
	[ "$got" = "seed=$seed" ] || fail "seed $seed: /khyve-seed.txt in the image is '$got'"
	e2fsck -fn "$img" >/dev/null 2>&1 || fail "seed $seed: e2fsck -fn finds the file system damaged: $(e2fsck -fn "$img" 2>&1 | tail -n 5)"
	[ "$(md5sum <"$img2")" = "$sum2" ] || fail "seed $seed: the read-only image changed"
}

start=$(date +%s%N)
boot 1234
check 1234
boot 77
expect_output "KHYVE-GUEST: disk found seed.txt: seed=1234"
check 77
secs=$((($(date +%s%N) - start) / 1000000))
echo "virtio-blk: two boots, 1 MiB written and verified each time, in $((secs / 1000)).$((secs % 1000 / 100)) s"
