#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/, a workspace of its own), each for a bounded time from
# its committed corpus; new finds go to a scratch copy, not into the checkout. cargo-fuzz
# wants nightly flags: RUSTC_BOOTSTRAP=1 allows them on the stable toolchain.
#
#   bash scripts/fuzz.sh [TARGET_DIR]     # FUZZ_SECONDS=20 per target by default
#
# A script of its own (not a function of test.sh) so that test.sh can put a time limit on it.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly FUZZ_SECONDS=${FUZZ_SECONDS:-20}
readonly TARGETS=(record_decode ldif_reader dn_parse expr_compile)

die() {
    echo "fuzz.sh: $*" >&2
    exit 1
}

target_dir=${1:-${CARGO_TARGET_DIR:-target}}
fuzz_target="$(realpath -m "$target_dir")/fuzz" # before the cd: target_dir may be relative

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked ||
    die "cargo install cargo-fuzz failed"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${TARGETS[@]}"; do
    mkdir -p "$scratch/$t"
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir "$fuzz_target" \
        "$t" "$scratch/$t" "corpus/$t" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
        -max_len=65536) || die "fuzz target $t failed (its crash input is under fuzz/artifacts/$t)"
done
echo "fuzz: ${#TARGETS[@]} targets, ${FUZZ_SECONDS} s each, no crash"
