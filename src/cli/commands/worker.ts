// `lifeboat worker [--host <host>]`
import * as path from 'node:path';
import { temporalAddress, type TemporalOptions } from '../context';
import { hostQueue, TASK_QUEUE } from '../../runbook/schema';

export async function run(opts: TemporalOptions & { host?: string; shared?: boolean; runbooksDir?: string }): Promise<number> {
  if (opts.runbooksDir) process.env.LIFEBOAT_RUNBOOKS_DIR = path.resolve(opts.runbooksDir);
  const { address, namespace } = temporalAddress(opts);
  const { startWorkers } = await import('../../worker');
  const running = await startWorkers({ address, namespace, host: opts.host, shared: opts.shared });
  const queues = [...(opts.shared !== false ? [TASK_QUEUE] : []), ...(opts.host ? [hostQueue(opts.host)] : [])];
  process.stderr.write(
    `lifeboat worker polling ${queues.join(' and ')} on ${address} (namespace ${namespace}); ` +
      `runbooks from ${process.env.LIFEBOAT_RUNBOOKS_DIR ?? path.resolve('runbooks')}. Ctrl-C stops it.\n`,
  );
  await running.runUntilSignal();
  return 0;
}
