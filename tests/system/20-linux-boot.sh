# A real Linux boot: Debian's cloud kernel (bzImage, LZ4 payload decompressed
# on the host) and a busybox initramfs (tests/guest-linux/), 4 vCPUs as
# 2 sockets x 2 cores. Checked from the guest's own report: /init ran, Linux
# counts 4 CPUs with the requested topology, sees the PCI host bridge and
# the ACPI tables, names the CPU as the host does (the brand string), and
# `poweroff -f` ends khyve with status 1.
. "$(dirname "$0")/lib.sh"
reference_guest

start=$(date +%s%N)
run_khyve 900 -c 4,sockets=2,cores=2,threads=1 -m 256M -l com1,stdio \
	-o boot.kernel="$KHYVE_GUEST_KERNEL" -o boot.initrd="$KHYVE_GUEST_INITRD" \
	-o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=1" linux-topology
secs=$((($(date +%s%N) - start) / 1000000))
printf '%s\n' "$OUT" | grep KHYVE-GUEST || true
expect_output "KHYVE-GUEST: reached /init"
expect_output "KHYVE-GUEST: nproc=4"
expect_output "present=0-3 possible=0-3 online=0-3"
# Socket = package; cores 0 and 1 in each; no SMT siblings; a package's CPUs are core siblings.
expect_output "cpu0 package=0 core=0 siblings=0 core_siblings=0-1"
expect_output "cpu1 package=0 core=1 siblings=1 core_siblings=0-1"
expect_output "cpu2 package=1 core=0 siblings=2 core_siblings=2-3"
expect_output "cpu3 package=1 core=1 siblings=3 core_siblings=2-3"
expect_output "pci 0000:00:00.0 0x1275:0x1275 class=0x060000"
expect_output "APIC"
expect_output "FACP"
expect_output "DSDT"
# The brand string: KVM leaves it empty, khyve passes the host's on.
host_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$host_model" ] || fail "this host's /proc/cpuinfo has no model name"
expect_output "KHYVE-GUEST: model name: $host_model"
expect_output "KHYVE-GUEST: powering off"
expect_status 1
echo "linux: boot to poweroff in $((secs / 1000)).$((secs % 1000 / 100)) s ($(printf '%s\n' "$OUT" | sed -n 's/.*reached \/init after \([0-9.]*\) s.*/\1/p') s of guest uptime at /init)"
