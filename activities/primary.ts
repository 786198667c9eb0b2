// After promote, on the restore host: the new timeline's history file
// archived from the copy's pg_wal, and the primary overlay written
// (src/recovery/record-primary.ts).
import type { PrimaryRecord } from '../src/recovery/contract';
import { recordPrimary as record, type RecordPrimaryInput } from '../src/recovery/record-primary';
import { loadRunbook } from '../src/runbook/load';
import { lifeboatActivity } from './failure';

/**
 * Run twice: archive-push of the same history file answers already-archived,
 * and the overlay is written again with the same facts. The runbook as
 * written (not overlaid): `replaced` is the server the runbook names.
 */
export async function recordPrimary(input: RecordPrimaryInput): Promise<PrimaryRecord> {
  return lifeboatActivity(async () => record(await loadRunbook(input.runbook), input));
}
