// recoverToPointInTime(RecoveryInput): the disaster-recovery runbook of
// DESIGN.md §4.1, one line per step. The machinery every step goes through
// (state, approvals, retry/skip/abort, the checklist) is in ./recovery/machine.
import { ApplicationFailure, patched, workflowInfo } from '@temporalio/workflow';
import { RecoveryInput, STEP_IDS, type Evidence, type ReplayResult } from '../src/recovery/contract';
import { repositorySources } from '../src/recovery/repository-sources';
import { clusterName, type Runbook } from '../src/runbook/schema';
import { hostActivities, sharedActivities } from './recovery/proxies';
import * as summary from './recovery/step-summaries';
import { buildEvidence, observedRpo, type RunFacts } from './recovery/evidence';
import { decisionChannels } from './recovery/channels';
import { RecoveryMachine } from './recovery/machine';
import { preflightChecks } from './recovery/preflight';
import { moveTarget, restoreCopy, type RestoreLoop } from './recovery/restore-loop';
import { endStopped, recordEvidence, type Outcome } from './recovery/run-end';
import { Retargeted, RunAborted } from './recovery/run-errors';
import { parseWorkflowInput } from './input';

type Gate = 'writers' | 'backgroundJobs' | 'outbox';

/** What a stopped run left behind, by what it had changed (RecoveryMachine.fenceState). */
const AFTER_STOP = {
  untouched: 'nothing was touched: no gate, no traffic, no data directory',
  unfenced:
    'this run set no gate: writers, background jobs and the outbox are as they were; ' +
    'a restored copy may still run in restore.dataDir',
  fenced: 'writers, background jobs and the outbox were left as they were (fenced): reopen them deliberately',
} as const;
/** The patch under which a runbook without gates skips approve-fence (runs recorded before it asked anyway). */
const NO_GATES_NO_FENCE_PATCH = 'no-gates-no-approve-fence';
/**
 * The patch under which promote archives the new timeline's history and
 * writes the primary overlay (runs recorded before it did not).
 */
const PRIMARY_OVERLAY_PATCH = 'record-primary-overlay';
/** The steps after the replay that a dry run never takes: nothing promoted, no traffic touched. */
const AFTER_REPLAY = STEP_IDS.slice(STEP_IDS.indexOf('approve-promote'), STEP_IDS.indexOf('record-evidence'));

