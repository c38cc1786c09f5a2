# Sourced by system tests. Every check prints what it expected and what it
# got, and a failed check ends the test with status 1.
set -u
: "${KHYVE:?run through tests/system/run-all}"
: "${KHYVE_GUESTS:?run through tests/system/run-all}"
KHYVE_TEST_TMP=$(mktemp -d)
trap 'rm -rf "$KHYVE_TEST_TMP"' EXIT
# The control sockets of a test's VMs go to a directory of the test's own
# (khyve creates it, 0700): tests never meet each other's VMs or the host's.
export KHYVE_RUNTIME_DIR=$KHYVE_TEST_TMP/run

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run_khyve TIMEOUT ARGS... : runs khyve, output in $OUT, status in $STATUS.
run_khyve() {
	local t=$1
	shift
	set +e
	OUT=$(timeout --kill-after=5 "$t" "$KHYVE" "$@" </dev/null 2>&1)
	STATUS=$?
	set -e
	[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "khyve $* timed out after ${t}s; output: $OUT"
}

# run_guest TIMEOUT GUEST [MORE KHYVE ARGS...] : a micro-guest on COM1.
run_guest() {
	local t=$1 g=$2 mode=long
	shift 2
	case "$g" in rm-*) mode=real ;; esac
	run_khyve "$t" -l com1,stdio -o boot.raw="$KHYVE_GUESTS/$g.bin" -o boot.raw.mode=$mode "$@" "test-$g"
}

expect_status() {
	[ "$STATUS" -eq "$1" ] || fail "expected exit status $1, got $STATUS; output: $OUT"
}

expect_output() {
	printf '%s\n' "$OUT" | grep -qF -- "$1" || fail "expected output containing '$1'; got: $OUT"
}

# run_sanitized WHAT CMD... : a stress program, built with ThreadSanitizer or
# AddressSanitizer or neither, bounded by 300 s; output in $OUT, status in
# $STATUS. A race (TSan exits 66), a bad access or leak (ASan, 67) or a hang
# fails the test here; the caller checks the program's own verdict.
run_sanitized() {
	local what=$1
	shift
	set +e
	OUT=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" \
		ASAN_OPTIONS="halt_on_error=1 exitcode=67 detect_leaks=1" \
		timeout --kill-after=5 300 "$@" </dev/null 2>&1)
	STATUS=$?
	set -e
	echo "== $what"
	echo "$OUT"
	[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "$what: hung (deadlock?)"
	[ "$STATUS" -ne 66 ] || fail "$what: ThreadSanitizer found a race"
	[ "$STATUS" -ne 67 ] || fail "$what: AddressSanitizer found a bad access or a leak"
}

# khyvectl (the VM's control socket in $KHYVE_RUNTIME_DIR, as the caller set it).
KHYVECTL=${KHYVE_ROOT:?run through tests/system/run-all}/build/khyvectl

# ctl ARGS... : khyvectl, output (stdout+stderr) in $OUT, status in $STATUS.
ctl() {
	set +e
	OUT=$(timeout --kill-after=5 30 "$KHYVECTL" "$@" 2>&1)
	STATUS=$?
	set -e
	[ "$STATUS" -ne 124 ] || fail "khyvectl $* hung"
}

ctl_ok() {
	ctl "$@"
	[ "$STATUS" -eq 0 ] || fail "khyvectl $* failed ($STATUS): $OUT"
}

# ctl_fails NEEDLE ARGS... : a non-zero exit with exactly one line containing NEEDLE.
ctl_fails() {
	local needle=$1
	shift
	ctl "$@"
	[ "$STATUS" -ne 0 ] || fail "khyvectl $* succeeded; expected a failure with '$needle': $OUT"
	expect_output "$needle"
	[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "khyvectl $*: expected one line, got: $OUT"
}

# reference_guest: KHYVE_GUEST_KERNEL and KHYVE_GUEST_INITRD, the Linux guest
# that tests/guest-linux/prepare fetched and built (scripts/run-system-tests
# runs it first).
reference_guest() {
	local env_file=${KHYVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/khyve}/guest/env
	[ -r "$env_file" ] || fail "no reference guest: run tests/guest-linux/prepare on the host first ($env_file)"
	# shellcheck disable=SC1090
	. "$env_file"
}

# wait_log FILE TEXT SECS PID: until FILE (a running khyve's output) has
# TEXT; fails when PID exits first or SECS pass.
wait_log() {
	local i=0
	while ! grep -qF -- "$2" "$1" 2>/dev/null; do
		if ! kill -0 "$4" 2>/dev/null; then
			# It may have written TEXT just before it exited.
			grep -qF -- "$2" "$1" 2>/dev/null && return 0
			fail "khyve exited before '$2': $(cat "$1")"
		fi
		[ "$i" -lt $(($3 * 10)) ] || fail "no '$2' within $3 s: $(cat "$1")"
		sleep 0.1
		i=$((i + 1))
	done
}

# drv_stat VM FIELD: one of the driver interface's counters (vmm_drv.h), from
# khyvectl --get-stats --json.
drv_stat() {
	ctl_ok --vm="$1" --get-stats --json
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
print(r["drv"][sys.argv[1]])' "$2"
}

# as_nobody_cmd [--dev PATH MODE yes|no]... -- CMD...: sets AS_NOBODY, the
# argv that runs CMD as user nobody (its own group, no supplementary groups,
# no capabilities) in a private mount namespace where each PATH (/dev/kvm,
# /dev/vhost-net, /dev/net/tun) is a fresh node for the same device with
# MODE, root:root, plus an ACL giving nobody read-write when yes, on a tmpfs
# of the namespace's own: the host's nodes are never touched, even if the
# test is killed. An argv, not a function, so that timeout, ip netns exec
# or & can run it; unshare execs sh, which execs setpriv, which execs CMD:
# one process, whose pid is CMD's.
as_nobody_cmd() {
	local devs=() path
	while [ "$1" = --dev ]; do
		path=$2
		devs+=("$path" "$((0x$(stat -c %t "$path")))" "$((0x$(stat -c %T "$path")))" "$3" "$4")
		shift 4
	done
	[ "$1" = -- ] || fail "as_nobody_cmd: expected --, got '$1'"
	shift
	mkdir -p "$KHYVE_TEST_TMP/nobody-dev"
	AS_NOBODY=(unshare --mount --propagation private sh -ec '
		dir=$1 group=$2 n=$3
		shift 3
		mount -t tmpfs -o mode=0755,size=64k khyve-dev "$dir"
		i=0
		while [ $i -lt "$n" ]; do
			node=$dir/$i
			mknod -m "$4" "$node" c "$2" "$3"
			[ "$5" = no ] || setfacl -m u:nobody:rw "$node"
			mount --bind "$node" "$1"
			shift 5
			i=$((i + 1))
		done
		exec setpriv --reuid=nobody --regid="$group" --clear-groups --inh-caps=-all "$@"' \
		sh "$KHYVE_TEST_TMP/nobody-dev" "$(id -gn nobody)" $((${#devs[@]} / 5)) "${devs[@]}" "$@")
}
