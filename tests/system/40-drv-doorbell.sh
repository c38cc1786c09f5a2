# The driver interface's doorbells (lm-drv-doorbell): ioeventfd hooks on a
# port and an MMIO address count exactly the guest's writes without exits,
# unhooking is synchronous (the count stays, the writes exit to userspace),
# claimed ports are refused, and the hook follows its BAR.
. "$(dirname "$0")/lib.sh"

run_guest 120 lm-drv-doorbell -o pci.testdev=true
echo "$OUT"
expect_status 1
expect_output "I/O doorbell writes counted by the driver: 1000"
expect_output "unhooked I/O doorbell writes that exited to userspace: 100"
expect_output "MMIO doorbell writes counted by the driver: 1000"
expect_output "drv-doorbell: ok"

# Without the device there is no device: the guest says so and halts.
run_guest 60 lm-drv-doorbell
expect_status 2
expect_output "no test device on bus 0"
