#!/usr/bin/env bash
# Bridgehead's one test command: installs what the tests need, then runs every check CI runs.
#
#   bash scripts/test.sh               # everything (what .ci/run does)
#   bash scripts/test.sh --deps-only   # only install/check system packages and Rust parts
#   bash scripts/test.sh --system-deps # only the system packages and the SCIM server (no Rust)
#   bash scripts/test.sh --fresh-root  # also prove the install list in a bare Debian root (CI)
#
# Runs on Debian 12 as root (CI: no stdin, CI=true) or as a user with sudo. Safe to run
# again: it installs only what is missing and runs `apt-get update` only when it installs.
# Fails fast: the first failing step stops the run with its name and a non-zero exit.

set -euo pipefail

readonly MUSL_TARGET=x86_64-unknown-linux-musl
readonly BIN_NAME=bridgehead

# Per-step time limits in minutes, applied when unattended (CI=true or no terminal). A
# fresh 2-core machine needs roughly 15 minutes in all; the limits only turn a hang into a
# clear failure well inside CI's 90 minutes. (Not on a terminal: `timeout` moves the
# command out of the foreground process group, so Ctrl-C would leave it running.)
readonly LIMIT_LINT=20 LIMIT_TEST=30 LIMIT_BUILD=25 LIMIT_FRESH_ROOT=15

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

deps_only=false system_deps_only=false fresh_root=false
for arg in "$@"; do
    case "$arg" in
        --deps-only) deps_only=true ;;
        --system-deps) system_deps_only=true ;;
        --fresh-root) fresh_root=true ;;
        -h | --help) usage; exit 0 ;;
        *) echo "test.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ---------------------------------------------------------------------------------------
# Output: a banner per step, durations, and a summary that also prints on failure.

current_step=""
summary=()

banner() {
    printf '\n==== %s  (at %dm%02ds)\n' "$1" $((SECONDS / 60)) $((SECONDS % 60))
}

die() {
    echo "test.sh: $*" >&2
    exit 1
}

# step NAME [--limit MINUTES] COMMAND...: runs one step with a banner and records its time.
# (A shell function run here has `set -e` suspended, because it runs left of `||`: the
# functions below check their important commands themselves with `|| die`.)
step() {
    local name=$1 limit=""
    shift
    if [[ ${1:-} == --limit ]]; then
        limit=$2
        shift 2
    fi
    current_step=$name
    banner "$name"
    local start=$SECONDS rc=0
    if [[ -n $limit ]] && $unattended && command -v timeout >/dev/null; then
        timeout --kill-after=30s "${limit}m" "$@" || rc=$?
        if ((rc == 124 || rc == 137)); then
            echo "test.sh: step '$name' did not finish within $limit minutes" >&2
        fi
    else
        "$@" || rc=$?
    fi
    if ((rc != 0)); then
        exit "$rc"
    fi
    summary+=("$(printf '%-28s %4ds' "$name" $((SECONDS - start)))")
    current_step=""
}

