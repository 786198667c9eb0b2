// Redis: every key matching the runbook's patterns is deleted, with SCAN
// (never KEYS, which blocks the server for the whole keyspace) and UNLINK
// (the memory is freed in a background thread, so a large value does not
// stall the server either).
//
// SCAN guarantees every key that exists for the whole iteration is returned
// at least once; a key returned twice is simply not counted again, since
// UNLINK reports what it actually removed. Writers are fenced while this
// step runs, so nothing should be adding keys behind the cursor.
//
// One node only: against Redis Cluster, SCAN walks the node it is sent to.
import { createClient, RESP_TYPES } from 'redis';
import { LifeboatError, errorMessage } from '../errors';
import type { CacheResult } from '../recovery/contract';
import { hostOf, redact, urlFromEnv } from '../endpoints/secret-url';
import { PROBE_TIMEOUT_MS } from '../endpoints/probe';
import type { CacheInvalidator, InvalidationContext } from './types';

/** Keys asked of SCAN per call, and so deleted per UNLINK at most. */
export const SCAN_COUNT = 1000;

/**
 * A client for one invalidation: it fails rather than reconnecting behind our
 * back (a retry of the whole activity is visible in the workflow history, a
 * silent reconnect is not), and `lastError()` is what its 'error' event said
 * last (without a listener that event would crash the worker).
 */
export function redisClient(url: URL, timeouts = { connectTimeout: 10_000, socketTimeout: 60_000 }) {
  let lastError: unknown;
  const client = createClient({ url: url.href, socket: { ...timeouts, reconnectStrategy: false } });
  client.on('error', (err: unknown) => (lastError = err));
  return { client, lastError: () => lastError };
}

/**
 * Deletes every key matching `pattern`, a SCAN page at a time, each page with
 * one UNLINK; returns the running count (from `deleted`), reported after each
 * page. Keys as bytes: a key that is not valid UTF-8 would otherwise come back
 * mangled from SCAN and UNLINK would miss it.
 */
export async function unlinkMatching(
  client: ReturnType<typeof redisClient>['client'],
  pattern: string,
  deleted: number,
  progress: { signal?: AbortSignal | undefined; report: (deleted: number) => void },
): Promise<number> {
  const bytes = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  let cursor = '0';
  do {
    progress.signal?.throwIfAborted();
    const page = await bytes.scan(cursor, { MATCH: pattern, COUNT: SCAN_COUNT });
    cursor = page.cursor.toString();
    if (page.keys.length > 0) deleted += await bytes.unlink(page.keys);
    progress.report(deleted);
  } while (cursor !== '0');
  return deleted;
}

export function redisInvalidator(cfg: { urlEnv: string; patterns: string[] }, runbook: string): CacheInvalidator {
  const url = urlFromEnv(cfg.urlEnv, {
    runbook,
    what: 'the Redis whose keys are invalidated',
    protocols: ['redis:', 'rediss:'],
  });
  const target = `redis $${cfg.urlEnv} ${cfg.patterns.join(' ')}`;
  const where = `Redis at $${cfg.urlEnv} (${hostOf(url, 6379)})`;
  return {
    target,
    async invalidate(ctx: InvalidationContext): Promise<CacheResult> {
      const { client, lastError } = redisClient(url);
      let deleted = 0;
      let pattern: string | undefined;
      try {
        await client.connect();
        for (pattern of cfg.patterns) {
          // The count follows each page, so a failure says how many went before it.
          const report = (n: number) => ctx.progress((deleted = n));
          await unlinkMatching(client, pattern, deleted, { signal: ctx.signal, report });
        }
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        const why = redact(errorMessage(lastError() ?? err), url);
        const auth = /WRONGPASS|NOAUTH|NOPERM/.test(why);
        const doing =
          pattern === undefined
            ? 'cannot connect'
            : `deleting keys matching "${pattern}" failed after ${deleted} deleted`;
        throw new LifeboatError('CACHE_INVALIDATION_FAILED', `${where}: ${doing}: ${why}`, {
          hints: [
            auth
              ? `check the user and password in ${cfg.urlEnv} on this worker, and that the user may SCAN and UNLINK`
              : `is Redis up and reachable from this worker? (redis-cli -h ${url.hostname} -p ${url.port || 6379} ping)`,
            'deleting again is safe: retry the step',
          ],
          details: { deleted },
        });
      } finally {
        if (client.isOpen) client.destroy();
      }
      return { kind: 'redis', target, deleted };
    },
    async check(): Promise<string> {
      const { client, lastError } = redisClient(url, {
        connectTimeout: PROBE_TIMEOUT_MS,
        socketTimeout: PROBE_TIMEOUT_MS,
      });
      try {
        await client.connect();
        const pong = await client.ping();
        return `${where}: ${pong}`;
      } catch (err) {
        const why = redact(errorMessage(lastError() ?? err), url);
        const auth = /WRONGPASS|NOAUTH|NOPERM/.test(why);
        throw new LifeboatError('ENDPOINT_UNREACHABLE', `${where} does not answer PING: ${why}`, {
          hints: [
            auth
              ? `check the user and password in ${cfg.urlEnv} on the workers of the lifeboat queue, and that the user may PING, SCAN and UNLINK`
              : `is Redis up and reachable from the workers of the lifeboat queue? (redis-cli -h ${url.hostname} -p ${url.port || 6379} ping)`,
          ],
        });
      } finally {
        if (client.isOpen) client.destroy();
      }
    },
  };
}
