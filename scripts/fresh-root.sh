#!/usr/bin/env bash
# Proves the install list (scripts/deps.sh) on a machine that has nothing installed: builds a
# bare Debian 12 root from Debian's packages, runs the project's own installer inside it
# (`scripts/test.sh --system-deps`, the same code the test command runs), then, inside that
# root, the lab's smoke test: provision and start a Samba AD forest, start slapd, start the
# SCIM test server, load a local page in headless Chromium (tests/e2e/fresh_root.rs).
#
#   bash scripts/fresh-root.sh      # as root, from a checkout; CI runs it through test.sh
#
# The bare root (no test package in it) is cached as a tarball between runs; the installed
# root never is, so every run installs from nothing. A missing package fails the run with
# the name of the step that needed it.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly SUITE=bookworm
readonly MIRROR=http://deb.debian.org/debian
readonly SECURITY=http://deb.debian.org/debian-security
readonly CACHE_DIR=/var/cache/bridgehead-ci
readonly CACHE_DAYS=7
readonly SMOKE_TEST=e2e::fresh_root::fresh_root_lab_servers_and_browser_start
# The lab records its servers here; sharing it with the host lets the root's Samba take
# turns with a test run on the host instead of fighting over 127.0.0.1:636.
readonly LAB_PIDS=/tmp/bridgehead-lab-pids

die() {
    echo "fresh-root.sh: $*" >&2
    exit 1
}

phase() {
    printf -- '---- fresh root: %s  (at %ds)\n' "$1" "$SECONDS"
}

((EUID == 0)) || die "must run as root (chroot, mounts)"
checkout=$(pwd -P)

# ---- The test binary, built on the host (the root gets no Rust toolchain) ---------------
phase "test binary"
locked=()
[[ ${CI:-} == true ]] && locked=(--locked)
test_bin=$(cargo test "${locked[@]}" --test main --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[[ -x $test_bin ]] || die "cannot find the test binary (cargo test --test main --no-run)"
[[ $test_bin == "$checkout"/* ]] || die "the test binary $test_bin is outside the checkout"
echo "$test_bin"

# ---- A bare root ----------------------------------------------------------------------
if ! command -v mmdebstrap >/dev/null; then
    phase "installing mmdebstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends mmdebstrap >/dev/null ||
        { apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
            --no-install-recommends mmdebstrap >/dev/null; } || die "cannot install mmdebstrap"
fi

mkdir -p "$CACHE_DIR"
bare="$CACHE_DIR/$SUITE-apt.tar"
if [[ -f $bare ]] && [[ -n $(find "$bare" -mtime -"$CACHE_DAYS" 2>/dev/null) ]]; then
    phase "bare root from the cache ($bare)"
else
    phase "building a bare $SUITE root (mmdebstrap --variant=apt)"
    rm -f "$bare.tmp"
    mmdebstrap --quiet --variant=apt --format=tar "$SUITE" "$bare.tmp" \
        "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
        "deb $SECURITY $SUITE-security main" || die "mmdebstrap failed"
    mv "$bare.tmp" "$bare"
fi

root=$(mktemp -d /var/tmp/bridgehead-fresh-root.XXXXXX)
mounts=()
cleanup() {
    local rc=$? m i
    # Anything the smoke test left running inside (its watchdog kills the lab's servers when
    # the test process ends; this catches the rest).
    for p in /proc/[0-9]*; do
        if [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
    phase "cleaning up"
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        m=${mounts[i]}
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    # The checkout is bind-mounted in there: remove nothing while any mount remains.
    if grep -qF " $root" /proc/self/mountinfo; then
        echo "fresh-root.sh: mounts under $root remain; not removing it" >&2
    else
        rm -rf --one-file-system "$root"
    fi
    phase "cleaned up"
    exit "$rc"
}
trap cleanup EXIT

phase "unpacking into $root"
tar -C "$root" -xf "$bare" || die "cannot unpack $bare"

bind() {
    local src=$1 dst=$root$1
    mkdir -p "$dst"
    mount --bind "$src" "$dst" || die "cannot bind-mount $src"
    mounts+=("$dst")
}
mount -t proc proc "$root/proc" && mounts+=("$root/proc")
bind /sys
bind /dev
bind /dev/pts
bind /dev/shm
mkdir -p "$LAB_PIDS"
bind "$LAB_PIDS"
bind "$checkout"
# Read-only inside: nothing in the root may change the checkout (or, by mistake, remove it).
mount -o remount,bind,ro "$root$checkout" || die "cannot make $root$checkout read-only"

# The root must trust what the host trusts (LAB.md): the host's extra CA files go where
# ca-certificates (from the install list) picks them up when it is installed, and pip is
# pointed at the bundle it then writes.
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/usr/local/share/ca-certificates"
cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
bundle=/etc/ssl/certs/ca-certificates.crt

# What the root must not have before the installer runs: proof that this is a bare root.
for cmd in samba slapd chromium python3; do
    if chroot "$root" sh -c "command -v $cmd" >/dev/null 2>&1; then
        die "the bare root already has $cmd; it is not bare"
    fi
done

in_root() {
    chroot "$root" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TMPDIR=/tmp CI=true \
        SSL_CERT_FILE="$bundle" PIP_CERT="$bundle" REQUESTS_CA_BUNDLE="$bundle" \
        CARGO_TARGET_DIR=/var/tmp/bridgehead-target \
        BRIDGEHEAD_SCIM_SERVER=/var/tmp/bridgehead-target/scim-venv/bin/scim2-server \
        "$@"
}

phase "the project's installer inside the root (scripts/test.sh --system-deps)"
in_root bash -c "cd '$checkout' && bash scripts/test.sh --system-deps" </dev/null ||
    die "the installer failed inside the bare root (the step is named above)"

phase "the lab's smoke test inside the root ($SMOKE_TEST)"
in_root bash -c "cd '$checkout' && '$test_bin' --exact '$SMOKE_TEST' --nocapture --test-threads=1" </dev/null ||
    die "the lab did not start inside the bare root (the step is named above)"

phase "done"
