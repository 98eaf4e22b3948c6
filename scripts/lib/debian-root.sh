# shellcheck shell=bash
# Debian roots for the toolchains this Debian 12 machine lacks, shared by
# scripts/test-swift (trixie + swiftlang) and scripts/check-macos (sid + rustc
# with rust-src). Sourced, not run.
#
# A root is made once with debootstrap and kept outside the clone, under
# $SPFS_AUTOSTART_ROOTS (default /var/cache/spfs-autostart/roots), so later
# runs on the same machine reuse it. It is built under a temporary name and
# renamed into place only when complete, with a stamp naming its packages:
# an interrupted provisioning never leaves a half root that looks finished.
# A per-root flock serialises two runs that provision at once.
#
# Commands run inside a root in a private mount namespace (unshare), so /proc,
# a private /tmp and the bind-mounted clone vanish with the command and two
# runs at once never see each other's mounts.

roots_dir="${SPFS_AUTOSTART_ROOTS:-/var/cache/spfs-autostart/roots}"
debian_mirror="${SPFS_AUTOSTART_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# The two roots the checks use, named once so that scripts/check can provision
# them in the background while the Rust tests run.
# - Swift (scripts/test-swift): trixie's swiftlang; libc6-dev for the C headers
#   that Foundation's and the FFI's modules import; git for SwiftPM to fetch
#   the consumer package's dependency.
# - macOS type-check (scripts/check-macos): sid's rustc with rust-src (the
#   standard library's source for exactly that compiler, which -Zbuild-std
#   needs) and clippy; gcc and libc6-dev to link build scripts.
ensure_swift_root() { ensure_debian_root swift-trixie trixie swiftlang libc6-dev git; }
ensure_macos_check_root() {
    ensure_debian_root rust-sid sid rustc cargo rust-src rust-clippy gcc libc6-dev
}

# ensure_debian_root NAME SUITE PACKAGE...: print the root's path once it has
# SUITE with PACKAGE... installed; provision it first when it does not.
ensure_debian_root() {
    local name="$1" suite="$2"
    shift 2
    local root="$roots_dir/$name"
    local want="suite=$suite packages=$*"
    mkdir -p "$roots_dir"
    (
        flock 9
        if [ -f "$root/.provisioned" ] && [ "$(cat "$root/.provisioned")" = "$want" ]; then
            exit 0
        fi
        # Same suite, other packages: install them into the existing root rather than
        # download everything again (packages no longer listed stay). The stamp goes first,
        # so an interrupted install leaves no stamp and the next run provisions afresh.
        if [ -f "$root/.provisioned" ] && [ "$(cut -d' ' -f1 "$root/.provisioned")" = "suite=$suite" ]; then
            echo "installing $* into the $suite root $root" >&2
            rm "$root/.provisioned"
            _apt_install "$root" "$@"
            echo "$want" >"$root/.provisioned"
            exit 0
        fi
        _need_host_tools
        echo "provisioning the $suite root $root ($*); this is done once per machine" >&2
        local tmp="$root.partial"
        rm -rf "$tmp" "$root"
        debootstrap --variant=minbase "$suite" "$tmp" "$debian_mirror" >&2
        # cargo and apt inside trust what the host trusts.
        mkdir -p "$tmp/etc/ssl/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/"
        # The mirror's sid Release file can be past its Valid-Until date.
        echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99no-valid-until"
        _apt_install "$tmp" "$@"
        echo "$want" >"$tmp/.provisioned"
        mv "$tmp" "$root"
    ) 9>"$roots_dir/$name.lock" || return 1
    echo "$root"
}

# in_debian_root ROOT DIR COMMAND...: run COMMAND inside ROOT with /proc
# mounted, an empty /tmp, the clone bind-mounted at its own path (so paths
# agree inside and out), and DIR as the working directory.
in_debian_root() {
    local root="$1" dir="$2"
    shift 2
    local src
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    unshare --mount --propagation private -- /bin/sh -eu -c '
        root="$1"; src="$2"; dir="$3"; shift 3
        mount -t proc proc "$root/proc"
        # A /tmp of its own, so that what the command leaves there (compilers leave plenty)
        # goes with it instead of piling up in the cached root.
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mkdir -p "$root/dev" "$root$src"
        mount --rbind /dev "$root/dev"
        mount --bind "$src" "$root$src"
        cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
        exec chroot "$root" /usr/bin/env -C "$dir" HOME=/root PATH=/usr/local/bin:/usr/bin:/bin "$@"
    ' sh "$root" "$src" "$dir" "$@"
}

# _apt_install ROOT PACKAGE...: install PACKAGE... into ROOT from the suite's mirror.
_apt_install() {
    local root="$1"
    shift
    in_debian_root "$root" / env DEBIAN_FRONTEND=noninteractive \
        apt-get -o Acquire::Retries=3 update -qq >&2
    in_debian_root "$root" / env DEBIAN_FRONTEND=noninteractive \
        apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends "$@" >&2
    in_debian_root "$root" / apt-get clean >&2
}

_need_host_tools() {
    command -v debootstrap >/dev/null 2>&1 && return 0
    echo "installing debootstrap on the host" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
}
