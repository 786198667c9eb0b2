// Traffic switching after promotion (DESIGN.md §4.1 step 15): point the
// application's connections at the promoted instance. One file per kind
// behind TrafficSwitcher (types.ts): pgbouncer's PAUSE/RELOAD/RESUME
// (pgbouncer.ts, with databases-file.ts and pgbouncer-admin.ts), or a
// command hook (command.ts); a new kind is one file and one line in
// `trafficSwitcher`. host.ts says on which worker the step must run.
import { LifeboatError, isLifeboatError } from '../errors';
import type { TrafficResult } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { commandSwitcher } from './command';
import { pgbouncerSwitcher } from './pgbouncer';
import { describeTarget, type RestoredTarget, type TrafficContext, type TrafficSwitcher } from './types';

export type { RestoredTarget, TrafficContext, TrafficProgress, TrafficSwitcher } from './types';
import { trafficHost } from './host';

export { trafficHost };

/** The promoted instance as clients reach it: restore.address and port, the primary's database. */
export function restoredTarget(runbook: Runbook): RestoredTarget {
  return { host: runbook.restore.address, port: runbook.restore.port, database: runbook.cluster.primary.database };
}

/** Without a traffic section clients are someone else's job; the result says so. */
function noSwitcher(runbook: string): TrafficSwitcher {
  return {
    kind: 'none',
    switchTo(target: RestoredTarget): Promise<TrafficResult> {
      return Promise.resolve({
        kind: 'none',
        steps: [`runbook ${runbook} configures no traffic switch: point clients at ${describeTarget(target)} yourself`],
      });
    },
    check(): Promise<string> {
      return Promise.resolve(`runbook ${runbook} configures no traffic switch`);
    },
  };
}

export function trafficSwitcher(runbook: Runbook, opts: { pauseTimeoutMs?: number } = {}): TrafficSwitcher {
  const traffic = runbook.traffic;
  if (!traffic) return noSwitcher(runbook.name);
  if ('pgbouncer' in traffic) return pgbouncerSwitcher(traffic.pgbouncer, runbook.name, opts);
  return commandSwitcher(traffic.command);
}

export async function switchRunbookTraffic(
  runbook: Runbook,
  ctx: TrafficContext,
  opts: { pauseTimeoutMs?: number } = {},
): Promise<TrafficResult> {
  return trafficSwitcher(runbook, opts).switchTo(restoredTarget(runbook), ctx);
}

/**
 * Preflight of resume-traffic, on the worker it runs on (trafficHost): the
 * admin URL set and the console answering, or the hook's program present.
 * Changes nothing; throws SECRET_MISSING or ENDPOINT_UNREACHABLE, or, for a
 * traffic section marked `preflight: warn`, returns the failure as a warning.
 */
export async function checkRunbookTraffic(
  runbook: Runbook,
  then: string,
): Promise<{ answered: string[]; warnings: string[] }> {
  let switcher: TrafficSwitcher;
  try {
    switcher = trafficSwitcher(runbook);
  } catch (err) {
    if (isLifeboatError(err) && err.code === 'SECRET_MISSING')
      throw new LifeboatError(err.code, err.what, {
        hints: [...err.hints, `set it on the worker of host ${trafficHost(runbook)}, then ${then}`],
      });
    throw err;
  }
  try {
    return { answered: [await switcher.check()], warnings: [] };
  } catch (err) {
    if (!isLifeboatError(err)) throw err;
    const t = runbook.traffic;
    const mode = t ? ('pgbouncer' in t ? t.pgbouncer.preflight : t.command.preflight) : undefined;
    if (mode === 'warn')
      return {
        answered: [],
        warnings: [`traffic (preflight: warn) does not answer now, resume-traffic will need it: ${err.what}`],
      };
    throw new LifeboatError(err.code, `traffic of runbook ${runbook.name}: ${err.what}`, {
      hints: [
        ...err.hints,
        `bring it up or fix the traffic section of runbook ${runbook.name}, then ${then}`,
        'an endpoint that may be down in the incident itself can be marked preflight: warn in the runbook (the run then goes on, and resume-traffic still needs it)',
      ],
      cause: err,
    });
  }
}
