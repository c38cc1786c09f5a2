# khyve as an unprivileged user given only /dev/kvm and a prepared TAP
# (docs/hardening.md, "A TAP for virtio-net"): user nobody, with no
# capabilities and no groups, boots the reference Linux guest with a
# virtio-net device on a TAP that root created for it (ip tuntap add ...
# user nobody) in a private network namespace (tests/system/lib-net.sh),
# and the guest pings the host:
#   1. nobody cannot open /dev/vhost-net: backend=vhost is refused with a
#      one-line error; the default (auto) says why on stderr and runs the
#      userspace datapath;
#   2. an ACL gives nobody /dev/vhost-net as well: backend=vhost runs;
#   3. a TAP that another user owns is refused with a one-line error.
# As in 32-unprivileged.sh, the device nodes nobody gets are fresh ones in a
# private mount namespace (mode 0600 root:root plus the ACL), bind-mounted
# over /dev/kvm and /dev/vhost-net: the host's nodes are never touched.
# /dev/net/tun gets the same treatment with mode 0666, as docs/hardening.md
# has the administrator make it (a bare devtmpfs, as in the testbox, has it
# 0600 root-only).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-net.sh"
set -e
command -v setfacl >/dev/null || fail "setfacl is missing: scripts/ensure-deps check installs acl"
id nobody >/dev/null 2>&1 || fail "this system has no user nobody"
reference_guest

# What nobody reads: khyve, the kernel and the initramfs, where it can.
chmod 755 "$KHYVE_TEST_TMP"
bin=$KHYVE_TEST_TMP/bin
mkdir "$bin"
cp "$KHYVE" "$KHYVE_GUEST_KERNEL" "$KHYVE_GUEST_INITRD" "$bin/"
chmod -R a+rX "$bin"
kernel=$bin/$(basename "$KHYVE_GUEST_KERNEL") initrd=$bin/$(basename "$KHYVE_GUEST_INITRD")
rundir=$KHYVE_RUNTIME_DIR   # lib.sh exports it: khyve as nobody finds it there
mkdir -m 700 "$rundir"
chown nobody "$rundir"
net_setup nobody || fail "cannot set up the test network namespace"
# (net_setup loads vhost_net)
[ -c /dev/vhost-net ] || fail "no /dev/vhost-net (the vhost_net module)"

# as_nobody VHOST_ACL(yes|no) TIMEOUT KHYVE-ARGS... : khyve as nobody inside
# the namespace; output in $OUT, status in $STATUS.
as_nobody() {
	local vhost_acl=$1 t=$2
	shift 2
	as_nobody_cmd --dev /dev/kvm 0600 yes --dev /dev/vhost-net 0600 "$vhost_acl" \
		--dev /dev/net/tun 0666 no -- "$bin/khyve" "$@"
	set +e
	OUT=$(net_exec timeout --kill-after=5 "$t" "${AS_NOBODY[@]}" </dev/null 2>&1)
	STATUS=$?
	set -e
	[ "$STATUS" -ne 124 ] && [ "$STATUS" -ne 137 ] || fail "timed out after ${t}s; output: $OUT"
}
linux() { # NET-OPTIONS: LINUX, the reference guest's arguments (khyve.test=net: ping the host, power off)
	LINUX=(-m 256M -l com1,stdio -s "3,virtio-net,$NET_TAP$1" -o boot.kernel="$kernel"
		-o boot.initrd="$initrd" -o boot.cmdline="console=ttyS0 quiet panic=-1 khyve.test=net")
}
expect_net_ok() {
	expect_status 1
	expect_output "KHYVE-GUEST: net ping ok"
	expect_output "KHYVE-GUEST: net done rc=0"
}

# 1. No access to /dev/vhost-net.
linux ,backend=vhost
as_nobody no 60 "${LINUX[@]}" unpriv-net
[ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 1 ] || fail "backend=vhost without /dev/vhost-net ran (status $STATUS): $OUT"
expect_output "vhost-net"
[ "$(printf '%s\n' "$OUT" | grep -c .)" -eq 1 ] || fail "expected one line of error, got: $OUT"
echo "nobody, backend=vhost, no access to /dev/vhost-net: refused (status $STATUS): $OUT"
linux ""
as_nobody no 600 "${LINUX[@]}" unpriv-net
expect_net_ok
expect_output "using the userspace datapath"
echo "nobody, backend=auto, no access to /dev/vhost-net: userspace datapath, the guest pinged the host"

# 2. With /dev/vhost-net.
linux ,backend=vhost
as_nobody yes 600 "${LINUX[@]}" unpriv-net
expect_net_ok
! printf '%s\n' "$OUT" | grep -qF "using the userspace datapath" || fail "fell back to the userspace datapath: $OUT"
echo "nobody with an ACL on /dev/vhost-net: backend=vhost, the guest pinged the host"
[ -z "$(ls -A "$rundir")" ] || fail "control sockets left behind in $rundir: $(ls -A "$rundir")"

# 3. A TAP that is not nobody's. (One with no owner at all any user may
# attach to: the kernel checks only an owner or group that is set.)
ip -n "$NET_NS" tuntap add dev tap1 mode tap user root
as_nobody yes 60 -m 64M -l com1,stdio -s 3,virtio-net,tap1 -o boot.kernel="$kernel" \
	-o boot.cmdline=panic=-1 unpriv-net
[ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 1 ] || fail "a TAP owned by root was opened by nobody (status $STATUS): $OUT"
expect_output "tap1"
[ "$(printf '%s\n' "$OUT" | grep -c .)" -eq 1 ] || fail "expected one line of error, got: $OUT"
echo "nobody, a TAP it does not own: refused (status $STATUS): $OUT"
