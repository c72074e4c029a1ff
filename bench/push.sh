#!/usr/bin/env bash
# Server push throughput against call throughput on the same single connection, in one run:
# `sextant-bench push` (the server pushes N messages of 64 bytes to one connection, the client
# reads them all) and `sextant-bench client -c 100 -k 1` (100 callers sharing one connection,
# Arith.Mul), alternating, against one sextant-bench server on 127.0.0.1. Prints a Markdown summary
# with the median of each and their ratio (the target: pushes/s >= calls/s at c = 100).
#
# Environment (all optional):
#   PUSHES   pushes per push run      (default: 1000000)
#   PAYLOAD  bytes per push           (default: 64)
#   N        calls per call run       (default: 300000)
#   ROUNDS   rounds                   (default: 3)
#   OUT      raw JSON lines           (default: bench/results/push.jsonl)
#   SKIP_BUILD=1 to use the binary already built
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
PUSHES="${PUSHES:-1000000}"
PAYLOAD="${PAYLOAD:-64}"
N="${N:-300000}"
ROUNDS="${ROUNDS:-3}"
OUT="${OUT:-$here/results/push.jsonl}"
SEXTANT_TARGET="${SEXTANT_TARGET:-$HOME/.cache/sextant-target}"
bin="$SEXTANT_TARGET/release/sextant-bench"

log() { printf '[bench] %s\n' "$*" >&2; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building sextant-bench (release)"
    (cd "$root" && CARGO_TARGET_DIR="$SEXTANT_TARGET" cargo build --release --quiet -p sextant-bench)
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
addr="127.0.0.1:$port"
"$bin" server --addr "$addr" >/dev/null 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
for r in $(seq 1 "$ROUNDS"); do
    log "round $r/$ROUNDS: calls (c=100, k=1)"
    "$bin" client --addr "$addr" -c 100 -k 1 -n "$N" --workload arith --json 2>/dev/null | tail -n 1 >>"$OUT"
    log "round $r/$ROUNDS: pushes"
    "$bin" push --addr "$addr" -n "$PUSHES" --payload "$PAYLOAD" >>"$OUT"
done

python3 - "$OUT" "$ROUNDS" "$PAYLOAD" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
calls = [r["tps"] for r in rows if "tps" in r]
pushes = [r["pushes_per_sec"] for r in rows if "pushes_per_sec" in r]
c, p = statistics.median(calls), statistics.median(pushes)
print(f"Machine: {os.cpu_count()} cores; median of {sys.argv[2]} rounds; one connection.\n")
print("| what | per second |")
print("|---|---|")
print(f"| calls, c = 100 on 1 connection (Arith.Mul) | {c:,.0f} |")
print(f"| pushes of {sys.argv[3]} bytes on 1 connection | {p:,.0f} |")
print(f"\npushes / calls = **{p / c:.2f}x** (target >= 1)")
PY
