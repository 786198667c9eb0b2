// Cache invalidation after a repair: only what the repaired rows could have
// left stale. A Redis pattern of the runbook may name key columns in braces
// (`orders:{id}`, `cart:{customer_id}:{id}`, and `{table}` for the table's
// name): for each table whose primary key has those columns, each repaired
// key is substituted and the resulting Redis key UNLINKed (no SCAN). When the
// substituted pattern still holds a glob (`orders:{id}:*`), one SCAN with
// every placeholder as `*` deletes a superset, never less. A pattern without
// placeholders, HTTP purges and command hooks run as after a recovery
// (src/caches): the whole pattern, one purge request, the hook.
import { LifeboatError, errorMessage } from '../errors';
import type { CacheResult } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { invalidateRunbookCaches } from '../caches';
import { hostOf, redact, urlFromEnv } from '../endpoints/secret-url';
import { SCAN_COUNT, redisClient, unlinkMatching } from '../caches/redis';

export interface RepairedKeys {
  /** Unquoted table name (what `{table}` becomes). */
  name: string;
  keyColumns: string[];
  /** Key texts of the repaired rows, in key column order. */
  keys: () => AsyncIterable<string[]>;
}

const PLACEHOLDER = /\{([^{}]+)\}/g;
const GLOB = /[*?[\]\\]/;

export function placeholdersOf(pattern: string): string[] {
  return [...pattern.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** The pattern with each placeholder replaced; undefined when the table's key lacks one of them. */
export function substitute(
  pattern: string,
  table: Pick<RepairedKeys, 'name' | 'keyColumns'>,
  key: readonly string[],
): string | undefined {
  let missing = false;
  const out = pattern.replace(PLACEHOLDER, (_, col: string) => {
    if (col === 'table') return table.name;
    const i = table.keyColumns.indexOf(col);
    if (i < 0) {
      missing = true;
      return '';
    }
    return key[i]!;
  });
  return missing ? undefined : out;
}

type RedisEntry = { redis: { urlEnv: string; patterns: string[] } };

export async function invalidateRepairedCaches(
  runbook: Runbook,
  tables: RepairedKeys[],
  opts: { onProgress?: (deleted: number) => void; signal?: AbortSignal } = {},
): Promise<CacheResult[]> {
  const keyed = runbook.caches.filter(
    (c): c is Runbook['caches'][number] & RedisEntry =>
      'redis' in c && c.redis.patterns.some((p) => placeholdersOf(p).length > 0),
  );
  const rest = runbook.caches.filter((c) => !keyed.includes(c as never));
  const results =
    rest.length > 0 ? await invalidateRunbookCaches({ ...runbook, caches: rest }, { signal: opts.signal }) : [];
  for (const entry of keyed) results.push(await invalidateKeyed(runbook.name, entry.redis, tables, opts));
  return results;
}

async function invalidateKeyed(
  runbook: string,
  cfg: { urlEnv: string; patterns: string[] },
  tables: RepairedKeys[],
  opts: { onProgress?: (deleted: number) => void; signal?: AbortSignal },
): Promise<CacheResult> {
  const url = urlFromEnv(cfg.urlEnv, {
    runbook,
    what: 'the Redis whose keys are invalidated',
    protocols: ['redis:', 'rediss:'],
  });
  const target = `redis $${cfg.urlEnv} ${cfg.patterns.join(' ')} (repaired keys)`;
  const { client, lastError } = redisClient(url);
  let deleted = 0;
  try {
    await client.connect();
    for (const pattern of cfg.patterns) {
      const names = placeholdersOf(pattern);
      if (names.length === 0 || GLOB.test(pattern.replace(PLACEHOLDER, ''))) {
        // No placeholder, or a glob beside them: one SCAN of the broadened pattern.
        const broad = pattern.replace(PLACEHOLDER, '*');
        await unlinkMatching(client, broad, deleted, {
          signal: opts.signal,
          report: (n) => opts.onProgress?.((deleted = n)),
        });
        continue;
      }
      for (const t of tables) {
        if (!names.every((n) => n === 'table' || t.keyColumns.includes(n))) continue;
        let batch: string[] = [];
        const flush = async () => {
          if (batch.length > 0) deleted += await client.unlink(batch);
          batch = [];
          opts.onProgress?.(deleted);
        };
        for await (const key of t.keys()) {
          opts.signal?.throwIfAborted();
          const k = substitute(pattern, t, key);
          if (k !== undefined) batch.push(k);
          if (batch.length >= SCAN_COUNT) await flush();
        }
        await flush();
      }
    }
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    const why = redact(errorMessage(lastError() ?? err), url);
    throw new LifeboatError(
      'CACHE_INVALIDATION_FAILED',
      `Redis at $${cfg.urlEnv} (${hostOf(url, 6379)}): deleting the repaired keys failed after ${deleted} deleted: ${why}`,
      {
        hints: [
          `is Redis up and reachable from this worker? (redis-cli -h ${url.hostname} -p ${url.port || 6379} ping)`,
          'deleting again is safe: retry the step',
        ],
        details: { deleted },
      },
    );
  } finally {
    if (client.isOpen) client.destroy();
  }
  return { kind: 'redis', target, deleted };
}
