#!/usr/bin/env bash
# A short fuzz run of the `POST /v1/punches` body parser and validation, for CI.
#
#   ingest-api/fuzz/smoke.sh            # 30 s
#   FUZZ_SECONDS=300 ingest-api/fuzz/smoke.sh
#   FUZZ_INSTALL=0 ingest-api/fuzz/smoke.sh   # skip (exit 0) if cargo-fuzz is missing
#
# Installs cargo-fuzz from crates.io if it is missing (about a minute) unless FUZZ_INSTALL=0.
# Works on stable Rust (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags). The first build
# builds the parser with its few dependencies (no Kafka client): a minute or two cold.
# Exits non-zero if the fuzzer finds a crash (panic, failed invariant, sanitizer report) and
# prints the crashing input in base64.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${FUZZ_SECONDS:-30}"
target=punch_body

say() { printf 'fuzz smoke: %s\n' "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [[ "${FUZZ_INSTALL:-1}" == 0 ]]; then
        say "cargo-fuzz is not installed and FUZZ_INSTALL=0: skipped"
        exit 0
    fi
    say "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
command -v c++ >/dev/null || { say "a C++ compiler is needed for libFuzzer: apt-get install -y g++"; exit 1; }

# cargo-fuzz needs nightly flags; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

cd "$fuzz_dir/.."
mkdir -p "fuzz/corpus/$target"
started=$SECONDS
say "building and running $target for ${seconds}s"
status=0
cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 || status=$?
if [[ $status -ne 0 ]]; then
    say "FAILED (exit $status) after $((SECONDS - started))s; crashing inputs (base64):"
    for file in "fuzz/artifacts/$target"/*; do
        [[ -f "$file" ]] || continue
        printf '%s: %s\n' "$file" "$(base64 -w0 "$file")" >&2
    done
    say "reproduce: cd ingest-api && RUSTC_BOOTSTRAP=1 cargo fuzz run $target <artifact>"
    exit "$status"
fi
say "no crash in ${seconds}s of fuzzing ($((SECONDS - started))s in all)"
