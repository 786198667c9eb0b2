// The Temporal client as the CLI uses it, with an error that says what to
// check when the server is not there.
import { Client, Connection } from '@temporalio/client';
import { LifeboatError, errorMessage } from '../errors';

export async function connectClient(address: string, namespace: string): Promise<Client> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 5000 });
    return new Client({ connection, namespace });
  } catch (err) {
    throw new LifeboatError('TOOL_FAILED', `cannot reach the Temporal server at ${address}: ${errorMessage(err)}`, {
      hints: ['is the Temporal server running? (npm start runs a dev server on 127.0.0.1:7233)', 'pass --address or set TEMPORAL_ADDRESS'],
      cause: err,
    });
  }
}

/** A workflow id that sorts by time and names what it is for: backup-orders-20261121T190102Z. */
export function timestampedId(prefix: string, now = new Date()): string {
  return `${prefix}-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}
