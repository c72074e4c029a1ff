#!/usr/bin/env bash
# sextant's transports on rpcx-benchmark's load (Hello.Say, the 581-byte proto2
# BenchmarkMessage), in one run on this machine: sextant over tcp, tls (tcp@ with rustls), ws,
# quic and kcp, and tonic over TLS (rustls with ring, as sextant). Every server and every client
# is its own process on 127.0.0.1, the peers take turns (the order rotates every round), and the
# summary gives each transport's figures as ratios to sextant's plain TCP in the same run, and
# sextant TLS's to tonic TLS's, medians over the rounds.
#
# Then: server RSS with IDLE idle connections, plain TCP and TLS (each a real rpcx client that
# made a heartbeat and sat idle, as bench/run.sh measures it).
#
# Certificates are made once per run in a temporary directory (the first sextant TLS server's
# `--self-signed DIR`, a CA and a server certificate for localhost/127.0.0.1); every TLS, wss and
# QUIC server, sextant's and tonic's, serves DIR/server.crt, and every client trusts DIR/ca.crt.
# KCP uses sextant-bench's default pass and salt (AES, FEC 10/3, as rpcx-examples).
#
# Environment (all optional):
#   C_LIST     concurrencies c                       (default: "100 1000")
#   K          connections shared by the c callers   (default: 10)
#   N          measured calls per client run         (default: 100000)
#   ROUNDS     rounds; each runs every peer once     (default: 3)
#   PEERS      peers to run                          (default: "tcp tls ws quic kcp tonic-tls";
#              also: wss, tonic)
#   IDLE       idle connections for the RSS check; 0 skips it (default: 10000)
#   IDLE_NETS  networks of the RSS check             (default: "tcp tls")
#   OUT        file for the raw JSON lines           (default: bench/results/transports.jsonl)
#   WAIT_IDLE  seconds to wait, before each client run, for the other processes on the machine
#              to go quiet (< 10 % of the CPUs for 3 s, as bench/run-peers.sh); 0 = do not wait
#              (default: 0). Each JSON line records `foreign_cpu`: the share of the machine's CPU
#              that processes other than this server and client took during the run.
#   SKIP_BUILD=1 to use binaries already built
#
# Usage: bench/transports.sh     (prints a Markdown summary on stdout)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
C_LIST="${C_LIST:-100 1000}"
K="${K:-10}"
N="${N:-100000}"
ROUNDS="${ROUNDS:-3}"
PEERS="${PEERS:-tcp tls ws quic kcp tonic-tls}"
IDLE="${IDLE:-10000}"
IDLE_NETS="${IDLE_NETS:-tcp tls}"
OUT="${OUT:-$here/results/transports.jsonl}"
WAIT_IDLE="${WAIT_IDLE:-0}"
SEXTANT_TARGET="${SEXTANT_TARGET:-$HOME/.cache/sextant-target}"
PEERS_TARGET="${PEERS_TARGET:-$HOME/.cache/sextant-target-peers}"

log() { printf '[transports] %s\n' "$*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building sextant-bench (release)"
    (cd "$root" && CARGO_TARGET_DIR="$SEXTANT_TARGET" cargo build --release --quiet -p sextant-bench)
    if [[ " $PEERS " == *" tonic"* ]]; then
        log "building tonic-bench (release)"
        (cd "$here/peers" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --quiet -p tonic-bench)
    fi
fi
sextant_bin="$SEXTANT_TARGET/release/sextant-bench"
tonic_bin="$PEERS_TARGET/release/tonic-bench"

work="$(mktemp -d)"
pki="$work/pki"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port free for both TCP and UDP (quic and kcp listen on UDP).
free_port() {
    python3 -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
print(p)'
}

# Waits for the server to log $2 in its log file $1 (sextant logs its address once bound, UDP
# included), or, with $2 empty, for TCP port $3 to accept.
wait_ready() {
    local tries
    for ((tries = 0; tries < 400; tries++)); do
        if [[ -n "$2" ]]; then
            grep -q "$2" "$1" 2>/dev/null && return 0
        else
            (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || { log "server exited before listening: $(cat "$1")"; return 1; }
        sleep 0.05
    done
    log "server did not get ready on port $3"
    return 1
}

# CPU accounting, as bench/run-peers.sh: all values in clock ticks.
ticks_per_s="$(getconf CLK_TCK)"
ncpu="$(getconf _NPROCESSORS_ONLN)"
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
children_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }

# Waits up to $WAIT_IDLE seconds until the machine has been quiet for 3 s in a row.
wait_idle() {
    local deadline=$((SECONDS + WAIT_IDLE)) quiet=0 b0 b1 s0 s1 foreign
    while ((WAIT_IDLE > 0 && quiet < 3 && SECONDS < deadline)); do
        b0="$(busy_ticks)"
        s0="$(proc_ticks "$server_pid")"
        sleep 1
        b1="$(busy_ticks)"
        s1="$(proc_ticks "$server_pid")"
        foreign=$(((b1 - b0) - (s1 - s0)))
        if ((foreign * 10 < ticks_per_s * ncpu)); then
            quiet=$((quiet + 1))
        else
            quiet=0
        fi
    done
    ((WAIT_IDLE == 0 || quiet >= 3)) || log "machine still busy after ${WAIT_IDLE}s; running anyway"
}

# The sextant network of a peer name (tcp, tls, ws, wss, quic, kcp).
net_of() { echo "${1#sextant-}"; }

# Starts the server of peer $1 (tcp, tls, ws, wss, quic, kcp, tonic, tonic-tls); sets
# server_pid and port (no subshell, so the EXIT trap sees it).
start_server() {
    local log_file="$work/server.log"
    port="$(free_port)"
    : >"$log_file"
    case "$1" in
        tonic)
            "$tonic_bin" server --addr "127.0.0.1:$port" >/dev/null 2>"$log_file" &
            server_pid=$!
            wait_ready "$log_file" "" "$port"
            ;;
        tonic-tls)
            "$tonic_bin" server --addr "127.0.0.1:$port" --cert "$pki/server.crt" --key "$pki/server.key" \
                >/dev/null 2>"$log_file" &
            server_pid=$!
            wait_ready "$log_file" "" "$port"
            ;;
        *)
            local tls=()
            case "$1" in tls | wss | quic) tls=(--cert "$pki/server.crt" --key "$pki/server.key") ;; esac
            "$sextant_bin" server --network "$1" --addr "127.0.0.1:$port" "${tls[@]}" \
                >/dev/null 2>"$log_file" &
            server_pid=$!
            wait_ready "$log_file" "listening on" "$port"
            ;;
    esac
}

