# khyve as an unprivileged user given only /dev/kvm (docs/hardening.md):
# user nobody, with no capabilities and no groups, runs micro-guests
# sandboxed once a POSIX ACL grants it read-write on /dev/kvm, and is
# refused with a one-line error (status 4) without it.
#
# The ACL goes on a /dev/kvm of the test's own: in a private mount
# namespace, a fresh node for the same device (mode 0600 root:root, on a
# tmpfs of the namespace's own) is bind-mounted over /dev/kvm, so the
# host's node is never touched, even if the test is killed. Inside the
# testbox, where everything is disposable, the real devtmpfs /dev/kvm gets
# the ACL as well, the way docs/hardening.md tells an administrator to.
. "$(dirname "$0")/lib.sh"
command -v setfacl >/dev/null || fail "setfacl is missing: scripts/ensure-deps check installs acl"
id nobody >/dev/null 2>&1 || fail "this system has no user nobody"
group=$(id -gn nobody)
# What nobody needs besides /dev/kvm: a runtime directory of its own for
# the control socket (XDG_RUNTIME_DIR in a login session), and khyve and
# its guests where it can read them (a checkout under /root is not).
chmod 755 "$KHYVE_TEST_TMP"
mkdir "$KHYVE_TEST_TMP/bin"
cp "$KHYVE" "$KHYVE_GUESTS/lm-hello.bin" "$KHYVE_GUESTS/lm-smp.bin" "$KHYVE_TEST_TMP/bin/"
chmod -R a+rX "$KHYVE_TEST_TMP/bin"
KHYVE=$KHYVE_TEST_TMP/bin/khyve KHYVE_GUESTS=$KHYVE_TEST_TMP/bin
rundir=$KHYVE_RUNTIME_DIR   # lib.sh exports it: khyve as nobody finds it there
mkdir -m 700 "$rundir"
chown nobody "$rundir"

# run_as_nobody acl|noacl TIMEOUT KHYVE-ARGS... : output in $OUT, status in $STATUS
run_as_nobody() {
	local acl=yes t=$2
	[ "$1" = noacl ] && acl=no
	shift 2
	as_nobody_cmd --dev /dev/kvm 0600 "$acl" -- "$KHYVE" "$@"
	set +e
	OUT=$(timeout --kill-after=5 "$t" "${AS_NOBODY[@]}" </dev/null 2>&1)
	STATUS=$?
	set -e
	[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "timed out after ${t}s; output: $OUT"
}
guest() { echo -l com1,stdio -o boot.raw="$KHYVE_GUESTS/$1.bin" -o boot.raw.mode=long; }

# Without the ACL: refused, and the message says why.
run_as_nobody noacl 30 $(guest lm-hello) unpriv
expect_status 4
expect_output "cannot open /dev/kvm: Permission denied"
echo "nobody without access to /dev/kvm: refused (status 4)"

# With it: a guest runs, sandboxed (the default), and powers off.
run_as_nobody acl 30 $(guest lm-hello) unpriv
expect_status 1
expect_output "hello from long mode"
run_as_nobody acl 60 -c 4 $(guest lm-smp) unpriv-smp
expect_status 1
expect_output "smp: 4 of 4 vCPUs running"
[ -z "$(ls -A "$rundir")" ] || fail "control sockets left behind in $rundir: $(ls -A "$rundir")"
echo "nobody with an ACL on /dev/kvm: micro-guests run and power off, the control socket came and went"

if [ -n "${KHYVE_TESTBOX:-}" ]; then
	# The testbox is disposable: the real /dev/kvm, as an administrator would.
	setfacl -m u:nobody:rw /dev/kvm
	getfacl -p /dev/kvm 2>/dev/null | grep -q '^user:nobody:rw-' || fail "setfacl on /dev/kvm did not stick"
	set +e
	OUT=$(timeout --kill-after=5 30 setpriv --reuid=nobody --regid="$group" --clear-groups \
		--inh-caps=-all "$KHYVE" $(guest lm-hello) unpriv \
		</dev/null 2>&1)
	STATUS=$?
	set -e
	setfacl -x u:nobody /dev/kvm
	expect_status 1
	expect_output "hello from long mode"
	echo "testbox: setfacl -m u:nobody:rw /dev/kvm (devtmpfs) is all nobody needed"
fi
