# Create, run and destroy VMs of 1, 64, 255, 256 vCPUs (and a failed
# assembly) in one process: no file descriptor or thread may outlive a VM.
. "$(dirname "$0")/lib.sh"
set +e
OUT=$("$KHYVE_ROOT/build/tests/vm_lifecycle" "$KHYVE_GUESTS/lm-smp.bin" 1 64 255 256 </dev/null 2>&1)
STATUS=$?
set -e
echo "$OUT"
expect_status 0
for n in 1 64 255 256; do
	expect_output "smp: $n of $n vCPUs running"
done
expect_output "no leaks"
