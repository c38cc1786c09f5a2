# A console nobody reads must not make khyve unstoppable. The lm-flood
# micro-guest prints without end into a FIFO that the test holds open but
# never reads; once the vCPU is blocked writing to it (the pipe is full),
# khyve must still stop when told to, within seconds:
#   - SIGTERM: as a power-off, status 1;
#   - khyvectl --destroy: status 4 (as bhyve), and khyvectl returns.
# Before the fix the vCPU thread sat in write() for good and vm_run()
# waited for it, so neither ever returned.
. "$(dirname "$0")/lib.sh"
set -e
fifo=$KHYVE_TEST_TMP/console
mkfifo "$fifo"
exec 3<>"$fifo"   # a reader that never reads: writes fill the pipe, then block
# One page of pipe instead of 16: the UART writes a byte per write(), which
# takes a while in the testbox. (F_SETPIPE_SZ is 1031.)
python3 -c 'import fcntl, os, sys; fcntl.fcntl(os.open(sys.argv[1], os.O_RDWR), 1031, 4096)' "$fifo" ||
	fail "cannot shrink the FIFO's pipe"

# start NAME: khyve with lm-flood writing into the FIFO; PID when its vCPU is stuck in the write.
start() {
	"$KHYVE" -l com1,stdio -o boot.raw="$KHYVE_GUESTS/lm-flood.bin" -o boot.raw.mode=long "$1" \
		</dev/null >"$fifo" 2>"$KHYVE_TEST_TMP/$1.err" &
	PID=$!
	local t=0
	until cat /proc/$PID/task/*/wchan 2>/dev/null | grep -q pipe_write; do
		kill -0 $PID 2>/dev/null || fail "$1: khyve exited early: $(cat "$KHYVE_TEST_TMP/$1.err")"
		[ $t -lt 600 ] || fail "$1: the vCPU never blocked on the full console pipe"
		sleep 0.1
		t=$((t + 1))
	done
}

# gone_within SECS: wait for khyve $PID to exit; STATUS is its status.
gone_within() {
	local t=0
	while kill -0 $PID 2>/dev/null; do
		if [ $t -ge $(($1 * 10)) ]; then
			kill -9 $PID
			fail "khyve still runs $1 s after it was told to stop (vCPU stuck writing the console)"
		fi
		sleep 0.1
		t=$((t + 1))
	done
	set +e
	wait $PID
	STATUS=$?
	set -e
	OUT=$(cat "$KHYVE_TEST_TMP/$2.err")
}

start flood-term
kill -TERM $PID
gone_within 15 flood-term
expect_status 1
echo "SIGTERM with the vCPU blocked on a full console: khyve exited, status 1"

start flood-destroy
ctl_ok --vm=flood-destroy --destroy
gone_within 15 flood-destroy
expect_status 4
echo "khyvectl --destroy with the vCPU blocked on a full console: khyve exited, status 4"
