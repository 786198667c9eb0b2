#!/bin/sh
# Registers the namespace Lifeboat uses, once: the temporalio/server image,
# unlike the deprecated auto-setup, creates none. Run by the one-shot
# `temporal-namespace` service of docker-compose.yml (admin-tools image, the
# server at TEMPORAL_ADDRESS) and by the test cluster
# (test/harness/temporal-server.ts, which passes its TLS and API key flags as
# arguments), so both create it the same way.
#
# NAMESPACE (default `default`) and NAMESPACE_RETENTION (default 1d: how long
# closed runs stay visible in Temporal; the evidence lives in the repository)
# name it; TEMPORAL_CLI (default temporal) is the Temporal CLI. Arguments are
# passed to every CLI call. Safe to repeat: an existing namespace is left as it is.
set -eu

cli=${TEMPORAL_CLI:-temporal}
namespace=${NAMESPACE:-default}
retention=${NAMESPACE_RETENTION:-1d}

# The server answers its health check once its frontend serves; two minutes
# covers a first start, which also waits for the schema setup.
attempt=1
until "$cli" operator cluster health "$@" >/dev/null 2>&1; do
  if [ "$attempt" -ge 60 ]; then
    echo "create-namespace: the Temporal server did not answer in 2 minutes:" >&2
    "$cli" operator cluster health "$@" >&2 || true
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

if "$cli" operator namespace describe --namespace "$namespace" "$@" >/dev/null 2>&1; then
  echo "create-namespace: $namespace exists"
else
  "$cli" operator namespace create --namespace "$namespace" --retention "$retention" "$@"
  echo "create-namespace: $namespace created (retention $retention)"
fi
