// restoreDrill({ runbook, target?, keep? }) (DESIGN.md §4): proves the
// runbook works without touching production. On the drill host, into
// drill.dataDir on drill.port: the right base backup restored, WAL replayed
// to the target and paused, invariants checked, the copy promoted in
// isolation (loopback only, archiving off) and a write proven; RTO and RPO
// measured; the copy torn down; the evidence written. No gate, no traffic,
// no approval: the primary is only read (pg_stat_archiver, in preflight).
//
// With source 'standby' the copy is a clone of the running warm standby
// (pg_basebackup from it; the standby is never paused, stopped or moved) and
// a random target is drawn after its last replayed commit; a standby that
// cannot serve leaves the drill to the backup, the reason in the evidence.
//
// A failed drill (a step, an invariant or a missed objective) still tears
// down, notifies and writes its evidence, then fails the workflow with
// DRILL_FAILED so the Temporal UI and schedules show it red. A passed drill
// returns its evidence.
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import { DrillInput, type DrillStepId } from '../src/drill/contract';
import type { NotifyKind } from '../src/notify/webhook';
import { describeTarget, type Evidence, type UseStandbyResult } from '../src/recovery/contract';
import { keys } from '../src/repository/layout';
import { clusterName, hostQueue } from '../src/runbook/schema';
import { buildDrillEvidence, judge, measure, type DrillFacts } from './drill/evidence';
import { drillHostActivities, sharedActivities, standbyHostActivities } from './drill/proxies';
import { DrillRun, DrillStepFailed } from './drill/run';
import { parseWorkflowInput } from './input';
import * as summary from './recovery/step-summaries';
import { stepError } from './recovery/rules';

