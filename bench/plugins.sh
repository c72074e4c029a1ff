#!/usr/bin/env bash
# What plugins cost: sextant's server on rpcx-benchmark's load (Hello.Say, the 581-byte proto2
# BenchmarkMessage) with `--plugins none`, `noop` (a plugin with every hook at its default),
# `metrics` (sextant-plugins' MetricsPlugin), `tracing` (its ServerTracingPlugin, OpenTelemetry
# SDK spans recorded and not exported) and `metrics+tracing`, in one run on this machine. Every
# server and client is its own process on 127.0.0.1; the plugin sets take turns (the order
# rotates every round); the summary gives each set's TPS as a ratio to `none` in the same run,
# medians over the rounds, and the server's CPU time (user + system, from /proc) for the same
# number of calls as a ratio to `none`'s: steadier than TPS on a shared machine.
#
# Environment (all optional):
#   C_LIST   concurrencies c                       (default: "100 1000")
#   K        connections shared by the c callers   (default: 10)
#   N        measured calls per client run         (default: 200000)
#   ROUNDS   rounds; each runs every set once      (default: 5)
#   SETS     plugin sets                           (default: "none noop metrics tracing metrics+tracing")
#   OUT      file for the raw JSON lines           (default: bench/results/plugins.jsonl)
#   SKIP_BUILD=1 to use the binary already built
#
# Usage: bench/plugins.sh        (prints a Markdown summary on stdout)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
C_LIST="${C_LIST:-100 1000}"
K="${K:-10}"
N="${N:-200000}"
ROUNDS="${ROUNDS:-5}"
SETS="${SETS:-none noop metrics tracing metrics+tracing}"
OUT="${OUT:-$here/results/plugins.jsonl}"
SEXTANT_TARGET="${SEXTANT_TARGET:-$HOME/.cache/sextant-target}"

log() { printf '[plugins] %s\n' "$*" >&2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building sextant-bench (release)"
    (cd "$root" && CARGO_TARGET_DIR="$SEXTANT_TARGET" cargo build --release --quiet -p sextant-bench)
fi
bin="$SEXTANT_TARGET/release/sextant-bench"

server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -INT "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
    local i
    for ((i = 0; i < 400; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    log "nothing listens on port $1"
    return 1
}

# The server's CPU time so far (user + system, in clock ticks), from /proc.
ticks=$(getconf CLK_TCK)
server_cpu() {
    awk '{print $14 + $15}' "/proc/$server_pid/stat"
}

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
read -r -a sets <<<"$SETS"
for ((round = 0; round < ROUNDS; round++)); do
    for c in $C_LIST; do
        n_sets=${#sets[@]}
        for ((i = 0; i < n_sets; i++)); do
            set_name=${sets[$(((i + round) % n_sets))]}
            port=$(free_port)
            "$bin" server --addr "127.0.0.1:$port" --plugins "$set_name" >/dev/null 2>&1 &
            server_pid=$!
            wait_port "$port"
            cpu0=$(server_cpu)
            line=$("$bin" client --addr "127.0.0.1:$port" -c "$c" -k "$K" -n "$N" --json)
            cpu1=$(server_cpu)
            cleanup
            log "round $round c=$c $set_name: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tps"])' "$line") TPS"
            python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["round"]=int(sys.argv[2]); d["plugins"]=sys.argv[3]; d["server_cpu_s"]=float(sys.argv[4]); print(json.dumps(d))' "$line" "$round" "$set_name" "$(python3 -c "print(($cpu1 - $cpu0) / $ticks)")" >>"$OUT"
        done
    done
done

python3 - "$OUT" "$SETS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sets = sys.argv[2].split()
cs = sorted({r["c"] for r in rows})
print("| plugins | " + " | ".join(f"c = {c}: TPS (median) | × none | server CPU per call × none" for c in cs) + " |")
print("|---|" + "---|---|---|" * len(cs))
for s in sets:
    cells = []
    for c in cs:
        ratios, tps, cpu = [], [], []
        for rnd in sorted({r["round"] for r in rows}):
            base = [r for r in rows if r["c"] == c and r["round"] == rnd and r["plugins"] == "none"]
            mine = [r for r in rows if r["c"] == c and r["round"] == rnd and r["plugins"] == s]
            if base and mine:
                ratios.append(mine[0]["tps"] / base[0]["tps"])
                tps.append(mine[0]["tps"])
                if base[0].get("server_cpu_s") and mine[0].get("server_cpu_s"):
                    cpu.append(mine[0]["server_cpu_s"] / base[0]["server_cpu_s"])
        cpu_cell = f"{statistics.median(cpu):.3f}" if cpu else "-"
        cells.append(f"{statistics.median(tps):,.0f} | {statistics.median(ratios):.3f} | {cpu_cell}")
    print(f"| `{s}` | " + " | ".join(cells) + " |")
PY
