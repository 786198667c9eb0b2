#!/usr/bin/env bash
# Installs what Lifeboat needs, and only what is missing, so `npm start`,
# `npm test` and .ci/run can call it every time on any machine:
#   - Debian packages: postgresql-15, pgbouncer, redis-server, pgbackrest, zstd,
#     and for the browser and terminal tests chromium (driven by playwright-core,
#     which downloads no browser of its own) and tmux
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

# --- npm dependencies ------------------------------------------------------
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
log "ready: PostgreSQL in $PG_BIN, tools in $TOOLS_DIR"