export async function restoreDrill(rawInput: DrillInput): Promise<Evidence> {
  const input = parseWorkflowInput(DrillInput, rawInput, 'restoreDrill');
  const { workflowId, runId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const act = sharedActivities();
  const name = input.runbook;
  // Without the runbook there is no repository to write evidence to: this one fails the workflow as is.
  const runbook = await act.resolveRunbook({ runbook: name });
  const drill = runbook.drill;
  if (!drill) {
    throw ApplicationFailure.create({
      type: 'RUNBOOK_INVALID',
      nonRetryable: true,
      message:
        `runbook ${name} has no drill section, so no restore drill can run\n` +
        'HINT: add one, e.g. drill: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/drill, ' +
        'port: 5499, targetWindow: 24h }',
    });
  }
  const cluster = clusterName(runbook);
  const evidenceAt = `${runbook.repository.url}/${keys.evidence(cluster, runId)}`;
  const host = drillHostActivities(drill.host);
  const run = new DrillRun(() => hostQueue(drill.host));
  const f: DrillFacts = {
    runbook,
    cluster,
    workflowId,
    runId,
    startedAt,
    notes: [],
    ...(input.target ? { target: input.target } : {}),
  };
  // --repo-index: every activity of the drill reads only that repository.
  const ref = {
    runbook: name,
    instance: 'drill' as const,
    ...(input.repository ? { repository: input.repository } : {}),
  };
  const where = `drill host ${drill.host}, ${drill.dataDir}, port ${drill.port}`;

  /** Posts an event; a notifier that fails is noted in the evidence and never fails the drill. */
  const notify = async (kind: NotifyKind, text: string, details: Record<string, unknown>) => {
    try {
      const r = await act.notify({ runbook: name, event: { kind, workflowId, runId, text, details } });
      f.notes.push(`notify ${kind}: ${r.detail}`);
    } catch (err) {
      f.notes.push(`notify ${kind} not delivered after 3 attempts: ${stepError(err).message.split('\n')[0]}`);
    }
  };

  let cancelled: unknown;
  try {
    // 1. pick-target: a random moment of drill.targetWindow the archive reaches (randomness lives in the activity).
    //    From the warm standby, after its last replayed commit: a clone cannot replay backwards.
    const fromStandby = input.source === 'standby' && patched('drill-from-standby');
    if (f.target) run.skip('pick-target', `given in the input: ${describeTarget(f.target)}`);
    else {
      f.target = (
        await run.step(
          'pick-target',
          async () => {
            const after =
              fromStandby && runbook.standby && runbook.standby.host === drill.host
                ? await standbyHostActivities(runbook.standby.host)
                    .standbyStatus({ runbook: name })
                    .then(
                      (st) => st.lastReplayTime,
                      () => undefined,
                    )
                : undefined;
            return host.pickDrillTarget({ runbook: name, ...(after ? { after } : {}) });
          },
          (p) => `${describeTarget(p.target)}: ${p.why}`,
        )
      ).target;
    }
    const target = f.target;
    // 2. preflight: the backup for the target, the WAL chain checked, the archiver read (read-only).
    const plan = await run.step(
      'preflight',
      async () => {
        const p = await act.preflight({
          runbook: name,
          target,
          mode: 'side-by-side',
          dryRun: false,
          instance: 'drill',
          ...(input.repository ? { repository: input.repository } : {}),
        });
        // drill.dataDir and drill.port free or an earlier drill's stopped copy, and room for the backup and its WAL
        // (DISK_FULL names kept copies). Patched: older histories never called it.
        if (patched('preflight-check-restore-site')) {
          await host.checkRestoreSite({
            ...ref,
            backupId: p.backup.backupId,
            backupBytes: p.backup.sizeBytes,
            walSegments: p.walSegmentsAvailable,
            workflowId,
            runId,
          });
        }
        return p;
      },
      summary.plannedForDrill,
    );
    f.backup = plan.backup;
    f.notes.push(...plan.warnings);
    if (plan.archiverProblems?.length) {
      // The drill still runs: a stale archiver is exactly what a drill is for finding.
      await notify(
        'archive-stale',
        `Restore drill ${workflowId} of ${name}: ` +
          `the primary's archiver is unhealthy: ${plan.archiverProblems.join('; ')}`,
        { problems: plan.archiverProblems },
      );
    }
    // The warm standby (DESIGN.md §4.4) is never used by a drill: taken over,
    // it would be gone for the real night, and a drill proves the backups
    // restore. It is read instead: replaying, and how far behind, in the
    // evidence. Patched: older histories never read it.
    // Asked to use the standby (input.source 'standby', patched 'drill-from-standby':
    // older histories never did): it is cloned, never taken, in restore-base-backup below.
    if (runbook.standby && !fromStandby && patched('drill-reads-standby')) {
      const standby = await standbyHostActivities(runbook.standby.host)
        .standbyStatus({ runbook: name })
        .then(
          (s) => s.line,
          (err: unknown) => `not read: ${stepError(err).message.split('\n')[0]}`,
        );
      f.notes.push(`warm standby, not used by drills (they prove the backups restore): ${standby}`);
    }
    // 3. restore-base-backup into drill.dataDir (refused if the port or directory is someone else's).
    //    Or a clone of the running warm standby (src/drill/from-standby.ts), when asked and it can serve.
    f.restored = await run.step(
      'restore-base-backup',
      async () => {
        if (fromStandby) {
          const clone = await cloneStandby(runbook, drill.host, () =>
            host.cloneStandbyForDrill({
              runbook: name,
              target,
              workflowId,
              runId,
              ...(plan.restorePointLsn && 'name' in target
                ? { restorePoint: { lsn: plan.restorePointLsn, searchedFrom: plan.backup.startLsn } }
                : {}),
            }),
          );
          f.restoreSource = clone.used
            ? { kind: 'standby', why: clone.why, standby: clone.result.standby! }
            : { kind: 'backup', why: clone.why };
          if (clone.used) return clone.result;
        }
        return host.restoreBaseBackup({
          ...ref,
          backupId: plan.backup.backupId,
          mode: 'side-by-side',
          workflowId,
          runId,
        });
      },
      summary.restoredForDrill,
    );
    const clone = f.restoreSource?.standby;
    if (clone) {
      f.notes.push(
        `restored from a clone of the warm standby ${clone.from} ` +
          `(built from backup ${clone.backupId}, consistent at LSN ${clone.replayLsn}); ` +
          'the standby kept replaying and was not touched; ' +
          "walSegmentsReplayed counts the WAL replayed from the clone's start",
      );
    } else if (f.restoreSource) {
      const why = f.restoreSource.why;
      f.notes.push(`asked to restore from the warm standby, restored backup ${plan.backup.backupId} instead: ${why}`);
    }
    // 4. replay-wal to the target and pause (archive_mode off in the drill copy).
    f.replay = await run.step(
      'replay-wal',
      () => host.replayWal({ ...ref, target, workflowId, runId }),
      (r) => `${summary.pausedAt(r)}; ${r.walSegmentsReplayed} segments`,
    );
    // 5. run-invariants on the paused copy. A failed invariant fails the drill but the
    //    drill goes on: the RTO of the remaining steps is still worth measuring.
    f.invariants = await run.step('run-invariants', () => host.runInvariants(ref), summary.invariantsPassed);
    // 6. promote, in isolation.
    f.promotedAt = (
      await run.step(
        'promote',
        () => host.promoteRestored({ ...ref, workflowId, runId }),
        (p) => `promoted on timeline ${p.timeline} at ${p.promotedAt}`,
      )
    ).promotedAt;
    // 7. smoke-write: a committed write, read back. Promoted and writable: the end of the RTO.
    f.smoke = await run.step(
      'smoke-write',
      () => host.smokeWrite({ runbook: name, workflowId }),
      (s) => `row ${s.id} written to ${s.table} and read back`,
    );
  } catch (err) {
    if (isCancellation(err)) cancelled = err;
    else if (!(err instanceof DrillStepFailed)) throw err;
  }

  // Everything below runs even when the drill failed or was cancelled.
  return CancellationScope.nonCancellable(async () => {
    if (cancelled) f.notes.push('the drill was cancelled; teardown and evidence ran anyway');
    if (!f.target)
      f.notes.push('no target was picked (pick-target failed): the target in this record is a placeholder');
    // 8. teardown: stop and remove the copy (only ours, by its marker), unless kept.
    if (input.keep) {
      const stop = `pg_ctl stop -D ${drill.dataDir} -m fast as ${runbook.cluster.osUser}`;
      run.skip('teardown', `kept (keep: true): ${where}; stop it with ${stop} and remove the directory when done`);
      f.notes.push(
        `drill copy kept at ${drill.dataDir} on ${drill.host} (127.0.0.1:${drill.port}); ` +
          'the next drill refuses to start while it runs',
      );
    } else {
      await run
        .step('teardown', () => host.teardownDrill({ runbook: name, workflowId }), summary.drillTornDown)
        .catch((err: unknown) => {
          if (!(err instanceof DrillStepFailed)) throw err;
          f.notes.push(
            `teardown failed: the drill copy may still be in ${drill.dataDir}: ${err.error.message.split('\n')[0]}`,
          );
        });
    }
    const m = measure(run, f);
    const v = judge(run, f, m);
    if (cancelled) v.failures.push('cancelled');
    v.passed = v.failures.length === 0;
    // 9. notify, then the evidence (which records what the notifications did).
    if (!v.passed) {
      const failedAt = firstFailure(run);
      await notify(
        'drill-failed',
        `Restore drill ${workflowId} of ${name} FAILED${failedAt ? ` at ${failedAt}` : ''} (${where}): ` +
          `${v.failures.join('; ')}. Evidence: ${evidenceAt}`,
        {
          failures: v.failures,
          evidence: evidenceAt,
          ...(failedAt ? { step: failedAt } : {}),
          ...(run.failedStep()?.error ? { errorType: run.failedStep()!.error!.type } : {}),
        },
      );
    }
    if (v.missed.length > 0) {
      await notify(
        'objective-missed',
        `Restore drill ${workflowId} of ${name}: ${v.missed.join('; ')}. Evidence: ${evidenceAt}`,
        {
          rtoObservedSeconds: m.rtoObservedSeconds,
          rpoObservedSeconds: m.rpoObservedSeconds,
          objectives: m.objectives,
          evidence: evidenceAt,
        },
      );
    }
    const smoke = f.smoke;
    if (smoke)
      f.notes.push(
        `smoke write: row ${smoke.id} of ${smoke.table} committed at ${smoke.lsn} and read back at ${smoke.writableAt}`,
      );
    let evidence: Evidence | undefined;
    await run
      .step(
        'record-evidence',
        () => {
          evidence = buildDrillEvidence(run, f, m, v, new Date().toISOString());
          return act.writeEvidence({ runbook: name, evidence });
        },
        summary.evidenceWritten,
      )
      .catch((err: unknown) => {
        // The evidence store is down after 20 attempts: the failure says so; the figures are in the log.
        log.error('drill evidence not written', { evidence: JSON.stringify(evidence) });
        throw err instanceof DrillStepFailed
          ? ApplicationFailure.create({
              type: 'DRILL_FAILED',
              nonRetryable: true,
              message:
                `restore drill ${workflowId}: the evidence could not be written to ${evidenceAt}: ` +
                `${err.error.message}`,
            })
          : err;
      });
    if (cancelled) throw cancelled;
    if (v.passed) return evidence!;
    throw ApplicationFailure.create({
      type: 'DRILL_FAILED',
      nonRetryable: true,
      message:
        `restore drill of ${name} failed (${where}):\n  ${v.failures.join('\n  ')}\n` +
        `HINT: the evidence record is ${evidenceAt}\n` +
        (input.keep
          ? `HINT: the drill copy was kept in ${drill.dataDir} for inspection`
          : 'HINT: the drill copy was torn down; run the drill with keep: true to inspect it'),
      details: [{ failures: v.failures, evidence: evidenceAt }],
    });
  });
}

/** Why the standby cannot serve before any activity is asked, or the drill host's answer. */
async function cloneStandby(
  runbook: { name: string; standby?: { host: string } },
  drillHost: string,
  ask: () => Promise<UseStandbyResult>,
): Promise<UseStandbyResult> {
  if (!runbook.standby) return { used: false, why: `runbook ${runbook.name} declares no standby` };
  if (runbook.standby.host !== drillHost)
    return {
      used: false,
      why:
        `the standby is on host ${runbook.standby.host} and the drill on host ${drillHost}: ` +
        'the standby is cloned over loopback, on its own host',
    };
  return ask();
}

function firstFailure(run: DrillRun): DrillStepId | undefined {
  return run.failedStep()?.id;
}
