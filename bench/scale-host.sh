#!/bin/bash
# Scale on this host's own KVM when that is the emulating kvm_pvm module.
#
# Where the host has no hardware-backed KVM, bench/scale runs in the
# testbox, whose KVM is itself emulated by TCG: there KVM_CREATE_VCPU alone
# costs ~0.8 ms a vCPU, 30-50 times what it costs on hardware, so the
# testbox cannot say whether 1024 vCPUs fit in a second. kvm_pvm runs KVM's
# own code (vCPU creation, the ioctls, thread wake-ups) natively and only
# the guest's instructions in its emulator; the scale micro-guest executes
# a handful of them. So on a kvm_pvm host this runs parts 1 and 2 of
# bench/scale.sh right here (KHYVE_BENCH_SCALE_KVM=emulated): khyve's
# create + start + destroy at native host speed. QEMU cannot run on
# kvm_pvm, so there is no peer; the figure is absolute. On a host with
# kvm_intel/kvm_amd bench/scale already runs on the host, and with no
# /dev/kvm there is nothing to measure: either way this says so and exits 0.
set -euo pipefail
: "${KHYVE_ROOT:?run through scripts/run-benchmarks (make bench)}"
cd "$KHYVE_ROOT"
if [ ! -e /dev/kvm ]; then
	echo "no /dev/kvm on this host: nothing to measure here (bench/scale runs in the testbox)"
	exit 0
fi
if [ ! -d /sys/module/kvm_pvm ]; then
	echo "/dev/kvm here is not kvm_pvm: bench/scale measures this (see its table)"
	exit 0
fi
echo "on this host's kvm_pvm (KVM's code native, guest instructions emulated): khyve only"
KHYVE_BENCH_SCALE_KVM=emulated exec bash bench/scale.sh
