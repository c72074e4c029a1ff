#!/usr/bin/env bash
# File transfer against a plain tokio TCP copy of the same file, in one run and one process
# (`sextant-bench transfer`): upload (XClient::send_file into SaveToDir) and download
# (XClient::download_file from ServeDir) of a SIZE_MIB file on 127.0.0.1, alternating with plain
# file -> socket -> file copies using the same 256 KiB buffers. Prints one JSON line: the median
# MB/s of each, the ratios (target >= 0.8), CPU seconds per GiB, and the process' peak RSS
# (the transfers stream; they never hold the file).
#
# Environment (all optional):
#   SIZE_MIB  file size           (default: 1024)
#   ROUNDS    rounds              (default: 5)
#   DIR       where the files go  (default: /dev/shm when it exists, so that disk writeback does
#             not drown the figures; SIZE_MIB x 3 must fit there)
#   SKIP_BUILD=1 to use the binary already built
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
SIZE_MIB="${SIZE_MIB:-1024}"
ROUNDS="${ROUNDS:-5}"
DIR="${DIR:-$( [[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}"
SEXTANT_TARGET="${SEXTANT_TARGET:-$HOME/.cache/sextant-target}"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "[bench] building sextant-bench (release)" >&2
    (cd "$root" && CARGO_TARGET_DIR="$SEXTANT_TARGET" cargo build --release --quiet -p sextant-bench)
fi
"$SEXTANT_TARGET/release/sextant-bench" transfer --size-mib "$SIZE_MIB" --rounds "$ROUNDS" --dir "$DIR"
