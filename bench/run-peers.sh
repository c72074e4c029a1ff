#!/usr/bin/env bash
# Runs the rpcx-benchmark load (Hello.Say, 581-byte proto2 BenchmarkMessage) against the peer
# frameworks built in bench/peers (tonic, tarpc), one after another on this machine, and prints
# one JSON line per (peer, c) on stdout. Human summaries and progress go to stderr.
#
# Each server is its own process on a free 127.0.0.1 port; each client run is its own process.
# Servers are killed when the script exits, however it exits.
#
# Environment (all optional):
#   PEERS           peers to run, in order                 (default: "tonic tarpc")
#   C_LIST          concurrencies c                        (default: "100 1000 5000")
#   K               connections shared by the c callers    (default: 10)
#   N               measured calls per client run          (default: 200000)
#   WARMUP          warm-up calls per connection           (default: 5)
#   SERVER_THREADS  tokio workers of the server            (default: one per core)
#   CLIENT_THREADS  tokio workers of the client            (default: one per core)
#   PROGRESS        1 to draw progress bars on stderr      (default: 0)
#   SKIP_BUILD      1 to use the binaries already built    (default: 0)
#   WAIT_IDLE       seconds to wait, before each client run, for the other processes on the
#                   machine to go quiet (< 10 % of the CPUs for 3 s); 0 = do not wait (default: 0)
#   CARGO_TARGET_DIR                                       (default: /root/.cache/sextant-target-peers)
#
# Example: N=100000 bench/run-peers.sh | tee results.jsonl
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers_dir="$here/peers"

PEERS="${PEERS:-tonic tarpc}"
C_LIST="${C_LIST:-100 1000 5000}"
K="${K:-10}"
N="${N:-200000}"
WARMUP="${WARMUP:-5}"
SERVER_THREADS="${SERVER_THREADS:-}"
CLIENT_THREADS="${CLIENT_THREADS:-}"
PROGRESS="${PROGRESS:-0}"
SKIP_BUILD="${SKIP_BUILD:-0}"
WAIT_IDLE="${WAIT_IDLE:-0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/sextant-target-peers}"
bin_dir="$CARGO_TARGET_DIR/release"

log() { printf '[run-peers] %s\n' "$*" >&2; }

# c = 5000 needs only k sockets per side, but raise the descriptor limit anyway so that large
# k (one socket per connection on each side) cannot hit the default soft limit of 1024.
hard_limit="$(ulimit -Hn)"
if [[ "$hard_limit" == "unlimited" ]]; then
    ulimit -n 65536 || true
else
    ulimit -n "$hard_limit" || true
fi
log "open file limit: $(ulimit -n)"

server_pid=""
client_pid=""
# Stops the process whose pid is in the variable named $1, if it still runs, and clears it.
stop() {
    local pid="${!1}"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    printf -v "$1" '%s' ""
}
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    stop client_pid
    stop server_pid
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    log "no free port found"
    return 1
}

# Waits (up to about 10 s) until something accepts connections on 127.0.0.1:$1.
wait_for_port() {
    local tries
    for ((tries = 0; tries < 200; tries++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            log "server exited before listening"
            return 1
        fi
        sleep 0.05
    done
    log "server did not listen on port $1"
    return 1
}

# CPU accounting, to tell how much of the machine other processes took during a client run (on
# a shared machine this is what makes figures incomparable). All values are in clock ticks.
ticks_per_s="$(getconf CLK_TCK)"
# Busy ticks of all CPUs together since boot.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
# User + system ticks of process $1 (0 once it is gone).
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# User + system ticks of this shell's waited-for children (cutime + cstime; `times` cannot be used
# inside $(...), which runs in a fresh subshell whose children's times start at zero).
children_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }
ncpu="$(getconf _NPROCESSORS_ONLN)"

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

if [[ "$SKIP_BUILD" != 1 ]]; then
    log "building release binaries in $CARGO_TARGET_DIR"
    (cd "$peers_dir" && cargo build --release --quiet)
fi

server_flags=()
client_flags=(--json --warmup "$WARMUP")
[[ -n "$SERVER_THREADS" ]] && server_flags+=(--threads "$SERVER_THREADS")
[[ -n "$CLIENT_THREADS" ]] && client_flags+=(--threads "$CLIENT_THREADS")
[[ "$PROGRESS" == 1 ]] || client_flags+=(--no-progress)

status=0
for peer in $PEERS; do
    bin="$bin_dir/$peer-bench"
    if [[ ! -x "$bin" ]]; then
        log "missing $bin"
        status=1
        continue
    fi
    port="$(free_port)"
    addr="127.0.0.1:$port"
    "$bin" server --addr "$addr" "${server_flags[@]}" >&2 &
    server_pid=$!
    wait_for_port "$port"
    log "$peer server pid $server_pid on $addr"
    for c in $C_LIST; do
        wait_idle
        log "$peer: c=$c k=$K n=$N"
        b0="$(busy_ticks)"
        s0="$(proc_ticks "$server_pid")"
        k0="$(children_ticks)"
        t0="$(date +%s%N)"
        # In the background so that a signal reaches the traps at once (bash runs traps only
        # after a foreground child ends, but interrupts `wait`).
        "$bin" client --addr "$addr" -c "$c" -k "$K" -n "$N" "${client_flags[@]}" &
        client_pid=$!
        if ! wait "$client_pid"; then
            log "$peer client failed for c=$c"
            status=1
        fi
        client_pid=""
        t1="$(date +%s%N)"
        ours=$(($(proc_ticks "$server_pid") - s0 + $(children_ticks) - k0))
        foreign=$(($(busy_ticks) - b0 - ours))
        wall_ticks=$(((t1 - t0) * ticks_per_s * ncpu / 1000000000))
        ((foreign < 0)) && foreign=0
        ((wall_ticks > 0)) || wall_ticks=1
        log "$peer c=$c: other processes used $((100 * foreign / wall_ticks))% of the CPUs during the run"
    done
    stop server_pid
done
exit "$status"
