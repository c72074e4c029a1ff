#!/usr/bin/env bash
# Instructions per call of two sextant-bench builds, server side and client side, counted by
# valgrind's callgrind: repeatable on a shared, noisy machine where TPS is not, so a change to the
# hot path can be compared with the build before it.
#
# Each side is measured with n1 and n2 calls (c callers over 10 connections, no warm-up) and the
# difference divided by n2 - n1, so start-up costs cancel out. The side being measured runs under
# callgrind (slowly); its peer is the NEW build, running natively.
#
# Usage: OLD=/path/to/old/sextant-bench NEW=/path/to/new/sextant-bench bench/instructions.sh
#   e.g. OLD from a worktree of the base commit:
#     git worktree add /tmp/base <rev> && (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target \
#       cargo build --release -p sextant-bench); OLD=/tmp/base-target/release/sextant-bench
# Env: WORKLOAD hello|arith (default hello), C (default 100), N1/N2 (default 20000/60000),
#      SIDES (default "server client").
set -euo pipefail
: "${OLD:?set OLD to the sextant-bench binary to compare against}"
NEW="${NEW:-${CARGO_TARGET_DIR:-$HOME/.cache/sextant-target}/release/sextant-bench}"
WORKLOAD="${WORKLOAD:-hello}"
C="${C:-100}"
N1="${N1:-20000}"
N2="${N2:-60000}"
SIDES="${SIDES:-server client}"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
    local i
    for ((i = 0; i < 400; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}
total_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

# Prints the instructions of `side` of build `bin` for n calls.
measure() {
    local side=$1 bin=$2 n=$3 port out
    port=$(free_port)
    out="$work/$side.$n.$RANDOM.out"
    local client_args=(client --addr "127.0.0.1:$port" -c "$C" -k 10 -n "$n" --warmup 0 --json --workload "$WORKLOAD")
    if [[ $side == server ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" server --addr "127.0.0.1:$port" >/dev/null 2>&1 &
        server_pid=$!
        wait_port "$port"
        "$NEW" "${client_args[@]}" >/dev/null 2>&1
    else
        "$NEW" server --addr "127.0.0.1:$port" >/dev/null 2>&1 &
        server_pid=$!
        wait_port "$port"
        valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "${client_args[@]}" >/dev/null 2>&1
    fi
    kill -INT "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    total_ir "$out"
}

echo "instructions per call, workload $WORKLOAD, c=$C (callgrind, ($N2 - $N1) calls)"
for side in $SIDES; do
    declare -A per=()
    for v in old new; do
        bin=$OLD
        [[ $v == new ]] && bin=$NEW
        a=$(measure "$side" "$bin" "$N1")
        b=$(measure "$side" "$bin" "$N2")
        per[$v]=$(((b - a) / (N2 - N1)))
    done
    python3 -c "o, n = ${per[old]}, ${per[new]}; print(f'$side: old {o}, new {n}, new/old {n / o:.3f}')"
done
