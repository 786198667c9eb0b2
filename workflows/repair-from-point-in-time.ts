// repairFromPointInTime(RepairInput): repair without failover (DESIGN.md
// §4.3), one line per step. An isolated copy (the drill's site: its own
// directory and port, loopback, archiving off) is replayed to the `before`
// target and, with `after`, on to the end of the bad statement; the rows of
// the chosen tables are compared with the live primary and classified; a
// person approves; the approved rows of every table are restored on the
// primary in one audited transaction. No promotion, no gate, no traffic switch.
// The step machinery (state, approvals, retry/skip/abort, the checklist) is
// the recovery's (./recovery/machine), with this workflow's steps.
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import { REPAIR_STEP_IDS, describeTarget, type Evidence, type StepId } from '../src/recovery/contract';
import { RepairInput, type RepairStatus } from '../src/repair/contract';
import { clusterName, type Runbook } from '../src/runbook/schema';
import { parseWorkflowInput } from './input';
import { decisionChannels } from './recovery/channels';
import { RecoveryMachine } from './recovery/machine';
import { endStopped, recordEvidence } from './recovery/run-end';
import { RunAborted } from './recovery/run-errors';
import * as summary from './recovery/step-summaries';
import { buildRepairEvidence, type RepairFacts } from './repair/evidence';
import { copyHostActivities, sharedActivities } from './repair/proxies';
import { classesApproved, diffSummary, plannedRows } from './repair/decide';

const TITLES: Partial<Record<StepId, string>> = {
  preflight: 'Preflight: backup, WAL to both targets, tables and privileges checked',
  'approve-fence': 'Approve fencing the affected tables',
  'restore-base-backup': 'Restore the base backup into an isolated copy (the drill site)',
  'replay-wal': 'Replay WAL to the before target and pause',
  'invalidate-caches': 'Invalidate caches for the repaired keys',
};

