// Step 1 of recoverToPointInTime, preflight: the backup chosen and the WAL
// chain checked (the activity `preflight`), then what must hold before
// anything is fenced: no other recovery of the runbook, room and a free
// directory and port on the restore host, every cache and traffic endpoint
// answering. Nothing is touched. Each check after the first came in under a
// patch: older histories never called it.
import { patched } from '@temporalio/workflow';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { RunFacts } from './evidence';
import type { RecoveryMachine } from './machine';
import { hostActivities, type SharedActivities } from './proxies';

/** The patch id around checkNoOtherRecovery: histories recorded before it replay without. */
const ONE_RECOVERY_PATCH = 'one-recovery-per-runbook';
/** The patch around the preflight probes of cache and traffic endpoints. */
const ENDPOINTS_PATCH = 'preflight-check-endpoints';

export type Plan = Awaited<ReturnType<RecoveryActivities['preflight']>>;

/** The body of the preflight step; its notes (the endpoints that answered) go into facts.notes. */
export async function preflightChecks(run: RecoveryMachine, act: SharedActivities, facts: RunFacts): Promise<Plan> {
  const { input, workflowId, runId } = facts;
  const name = input.runbook;
  const dryRun = input.dryRun ?? false;
  // One recovery per runbook unless the operator said otherwise: a later
  // start fails RECOVERY_ALREADY_RUNNING, which ends the run before
  // anything is read or touched.
  if (patched(ONE_RECOVERY_PATCH) && !input.concurrent)
    facts.notes.push((await act.checkNoOtherRecovery({ runbook: name })).checked);
  const p = await act.preflight({
    runbook: name,
    target: run.target,
    mode: run.mode,
    dryRun,
    ...(input.backupId ? { backupId: input.backupId } : {}),
    ...(input.repository ? { repository: input.repository } : {}),
  });
  // Room for the backup and its WAL on the restore host, before anything is fenced
  // (DISK_FULL names the kept moved-aside copies).
  if (patched('preflight-check-restore-site')) {
    // Also the directory and port: free, or this run's (a stranger's files,
    // a previous copy still running, another server on the port refuse).
    await hostActivities(p.runbook).checkRestoreSite({
      runbook: name,
      backupId: p.backup.backupId,
      backupBytes: p.backup.sizeBytes,
      walSegments: p.walSegmentsAvailable,
      workflowId,
      runId,
      mode: input.mode ?? p.runbook.restore.mode,
    });
  }
  // Every cache and traffic endpoint answers, probed from the worker that
  // will use it; not in a dry run, which touches neither.
  if (!dryRun && patched(ENDPOINTS_PATCH)) {
    const found: string[] = [];
    const note = (c: { answered: string[]; warnings?: string[] }) =>
      found.push(...c.answered, ...(c.warnings ?? []).map((w) => `WARNING: ${w}`));
    if (p.runbook.caches.length > 0) note(await act.checkCacheEndpoints({ runbook: name }));
    if (p.runbook.traffic) note(await hostActivities(p.runbook).checkTrafficEndpoint({ runbook: name }));
    for (const a of found) if (!facts.notes.includes(`preflight: ${a}`)) facts.notes.push(`preflight: ${a}`);
  }
  return p;
}
