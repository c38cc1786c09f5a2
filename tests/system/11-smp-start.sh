# N-vCPU start: the BSP reads the MADT, wakes every AP with INIT-SIPI-SIPI and
# counts them. Sizes from the issue: 1, 64, 255, 256 and KVM's maximum, which
# we learn from khyve's own refusal of a topology that is too large.
. "$(dirname "$0")/lib.sh"

run_guest 30 lm-smp -c 65535
expect_status 4
max=$(printf '%s\n' "$OUT" | sed -n 's/.*exceeds what KVM supports (\([0-9]*\)).*/\1/p')
[ -n "$max" ] || fail "could not learn KVM's vCPU limit from: $OUT"
echo "KVM allows $max vCPUs"

for n in 1 64 255 256 "$max"; do
	start=$(date +%s%N)
	run_guest 300 lm-smp -c "$n"
	expect_status 1
	expect_output "smp: $n of $n vCPUs running"
	echo "$n vCPUs: created, started, powered off, torn down in $((($(date +%s%N) - start) / 1000000)) ms"
done

# A topology: 2 sockets x 2 cores x 2 threads.
run_guest 60 lm-smp -c 8,sockets=2,cores=2,threads=2
expect_status 1
expect_output "smp: 8 of 8 vCPUs running"

# Only cpus of maxcpus run; the MADT lists the rest as not enabled.
run_guest 60 lm-smp -c cpus=2,sockets=1,cores=4,threads=1,maxcpus=4
expect_status 1
expect_output "smp: 2 of 2 vCPUs running"

# One more than KVM allows is refused before anything is created.
run_guest 30 lm-smp -c $((max + 1))
expect_status 4
expect_output "exceeds what KVM supports ($max)"
