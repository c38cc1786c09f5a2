#!/bin/bash
# Driver-interface benchmark (bench/drv_bench.c, src/vmm_drv.h): what a
# guest port write costs when an ioeventfd hook takes it versus a userspace
# round trip, and how many interrupts per second reach the guest, one at a
# time, through an irqfd route, KVM_SIGNAL_MSI and KVM_IRQ_LINE on an
# IOAPIC pin. Needs KVM (run through `make bench`, which picks the host or
# the testbox). Numbers and ratios only; it fails only if the counts do not
# add up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
echo "== driver interface: doorbells and interrupts (lm-drv-bench guest, 1 vCPU)"
"$root/build/bench/drv_bench" "$root/build/guests/lm-drv-bench.bin" "${KHYVE_BENCH_RUNS:-5}"
echo "An ioeventfd write never leaves the kernel; the ping-pong includes a hooked doorbell"
echo "and the driver thread's wake-up on every round, the same for every method."
