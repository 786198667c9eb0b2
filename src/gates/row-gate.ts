// A gate that is one row of the gate table (`system_gate` by default:
// gate_name, enabled, updated_at). The application reads the row and obeys
// it: background jobs and the outbox publisher stop when theirs is off.
import type { Client } from 'pg';
import type { GateResult } from '../recovery/contract';
import { inTransaction, quoteQualified, sqlFailed, withClient, type Endpoint } from './sql';

/**
 * Sets the row, creating it when missing. An update then an insert rather
 * than ON CONFLICT: the gate table of an existing application may have no
 * unique constraint on gate_name, and ON CONFLICT needs one.
 */
export async function writeGateRow(client: Client, table: string, gate: string, enabled: boolean): Promise<void> {
  const t = quoteQualified(table);
  try {
    const updated = await client.query(`update ${t} set enabled = $2, updated_at = now() where gate_name = $1`, [
      gate,
      enabled,
    ]);
    if (updated.rowCount === 0) {
      await client.query(`insert into ${t} (gate_name, enabled, updated_at) values ($1, $2, now())`, [gate, enabled]);
    }
  } catch (err) {
    throw sqlFailed(`could not set gate ${gate} to ${enabled ? 'enabled' : 'disabled'} in table ${table}`, err, [
      `the gate table needs columns gate_name text, enabled boolean, updated_at timestamptz (runbook gates.table: ${table})`,
    ]);
  }
}

export async function setRowGate(
  endpoint: Endpoint,
  table: string,
  gate: string,
  enabled: boolean,
): Promise<GateResult> {
  await withClient(endpoint, (client) =>
    inTransaction(client, 'begin', () => writeGateRow(client, table, gate, enabled)),
  );
  return { gate, enabled };
}