export async function repairFromPointInTime(rawInput: RepairInput): Promise<Evidence> {
  const input = parseWorkflowInput(RepairInput, rawInput, 'repairFromPointInTime');
  const { workflowId, runId } = workflowInfo();
  const dryRun = input.dryRun ?? false;
  const name = input.runbook;
  const run = new RecoveryMachine(
    {
      runbook: name,
      target: input.before,
      mode: 'side-by-side',
      dryRun,
      ...(input.incident ? { incident: input.incident } : {}),
      ...(input.reason ? { reason: input.reason } : {}),
    },
    { workflow: 'repairFromPointInTime', steps: REPAIR_STEP_IDS, titles: TITLES },
  );
  const repair: RepairStatus = {
    tables: input.tables,
    before: input.before,
    keepCopy: input.keepCopy ?? false,
    ...(input.after ? { after: input.after } : {}),
    ...(input.where ? { where: input.where } : {}),
  };
  run.findings.repair = repair;
  run.installHandlers();
  run.publish();
  const act = sharedActivities();
  const facts: RepairFacts = { input, workflowId, runId, validationStatus: 'passed', notes: [] };
  const auditDone = run.auditLoop((seq, line) => act.appendAudit({ runbook: name, runId, workflowId, seq, line }));
  const notify = decisionChannels(run, act, { runbook: name, workflowId });
  const writeEvidence = (evidence: Evidence) => act.writeEvidence({ runbook: name, evidence });
  let host: ReturnType<typeof copyHostActivities> | undefined;
  const ref = { runbook: name, workflowId };

  try {
    // 1. preflight: backup and WAL to both targets, the tables (primary key,
    // privileges), the copy's site; nothing touched.
    const plan = await run.step(
      'preflight',
      async () => {
        const p = await act.preflight({
          runbook: name,
          target: input.before,
          mode: 'side-by-side',
          dryRun,
          instance: 'drill',
        });
        const drill = p.runbook.drill;
        if (!drill) {
          throw ApplicationFailure.create({
            type: 'RUNBOOK_INVALID',
            nonRetryable: true,
            message:
              `runbook ${name} has no drill section: ` +
              'a repair restores its copy on the drill site (its own directory and port, loopback only)\n' +
              'HINT: add one, e.g. drill: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/drill, port: 5499 }',
          });
        }
        if (input.after)
          await act.preflight({ runbook: name, target: input.after, mode: 'side-by-side', dryRun, instance: 'drill' });
        repair.checked = await act.checkRepairTables({ runbook: name, tables: input.tables, write: !dryRun });
        await copyHostActivities(drill.host).checkRestoreSite({
          runbook: name,
          instance: 'drill',
          backupId: p.backup.backupId,
          backupBytes: p.backup.sizeBytes,
          walSegments: p.walSegmentsAvailable,
          workflowId,
          runId,
        });
        if (!dryRun && p.runbook.caches.length > 0) await act.checkCacheEndpoints({ runbook: name });
        return p;
      },
      (p) => summary.plannedForRepair(p, repair.checked),
    );
    if (!plan) throw ApplicationFailure.nonRetryable('preflight cannot be skipped', 'STEP_NOT_SKIPPABLE');
    const runbook: Runbook = plan.runbook;
    run.runbook = runbook;
    facts.cluster = clusterName(runbook);
    facts.notes.push(...plan.warnings);
    run.findings.cluster = facts.cluster;
    run.findings.backup = plan.backup;
    host = copyHostActivities(runbook.drill!.host);
    const copy = host;

    // 2. approve-fence: the runbook names no fence of single tables yet; writers to every table go on.
    run.notApplicable(
      'approve-fence',
      'not configured: the runbook names no fence for affected tables, so writers continue; ' +
        'the apply re-checks every row and skips one changed since the diff',
    );

    // 3-4. restore the base backup into the isolated copy and replay to the before target, paused.
    await run.step(
      'restore-base-backup',
      () =>
        copy.restoreBaseBackup({
          runbook: name,
          instance: 'drill',
          backupId: plan.backup.backupId,
          mode: 'side-by-side',
          workflowId,
          runId,
        }),
      summary.restoredForRepair,
    );
    const before = await run.step(
      'replay-wal',
      () => copy.replayWal({ runbook: name, instance: 'drill', target: input.before, workflowId, runId }),
      summary.pausedAt,
    );
    if (!before) throw ApplicationFailure.nonRetryable('replay-wal cannot be skipped', 'STEP_NOT_SKIPPABLE');
    run.findings.replay = { lsn: before.lsn, ...(before.time ? { time: before.time } : {}), paused: true };

    // 5. snapshot-before: the selected rows of each table, by primary key.
    const tableArgs = { ...ref, tables: input.tables, ...(input.where ? { where: input.where } : {}) };
    await run.step(
      'snapshot-before',
      () => copy.snapshotRepairCopy({ ...tableArgs, label: 'before' }),
      summary.snapshotTaken,
    );

    // 6. with an after target: continue replay to it (the retarget-later machinery), snapshot again.
    if (input.after) {
      const after = input.after;
      const a = await run.step(
        'replay-wal-after',
        () =>
          copy.replayWal({ runbook: name, instance: 'drill', target: after, workflowId, runId, continueFrom: true }),
        summary.pausedAt,
      );
      if (!a) throw ApplicationFailure.nonRetryable('replay-wal-after cannot be skipped', 'STEP_NOT_SKIPPABLE');
      run.findings.replay = { lsn: a.lsn, ...(a.time ? { time: a.time } : {}), paused: true };
      await run.step(
        'snapshot-after',
        () => copy.snapshotRepairCopy({ ...tableArgs, label: 'after' }),
        summary.snapshotTaken,
      );
    } else {
      run.notApplicable(
        'replay-wal-after',
        `no after target: every row that differs between ${describeTarget(input.before)} and now is a candidate, ` +
          'none is classified safe',
      );
      run.notApplicable('snapshot-after', 'no after target');
    }

    // 7. diff: classify every key against the live primary; the artefact goes to the repository.
    const diff = await run.step(
      'diff',
      () => copy.diffRepair({ ...tableArgs, runId, withAfter: input.after !== undefined }),
      diffSummary,
    );
    if (!diff) throw ApplicationFailure.nonRetryable('diff cannot be skipped', 'STEP_NOT_SKIPPABLE');
    repair.diff = diff;
    run.publish();

    if (dryRun) {
      for (const id of ['approve-repair', 'apply-repair', 'invalidate-caches'] as const)
        run.notApplicable(id, 'dry run: stops after the diff, nothing written to the primary');
    } else {
      // 8. approve-repair: approvers and quorum from the runbook; conflicts only when an approver includes them.
      await run.approval('approve-repair', notify);
      const classes = classesApproved(run.decisions, run.approvedBy, diff.withAfter);
      repair.classes = classes;
      repair.approvedBy = [...run.approvedBy];
      const rows = plannedRows(diff, classes);
      // 9. apply-repair: one transaction for every table (parents first), guarded, audited, idempotent by workflow id.
      if (rows === 0) {
        const onlyIncluded = diff.withAfter ? '' : '; without an after target only included candidates are restored';
        run.notApplicable(
          'apply-repair',
          `nothing to restore in the approved classes (${classes.join(', ') || 'none'})${onlyIncluded}`,
        );
        run.notApplicable('invalidate-caches', 'nothing was repaired');
      } else {
        repair.applied = await run.step(
          'apply-repair',
          () => copy.applyRepair({ ...ref, classes, approvedBy: repair.approvedBy! }),
          summary.repairApplied,
        );
        const skipped = (repair.applied ?? []).reduce((n, a) => n + a.skipped, 0);
        if (skipped > 0)
          facts.notes.push(
            `${skipped} row(s) changed between the diff and the apply were skipped, never overwritten: ` +
              'their keys are in repair.applied[].skippedKeys',
          );
        // 10. invalidate-caches for the repaired keys.
        if (runbook.caches.length > 0)
          facts.caches = await run.step(
            'invalidate-caches',
            () => copy.invalidateRepairCaches({ ...ref, classes }),
            summary.cachesInvalidated,
          );
        else run.notApplicable('invalidate-caches', 'no caches in the runbook');
      }
    }

    // 11. teardown: the copy and the work files, unless kept.
    await teardown(run, copy, input, runbook, ref, facts);
    // 12. record-evidence: written to the repository and returned.
    const outcome = (evidence: Evidence) => ({ verdict: evidence.validationStatus });
    return await recordEvidence(run, () => buildRepairEvidence(run, facts), outcome, writeEvidence, auditDone);
  } catch (err) {
    if (!(err instanceof RunAborted)) throw err;
    facts.validationStatus = err.kind;
    const applied = (repair.applied?.length ?? 0) > 0;
    const written = applied ? 'the repair had been applied' : 'nothing was written to the primary';
    facts.notes.push(`${err.kind} at ${err.step} by ${err.by}: ${err.reason}; ${written}`);
    // Not through run.step: the abort that ended the run would stop that step too.
    if (host && !input.keepCopy && run.steps.get('restore-base-backup')!.runs > 0) {
      const t = await host.teardownRepairCopy(ref).then(
        (r) => `${r.removed ?? r.left ?? 'nothing to remove'}`,
        (e: unknown) => `failed: ${String(e)}`,
      );
      facts.notes.push(`teardown after ${err.kind}: ${t}`);
    }
    const evidence = buildRepairEvidence(run, facts);
    const leftBehind = () =>
      applied ? 'the repair was applied before the stop: see the evidence' : 'nothing was written to the primary';
    const stop = { what: 'repair', evidence, outcome: { verdict: evidence.validationStatus }, leftBehind } as const;
    return endStopped(run, err, stop, writeEvidence, auditDone);
  }
}

async function teardown(
  run: RecoveryMachine,
  copy: ReturnType<typeof copyHostActivities>,
  input: { keepCopy?: boolean | undefined },
  runbook: Runbook,
  ref: { runbook: string; workflowId: string },
  facts: RepairFacts,
): Promise<void> {
  if (run.steps.get('teardown')!.state !== 'pending') return;
  const d = runbook.drill!;
  if (input.keepCopy) {
    const stop = `pg_ctl stop -D ${d.dataDir} -m fast as ${runbook.cluster.osUser}`;
    const where = `127.0.0.1:${d.port}, ${d.dataDir} on ${d.host}`;
    run.notApplicable(
      'teardown',
      `kept (keepCopy): ${where}, paused and read-only; stop it with ${stop} and remove it when done`,
    );
    facts.notes.push(
      `the copy was kept at ${d.dataDir} on ${d.host} (127.0.0.1:${d.port}); ` +
        'the next drill or repair refuses to start while it runs',
    );
    return;
  }
  await run.step('teardown', () => copy.teardownRepairCopy(ref), summary.copyTornDown);
}
