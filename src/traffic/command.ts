// A command hook for traffic Lifeboat cannot switch itself (a load balancer,
// a service registry, DNS): the runbook's argv, run without a shell, with
// RESTORED_HOST, RESTORED_PORT and RESTORED_DATABASE saying where clients
// must go. It must be idempotent: a retried step runs it again.
import { LifeboatError } from '../errors';
import type { TrafficResult } from '../recovery/contract';
import { findProgram, runHook, showArgv } from '../endpoints/run-hook';
import { describeTarget, type RestoredTarget, type TrafficContext, type TrafficSwitcher } from './types';

export function commandSwitcher(cfg: { argv: string[] }): TrafficSwitcher {
  return {
    kind: 'command',
    async switchTo(target: RestoredTarget, ctx: TrafficContext): Promise<TrafficResult> {
      const env = {
        RESTORED_HOST: target.host,
        RESTORED_PORT: String(target.port),
        RESTORED_DATABASE: target.database,
      };
      ctx.progress({ phase: 'running-hook' });
      await runHook(cfg.argv, {
        what: `traffic hook ${showArgv(cfg.argv)}`,
        code: 'TRAFFIC_SWITCH_FAILED',
        env,
        signal: ctx.signal,
        hints: [
          `it was asked to point clients at ${describeTarget(target)} (RESTORED_HOST, RESTORED_PORT, RESTORED_DATABASE)`,
          'run it by hand on this worker with those variables to see why, then retry the step',
        ],
      });
      const vars = Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      return {
        kind: 'command',
        pointedAt: describeTarget(target),
        steps: [`ran ${showArgv(cfg.argv)} with ${vars}: exit 0`],
      };
    },
    async check(): Promise<string> {
      const found = await findProgram(cfg.argv[0]!);
      if ('path' in found) return `traffic hook ${showArgv(cfg.argv)}: ${found.path} is executable`;
      throw new LifeboatError(
        'ENDPOINT_UNREACHABLE',
        `traffic hook ${showArgv(cfg.argv)} cannot run: ${found.missing}`,
        {
          hints: [
            "resume-traffic runs on the worker of the traffic host (restore.host): install the program there, or fix the path in the runbook's traffic.command",
          ],
        },
      );
    },
  };
}
