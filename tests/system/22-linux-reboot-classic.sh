# The classic boot path and reboot, in one Linux boot: the bzImage is loaded
# as is (boot.classic=true) so the guest's own decompressor runs, and the
# guest's `reboot -f` goes through the FADT reset register: khyve exits 0.
. "$(dirname "$0")/lib.sh"
reference_guest

start=$(date +%s%N)
run_khyve 900 -m 256M -l com1,stdio -o boot.classic=true \
	-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD" \
	-o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=reboot" linux-classic
secs=$((($(date +%s%N) - start) / 1000000))
printf '%s\n' "$OUT" | grep KHYVE-GUEST || true
expect_output "KHYVE-GUEST: reached /init"
expect_output "KHYVE-GUEST: rebooting"
expect_status 0
echo "linux (classic, guest-decompressed): boot to reboot in $((secs / 1000)).$((secs % 1000 / 100)) s"