export async function recoverToPointInTime(rawInput: RecoveryInput): Promise<Evidence> {
  const input = parseWorkflowInput(RecoveryInput, rawInput, 'recoverToPointInTime');
  const { workflowId, runId } = workflowInfo();
  const dryRun = input.dryRun ?? false;
  const run = new RecoveryMachine({
    runbook: input.runbook,
    target: input.target,
    mode: input.mode ?? 'side-by-side',
    dryRun,
    ...(input.incident ? { incident: input.incident } : {}),
    ...(input.reason ? { reason: input.reason } : {}),
  });
  run.installHandlers();
  run.publish();
  const act = sharedActivities();
  const name = input.runbook;
  const facts: RunFacts = { input, workflowId, runId, validationStatus: 'passed', notes: [] };
  const auditDone = run.auditLoop((seq, line) => act.appendAudit({ runbook: name, runId, workflowId, seq, line }));
  const notify = decisionChannels(run, act, { runbook: name, workflowId });
  const writeEvidence = (evidence: Evidence) => act.writeEvidence({ runbook: name, evidence });

  try {
    // 1. preflight: backup chosen, WAL chain checked, nothing touched.
    const plan = await run.step('preflight', () => preflightChecks(run, act, facts), summary.planned);
    if (!plan) throw ApplicationFailure.nonRetryable('preflight cannot be skipped', 'STEP_NOT_SKIPPABLE');
    const runbook: Runbook = plan.runbook;
    run.runbook = runbook;
    // The input's mode wins; without one the runbook's restore.mode decides.
    if (!input.mode) run.mode = runbook.restore.mode;
    facts.runbook = runbook;
    facts.cluster = clusterName(runbook);
    facts.notes.push(...plan.warnings);
    run.findings.cluster = facts.cluster;
    run.findings.backup = plan.backup;
    const host = hostActivities(runbook);
    // --repo-index: every activity of the run reads only that repository.
    const ref = { runbook: name, ...(input.repository ? { repository: input.repository } : {}) };
    const gates = runbook.gates;

    // 2. capture-forensics: what the restore will erase, while the primary answers.
    facts.forensics = await run.step(
      'capture-forensics',
      () => act.captureForensics({ runbook: name, target: run.target }),
      summary.captured,
    );

    if (dryRun) {
      for (const id of ['approve-fence', 'disable-writers', 'disable-background-jobs', 'pause-outbox'] as const)
        run.notApplicable(id, 'dry run: no gate is touched');
    } else {
      // 3. approve-fence: asked when there is something to fence, or when the
      // runbook's approvals name approve-fence (a team that wants the pause).
      if (!gates && !runbook.approvals['approve-fence'] && patched(NO_GATES_NO_FENCE_PATCH)) {
        run.notApplicable(
          'approve-fence',
          'no gates in the runbook: nothing to fence (add approvals.approve-fence to be asked anyway)',
        );
      } else {
        await run.approval('approve-fence', notify);
      }
      // 4-6. fence writers (proven), stop background jobs, pause the outbox.
      const fence = (gate: Gate) => () => act.setGate({ ...ref, gate, where: 'primary', enabled: false });
      if (gates) await run.step('disable-writers', fence('writers'), summary.writersFenced);
      else run.notApplicable('disable-writers', 'no gates in the runbook');
      const jobs = gates?.backgroundJobs;
      if (jobs) await run.step('disable-background-jobs', fence('backgroundJobs'), () => `${jobs.gate} off`);
      else run.notApplicable('disable-background-jobs', 'no gates.backgroundJobs in the runbook');
      const outbox = gates?.outbox;
      if (outbox) await run.step('pause-outbox', fence('outbox'), () => `${outbox.gate} off`);
      else run.notApplicable('pause-outbox', 'no gates.outbox in the runbook');
    }

    // 7-10. restore, replay to the target and pause, check, approve. A
    // retarget goes round again: later continues the replay, earlier restores again.
    const start = { backupId: plan.backup.backupId, standbyAsked: false, restoreNeeded: true, continueFrom: false };
    const loop: RestoreLoop = { run, act, host, facts, plan, ref, ...start };
    let replay: ReplayResult | undefined;
    for (;;) {
      if (loop.restoreNeeded)
        await run.step(
          'restore-base-backup',
          () => restoreCopy(loop),
          (copy) => summary.restored(copy, name),
        );
      try {
        replay = await run.step(
          'replay-wal',
          () =>
            host.replayWal({
              ...ref,
              target: run.target,
              workflowId,
              runId,
              ...(loop.continueFrom ? { continueFrom: true } : {}),
            }),
          summary.pausedAt,
        );
      } catch (err) {
        if (!(err instanceof Retargeted)) throw err;
        // Replay failed (a target past the end of the archive, most often) and
        // the operator moved the target: restore again, the copy is not paused.
        moveTarget(loop);
        continue;
      }
      if (!replay) throw ApplicationFailure.nonRetryable('replay-wal cannot be skipped', 'STEP_NOT_SKIPPABLE');
      run.findings.replay = { lsn: replay.lsn, ...(replay.time ? { time: replay.time } : {}), paused: true };
      facts.walSegmentsReplayed = replay.walSegmentsReplayed;
      facts.repositories = repositorySources({ repository: facts.repositories?.baseBackup }, replay);
      facts.walBytesReplayed = replay.walBytesReplayed;
      const rpo = observedRpo(run.target, replay, run.findings.backup);
      if (rpo !== undefined) run.findings.rpoObservedSeconds = rpo.seconds;
      if (rpo?.note && !facts.notes.includes(rpo.note)) facts.notes.push(rpo.note);
      // 9. run-invariants on the paused, read-only copy.
      const invariants =
        (await run.step('run-invariants', () => host.runInvariants(ref), summary.invariantsPassed)) ?? [];
      run.findings.invariants = invariants;
      run.failedInvariants = invariants.filter((i) => !i.passed).map((i) => i.name);
      if (dryRun) break;
      // 10. approve-promote (or retarget).
      if ((await run.approval('approve-promote', notify)) === 'approved') break;
      moveTarget(loop, replay);
    }

    if (dryRun) {
      await host.stopRestored({ runbook: name, workflowId });
      for (const id of AFTER_REPLAY) run.notApplicable(id, 'dry run: nothing promoted, no traffic touched');
      facts.notes.push('dry run: the restored copy was stopped and its data directory kept');
      if (run.failedInvariants.length > 0) facts.validationStatus = 'failed';
    } else {
      // 11. promote, then re-assert the gates inside the promoted copy before anything connects.
      const promoted = await run.step(
        'promote',
        async () => {
          const p = await host.promoteRestored({ ...ref, workflowId, runId });
          if (gates) await host.setGate({ ...ref, gate: 'writers', where: 'restored', enabled: false });
          if (gates?.backgroundJobs)
            await host.setGate({ ...ref, gate: 'backgroundJobs', where: 'restored', enabled: false });
          if (gates?.outbox) await host.setGate({ ...ref, gate: 'outbox', where: 'restored', enabled: false });
          // One primary per cluster from here: the new timeline's history in the
          // archive (the old primary's next segment is refused) and the overlay
          // that backup, check, drill, checkpoint and the next recovery read.
          // Nothing later in this run reads the overlay.
          if (patched(PRIMARY_OVERLAY_PATCH))
            facts.primary = await host.recordPrimary({
              ...ref,
              workflowId,
              runId,
              timeline: p.timeline,
              promotedAt: p.promotedAt,
            });
          return p;
        },
        (copy) => summary.promoted(copy, Boolean(gates), facts.primary),
      );
      facts.promotedAt = promoted?.promotedAt;
      // 12. reconcile-outbox: rows published before the incident are not sent again.
      if (gates?.outbox)
        facts.outbox = await run.step(
          'reconcile-outbox',
          () =>
            host.reconcileOutbox({
              ...ref,
              ...(facts.forensics?.outboxHighWater ? { highWater: facts.forensics.outboxHighWater } : {}),
            }),
          summary.outboxReconciled,
        );
      else run.notApplicable('reconcile-outbox', 'no gates.outbox in the runbook');
      // 13. invalidate-caches.
      if (runbook.caches.length > 0)
        facts.caches = await run.step('invalidate-caches', () => act.invalidateCaches(ref), summary.cachesInvalidated);
      else run.notApplicable('invalidate-caches', 'no caches in the runbook');
      // 14. approve-resume (on unless the runbook turns it off).
      if (runbook.approvals['approve-resume'] === false)
        run.notApplicable('approve-resume', 'turned off in the runbook (approvals.approve-resume: false)');
      else await run.approval('approve-resume', notify);
      // 15. resume-traffic, then writers on.
      facts.traffic = await run.step(
        'resume-traffic',
        async () => {
          const t = await host.resumeTraffic(ref);
          if (gates) await host.setGate({ ...ref, gate: 'writers', where: 'restored', enabled: true });
          return t;
        },
        (traffic) => summary.trafficResumed(traffic, Boolean(gates)),
      );
      // 16. background jobs, then the outbox publisher.
      const reopen = (gate: Gate) => () => host.setGate({ ...ref, gate, where: 'restored', enabled: true });
      if (gates?.backgroundJobs)
        await run.step('enable-background-jobs', reopen('backgroundJobs'), () => 'background jobs on');
      else run.notApplicable('enable-background-jobs', 'no gates.backgroundJobs in the runbook');
      if (gates?.outbox) await run.step('resume-outbox', reopen('outbox'), () => 'outbox publisher on');
      else run.notApplicable('resume-outbox', 'no gates.outbox in the runbook');
      if (run.invariantOverride) facts.validationStatus = 'failed';
    }

    // 17. record-evidence: written to the repository and returned.
    return await recordEvidence(run, () => buildEvidence(run, facts), outcomeOf, writeEvidence, auditDone);
  } catch (err) {
    if (!(err instanceof RunAborted)) throw err;
    // The safe state is fenced: nothing is reopened. The evidence says why it stopped.
    facts.validationStatus = err.kind;
    facts.notes.push(`${err.kind} at ${err.step} by ${err.by}: ${err.reason}; gates left as they were`);
    const evidence = buildEvidence(run, facts);
    const leftBehind = () => AFTER_STOP[run.fenceState()];
    const stop = { what: 'recovery', evidence, outcome: outcomeOf(evidence), leftBehind } as const;
    return endStopped(run, err, stop, writeEvidence, auditDone);
  }
}

/** What the checklist's first line says of an ended run. */
function outcomeOf(e: Evidence): Outcome {
  return {
    verdict: e.validationStatus,
    ...(e.rtoObservedSeconds !== undefined ? { rtoObservedSeconds: e.rtoObservedSeconds } : {}),
    ...(e.rpoObservedSeconds !== undefined ? { rpoObservedSeconds: e.rpoObservedSeconds } : {}),
    ...(e.promotedAt ? { promotedAt: e.promotedAt } : {}),
  };
}
