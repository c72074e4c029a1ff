#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine: first the demo with nothing
# installed, then format, clippy (warnings denied), rustdoc, builds without default features, the
# whole test suite (registry tests against real etcd, ZooKeeper and Redis servers that the tests
# start on 127.0.0.1; transport tests against Go peers built from Debian's Go libraries), and every
# example that needs no external service.
#
# Usage: scripts/test.sh          (what .ci/run calls)
# Env:   CARGO_TARGET_DIR         build cache, default ~/.cache/sextant-target (outside the clone)
#        CARGO_INCREMENTAL, CARGO_PROFILE_DEV_DEBUG   default 0 and line-tables-only (a smaller cache)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sextant-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The whole workspace's tests make a hundred binaries: without incremental caches and with line
# tables only (backtraces keep file and line), a whole run leaves an 11 GB build cache; with
# both it grew to 79 GB here and filled the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
export RUST_BACKTRACE=1

step() { printf '\n==> %s\n' "$*"; }

# First, before anything is installed: the demo builds and runs on a bare machine. PROTOC points
# at a program that always fails, so building anything that compiles .proto files (etcd-client,
# behind the examples' `etcd` feature) would fail here. As a warm build cache would not rerun such
# a build script, the examples' default dependency graph is also checked for crates that need
# protoc or a system library (`*-sys`).
step "the demo with nothing installed: cargo run --example registry-embedded (PROTOC=/bin/false)"
demo_deps=$(cargo tree -p sextant-examples --locked -e normal,build --prefix none)
if grep -E '^(etcd-client|prost-build|tonic-build|tonic-prost-build|protoc[a-z-]*|[a-z0-9_-]+-sys) ' <<<"$demo_deps" |
  grep -vE '^linux-raw-sys '; then # linux-raw-sys is pure Rust
  echo "the examples' default build depends on the crates above (protoc or a system library)"
  exit 1
fi
PROTOC=/bin/false cargo run --quiet --locked --example registry-embedded

# Then what the build and the tests need from Debian: protoc (etcd-client compiles etcd's .proto
# files), the engines the registry tests start on 127.0.0.1, and Go with the libraries Go rpcx's
# transports use (the transport tests build Go peers from them).
step "system packages: protobuf-compiler, etcd-server, zookeeper, redis-server, golang-go and Go's websocket, quic-go, kcp-go and OpenTelemetry"
scripts/services.sh install
export SEXTANT_REQUIRE_SERVICES=1

step "cargo fmt --check"
cargo fmt --all -- --check

# --all-features: also the examples that need an engine (features etcd, zookeeper, redis, consul
# of sextant-examples).
step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "sextant and sextant-protocol without default features (no macros, no thrift)"
cargo clippy -p sextant-protocol -p sextant --no-default-features --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --all-features --locked --no-fail-fast

step "examples that need no external service"
examples=$(awk '/^\[\[example\]\]/{e=1; next} e && /^name = /{gsub(/"/, "", $3); print $3; e=0}' examples/Cargo.toml)
failed=0
passed=0
for e in $examples; do
  case "$e" in
    interop-server) continue ;;                       # serves until interrupted
    registry-etcd|registry-zookeeper|registry-redis|registry-consul) continue ;; # need an engine (and a feature)
  esac
  if timeout 120 cargo run --quiet --locked --example "$e" >/tmp/sextant-example-"$e".log 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "example $e FAILED:"; tail -n 20 /tmp/sextant-example-"$e".log
  fi
done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