# Runs the client of peer $1 against the server on $port with "$@" after it.
run_client() {
    local peer="$1"
    shift
    case "$peer" in
        tonic) "$tonic_bin" client --addr "127.0.0.1:$port" "$@" ;;
        tonic-tls) "$tonic_bin" client --addr "127.0.0.1:$port" --ca "$pki/ca.crt" "$@" ;;
        *)
            local tls=()
            case "$peer" in tls | wss | quic) tls=(--ca "$pki/ca.crt") ;; esac
            "$sextant_bin" client --network "$peer" --addr "127.0.0.1:$port" "${tls[@]}" "$@"
            ;;
    esac
}

# The certificates: one sextant TLS server writes them, and stops.
log "making certificates in $pki"
port="$(free_port)"
"$sextant_bin" server --network tls --addr "127.0.0.1:$port" --self-signed "$pki" >/dev/null 2>"$work/server.log" &
server_pid=$!
wait_ready "$work/server.log" "listening on" "$port"
cleanup

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
read -r -a peers <<<"$PEERS"
for ((round = 0; round < ROUNDS; round++)); do
    for c in $C_LIST; do
        for ((i = 0; i < ${#peers[@]}; i++)); do
            peer="${peers[$(((i + round) % ${#peers[@]}))]}"
            start_server "$peer"
            wait_idle
            log "round $((round + 1))/$ROUNDS c=$c $peer"
            b0="$(busy_ticks)" s0="$(proc_ticks "$server_pid")" k0="$(children_ticks)" t0="$(date +%s%N)"
            if ! run_client "$peer" -c "$c" -k "$K" -n "$N" --json --no-progress >"$work/line" 2>"$work/client.log"; then
                log "$peer client failed at c=$c: $(tail -n 3 "$work/client.log")"
            fi
            b1="$(busy_ticks)" s1="$(proc_ticks "$server_pid")" k1="$(children_ticks)" t1="$(date +%s%N)"
            foreign="$(awk -v b=$((b1 - b0)) -v s=$((s1 - s0)) -v k=$((k1 - k0)) -v ns=$((t1 - t0)) \
                -v hz="$ticks_per_s" -v n="$ncpu" 'BEGIN { f = (b - s - k) / (ns / 1e9 * hz * n); printf "%.3f", f < 0 ? 0 : f }')"
            sed "s/^{/{\"round\":$round,\"foreign_cpu\":$foreign,/" "$work/line" >>"$OUT"
            cleanup
        done
    done
done

if [[ "$IDLE" -gt 0 ]]; then
    for net in $IDLE_NETS; do
        start_server "$net"
        log "holding $IDLE idle $net connections"
        tls=()
        case "$net" in tls | wss | quic) tls=(--ca "$pki/ca.crt") ;; esac
        if ! "$sextant_bin" idle --network "$net" --addr "127.0.0.1:$port" "${tls[@]}" -n "$IDLE" \
            --server-pid "$server_pid" >>"$OUT"; then
            log "idle $net failed"
        fi
        cleanup
    done
fi

python3 - "$OUT" "$K" "$N" "$ROUNDS" <<'PY'
import json, statistics, sys, os, datetime
path, k, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs, idle = {}, {}
for line in open(path):
    d = json.loads(line)
    if "idle_connections" in d:
        idle[d["peer"]] = d
        continue
    runs.setdefault((d["peer"], d["c"]), []).append(d)
med = statistics.median
cs = sorted({c for (_, c) in runs})
order = ["sextant", "sextant-tls", "sextant-ws", "sextant-wss", "sextant-quic", "sextant-kcp", "tonic", "tonic-tls"]
peers = [p for p in order if any((p, c) in runs for c in cs)]
label = {"sextant": "sextant tcp", "sextant-tls": "sextant tls", "sextant-ws": "sextant ws",
         "sextant-wss": "sextant wss", "sextant-quic": "sextant quic", "sextant-kcp": "sextant kcp",
         "tonic": "tonic", "tonic-tls": "tonic tls"}
def m(peer, c, key):
    rs = runs.get((peer, c), [])
    return med([r[key] for r in rs]) if rs else float("nan")
# A ratio: the median over the rounds of the ratio within each round (both peers ran in the same
# round, seconds apart), which drifting load on a shared machine disturbs less than a ratio of
# medians.
def ratio(a, b, c, key):
    ra = {r["round"]: r[key] for r in runs.get((a, c), [])}
    rb = {r["round"]: r[key] for r in runs.get((b, c), [])}
    xs = [ra[i] / rb[i] for i in ra if i in rb and rb[i]]
    return med(xs) if xs else float("nan")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores, {cpu}; {datetime.date.today()}; k={k} connections, n={n} calls, median of {rounds} rounds.\n")
print("| c | peer | TPS | p50 µs | p99 µs | p99.9 µs | max µs | errors | rounds | foreign CPU |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in cs:
    for p in peers:
        rs = runs.get((p, c), [])
        if not rs:
            continue
        print(f"| {c} | {label[p]} | {m(p, c, 'tps'):,.0f} | {m(p, c, 'p50_us'):,.0f} | {m(p, c, 'p99_us'):,.0f} | "
              f"{m(p, c, 'p999_us'):,.0f} | {m(p, c, 'max_us'):,.0f} | {sum(r['errors'] for r in rs)} | {len(rs)} | "
              f"{100 * m(p, c, 'foreign_cpu'):.0f} % |")
targets = {"sextant-tls": 0.75, "sextant-ws": 0.7, "sextant-quic": 0.4}
nets = [p for p in peers if p.startswith("sextant-")]
if "sextant" in peers and nets:
    print("\nRatios to sextant plain TCP, medians of the per-round ratios (TPS: higher is better; p99: lower is better):\n")
    print("| c | " + " | ".join(f"TPS {label[p].split()[1]}/tcp" for p in nets) + " | "
          + " | ".join(f"p99 {label[p].split()[1]}/tcp" for p in nets) + " |")
    print("|---|" + "---|" * (2 * len(nets)))
    for c in cs:
        tps = [ratio(p, "sextant", c, "tps") for p in nets]
        p99 = [ratio(p, "sextant", c, "p99_us") for p in nets]
        print(f"| {c} | " + " | ".join(f"{x:.2f}×" for x in tps) + " | " + " | ".join(f"{x:.2f}×" for x in p99) + " |")
if "sextant-tls" in peers and "tonic-tls" in peers:
    print("\n| c | TPS sextant tls/tonic tls | p99 sextant tls/tonic tls |")
    print("|---|---|---|")
    for c in cs:
        print(f"| {c} | {ratio('sextant-tls', 'tonic-tls', c, 'tps'):.2f}× | "
              f"{ratio('sextant-tls', 'tonic-tls', c, 'p99_us'):.2f}× |")
for name, d in idle.items():
    print(f"\nServer RSS with {d['idle_connections']:,} idle {label.get(name, name)} connections: "
          f"{d['server_rss_kib_idle'] / 1024:.0f} MiB after 3 s idle "
          f"({d['server_rss_kib_connected'] / 1024:.0f} MiB right after connecting, "
          f"{d['server_rss_kib_before'] / 1024:.0f} MiB before).")
print("\nTargets (TPS ratios as above, the worst c):")
for p, t in targets.items():
    if p in peers and "sextant" in peers:
        worst = min(ratio(p, "sextant", c, "tps") for c in cs)
        print(f"- {label[p]} ≥ {t}× tcp: worst {worst:.2f}× — {'met' if worst >= t else 'MISSED'}")
if "sextant-tls" in peers and "tonic-tls" in peers:
    worst = min(ratio("sextant-tls", "tonic-tls", c, "tps") for c in cs)
    print(f"- sextant tls ≥ 3× tonic tls: worst {worst:.2f}× — {'met' if worst >= 3 else 'MISSED'}")
if "sextant-tls" in idle:
    mb = idle["sextant-tls"]["server_rss_kib_idle"] * 1024 / 1e6
    print(f"- RSS with {idle['sextant-tls']['idle_connections']:,} idle TLS connections ≤ 300 MB: {mb:.0f} MB — {'met' if mb <= 300 else 'MISSED'}")
PY
