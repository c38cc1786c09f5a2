# The driver interface's interrupts (lm-drv-msi): MSI-X vectors through
# irqfd routes kept in step with the guest's table -- ping-pong delivery,
# per-vector and function masking with the pending bit and delivery once on
# unmask, reprogramming while masked, a raw vmm_drv_msi, the interrupt-config
# callback, and the INTx fallback on the slot's _PRT GSI.
. "$(dirname "$0")/lib.sh"

run_guest 180 lm-drv-msi -o pci.testdev=true
echo "$OUT"
expect_status 1
expect_output "ping-pong interrupts delivered: 50"
expect_output "interrupts after unmasking vector 0 (3 pending signals): 51"
expect_output "drv-msi: ok"

# Another slot: another INTx GSI (16 + slot % 4), same results.
run_guest 180 lm-drv-msi -o pci.testdev.slot=7
echo "$OUT"
expect_status 1
expect_output "drv-msi: ok"
