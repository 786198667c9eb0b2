// migrationCheckpoint({ runbook, label }): a restore point to recover to,
// taken before a risky change (shared/DESIGN.md §4). Checks first, read-only:
// a checkpoint that no recovery could reach is refused with the reason, and
// nothing is written to the primary. Then the point, a segment switch, and a
// wait until the segment is archived; returns the name to recover to.
import { log, proxyActivities } from '@temporalio/workflow';
import { z } from 'zod';
import type * as checkpoint from '../activities/checkpoint';
import { labelProblem, type CheckpointResult } from '../src/checkpoint/label';
import { bounded, tries } from './activity-options';
import { parseWorkflowInput } from './input';

export const MigrationCheckpointInput = z.strictObject({
  runbook: z
    .string({ error: 'expected the runbook name, e.g. "orders"' })
    .min(1, { error: 'expected the runbook name' }),
  label: z
    .string({ error: 'expected the restore point name, e.g. "before-migration-0042"' })
    .superRefine((label, ctx) => {
      const problem = labelProblem(label);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
});
export type MigrationCheckpointInput = z.infer<typeof MigrationCheckpointInput>;

// Every activity heartbeats while it runs (./activity-options.ts).
const { checkCheckpoint } = proxyActivities<typeof checkpoint>(bounded('5 minutes', tries(3, '5 seconds')));

// Once only: a retry after a lost answer would write a second point of the
// same name, and this run would report the second one's position.
const { createRestorePoint } = proxyActivities<typeof checkpoint>(bounded('1 minute', tries(1)));

const { waitCheckpointArchived } = proxyActivities<typeof checkpoint>(bounded('2 hours', tries(3, '5 seconds')));

export async function migrationCheckpoint(input: MigrationCheckpointInput): Promise<CheckpointResult> {
  const { runbook, label } = parseWorkflowInput(MigrationCheckpointInput, input, 'migrationCheckpoint');
  // 1. The archiver healthy within the RPO, a verified backup, its WAL chain unbroken.
  const pre = await checkCheckpoint({ runbook, label });
  // 2. The restore point, and a switch so its segment goes to the archiver now.
  const point = await createRestorePoint({ runbook, label });
  log.info('restore point created', { label, lsn: point.lsn, segment: point.segment });
  // 3. Only an archived point can be recovered to when the primary is gone.
  await waitCheckpointArchived({ runbook, label, segment: point.segment });
  return { name: label, lsn: point.lsn, time: point.time, backupId: pre.backupId, segment: point.segment };
}
