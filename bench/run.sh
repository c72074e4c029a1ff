#!/usr/bin/env bash
# sextant against tonic and tarpc on rpcx-benchmark's load (Hello.Say, the 581-byte proto2
# BenchmarkMessage), in one run on this machine: every server and every client is its own
# process on 127.0.0.1, the peers take turns (the order rotates every round), and the summary
# gives sextant's figures as ratios to each peer's, medians over the rounds.
#
# Then: server RSS with 10,000 idle sextant connections.
#
# Environment (all optional):
#   C_LIST   concurrencies c                       (default: "100 1000 5000")
#   K        connections shared by the c callers   (default: 10)
#   N        measured calls per client run         (default: 200000)
#   ROUNDS   rounds; each runs every peer once     (default: 3)
#   IDLE     idle connections for the RSS check; 0 skips it (default: 10000)
#   OUT      file for the raw JSON lines           (default: bench/results/latest.jsonl)
#   SKIP_BUILD=1 to use binaries already built
#
# Usage: bench/run.sh            (prints a Markdown summary on stdout)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
C_LIST="${C_LIST:-100 1000 5000}"
K="${K:-10}"
N="${N:-200000}"
ROUNDS="${ROUNDS:-3}"
IDLE="${IDLE:-10000}"
OUT="${OUT:-$here/results/latest.jsonl}"
SEXTANT_TARGET="${SEXTANT_TARGET:-$HOME/.cache/sextant-target}"
PEERS_TARGET="${PEERS_TARGET:-$HOME/.cache/sextant-target-peers}"

log() { printf '[bench] %s\n' "$*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building sextant-bench (release)"
    (cd "$root" && CARGO_TARGET_DIR="$SEXTANT_TARGET" cargo build --release --quiet -p sextant-bench)
    log "building tonic-bench and tarpc-bench (release)"
    (cd "$here/peers" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --quiet)
fi

bin_for() {
    case "$1" in
        sextant) echo "$SEXTANT_TARGET/release/sextant-bench" ;;
        *) echo "$PEERS_TARGET/release/$1-bench" ;;
    esac
}

server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
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

wait_for_port() {
    local tries
    for ((tries = 0; tries < 200; tries++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || { log "server exited before listening"; return 1; }
        sleep 0.05
    done
    log "server did not listen on port $1"
    return 1
}

# Starts peer $1's server; sets server_pid and addr (no subshell, so the EXIT trap sees it).
start_server() {
    local bin port
    bin="$(bin_for "$1")"
    port="$(free_port)"
    "$bin" server --addr "127.0.0.1:$port" >/dev/null 2>&1 &
    server_pid=$!
    addr="127.0.0.1:$port"
    wait_for_port "$port"
}

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
peers=(sextant tarpc tonic)
for ((round = 0; round < ROUNDS; round++)); do
    for c in $C_LIST; do
        for ((i = 0; i < ${#peers[@]}; i++)); do
            peer="${peers[$(((i + round) % ${#peers[@]}))]}"
            start_server "$peer"
            log "round $((round + 1))/$ROUNDS c=$c $peer"
            if ! "$(bin_for "$peer")" client --addr "$addr" -c "$c" -k "$K" -n "$N" --json --no-progress 2>/dev/null \
                | sed "s/^{/{\"round\":$round,/" >>"$OUT"; then
                log "$peer client failed at c=$c"
            fi
            cleanup
        done
    done
done

if [[ "$IDLE" -gt 0 ]]; then
    start_server sextant
    log "holding $IDLE idle connections"
    "$(bin_for sextant)" idle --addr "$addr" -n "$IDLE" --server-pid "$server_pid" >>"$OUT"
    cleanup
fi

python3 - "$OUT" "$K" "$N" "$ROUNDS" <<'PY'
import json, statistics, sys, platform, os, datetime
path, k, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs, idle = {}, None
for line in open(path):
    d = json.loads(line)
    if "idle_connections" in d:
        idle = d
        continue
    runs.setdefault((d["peer"], d["c"]), []).append(d)
med = lambda xs: statistics.median(xs)
cs = sorted({c for (_, c) in runs})
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores, {cpu}; {datetime.date.today()}; k={k} connections, n={n} calls, median of {rounds} rounds.\n")
print("| c | peer | TPS | p50 µs | p99 µs | p99.9 µs | max µs | errors |")
print("|---|---|---|---|---|---|---|---|")
for c in cs:
    for peer in ("sextant", "tarpc", "tonic"):
        rs = runs.get((peer, c), [])
        if not rs:
            continue
        print(f"| {c} | {peer} | {med([r['tps'] for r in rs]):,.0f} | {med([r['p50_us'] for r in rs]):,.0f} | {med([r['p99_us'] for r in rs]):,.0f} | {med([r['p999_us'] for r in rs]):,.0f} | {med([r['max_us'] for r in rs]):,.0f} | {sum(r['errors'] for r in rs)} |")
print("\n| c | TPS sextant/tarpc | TPS sextant/tonic | p99 sextant/tarpc | p99 sextant/tonic |")
print("|---|---|---|---|---|")
for c in cs:
    def m(peer, key):
        rs = runs.get((peer, c), [])
        return med([r[key] for r in rs]) if rs else float("nan")
    s_tps, s_p99 = m("sextant", "tps"), m("sextant", "p99_us")
    print(f"| {c} | {s_tps / m('tarpc', 'tps'):.2f}× | {s_tps / m('tonic', 'tps'):.2f}× | {s_p99 / m('tarpc', 'p99_us'):.2f}× | {s_p99 / m('tonic', 'p99_us'):.2f}× |")
if idle:
    print(f"\nServer RSS with {idle['idle_connections']:,} idle sextant connections: "
          f"{idle['server_rss_kib_idle'] / 1024:.0f} MiB after 3 s idle "
          f"({idle['server_rss_kib_connected'] / 1024:.0f} MiB right after connecting, "
          f"{idle['server_rss_kib_before'] / 1024:.0f} MiB before).")
PY