on_exit() {
    local rc=$?
    if ((${#summary[@]} > 0)); then
        printf '\n==== Summary\n'
        printf '  ok  %s\n' "${summary[@]}"
    fi
    if ((rc != 0)); then
        printf '\n==== FAILED%s (exit %d, after %ds)\n' "${current_step:+ in step: $current_step}" "$rc" "$SECONDS" >&2
    else
        printf '\n==== OK (%ds)\n' "$SECONDS"
    fi
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------
# Environment: readable logs, full backtraces, lockfile discipline in CI.

if [[ -z ${CARGO_TERM_COLOR:-} ]]; then
    if [[ -t 1 ]]; then CARGO_TERM_COLOR=auto; else CARGO_TERM_COLOR=never; fi
    export CARGO_TERM_COLOR
fi
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

unattended=false
if [[ ${CI:-} == true || ! -t 0 ]]; then
    unattended=true
fi

cargo_locked=()
if [[ ${CI:-} == true ]]; then
    # A fresh checkout builds once: incremental artefacts only cost disk and time.
    export CARGO_INCREMENTAL=0
    # CI must build exactly what Cargo.lock says; a stale lock file is a failure there.
    cargo_locked=(--locked)
fi

# CI may start us without a login shell, so rustup's PATH entry is missing.
if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

target_dir=${CARGO_TARGET_DIR:-target}
static_bin="$target_dir/$MUSL_TARGET/release/$BIN_NAME"

# ---------------------------------------------------------------------------------------
# Installing what is missing.

# as_root COMMAND...: runs a command as root, through sudo when we are not root.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif [[ -t 0 ]]; then
        sudo "$@"
    else
        sudo -n "$@" || die "sudo needs a password but there is no terminal; run as root or install the packages first"
    fi
}

# The package list and its installers (one list, also run inside a bare root by
# scripts/fresh-root.sh).
# shellcheck source=scripts/deps.sh
source scripts/deps.sh

ensure_rust() {
    command -v cargo >/dev/null ||
        die "no Rust toolchain: install Rust 1.85 or newer (rustup, or your distribution's rustc and cargo packages), then rerun"
    rustc --version
    cargo --version

    local component
    for component in rustfmt clippy; do
        if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
            command -v rustup >/dev/null ||
                die "cargo ${component/rustfmt/fmt} is missing; install $component for your Rust (Debian: apt-get install ${component/clippy/rust-clippy})"
            rustup component add "$component" || die "rustup component add $component failed"
        fi
    done

    if command -v rustup >/dev/null; then
        if rustup target list --installed | grep -qx "$MUSL_TARGET"; then
            echo "rust target present: $MUSL_TARGET"
        else
            rustup target add "$MUSL_TARGET" || die "rustup target add $MUSL_TARGET failed"
        fi
    elif [[ -d "$(rustc --print sysroot)/lib/rustlib/$MUSL_TARGET" ]]; then
        echo "rust target present: $MUSL_TARGET"
    else
        die "the Rust standard library for $MUSL_TARGET is missing and there is no rustup to add it"
    fi
}

# ---------------------------------------------------------------------------------------
# Checks on the release binary and the dependency tree.

check_static_binary() {
    [[ -f $static_bin ]] || die "no binary at $static_bin"
    local desc
    desc=$(file -bL "$static_bin")
    echo "$static_bin: $desc"
    grep -q static <<<"$desc" || die "$static_bin is not statically linked"
    # It must also start on this machine with no shared libraries at all.
    "$static_bin" --help >/dev/null || die "$static_bin --help failed"
    echo "size: $(du -h "$static_bin" | cut -f1)"
}

# aws-lc-rs needs extra toolchains for musl and minutes of C compilation; everything must
# use ring. `cargo tree -i` exits non-zero with "did not match any packages" when the
# package is nowhere in the resolved graph, which is what we want.
check_no_aws_lc() {
    local pkg out rc
    for pkg in aws-lc-rs aws-lc-sys; do
        rc=0
        out=$(cargo tree "${cargo_locked[@]}" --target all -i "$pkg" 2>&1) || rc=$?
        if ((rc != 0)) && grep -q "did not match any packages" <<<"$out"; then
            echo "$pkg: not in the dependency tree"
        elif ((rc == 0)) && [[ -z $out ]]; then
            echo "$pkg: not in the dependency tree"
        elif ((rc == 0)); then
            printf '%s\n' "$out"
            die "$pkg is in the dependency tree (above: who pulls it in); use ring (rustls default-features = false, features = [\"ring\", ...])"
        else
            printf '%s\n' "$out"
            die "cargo tree failed (exit $rc)"
        fi
    done
}

# Checks the unit file with a copy whose ExecStart points at the binary just built (verify
# refuses a unit whose binary is not there). Skipped where systemd is not installed.
check_systemd_unit() {
    if ! command -v systemd-analyze >/dev/null; then
        echo "skipped: no systemd-analyze here"
        return
    fi
    local tmp bin rc=0
    bin=$(realpath "$static_bin")
    tmp=$(mktemp -d)
    sed "s|/usr/local/bin/$BIN_NAME|$bin|" "systemd/$BIN_NAME.service" >"$tmp/$BIN_NAME.service"
    systemd-analyze verify "$tmp/$BIN_NAME.service" || rc=$?
    rm -rf "$tmp"
    ((rc == 0)) || die "systemd-analyze verify found problems in systemd/$BIN_NAME.service"
    echo "systemd/$BIN_NAME.service: ok"
}


# ---------------------------------------------------------------------------------------
# The run.

step "System packages" ensure_system_packages
if ! $system_deps_only; then
    step "Rust toolchain" ensure_rust
fi
step "SCIM test server" ensure_scim_server
BRIDGEHEAD_SCIM_SERVER="$(realpath "$target_dir")/scim-venv/bin/scim2-server"
export BRIDGEHEAD_SCIM_SERVER
step "Graph SDK (Microsoft's, for the Graph double)" ensure_graph_sdk
BRIDGEHEAD_GRAPH_SDK_PYTHON="$(realpath "$target_dir")/graph-sdk-venv/bin/python"
export BRIDGEHEAD_GRAPH_SDK_PYTHON

if $system_deps_only; then
    echo "system packages and the SCIM server ready (--system-deps: no Rust, no build, no tests)"
    exit 0
fi

if $deps_only; then
    echo "dependencies ready (--deps-only: no build, no tests)"
    exit 0
fi

step "Format" cargo fmt --all -- --check
step "Lint (clippy)" --limit "$LIMIT_LINT" \
    cargo clippy "${cargo_locked[@]}" --all-targets -- -D warnings
if $fresh_root; then
    # Early, so that a missing package fails the run in minutes, with the step's name.
    step "Build the test binary" --limit "$LIMIT_TEST" \
        cargo test "${cargo_locked[@]}" --test main --no-run
    step "Fresh Debian root" --limit "$LIMIT_FRESH_ROOT" bash scripts/fresh-root.sh
fi
# Unit and integration tests; the integration tests run the real binary. Note that
# --all-targets also runs benches/ once in test mode (without --bench): they must keep that
# run short.
step "Tests" --limit "$LIMIT_TEST" cargo test "${cargo_locked[@]}" --all-targets
# --all-targets leaves out doctests.
step "Doc tests" --limit "$LIMIT_TEST" cargo test "${cargo_locked[@]}" --doc
# The instrumented build of the whole tree takes 10-17 min on a fresh 2-core machine.
step "Fuzz (cargo fuzz)" --limit 30 bash scripts/fuzz.sh "$target_dir"

# ---- Directory servers (coming with the connectors' issues) ---------------------------
# Integration tests against real servers; tests/support starts private instances on free
# ports, one OU/tenant per test, and is told where the software is via environment:
# step "Tests: Samba AD"     --limit 20 cargo test --locked --test main -- samba
#     (samba-tool provision ~7 s per forest, start ~4 s; keep fixtures at a few thousand)
# step "Tests: OpenLDAP"     --limit 10 cargo test --locked --test main -- slapd
#     (slapadd -q for bulk loads, olcDbNoSync: TRUE for speed)
# step "Tests: SCIM server"  --limit 10 cargo test --locked --test main -- scim
#     (scim2-server==0.8.3 from the venv above)

step "Static build (musl)" --limit "$LIMIT_BUILD" \
    cargo build "${cargo_locked[@]}" --release --target "$MUSL_TARGET"
step "Static binary check" check_static_binary
step "No aws-lc-rs" check_no_aws_lc
step "systemd unit" check_systemd_unit
