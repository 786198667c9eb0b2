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

export async function invalidateRunbookCaches(
  runbook: Runbook,
  opts: { onProgress?: (p: CacheProgress) => void; signal?: AbortSignal } = {},
): Promise<CacheResult[]> {
  // Every variable is read before anything is touched: a missing secret
  // fails the step at once, for all entries together.
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
    if (missing.length === 1) throw first;
    throw new LifeboatError('SECRET_MISSING', missing.map((e) => e.what).join('\n'), {
      hints: [...new Set(missing.flatMap((e) => e.hints))],
    });
  }

  const results: CacheResult[] = [];
  const failures: { entry: number; target: string; error: unknown }[] = [];
  for (const [i, inv] of invalidators.entries()) {
    const progress = (deleted?: number) =>
      opts.onProgress?.({ entry: i + 1, entries: invalidators.length, target: inv.target, ...(deleted === undefined ? {} : { deleted }) });
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
