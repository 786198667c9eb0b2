// What every kind of cache invalidation offers (redis.ts, http.ts,
// command.ts): a description that is safe to show, and one call that does it.
import type { CacheResult } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';

export type CacheEntry = Runbook['caches'][number];

/** Heartbeat details of invalidate-caches. */
export interface CacheProgress {
  /** 1-based position of the entry in the runbook's caches list. */
  entry: number;
  entries: number;
  target: string;
  /** Redis: keys deleted so far by this entry. */
  deleted?: number;
}

export interface InvalidationContext {
  /** Called after each batch of work (a heartbeat). */
  progress(deleted?: number): void;
  signal?: AbortSignal;
}

export interface CacheInvalidator {
  /** e.g. `redis $REDIS_URL orders:*`: names variables, never their values. */
  readonly target: string;
  invalidate(ctx: InvalidationContext): Promise<CacheResult>;
  /**
   * Preflight: does the endpoint answer (Redis PING, any HTTP status to a
   * HEAD, the hook's program present and executable)? Changes nothing.
   * Returns what answered; throws ENDPOINT_UNREACHABLE.
   */
  check(signal?: AbortSignal): Promise<string>;
}
