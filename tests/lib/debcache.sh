# shellcheck shell=bash
# debcache.sh — fetch Debian packages into a per-user cache, outside the repo.
#
# Source it, then:
#   root=$(debcache_fetch PKG)      download PKG's candidate .deb (once) and
#                                   extract it; prints the extracted root dir
#                                   ($DEBCACHE_DIR/REALPKG/root)
#   debcache_kernel_info ROOT       for an extracted kernel package, prints
#                                   "IMAGE KVER" on one line (and makes sure
#                                   ROOT has modules.dep, see below)
#   debcache_kernel PKG             debcache_fetch + debcache_kernel_info
#   debcache_resolve PKG            prints the real package behind a kernel
#                                   metapackage (linux-image-amd64 ->
#                                   linux-image-6.1.0-NN-amd64), else PKG
#
# Cache dir: ${KHYVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/khyve}
# (exported as DEBCACHE_DIR). Layout:
#   debs/NAME_VERSION_ARCH.deb      what apt-get download fetched
#   PKG/root/                       dpkg-deb -x of it
#   PKG/version                     the version extracted in PKG/root
#   PKG/checked                     when apt last confirmed that version
#                                   (apt is not asked again until its lists
#                                   change: /var/lib/apt/lists is newer)
#   PKG.resolved                    last metapackage resolution (offline use)
#
# Messages go to stderr; stdout carries only the documented result, so
# $(...) captures are safe. Functions return non-zero after a one-line
# "debcache: ..." error. Works on a read-only cache too (inside the testbox,
# which sees the host's cache read-only and has no network): then it only
# uses what is already there.
#
# Works under `set -eu` and without it; does not change the caller's options.

DEBCACHE_DIR=${KHYVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/khyve}

_debcache_err() { echo "debcache: $*" >&2; }

# Is the cache writable (host) or a read-only view (testbox)? Inside the
# testbox it looks writable (a tmpfs overlay) but there is no network and
# nothing written there survives: treat it as read-only.
_debcache_writable() {
	[ "${KHYVE_TESTBOX:-}" != 1 ] && mkdir -p "$DEBCACHE_DIR" 2>/dev/null && [ -w "$DEBCACHE_DIR" ]
}

# Is FILE (a record of an apt answer) newer than apt's package lists? Then
# apt would answer the same now, and we skip asking it: each apt-cache call
# parses all the lists (~0.5 s where the binary cache is disabled, as in
# Debian's container images).
_debcache_fresh() {
	[ -f "$1" ] && [ -d /var/lib/apt/lists ] && [ "$1" -nt /var/lib/apt/lists ]
}

# apt's candidate version of PKG, or nothing (unknown package / no lists).
_debcache_candidate() {
	# `apt-cache policy` rather than `show`: it names exactly the version
	# that `apt-get download PKG` would fetch (pins and all).
	LC_ALL=C apt-cache policy "$1" 2>/dev/null |
		sed -n 's/^  Candidate: //p' | grep -v '^(none)$' | head -n1
}

# Run `apt-get update` at most once per process, and only as a remedy.
_debcache_updated=
_debcache_update_once() {
	[ -n "$_debcache_updated" ] && return 1
	_debcache_updated=1
	_debcache_err "package lists missing or stale: running apt-get update"
	# -qq: no progress noise; output to stderr so $(...) callers stay clean.
	apt-get update -qq >&2
}

debcache_resolve() {
	local pkg=${1:?debcache_resolve: PKG missing} dep
	case "$pkg" in
	linux-image-*amd64 | linux-image-*arm64 | linux-headers-*amd64) ;;
	*) echo "$pkg"; return 0 ;;
	esac
	# A concrete kernel package (linux-image-6.1.0-56-amd64) resolves to itself.
	case "$pkg" in linux-image-[0-9]*) echo "$pkg"; return 0 ;; esac
	if _debcache_fresh "$DEBCACHE_DIR/$pkg.resolved"; then
		cat "$DEBCACHE_DIR/$pkg.resolved"
		return 0
	fi
	dep=$(_debcache_meta_dep "$pkg")
	if [ -z "$dep" ] && _debcache_writable && _debcache_update_once; then
		dep=$(_debcache_meta_dep "$pkg")
	fi
	if [ -z "$dep" ] && [ -s "$DEBCACHE_DIR/$pkg.resolved" ]; then
		dep=$(cat "$DEBCACHE_DIR/$pkg.resolved")
		_debcache_err "apt cannot resolve $pkg now; using the last resolution, $dep"
	fi
	if [ -z "$dep" ]; then
		_debcache_err "cannot resolve metapackage $pkg to a real kernel package (apt-cache depends found none)"
		return 1
	fi
	if _debcache_writable; then echo "$dep" >"$DEBCACHE_DIR/$pkg.resolved"; fi
	echo "$dep"
}

# The first Depends: of a metapackage that is itself a versioned kernel
# package (linux-image-6.1.0-56-amd64), for apt's candidate version.
_debcache_meta_dep() {
	# --no-recommends/--no-suggests: only hard dependencies; the metapackage's
	# Depends is exactly the one real image package.
	LC_ALL=C apt-cache depends --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "$1" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-[a-z]*-[0-9][^ ]*\).*/\1/p' | head -n1
}

