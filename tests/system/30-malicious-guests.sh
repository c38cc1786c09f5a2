# Malicious guests (tests/guests/lm-evil-*.S): a guest may do anything to
# the machine it is given, and khyve must keep running, answering as the
# hardware would (the guest then says "survived" and powers off: status 1),
# or stop with the status bhyve documents for what the guest did (3 for a
# triple fault). Never a crash: no death by signal, no status 4.
# They run sandboxed (the default), so a device model that strayed into a
# system call outside the allow-list would show up here as SIGSYS, too.
# MSI-X abuse runs on the test device (-o pci.testdev=true), khyve's one
# device with an MSI-X table so far.
. "$(dirname "$0")/lib.sh"

evil() {
	local g=$1 t=$2
	shift 2
	local start=$(date +%s%N)
	run_guest "$t" "$g" -m 256M "$@"
	echo "$g: status $STATUS in $((($(date +%s%N) - start) / 1000000)) ms"
}

# Every port 0-0xffff written and read (every size below 0x1000).
evil lm-evil-ports 300
expect_status 1
expect_output "evil-ports: every port written and read: survived"

# MMIO holes below and above 4 GiB: all-ones reads, dropped writes.
evil lm-evil-mmio 120
expect_status 1
expect_output "evil-mmio: 0 unexpected values; survived"

# PCI configuration space programmed with garbage, on every bus.
evil lm-evil-pci 300
expect_status 1
expect_output "evil-pci: host bridge intact"
expect_output "evil-pci: bad configuration programming: survived"

# String I/O with large counts, into and out of the MMIO hole too.
evil lm-evil-rep 120
expect_status 1
expect_output "evil-rep: rep ins/outs with huge counts: survived"

# MSI-X: the table and PBA with every size, random messages fired, enable
# and function mask toggled, the table's BAR moved onto the LAPIC, another
# BAR and RAM.
evil lm-evil-msix 300 -o pci.testdev=true
expect_status 1
expect_output "evil-msix: device still answers"
expect_output "evil-msix: MSI-X table abuse: survived"

# A triple fault with the stack in the hole: bhyve's status 3.
evil lm-evil-triple 60
expect_status 3
expect_output "evil-triple: about to triple fault"

echo "malicious guests: khyve survived every one, or stopped with the documented status"
