// Cache invalidation after a restore (DESIGN.md §4.1 step 13): the restored
// database is older than what caches hold, so each cache the runbook lists
// is emptied of what could be stale. One file per kind behind
// CacheInvalidator (types.ts): Redis patterns (redis.ts), HTTP purge
// endpoints (http.ts), command hooks (command.ts); a new kind is one file
// and one line in `cacheInvalidator`.
//
// Every entry is tried even when an earlier one fails, so one flaky purge
// endpoint does not leave the others stale; the step then fails naming each
// failure. Invalidating twice is harmless, so a retry simply runs them all.
import { LifeboatError, errorMessage, isLifeboatError } from '../errors';
import type { CacheResult } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { commandInvalidator } from './command';
import { httpInvalidator } from './http';
import { redisInvalidator } from './redis';
import type { CacheEntry, CacheInvalidator, CacheProgress } from './types';

export type { CacheEntry, CacheInvalidator, CacheProgress } from './types';

export function cacheInvalidator(entry: CacheEntry, runbook: string): CacheInvalidator {
  if ('redis' in entry) return redisInvalidator(entry.redis, runbook);
  if ('http' in entry) return httpInvalidator(entry.http, runbook);
  return commandInvalidator(entry.command);
}

function describe(r: CacheResult): string {
  if (r.deleted !== undefined) return `${r.target} (${r.deleted} keys deleted)`;
  if (r.status !== undefined) return `${r.target} (${r.status})`;
  return r.target;
}

/** Every cache's invalidator; a missing secret fails for all entries together, naming each variable. */
function runbookInvalidators(runbook: Runbook, extraHints: string[] = []): CacheInvalidator[] {
  const invalidators: CacheInvalidator[] = [];
  const missing: LifeboatError[] = [];
  for (const entry of runbook.caches) {
    try {
      invalidators.push(cacheInvalidator(entry, runbook.name));
    } catch (err) {
      if (isLifeboatError(err) && err.code === 'SECRET_MISSING') missing.push(err);
      else throw err;
    }
  }
  const [first] = missing;
  if (first) {
    if (missing.length === 1 && extraHints.length === 0) throw first;
    throw new LifeboatError('SECRET_MISSING', missing.map((e) => e.what).join('\n'), {
      hints: [...new Set(missing.flatMap((e) => e.hints)), ...extraHints],
    });
  }
  return invalidators;
}

/** An entry's `preflight` setting: refuse (the default) or warn. */
function preflightMode(entry: CacheEntry): 'refuse' | 'warn' {
  return ('redis' in entry ? entry.redis : 'http' in entry ? entry.http : entry.command).preflight ?? 'refuse';
}

/**
 * Preflight of invalidate-caches: every variable set and every endpoint
 * answering, on a worker of the queue invalidate-caches runs on. Changes
 * nothing. Returns what answered, and the entries marked `preflight: warn`
 * that did not; throws SECRET_MISSING or ENDPOINT_UNREACHABLE naming each
 * entry that would fail.
 */
export async function checkRunbookCaches(
  runbook: Runbook,
  opts: { signal?: AbortSignal; then: string },
): Promise<{ answered: string[]; warnings: string[] }> {
  const invalidators = runbookInvalidators(runbook, [
    `once it is set on every worker of the lifeboat queue, ${opts.then}`,
  ]);
  const answered: string[] = [];
  const warnings: string[] = [];
  const failures: { entry: number; error: unknown }[] = [];
  const whatOf = (e: unknown) => (isLifeboatError(e) ? e.what : errorMessage(e));
  for (const [i, inv] of invalidators.entries()) {
    try {
      answered.push(await inv.check(opts.signal));
    } catch (error) {
      if (opts.signal?.aborted) throw error;
      if (preflightMode(runbook.caches[i]!) === 'warn')
        warnings.push(
          `cache ${i + 1} (preflight: warn) does not answer now, invalidate-caches will need it: ${whatOf(error)}`,
        );
      else failures.push({ entry: i + 1, error });
    }
  }
  if (failures.length === 0) return { answered, warnings };
  const what =
    failures.length === 1
      ? `cache ${failures[0]!.entry} of runbook ${runbook.name}: ${whatOf(failures[0]!.error)}`
      : `${failures.length} of ${invalidators.length} caches of runbook ${runbook.name} would fail invalidate-caches:\n  ${failures.map((f) => `cache ${f.entry}: ${whatOf(f.error)}`).join('\n  ')}`;
  throw new LifeboatError('ENDPOINT_UNREACHABLE', what, {
    hints: [
      ...new Set(failures.flatMap((f) => (isLifeboatError(f.error) ? f.error.hints : []))),
      `bring it up or fix the runbook's caches list, then ${opts.then}`,
      'an endpoint that may be down in the incident itself can be marked preflight: warn in the runbook (the run then goes on, and invalidate-caches still needs it)',
    ],
    details: { failed: failures.map((f) => invalidators[f.entry - 1]!.target) },
  });
}

export async function invalidateRunbookCaches(
  runbook: Runbook,
  opts: { onProgress?: (p: CacheProgress) => void; signal?: AbortSignal } = {},
): Promise<CacheResult[]> {
  // Every variable is read before anything is touched: a missing secret
  // fails the step at once, for all entries together.
  const invalidators = runbookInvalidators(runbook);

  const results: CacheResult[] = [];
  const failures: { entry: number; target: string; error: unknown }[] = [];
  for (const [i, inv] of invalidators.entries()) {
    const progress = (deleted?: number) =>
      opts.onProgress?.({
        entry: i + 1,
        entries: invalidators.length,
        target: inv.target,
        ...(deleted === undefined ? {} : { deleted }),
      });
    progress();
    try {
      results.push(await inv.invalidate({ progress, signal: opts.signal }));
    } catch (error) {
      if (opts.signal?.aborted) throw error;
      failures.push({ entry: i + 1, target: inv.target, error });
    }
  }
  if (failures.length === 0) return results;

  const [only] = failures;
  if (invalidators.length === 1 && only) throw only.error;
  const whatOf = (e: unknown) => (isLifeboatError(e) ? e.what : errorMessage(e));
  const lines = failures.map((f) => `cache ${f.entry} (${f.target}): ${whatOf(f.error).replace(/\n/g, '\n    ')}`);
  const done = results.length > 0 ? `\ninvalidated: ${results.map(describe).join('; ')}` : '';
  throw new LifeboatError(
    'CACHE_INVALIDATION_FAILED',
    `${failures.length} of ${invalidators.length} caches of runbook ${runbook.name} could not be invalidated:\n  ${lines.join('\n  ')}${done}`,
    {
      hints: [...new Set(failures.flatMap((f) => (isLifeboatError(f.error) ? f.error.hints : [])))],
      details: { invalidated: results, failed: failures.map((f) => f.target) },
    },
  );
}
