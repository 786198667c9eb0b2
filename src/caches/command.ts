// A command hook for caches Lifeboat knows nothing about: the runbook's argv,
// run without a shell, for at most five minutes; exit 0 means purged.
import { LifeboatError } from '../errors';
import type { CacheResult } from '../recovery/contract';
import { findProgram, runHook, showArgv } from '../endpoints/run-hook';
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
        hints: [
          'run it by hand on this worker to see why; it must exit 0 once the cache is purged',
          'then retry the step',
        ],
      });
      ctx.progress();
      return { kind: 'command', target };
    },
    async check(): Promise<string> {
      const found = await findProgram(cfg.argv[0]!);
      if ('path' in found) return `${target}: ${found.path} is executable`;
      throw new LifeboatError('ENDPOINT_UNREACHABLE', `cache hook ${showArgv(cfg.argv)} cannot run: ${found.missing}`, {
        hints: [
          "invalidate-caches runs on any worker of the lifeboat queue: install the program on each of them, or fix the path in the runbook's caches list",
        ],
      });
    },
  };
}
