// A command hook for caches Lifeboat knows nothing about: the runbook's argv,
// run without a shell, for at most five minutes; exit 0 means purged.
import type { CacheResult } from '../recovery/contract';
import { runHook, showArgv } from './run-hook';
import type { CacheInvalidator, InvalidationContext } from './types';

export function commandInvalidator(cfg: { argv: string[] }): CacheInvalidator {
  const target = `command ${showArgv(cfg.argv)}`;
  return {
    target,
    async invalidate(ctx: InvalidationContext): Promise<CacheResult> {
      await runHook(cfg.argv, {
        what: `cache hook ${showArgv(cfg.argv)}`,
        code: 'CACHE_INVALIDATION_FAILED',
        signal: ctx.signal,
        hints: ['run it by hand on this worker to see why; it must exit 0 once the cache is purged', 'then retry the step'],
      });
      ctx.progress();
      return { kind: 'command', target };
    },
  };
}
