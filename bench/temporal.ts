// The Temporal side of the recovery and drill benches: a dev server of their
// own, Lifeboat's workers in the bench's process (so the bench's CPU meter
// sees the activities), and a client; `cleanups` stops them, in reverse.
import { Client as TemporalClient, Connection } from '@temporalio/client';
import * as path from 'node:path';
import { freePort } from '../src/dev/ports';
import { startTemporalDevServer } from '../src/dev/temporal-server';
import { startWorkers } from '../src/worker';

export async function startBenchTemporal(
  work: string,
  host: string,
  taskQueue: string,
  cleanups: Array<() => Promise<unknown>>,
): Promise<{ client: TemporalClient; address: string }> {
  const temporal = await startTemporalDevServer({ port: await freePort(), logFile: path.join(work, 'temporal.log') });
  cleanups.push(temporal.stop);
  const workers = await startWorkers({ address: temporal.address, namespace: 'default', host, taskQueue });
  cleanups.push(workers.shutdown);
  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  return { client: new TemporalClient({ connection }), address: temporal.address };
}
