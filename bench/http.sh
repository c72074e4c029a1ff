#!/usr/bin/env bash
# HTTP invoke, in one run on this machine (every server, gateway and client its own process on
# 127.0.0.1, the peers of each part taking turns, the order alternating every round, medians over
# the rounds, ratios of medians):
#
#   a. rpcx's HTTP invoke of Arith.Mul (JSON) on a sextant server (`sextant-bench server`, the
#      service port itself) against the same work done by axum (bench/peers/axum-bench):
#      TPS and p99, ratio sextant/axum. Target: TPS >= 0.8x axum's.
#   b. the same requests through a gateway in front of one sextant server, against HTTP invoke
#      of that server directly: ratio gateway/direct. Needs GATEWAY_CMD; skipped without it.
#   c. the rpcx fast path (Hello.Say, protobuf, `sextant-bench client` against
#      `sextant-bench server`) of this build against an OLD sextant-bench binary (server and
#      client both from the same build): TPS ratio new/old. Target >= 0.97. Needs OLD; skipped
#      without it.
#
# Every HTTP load is `sextant-bench http-client` (the closed loop of `client`: c callers sharing a
# pool of K keep-alive HTTP/1.1 connections, a caller taking a free one; same JSON report).
#
# Environment (all optional):
#   C_LIST       concurrencies c                          (default: "100 1000")
#   K            connections shared by the c callers      (default: 10)
#   N            measured calls per client run            (default: 100000)
#   ROUNDS       rounds; each runs every peer once        (default: 3)
#   PARTS        parts to run                             (default: "a b c")
#   OLD          part c: the sextant-bench binary to compare with, e.g. built from the commit
#                before the HTTP work:
#                  git worktree add /tmp/old efdd530 && (cd /tmp/old && \
#                    CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p sextant-bench)
#                  OLD=/tmp/old-target/release/sextant-bench bench/http.sh
#   GATEWAY_CMD  part b: the command line starting the gateway, with {SERVER} replaced by the
#                sextant server's address (127.0.0.1:PORT) and {LISTEN} by the address the
#                gateway must serve HTTP on (127.0.0.1:PORT); run from the repository root, e.g.
#                  CARGO_TARGET_DIR=~/.cache/sextant-target cargo build --release -p sextant-cli
#                  GATEWAY_CMD='~/.cache/sextant-target/release/sextant gateway --listen {LISTEN} --registry peer2peer://{SERVER}'
#   WAIT_IDLE    seconds to wait, before each client run, for other processes to leave the
#                machine quiet (< 10% of the CPUs for 3 s); 0 = do not wait (default: 0)
#   OUT          file for the raw JSON lines              (default: bench/results/http-latest.jsonl)
#   SKIP_BUILD=1 to use the binaries already built
#   SUMMARY_ONLY=1 to print the summary of OUT again, without running anything
#   MAX_OTHERS   leave out of the summary the runs during which other processes used more than
#                this share (%) of the CPUs (default: keep every run)
#
# Usage: bench/http.sh            (prints a Markdown summary on stdout, progress on stderr)
# Exit status: 0 when every part ran or was skipped for a stated reason (OLD or GATEWAY_CMD
# unset, the gateway not starting, the sextant server not answering HTTP invoke), 1 when a build
# failed or a run that should have worked did not (the axum peer, a client that crashed, ...).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
C_LIST="${C_LIST:-100 1000}"
K="${K:-10}"
N="${N:-100000}"
ROUNDS="${ROUNDS:-3}"
PARTS="${PARTS:-a b c}"
OLD="${OLD:-}"
GATEWAY_CMD="${GATEWAY_CMD:-}"
WAIT_IDLE="${WAIT_IDLE:-0}"
OUT="${OUT:-$here/results/http-latest.jsonl}"
SEXTANT_TARGET="${SEXTANT_TARGET:-$HOME/.cache/sextant-target}"
PEERS_TARGET="${PEERS_TARGET:-$HOME/.cache/sextant-target-peers}"
SEXTANT="$SEXTANT_TARGET/release/sextant-bench"
AXUM="$PEERS_TARGET/release/axum-bench"
# Failing clients print their error, not a backtrace.
export RUST_BACKTRACE=0

