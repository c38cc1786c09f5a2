# Micro-guests: port I/O and UART output in real and long mode, and every
# bhyve exit status the guest can cause (reboot 0, poweroff 1, halt 2,
# triple fault 3).
. "$(dirname "$0")/lib.sh"

run_guest 30 rm-hello
expect_status 1
expect_output "hello from real mode"

run_guest 30 lm-hello
expect_status 1
expect_output "hello from long mode"
expect_output "rep outsb works"

run_guest 30 rm-halt
expect_status 2
expect_output "H"

run_guest 30 lm-triple
expect_status 3
expect_output "about to triple fault"

run_guest 30 lm-reboot
expect_status 0
expect_output "rebooting"
echo "micro-guests: all exit statuses as bhyve(8) defines them"