debcache_fetch() {
	local want=${1:?debcache_fetch: PKG missing} pkg ver dir tmp deb have=
	pkg=$(debcache_resolve "$want") || return 1
	dir=$DEBCACHE_DIR/$pkg
	[ -f "$dir/version" ] && have=$(cat "$dir/version")
	# Checked against apt since its lists last changed: nothing to ask.
	if [ -n "$have" ] && [ -d "$dir/root" ] && _debcache_fresh "$dir/checked"; then
		echo "$dir/root"
		return 0
	fi
	ver=$(_debcache_candidate "$pkg")
	if [ -z "$ver" ] && [ -z "$have" ] && _debcache_writable && _debcache_update_once; then
		ver=$(_debcache_candidate "$pkg")
	fi
	# Up to date (or apt knows nothing better): nothing to do.
	if [ -n "$have" ] && [ -d "$dir/root" ] && { [ -z "$ver" ] || [ "$ver" = "$have" ]; }; then
		[ -n "$ver" ] && _debcache_writable && touch "$dir/checked"
		echo "$dir/root"
		return 0
	fi
	if [ -z "$ver" ]; then
		_debcache_err "apt knows no candidate for $pkg, and it is not cached in $DEBCACHE_DIR"
		return 1
	fi
	if ! _debcache_writable; then
		if [ -n "$have" ] && [ -d "$dir/root" ]; then
			_debcache_err "cache is read-only; using cached $pkg $have instead of $ver"
			echo "$dir/root"
			return 0
		fi
		_debcache_err "$pkg is not in $DEBCACHE_DIR and the cache is read-only (inside the testbox?): fetch it on the host first"
		return 1
	fi
	(
		set -e
		mkdir -p "$DEBCACHE_DIR/debs"
		# One fetcher at a time per cache (parallel make, two checkouts):
		# flock on a lock file held for the duration of this subshell.
		exec 9>"$DEBCACHE_DIR/.lock"
		flock 9
		# Re-check: another process may have done it while we waited.
		if [ -f "$dir/version" ] && [ "$(cat "$dir/version")" = "$ver" ] && [ -d "$dir/root" ]; then
			exit 0
		fi
		deb=$(_debcache_download "$pkg" "$ver")
		_debcache_err "extracting $(basename "$deb")"
		rm -rf "$dir/root.new"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir/root.new"
		rm -rf "$dir/root"
		mv "$dir/root.new" "$dir/root"
		echo "$ver" >"$dir/version"
		touch "$dir/checked"
		# Superseded .debs of this package are dead weight (tens of MB).
		for old in "$DEBCACHE_DIR/debs/${pkg}_"*.deb; do
			[ "$old" = "$deb" ] || rm -f "$old"
		done
	) || { _debcache_err "fetching $pkg $ver failed"; return 1; }
	echo "$dir/root"
}

# Download PKG=VER into debs/ unless there; prints the .deb's path.
# Runs inside debcache_fetch's locked subshell.
_debcache_download() {
	local pkg=$1 ver=$2 tmp deb
	# apt names the file NAME_VERSION_ARCH.deb with ':' (epoch) as %3a.
	for deb in "$DEBCACHE_DIR/debs/${pkg}_${ver//:/%3a}_"*.deb; do
		[ -f "$deb" ] && { echo "$deb"; return 0; }
	done
	tmp=$(mktemp -d "$DEBCACHE_DIR/debs/.dl.XXXXXX")
	_debcache_err "downloading $pkg $ver"
	# Download into a private temp dir then rename, so an interrupted
	# download never leaves a truncated .deb that looks cached.
	# APT::Sandbox::User=root: apt would otherwise drop to the _apt user,
	# which cannot write to a root-owned cache dir (and warns about it).
	if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
		# Most likely the lists are missing/stale (fresh machine, or the
		# mirror dropped the version): update once and retry.
		if _debcache_update_once; then
			(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
				(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >&2) || true
		fi
	fi
	for deb in "$tmp"/*.deb; do
		if [ -f "$deb" ]; then
			mv "$deb" "$DEBCACHE_DIR/debs/"
			rmdir "$tmp" 2>/dev/null || rm -rf "$tmp"
			echo "$DEBCACHE_DIR/debs/$(basename "$deb")"
			return 0
		fi
	done
	rm -rf "$tmp"
	_debcache_err "apt-get download $pkg failed"
	return 1
}

debcache_kernel_info() {
	local root=${1:?debcache_kernel_info: ROOT missing} img kver
	for img in "$root"/boot/vmlinuz-*; do
		[ -f "$img" ] || continue
		kver=${img##*/vmlinuz-}
		if [ ! -d "$root/lib/modules/$kver" ]; then
			_debcache_err "$root has $img but no lib/modules/$kver"
			return 1
		fi
		# A .deb ships no modules.dep: Debian's postinst runs depmod. Do it
		# here, once, so `modprobe -d ROOT -S KVER` works on the tree.
		if [ ! -s "$root/lib/modules/$kver/modules.dep" ]; then
			if [ -w "$root/lib/modules/$kver" ]; then
				# Under the cache lock: a concurrent reader must not see a
				# half-written modules.dep.
				(
					exec 9>"$DEBCACHE_DIR/.lock"
					flock 9
					[ -s "$root/lib/modules/$kver/modules.dep" ] ||
						depmod -b "$root" "$kver"
				) || { _debcache_err "depmod -b $root $kver failed"; return 1; }
			else
				_debcache_err "$root/lib/modules/$kver has no modules.dep and is read-only"
				return 1
			fi
		fi
		echo "$img $kver"
		return 0
	done
	_debcache_err "no boot/vmlinuz-* in $root: not a kernel image package?"
	return 1
}

debcache_kernel() {
	local root
	root=$(debcache_fetch "${1:?debcache_kernel: PKG missing}") || return 1
	debcache_kernel_info "$root"
}