log() { printf '[http-bench] %s\n' "$*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Prints the Markdown summary of the JSON lines in $1 (parts skipped, with their reasons, in $2):
# medians per part, peer and c, ratios of the medians. MAX_OTHERS=P leaves out the runs during
# which other processes used more than P% of the CPUs.
summarize() {
    python3 - "$1" "$2" <<'PY'
import json, statistics, sys, os, datetime
path, skipped_path = sys.argv[1:3]
max_others = float(os.environ.get("MAX_OTHERS") or "inf")
runs, dropped, records = {}, 0, []
for line in open(path):
    d = json.loads(line)
    records.append(d)
    if d["foreign_cpu_pct"] > max_others:
        dropped += 1
        continue
    # CPU per measured call (warm-up and start-up included, a few per cent at most).
    d["server_us"] = d["server_cpu_s"] * 1e6 / d["n"]
    d["client_us"] = d["client_cpu_s"] * 1e6 / d["n"]
    runs.setdefault((d["part"], d["peer"], d["c"]), []).append(d)
skipped = dict(l.rstrip("\n").split("\t", 1) for l in open(skipped_path) if "\t" in l)
cs = sorted({d["c"] for d in records})
k = ",".join(str(x) for x in sorted({d["k"] for d in records})) or "?"
n = ",".join(str(x) for x in sorted({d["n"] for d in records})) or "?"
rounds = max((d["round"] for d in records), default=-1) + 1
med = statistics.median
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores, {cpu}; {datetime.date.today()}; k={k} connections, "
      f"n={n} calls, median of {rounds} rounds (others' CPU: the share of the machine other "
      f"processes used during the runs, median).")
if dropped:
    print(f"{dropped} of {len(records)} runs left out: other processes used more than {max_others:g}% "
          f"of the CPUs during them (MAX_OTHERS).")
print()

def m(part, peer, c, key):
    rs = runs.get((part, peer, c), [])
    return med([r[key] for r in rs]) if rs else None

def table(part, peers):
    print("| c | peer | TPS | p50 µs | p99 µs | p99.9 µs | server CPU µs/call | client CPU µs/call | errors | others' CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cs:
        for peer in peers:
            rs = runs.get((part, peer, c), [])
            if rs:
                print(f"| {c} | {peer} | {m(part, peer, c, 'tps'):,.0f} | {m(part, peer, c, 'p50_us'):,.0f} "
                      f"| {m(part, peer, c, 'p99_us'):,.0f} | {m(part, peer, c, 'p999_us'):,.0f} "
                      f"| {m(part, peer, c, 'server_us'):.1f} | {m(part, peer, c, 'client_us'):.1f} "
                      f"| {sum(r['errors'] for r in rs)} | {m(part, peer, c, 'foreign_cpu_pct'):.0f}% |")

def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "n/a"

def ratios(part, x, y, target=None):
    print(f"\n| c | TPS {x}/{y} | p99 {x}/{y} | server CPU per call {x}/{y} |")
    print("|---|---|---|---|")
    for c in cs:
        t = ratio(m(part, x, c, "tps"), m(part, y, c, "tps"))
        mark = ""
        if target is not None and t != "n/a":
            mark = " ✓" if m(part, x, c, "tps") / m(part, y, c, "tps") >= target else " ✗"
        print(f"| {c} | {t}{mark} | {ratio(m(part, x, c, 'p99_us'), m(part, y, c, 'p99_us'))} "
              f"| {ratio(m(part, x, c, 'server_us'), m(part, y, c, 'server_us'))} |")

titles = {
    "a": ("a. HTTP invoke of Arith.Mul (JSON): sextant server vs axum", ["sextant", "axum"], 0.8),
    "b": ("b. Gateway in front of one sextant server vs HTTP invoke of that server directly", ["gateway", "direct"], None),
    "c": ("c. rpcx fast path (Hello.Say, protobuf): this build vs OLD", ["new", "old"], 0.97),
}
for part, (title, (x, y), target) in titles.items():
    print(f"### {title}\n")
    if part in skipped:
        print(f"Skipped: {skipped[part]}\n")
    if not any(p == part for (p, _, _) in runs):
        if part not in skipped:
            print("No runs (not in PARTS, or every run failed).\n")
        continue
    table(part, [x, y])
    ratios(part, x, y, target)
    if target is not None:
        print(f"\nTarget: TPS {x}/{y} ≥ {target}×.")
    print()
PY
}

if [[ "${SUMMARY_ONLY:-0}" == 1 ]]; then
    summarize "$OUT" /dev/null
    exit 0
fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building sextant-bench (release)"
    (cd "$root" && CARGO_TARGET_DIR="$SEXTANT_TARGET" cargo build --release --quiet -p sextant-bench)
    log "building axum-bench (release)"
    (cd "$here/peers" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --quiet -p axum-bench)
fi
for bin in "$SEXTANT" "$AXUM"; do
    [[ -x "$bin" ]] || { log "missing $bin (run without SKIP_BUILD=1)"; exit 1; }
done

work="$(mktemp -d)"
server_pid=""
gateway_pid=""
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
    stop gateway_pid
    stop server_pid
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (about 10 s at most) until 127.0.0.1:$1 accepts connections, while process $2 lives.
wait_for_port() {
    local tries
    for ((tries = 0; tries < 200; tries++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { log "process $2 exited before listening on port $1"; return 1; }
        sleep 0.05
    done
    log "nothing listens on port $1 after 10 s"
    return 1
}

# Starts `$1 server` on a free port; sets server_pid and server_addr.
start_server() {
    local port
    port="$(free_port)"
    "$1" server --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
    server_pid=$!
    server_addr="127.0.0.1:$port"
    wait_for_port "$port" "$server_pid"
}

# Starts GATEWAY_CMD in front of server_addr; sets gateway_pid and gateway_addr.
start_gateway() {
    local port
    port="$(free_port)"
    gateway_addr="127.0.0.1:$port"
    cmd="${GATEWAY_CMD//\{SERVER\}/$server_addr}"
    cmd="${cmd//\{LISTEN\}/$gateway_addr}"
    log "gateway: $cmd"
    (cd "$root" && exec bash -c "exec $cmd") >"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    wait_for_port "$port" "$gateway_pid"
}

# The gateway's last lines of output, on one line.
gateway_output() {
    local out
    out="$(tail -n 3 "$work/gateway.log" | tr '\n' ' ')"
    echo "${out:-(none)}"
}

# One Arith.Mul HTTP invoke of http://$1/Arith; succeeds when the reply is {"C":6}.
probe() {
    local reply
    reply="$(curl -s -m 5 -H 'X-RPCX-MessageID: 1' -H 'X-RPCX-SerializeType: 1' \
        -H 'X-RPCX-ServiceMethod: Mul' -d '{"A":2,"B":3}' "http://$1/Arith" 2>&1)" || true
    if [[ "$reply" == '{"C":6}' ]]; then
        return 0
    fi
    log "POST http://$1/Arith answered ${reply:-nothing (connection closed or refused)}, not {\"C\":6}"
    return 1
}

# CPU accounting: how much of the machine processes other than ours took during a client run.
ticks_per_s="$(getconf CLK_TCK)"
ncpu="$(getconf _NPROCESSORS_ONLN)"
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
proc_ticks() { { [[ -n "$1" ]] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; } || echo 0; }
children_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }
ours_ticks() { echo $(($(proc_ticks "$server_pid") + $(proc_ticks "$gateway_pid") + $(children_ticks))); }

# Waits up to WAIT_IDLE seconds until processes other than ours have used less than 10% of the
# CPUs for 3 s in a row.
wait_idle() {
    local deadline=$((SECONDS + WAIT_IDLE)) quiet=0 b0 o0 foreign
    while ((WAIT_IDLE > 0 && quiet < 3 && SECONDS < deadline)); do
        b0="$(busy_ticks)"
        o0="$(ours_ticks)"
        sleep 1
        foreign=$(($(busy_ticks) - b0 - ($(ours_ticks) - o0)))
        if ((foreign * 10 < ticks_per_s * ncpu)); then
            quiet=$((quiet + 1))
        else
            quiet=0
        fi
    done
    ((WAIT_IDLE == 0 || quiet >= 3)) || log "machine still busy after ${WAIT_IDLE}s; running anyway"
}

# Runs one client (the command line after the part and the peer name) and appends its JSON line
# to OUT with the part, the round, the peer name, the share of the CPUs other processes took, and
# the CPU time (user + system, seconds) of the server side (server, plus gateway in part b) and
# of the client during the run.
# Returns 1 when the client failed.
failures=0
measure() {
    local part=$1 peer=$2 b0 o0 s0 c0 t0 t1 foreign wall server client status=0 line
    shift 2
    wait_idle
    b0="$(busy_ticks)"
    o0="$(ours_ticks)"
    s0=$(($(proc_ticks "$server_pid") + $(proc_ticks "$gateway_pid")))
    c0="$(children_ticks)"
    t0="$(date +%s%N)"
    # In the background so that a signal reaches the traps at once.
    "$@" --json --no-progress >"$work/client.out" 2>"$work/client.err" &
    wait $! || status=$?
    t1="$(date +%s%N)"
    server=$(($(proc_ticks "$server_pid") + $(proc_ticks "$gateway_pid") - s0))
    client=$(($(children_ticks) - c0))
    foreign=$(($(busy_ticks) - b0 - ($(ours_ticks) - o0)))
    wall=$(((t1 - t0) * ticks_per_s * ncpu / 1000000000))
    ((foreign > 0)) || foreign=0
    ((wall > 0)) || wall=1
    if [[ $status -ne 0 ]] || ! line="$(grep '^{' "$work/client.out")"; then
        log "client failed: $(tail -n 3 "$work/client.err" | tr '\n' ' ')"
        return 1
    fi
    foreign=$((100 * foreign / wall))
    server="$(awk -v t="$server" -v hz="$ticks_per_s" 'BEGIN { printf "%.2f", t / hz }')"
    client="$(awk -v t="$client" -v hz="$ticks_per_s" 'BEGIN { printf "%.2f", t / hz }')"
    sed -e "s/^{/{\"part\":\"$part\",\"round\":$round,\"foreign_cpu_pct\":$foreign,\"server_cpu_s\":$server,\"client_cpu_s\":$client,/" \
        -e "s/\"peer\":\"[^\"]*\"/\"peer\":\"$peer\"/" <<<"$line" >>"$OUT"
    log "  $(sed -n 2,3p "$work/client.err" | tr -s ' ' | tr '\n' ' ')(others: $foreign% of the CPUs)"
}

http_load() { # $1 peer name, $2 address, $3 c
    measure "$part" "$1" "$SEXTANT" http-client --url "http://$2/Arith" --peer "$1" -c "$3" -k "$K" -n "$N"
}

# Part a, one run of peer $1 at c = $2.
run_a() {
    local bin=$SEXTANT
    [[ $1 == axum ]] && bin=$AXUM
    start_server "$bin" || { log "part a: the $1 server did not start"; failures=$((failures + 1)); return; }
    log "round $((round + 1))/$ROUNDS a c=$2 $1"
    http_load "$1" "$server_addr" "$2" || { log "part a: $1 failed at c=$2"; failures=$((failures + 1)); }
    stop server_pid
}

# Part b, one run of peer $1 (gateway or direct) at c = $2.
run_b() {
    start_server "$SEXTANT" || { log "part b: the server did not start"; failures=$((failures + 1)); return; }
    local target=$server_addr
    if [[ $1 == gateway ]]; then
        if ! start_gateway; then
            log "part b: the gateway stopped starting; see its output below"
            sed 's/^/    /' "$work/gateway.log" >&2
            failures=$((failures + 1))
            stop server_pid
            return
        fi
        target=$gateway_addr
    fi
    log "round $((round + 1))/$ROUNDS b c=$2 $1"
    http_load "$1" "$target" "$2" || { log "part b: $1 failed at c=$2"; failures=$((failures + 1)); }
    stop gateway_pid
    stop server_pid
}

# Part c, one run of build $1 (new or old) at c = $2: its own server and client, Hello.Say.
run_c() {
    local bin=$SEXTANT
    [[ $1 == old ]] && bin=$OLD
    start_server "$bin" || { log "part c: the $1 server did not start"; failures=$((failures + 1)); return; }
    log "round $((round + 1))/$ROUNDS c c=$2 $1"
    measure c "$1" "$bin" client --addr "$server_addr" -c "$2" -k "$K" -n "$N" \
        || { log "part c: $1 failed at c=$2"; failures=$((failures + 1)); }
    stop server_pid
}

# Which parts can run, and why not.
: >"$work/skipped"
skip() { log "part $1 skipped: $2"; printf '%s\t%s\n' "$1" "$2" >>"$work/skipped"; }
want() { [[ " $PARTS " == *" $1 "* ]]; }
a_peers=() b_peers=() c_peers=()
if want a; then
    a_peers=(axum)
    start_server "$SEXTANT"
    if probe "$server_addr"; then
        a_peers=(sextant axum)
    else
        skip a "the sextant server at $server_addr does not answer rpcx's HTTP invoke (Arith.Mul with JSON) yet: only axum is measured"
    fi
    stop server_pid
    start_server "$AXUM"
    if ! probe "$server_addr"; then
        log "part a: the axum peer does not answer Arith.Mul"
        failures=$((failures + 1))
        a_peers=("${a_peers[@]/axum/}")
    fi
    stop server_pid
fi
if want b; then
    if [[ -z "$GATEWAY_CMD" ]]; then
        skip b "GATEWAY_CMD is unset (e.g. GATEWAY_CMD='sextant gateway --listen {LISTEN} --registry peer2peer://{SERVER}')"
    else
        start_server "$SEXTANT"
        if ! probe "$server_addr"; then
            skip b "the sextant server does not answer HTTP invoke, so there is nothing to compare the gateway with"
        elif ! start_gateway; then
            skip b "GATEWAY_CMD ($cmd) did not start a gateway listening on $gateway_addr (it exited, or nothing listened within 10 s); its output: $(gateway_output)"
        elif ! probe "$gateway_addr"; then
            skip b "the gateway ($cmd) started but did not answer Arith.Mul; its output: $(gateway_output)"
        else
            b_peers=(gateway direct)
        fi
        stop gateway_pid
        stop server_pid
    fi
fi
if want c; then
    if [[ -z "$OLD" ]]; then
        skip c "OLD is unset (the sextant-bench binary of the build to compare with)"
    elif [[ ! -x "$OLD" ]]; then
        log "part c: OLD=$OLD is not an executable"
        failures=$((failures + 1))
    else
        c_peers=(new old)
    fi
fi

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
for ((round = 0; round < ROUNDS; round++)); do
    for c in $C_LIST; do
        for part in a b c; do
            declare -n peers="${part}_peers"
            count=${#peers[@]}
            for ((i = 0; i < count; i++)); do
                peer="${peers[$(((i + round) % count))]}"
                if [[ -n "$peer" ]]; then
                    "run_$part" "$peer" "$c"
                fi
            done
            unset -n peers
        done
    done
done

summarize "$OUT" "$work/skipped"
if ((failures > 0)); then
    log "$failures failure(s); see the log above"
    exit 1
fi
