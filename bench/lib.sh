# Sourced by bench/*.sh (through bench/run-all, which sets the paths below).
# Benchmarks print numbers; they fail only when what they measure did not
# work (the guest never reached its marker, a VM did not power off...).
set -euo pipefail
: "${KHYVE_ROOT:?run through scripts/run-benchmarks (make bench)}"
# The snapshot scripts/run-benchmarks took of build/khyve.
KHYVE=${KHYVE_BENCH_KHYVE:-$KHYVE_ROOT/build/bench/khyve}
RUNWATCH=$KHYVE_ROOT/build/bench/runwatch
RUNS=${KHYVE_BENCH_RUNS:-5}
BENCH_TMP=$(mktemp -d)
trap 'rm -rf "$BENCH_TMP"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# The reference Linux guest (tests/guest-linux/prepare ran on the host).
load_guest() {
	local env_file=${KHYVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/khyve}/guest/env
	[ -r "$env_file" ] || fail "no reference guest: run tests/guest-linux/prepare first ($env_file)"
	. "$env_file"
}

# Both monitors get the same kernel, initramfs, command line, memory and
# vCPUs. QEMU: -cpu host, direct kernel boot, nothing we did not ask for.
# Each sets CMD, an array.
khyve_linux() { # CPUS MEM CMDLINE
	CMD=("$KHYVE" -c "$1" -m "$2" -l com1,stdio -o boot.kernel="$KHYVE_GUEST_KERNEL" \
		-o boot.initrd="$KHYVE_GUEST_INITRD" -o boot.cmdline="$3" bench)
}
qemu_linux() { # MACHINE CPUS MEM CMDLINE
	local machine=$1
	[ "$machine" = microvm ] && machine=microvm,acpi=on,rtc=on
	CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M "$machine" -smp "$2" -m "$3" \
		-nodefaults -no-user-config -display none -no-reboot -serial stdio \
		-kernel "$KHYVE_GUEST_KERNEL" -initrd "$KHYVE_GUEST_INITRD" -append "$4")
}

# kv KEY LINE: the value of KEY=... in a runwatch result line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# median / min of numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
minimum() { sort -g | head -n1; }
# median_of / minimum_of "N N N ": the same of a space-separated list.
median_of() { tr ' ' '\n' <<<"$1" | grep . | median; }
minimum_of() { tr ' ' '\n' <<<"$1" | grep . | minimum; }
# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0 == 0) print "-"; else printf "%.2f\n", a/b}'; }
ms2s() { awk -v a="$1" 'BEGIN {printf "%.2f\n", a/1000}'; }
