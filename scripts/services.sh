#!/usr/bin/env bash
# Registry engines for sextant's registry tests (etcd, ZooKeeper, Redis), and the Go libraries
# the transport tests face.
#
#   scripts/services.sh install   install Debian's etcd-server, zookeeper and redis-server when
#                                 missing, and protobuf-compiler + libprotobuf-dev (`protoc` and its
#                                 well-known .proto files: the etcd-client crate used by sextant-etcd
#                                 compiles etcd's .proto files when it builds), and golang-go with
#                                 the Go libraries Go rpcx uses for its transports:
#                                 golang-golang-x-net-dev (x/net/websocket),
#                                 golang-github-lucas-clemente-quic-go-dev (quic-go) and
#                                 golang-github-xtaci-kcp-dev (kcp-go), and
#                                 golang-opentelemetry-otel-dev (W3C trace context, as
#                                 rpcx-plugins propagates it), for the Go peers that
#                                 crates/sextant-interop/tests/go_transports.rs,
#                                 crates/sextant-kcp/tests and crates/sextant-plugins/tests
#                                 build offline (GOPATH mode), and chromium + chromium-driver
#                                 (headless Chromium driven over WebDriver by the `sextant ui`
#                                 browser tests, crates/sextant-cli/tests/cli_ui.rs)
#                                 (root: one `apt-get update`, then
#                                 `apt-get install -y --no-install-recommends ...`); idempotent and
#                                 fast when everything is there
#   scripts/services.sh where     print where the engines' binaries are (exit 1 if one is missing)
#
# The tests never use system-wide services: each test starts its own engine process on a free
# 127.0.0.1 port with a temporary data directory and stops it when done (see
# crates/sextant-registry-testkit). They find the binaries on PATH, in the Debian locations printed
# by `where`, or through these variables (read by the testkit, and honoured here too):
#   SEXTANT_ETCD                  path to `etcd`
#   SEXTANT_REDIS_SERVER          path to `redis-server`
#   SEXTANT_ZOOKEEPER_CLASSPATH   Java class path holding ZooKeeperServerMain and its dependencies
#                                 (default /usr/share/java/zookeeper.jar)
#   SEXTANT_JAVA                  path to `java`, which runs ZooKeeper
#   SEXTANT_GO                    path to `go` (go_transports; default: `go` on PATH)
#   SEXTANT_GOPATH                GOPATH holding the Go libraries (go_transports; default
#                                 /usr/share/gocode, where Debian's golang-*-dev packages put them)
#   SEXTANT_CHROMIUM              path to `chromium` (cli_ui; default /usr/bin/chromium)
#   SEXTANT_CHROMEDRIVER          path to `chromedriver` (cli_ui; default /usr/bin/chromedriver)
#   SEXTANT_REQUIRE_SERVICES=1    a missing engine or Go library fails the test instead of
#                                 skipping it
#
# Consul is not installed: no package of it exists in the registries this machine reaches. The
# Consul backend is tested against an in-process server implementing the Consul HTTP endpoints it
# uses (crates/sextant-consul/README.md).
set -euo pipefail

# Debian's zookeeper package ships jars, not a server launcher on PATH; the tests run
# `java -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain zoo.cfg`
# (the jar's manifest names its dependencies in /usr/share/java).
ZK_JAR=/usr/share/java/zookeeper.jar

etcd_bin() { command -v "${SEXTANT_ETCD:-etcd}" 2>/dev/null || true; }
redis_bin() { command -v "${SEXTANT_REDIS_SERVER:-redis-server}" 2>/dev/null || true; }
zk_classpath() {
    if [ -n "${SEXTANT_ZOOKEEPER_CLASSPATH:-}" ]; then
        echo "$SEXTANT_ZOOKEEPER_CLASSPATH"
    elif [ -f "$ZK_JAR" ]; then
        echo "$ZK_JAR"
    fi
}
java_bin() { command -v "${SEXTANT_JAVA:-java}" 2>/dev/null || true; }
protoc_bin() { command -v "${PROTOC:-protoc}" 2>/dev/null || true; }
protoc_include() { [ -f /usr/include/google/protobuf/descriptor.proto ] && echo /usr/include; }
go_bin() { command -v "${SEXTANT_GO:-go}" 2>/dev/null || true; }
chromium_bin() { command -v "${SEXTANT_CHROMIUM:-chromium}" 2>/dev/null || true; }
chromedriver_bin() { command -v "${SEXTANT_CHROMEDRIVER:-chromedriver}" 2>/dev/null || true; }
# A Go library's directory in the GOPATH, when it is there.
go_pkg() {
    local d="${SEXTANT_GOPATH:-/usr/share/gocode}/src/$1"
    if [ -d "$d" ]; then echo "$d"; fi
}
# Go import path and the Debian package that provides it.
GO_PKGS=(
    "golang.org/x/net/websocket golang-golang-x-net-dev"
    "github.com/lucas-clemente/quic-go golang-github-lucas-clemente-quic-go-dev"
    "github.com/xtaci/kcp-go golang-github-xtaci-kcp-dev"
    "go.opentelemetry.io/otel golang-opentelemetry-otel-dev"
)

