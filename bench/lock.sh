#!/bin/bash
# Locking-model benchmark (bench/lock_bench.c): latency of a VM-exclusive
# operation (lock-all) and of a one-vCPU freeze, and the cost of the map
# read side, at 1, 16, 64 and 256 vCPUs, idle and busy. Needs KVM (run it
# through `make bench`, which picks the host or the testbox).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for guest in idle stress; do
	case $guest in
	idle) what="every vCPU halted in KVM (lm-idle)" ;;
	stress) what="every vCPU busy, exiting to userspace (lm-stress)" ;;
	esac
	echo "== locking model, $what"
	"$root/build/bench/lock_bench" "$root/build/guests/lm-$guest.bin" 1 16 64 256
done
echo "lock-all must park every vCPU, so it grows with their number (and, when they"
echo "are busy, with how long the host takes to schedule each one); the map read"
echo "side involves no vCPU and stays flat."
