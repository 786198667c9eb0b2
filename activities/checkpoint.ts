// Activities of migrationCheckpoint: read-only checks, the restore point on
// the primary, and the wait until its segment is archived. All on the
// `lifeboat` queue: they reach the primary and the repository over the network
// (on a pgBackRest runbook, the stanza through pgbackrest: src/checkpoint/engine-checkpoint.ts).
import {
  checkpointPreflight,
  createRestorePoint as create,
  waitForArchivedSegment,
  type CheckpointPreflight,
  type RestorePoint,
} from '../src/checkpoint/checkpoint';
import { loadRunbookWithPrimary } from '../src/catalog/primary';
import { heartbeat, lifeboatActivity } from './failure';

/** Run twice: it only reads. */
export async function checkCheckpoint(input: { runbook: string; label: string }): Promise<CheckpointPreflight> {
  return lifeboatActivity(async () => {
    const { runbook } = await loadRunbookWithPrimary(input.runbook);
    return checkpointPreflight(runbook, input.label);
  });
}

/**
 * Not safe to run twice: a second pg_create_restore_point writes a second
 * point of the same name; the workflow schedules it once only.
 */
export async function createRestorePoint(input: { runbook: string; label: string }): Promise<RestorePoint> {
  return lifeboatActivity(async () => create((await loadRunbookWithPrimary(input.runbook)).runbook, input.label));
}

/** Waits up to the runbook's RPO (at least a minute): an archiver slower than that is failing the RPO anyway. Run twice: it only reads. */
export async function waitCheckpointArchived(input: {
  runbook: string;
  label: string;
  segment: string;
}): Promise<{ key: string }> {
  return lifeboatActivity(async () => {
    const { runbook } = await loadRunbookWithPrimary(input.runbook);
    return waitForArchivedSegment({
      runbook,
      segment: input.segment,
      label: input.label,
      timeoutSeconds: Math.max(60, runbook.objectives.rpoSeconds),
      onWait: (waited) => heartbeat({ segment: input.segment, waitedSeconds: Math.round(waited) }),
    });
  });
}