missing_packages() {
    local pkgs=()
    [ -n "$(etcd_bin)" ] || pkgs+=(etcd-server)
    [ -n "$(redis_bin)" ] || pkgs+=(redis-server)
    if [ -z "$(zk_classpath)" ] || [ -z "$(java_bin)" ]; then pkgs+=(zookeeper); fi
    [ -n "$(protoc_bin)" ] || pkgs+=(protobuf-compiler)
    [ -n "$(protoc_include)" ] || [ -n "${PROTOC_INCLUDE:-}" ] || pkgs+=(libprotobuf-dev)
    [ -n "$(go_bin)" ] || pkgs+=(golang-go)
    [ -n "$(chromium_bin)" ] || pkgs+=(chromium)
    [ -n "$(chromedriver_bin)" ] || pkgs+=(chromium-driver)
    local entry
    for entry in "${GO_PKGS[@]}"; do
        [ -n "$(go_pkg "${entry%% *}")" ] || pkgs+=("${entry##* }")
    done
    echo "${pkgs[@]:-}"
}

where() {
    local ok=0
    printf 'etcd:         %s\n' "$(etcd_bin || true)"
    [ -n "$(etcd_bin)" ] || { echo '  missing (package etcd-server)'; ok=1; }
    printf 'redis-server: %s\n' "$(redis_bin || true)"
    [ -n "$(redis_bin)" ] || { echo '  missing (package redis-server)'; ok=1; }
    printf 'zookeeper:    %s (java: %s)\n' "$(zk_classpath || true)" "$(java_bin || true)"
    if [ -z "$(zk_classpath)" ] || [ -z "$(java_bin)" ]; then
        echo '  missing (package zookeeper)'
        ok=1
    fi
    printf 'protoc:       %s\n' "$(protoc_bin || true)"
    [ -n "$(protoc_bin)" ] || { echo '  missing (package protobuf-compiler)'; ok=1; }
    printf 'protoc incl.: %s\n' "${PROTOC_INCLUDE:-$(protoc_include || true)}"
    [ -n "${PROTOC_INCLUDE:-$(protoc_include || true)}" ] || { echo '  missing (package libprotobuf-dev)'; ok=1; }
    printf 'go:           %s\n' "$(go_bin || true)"
    [ -n "$(go_bin)" ] || { echo '  missing (package golang-go)'; ok=1; }
    printf 'chromium:     %s\n' "$(chromium_bin || true)"
    [ -n "$(chromium_bin)" ] || { echo '  missing (package chromium)'; ok=1; }
    printf 'chromedriver: %s\n' "$(chromedriver_bin || true)"
    [ -n "$(chromedriver_bin)" ] || { echo '  missing (package chromium-driver)'; ok=1; }
    local entry
    for entry in "${GO_PKGS[@]}"; do
        printf 'go library:   %s\n' "$(go_pkg "${entry%% *}" || true)"
        [ -n "$(go_pkg "${entry%% *}")" ] || { echo "  missing: ${entry%% *} (package ${entry##* })"; ok=1; }
    done
    return $ok
}

install() {
    local missing
    missing="$(missing_packages)"
    if [ -z "${missing// /}" ]; then
        echo "services.sh: etcd, zookeeper, redis-server, protoc, Go and its libraries, chromium and chromedriver are already installed"
        where
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "services.sh: need root to install: $missing" >&2
        echo "  run: sudo $0 install" >&2
        exit 1
    fi
    echo "services.sh: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y --no-install-recommends $missing
    # The packages enable system services; the tests never use them (they start their own engines
    # on free ports), so leave them stopped where a service manager exists.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now etcd zookeeper redis-server >/dev/null 2>&1 || true
    fi
    where
}

case "${1:-}" in
    install) install ;;
    where) where ;;
    *)
        echo "usage: $0 install|where" >&2
        exit 2
        ;;
esac
