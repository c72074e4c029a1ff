#!/usr/bin/env bash
# Runs every check and test of the project on a fresh machine: format, clippy (warnings denied),
# the whole test suite (registry tests against real etcd, ZooKeeper and Redis servers that the
# tests start on 127.0.0.1), and every example that needs no external service.
#
# Usage: scripts/test.sh          (what .ci/run calls)
# Env:   CARGO_TARGET_DIR         build cache, default ~/.cache/sextant-target (outside the clone)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sextant-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

step() { printf '\n==> %s\n' "$*"; }

# First, what the build and the tests need from Debian: protoc (etcd-client compiles etcd's
# .proto files) and the engines the registry tests start on 127.0.0.1.
step "system packages: protobuf-compiler, etcd-server, zookeeper, redis-server"
scripts/services.sh install
export SEXTANT_REQUIRE_SERVICES=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "cargo test"
cargo test --workspace --locked --no-fail-fast

step "examples that need no external service"
examples=$(awk '/^\[\[example\]\]/{e=1; next} e && /^name = /{gsub(/"/, "", $3); print $3; e=0}' examples/Cargo.toml)
failed=0
passed=0
for e in $examples; do
  case "$e" in
    interop-server) continue ;;                       # serves until interrupted
    registry-etcd|registry-zookeeper|registry-redis|registry-consul) continue ;; # need an engine
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
