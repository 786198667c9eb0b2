// The systems around the database that a recovery reaches (caches, pgbouncer,
// purge endpoints, command hooks) share how they are named and probed:
// secret-url.ts reads a URL from the environment variable the runbook names
// and never shows it; run-hook.ts runs a hook's argv in a process group of its
// own; and preflight gives each the same time to answer.

/** How long preflight waits for an endpoint to answer (cache or traffic). */
export const PROBE_TIMEOUT_MS = 10_000;
