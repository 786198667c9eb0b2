// `lifeboat worker [--host <host>]`
import * as path from 'node:path';
import { temporalTarget, type TemporalOptions } from '../context';
import { hostQueue, TASK_QUEUE } from '../../runbook/schema';

export async function run(
  opts: TemporalOptions & { host?: string; shared?: boolean; runbooksDir?: string; metrics?: string },
): Promise<number> {
  if (opts.runbooksDir) process.env.LIFEBOAT_RUNBOOKS_DIR = path.resolve(opts.runbooksDir);
  const temporal = await temporalTarget(opts);
  const { address, namespace } = temporal;
  const { startWorkers } = await import('../../worker');
  const metrics = opts.metrics ?? (process.env.LIFEBOAT_WORKER_METRICS || undefined);
  const running = await startWorkers({
    ...temporal,
    host: opts.host,
    shared: opts.shared,
    ...(metrics ? { metrics } : {}),
  });
  const queues = [...(opts.shared !== false ? [TASK_QUEUE] : []), ...(opts.host ? [hostQueue(opts.host)] : [])];
  process.stderr.write(
    `lifeboat worker polling ${queues.join(' and ')} on ${address} (namespace ${namespace}; ${temporal.origin}); ` +
      `runbooks from ${process.env.LIFEBOAT_RUNBOOKS_DIR ?? path.resolve('runbooks')}` +
      `${metrics ? `; Temporal SDK metrics at http://${metrics}/metrics` : ''}. Ctrl-C stops it.\n`,
  );
  await running.runUntilSignal();
  return 0;
}
