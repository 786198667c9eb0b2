// The Temporal client as the CLI uses it, with an error that says what to
// check when the server is not there (which TLS, from where).
import { Client, Connection } from '@temporalio/client';
import { connectionOptions, refused, unreachable, type TemporalTarget } from './temporal-config';

/** A client for a resolved target (src/client/temporal-config.ts: flags, environment, profile). */
export async function connectClient(target: TemporalTarget): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(target), connectTimeout: 5000 });
  } catch (err) {
    throw unreachable(target, err);
  }
  // One read of the namespace, so that an unknown namespace or a refused API
  // key is said here, not as the SDK's bare "Failed to list workflows" later.
  try {
    await connection.workflowService.describeNamespace({ namespace: target.namespace });
  } catch (err) {
    await connection.close();
    throw refused(target, err);
  }
  return new Client({ connection, namespace: target.namespace });
}

/** A workflow id that sorts by time and names what it is for: backup-orders-20261121T190102Z. */
export function timestampedId(prefix: string, now = new Date()): string {
  return `${prefix}-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}
