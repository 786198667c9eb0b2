// recoverToPointInTime(RecoveryInput): the disaster-recovery runbook of
// DESIGN.md §4.1, one line per step. The machinery every step goes through
// (state, approvals, retry/skip/abort, the checklist) is in ./recovery/machine.
import { repositorySources } from '../src/recovery/repository-sources';
import { ApplicationFailure, log, patched, workflowInfo } from '@temporalio/workflow';
import {
  RecoveryInput,
  describeTarget,
  type Evidence,
  type RecoveryStatus,
  type ReplayResult,
  type Target,
} from '../src/recovery/contract';
import { clusterName, type Runbook } from '../src/runbook/schema';
import { parseLsn as parseLsnInWorkflow } from '../src/wal/names';
import { hostActivities, sharedActivities } from './recovery/proxies';
import * as summary from './recovery/step-summaries';
import { buildEvidence, observedRpo, type RunFacts } from './recovery/evidence';
import { decisionChannels } from './recovery/channels';
import { RecoveryMachine, Retargeted, RunAborted } from './recovery/machine';
import { parseWorkflowInput } from './input';

/** The patch id around checkNoOtherRecovery: histories recorded before it replay without. */
const ONE_RECOVERY_PATCH = 'one-recovery-per-runbook';
/** What a stopped run left behind, by what it had changed (RecoveryMachine.fenceState). */
const AFTER_STOP = {
  untouched: 'nothing was touched: no gate, no traffic, no data directory',
  unfenced:
    'this run set no gate: writers, background jobs and the outbox are as they were; a restored copy may still run in restore.dataDir',
  fenced: 'writers, background jobs and the outbox were left as they were (fenced): reopen them deliberately',
} as const;
/** The patch around the preflight probes of cache and traffic endpoints. */
const ENDPOINTS_PATCH = 'preflight-check-endpoints';
/** The patch under which a runbook without gates skips approve-fence (runs recorded before it asked anyway). */
const NO_GATES_NO_FENCE_PATCH = 'no-gates-no-approve-fence';
/** The patch under which a runbook's warm standby is taken over instead of restoring a backup (DESIGN.md §4.4). */
const STANDBY_PATCH = 'restore-from-standby';
/** The patch under which promote archives the new timeline's history and writes the primary overlay (runs recorded before it did not). */
const PRIMARY_OVERLAY_PATCH = 'record-primary-overlay';

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

  try {
    // 1. preflight: backup chosen, WAL chain checked, nothing touched.
    const plan = await run.step(
      'preflight',
      async () => {
        // One recovery per runbook unless the operator said otherwise: a later
        // start fails RECOVERY_ALREADY_RUNNING, which ends the run before
        // anything is read or touched. Patched: older histories never called it.
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
        // (DISK_FULL names the kept moved-aside copies). Patched: older histories never called it.
        if (patched('preflight-check-restore-site')) {
          // Also the directory and port: free, or this run's (a stranger's files, a previous copy still running, another server on the port refuse).
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
        // will use it; not in a dry run, which touches neither. Patched: older histories never called them.
        if (!dryRun && patched(ENDPOINTS_PATCH)) {
          const found: string[] = [];
          const note = (c: { answered: string[]; warnings?: string[] }) =>
            found.push(...c.answered, ...(c.warnings ?? []).map((w) => `WARNING: ${w}`));
          if (p.runbook.caches.length > 0) note(await act.checkCacheEndpoints({ runbook: name }));
          if (p.runbook.traffic) note(await hostActivities(p.runbook).checkTrafficEndpoint({ runbook: name }));
          for (const a of found) if (!facts.notes.includes(`preflight: ${a}`)) facts.notes.push(`preflight: ${a}`);
        }
        return p;
      },
      summary.planned,
    );
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
      if (gates)
        await run.step(
          'disable-writers',
          () => act.setGate({ ...ref, gate: 'writers', where: 'primary', enabled: false }),
          summary.writersFenced,
        );
      else run.notApplicable('disable-writers', 'no gates in the runbook');
      if (gates?.backgroundJobs)
        await run.step(
          'disable-background-jobs',
          () => act.setGate({ ...ref, gate: 'backgroundJobs', where: 'primary', enabled: false }),
          () => `${gates.backgroundJobs!.gate} off`,
        );
      else run.notApplicable('disable-background-jobs', 'no gates.backgroundJobs in the runbook');
      if (gates?.outbox)
        await run.step(
          'pause-outbox',
          () => act.setGate({ ...ref, gate: 'outbox', where: 'primary', enabled: false }),
          () => `${gates.outbox!.gate} off`,
        );
      else run.notApplicable('pause-outbox', 'no gates.outbox in the runbook');
    }

    // 7-10. restore, replay to the target and pause, check, approve. A
    // retarget goes round again: later continues the replay, earlier restores again.
    let backupId = plan.backup.backupId;
    /** Whether the standby was asked already: once per run; a retarget to an earlier point restores a backup. */
    let standbyAsked = false;
    let restoreNeeded = true;
    let continueFrom = false;
    let replay: ReplayResult | undefined;
    /** Takes the operator's new target; `canContinue` says whether replay may go on from where it paused. */
    const moveTarget = (canContinue: false | ((next: Target) => boolean)) => {
      const moved = run.takeRetarget()!;
      const later = canContinue !== false && canContinue(moved.target);
      log.info('retarget', { from: describeTarget(run.target), to: describeTarget(moved.target), later });
      facts.notes.push(
        `retargeted by ${moved.by} from ${describeTarget(run.target)} to ${describeTarget(moved.target)}: ${later ? 'replay continued' : 'restored again'}`,
      );
      run.target = moved.target;
      restoreNeeded = !later;
      continueFrom = later;
      if (!later) run.reopen('restore-base-backup');
      run.reopen('replay-wal');
      run.reopen('run-invariants');
    };
    for (;;) {
      if (restoreNeeded) {
        await run.step(
          'restore-base-backup',
          async () => {
            // The warm standby instead of a backup, when it is healthy and has
            // not replayed past the target (src/standby/adopt.ts). Patched: older histories never asked.
            // A dry run never takes it: the standby must stay for the real recovery.
            if (runbook.standby && !standbyAsked && patched(STANDBY_PATCH)) {
              const s = dryRun
                ? { used: false as const, why: 'a dry run never takes the standby over: it stays for a real recovery' }
                : await host.useStandby({
                    ...ref,
                    target: run.target,
                    mode: run.mode,
                    workflowId,
                    runId,
                    ...(plan.restorePointLsn &&
                    'name' in run.target &&
                    'name' in input.target &&
                    run.target.name === input.target.name
                      ? { restorePoint: { lsn: plan.restorePointLsn, searchedFrom: plan.backup.startLsn } }
                      : {}),
                  });
              standbyAsked = true;
              facts.restoreSource = {
                kind: s.used ? 'standby' : 'backup',
                why: s.why,
                ...(s.used && s.result.standby ? { standby: s.result.standby } : {}),
              };
              if (s.used) return s.result;
            } else if (facts.restoreSource?.kind === 'standby') {
              // Still consumed by this run: the evidence says so, and how to rebuild it.
              facts.restoreSource = {
                kind: 'backup',
                why: 'restored again from a backup: a retarget to an earlier point, and the standby was already taken over by this run',
                standby: facts.restoreSource.standby,
              };
            }
            if (run.steps.get('restore-base-backup')!.runs > 1 || backupId !== plan.backup.backupId) {
              const again = await act.preflight({
                runbook: name,
                target: run.target,
                mode: run.mode,
                dryRun,
                ...(input.repository ? { repository: input.repository } : {}),
              });
              backupId = again.backup.backupId;
              run.findings.backup = again.backup;
            }
            const restored = await host.restoreBaseBackup({ ...ref, backupId, mode: run.mode, workflowId, runId });
            // Several repositories: the evidence says which served the backup when it was not the first.
            facts.repositories = repositorySources(restored);
            return restored;
          },
          (copy) => summary.restored(copy, name),
        );
      }
      try {
        replay = await run.step(
          'replay-wal',
          () =>
            host.replayWal({
              ...ref,
              target: run.target,
              workflowId,
              runId,
              ...(continueFrom ? { continueFrom: true } : {}),
            }),
          summary.pausedAt,
        );
      } catch (err) {
        if (!(err instanceof Retargeted)) throw err;
        // Replay failed (a target past the end of the archive, most often) and
        // the operator moved the target: restore again, the copy is not paused.
        moveTarget(false);
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
      const paused = replay;
      moveTarget((next) => isLater(run.target, next, paused));
    }

    if (dryRun) {
      await host.stopRestored({ runbook: name, workflowId });
      for (const id of [
        'approve-promote',
        'promote',
        'reconcile-outbox',
        'invalidate-caches',
        'approve-resume',
        'resume-traffic',
        'enable-background-jobs',
        'resume-outbox',
      ] as const) {
        run.notApplicable(id, 'dry run: nothing promoted, no traffic touched');
      }
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
      if (gates?.backgroundJobs)
        await run.step(
          'enable-background-jobs',
          () => host.setGate({ ...ref, gate: 'backgroundJobs', where: 'restored', enabled: true }),
          () => 'background jobs on',
        );
      else run.notApplicable('enable-background-jobs', 'no gates.backgroundJobs in the runbook');
      if (gates?.outbox)
        await run.step(
          'resume-outbox',
          () => host.setGate({ ...ref, gate: 'outbox', where: 'restored', enabled: true }),
          () => 'outbox publisher on',
        );
      else run.notApplicable('resume-outbox', 'no gates.outbox in the runbook');
      if (run.invariantOverride) facts.validationStatus = 'failed';
    }

    // 17. record-evidence: written to the repository and returned.
    let evidence: Evidence | undefined;
    await run.step(
      'record-evidence',
      () => {
        evidence = buildEvidence(run, facts);
        return act.writeEvidence({ runbook: name, evidence });
      },
      summary.evidenceWritten,
    );
    run.findings.outcome = outcomeOf(evidence!);
    run.end('finished');
    run.closeAudit();
    await auditDone;
    return evidence!;
  } catch (err) {
    if (!(err instanceof RunAborted)) throw err;
    // The safe state is fenced: nothing is reopened. The evidence says why it stopped.
    facts.validationStatus = err.kind;
    facts.notes.push(`${err.kind} at ${err.step} by ${err.by}: ${err.reason}; gates left as they were`);
    const evidence = buildEvidence(run, facts);
    run.findings.outcome = outcomeOf(evidence);
    run.end(err.kind);
    await act
      .writeEvidence({ runbook: name, evidence })
      .catch((e: unknown) => log.error('evidence not written', { error: String(e) }));
    run.closeAudit();
    await auditDone;
    throw ApplicationFailure.create({
      type: err.kind === 'aborted' ? 'RECOVERY_ABORTED' : 'RECOVERY_REJECTED',
      nonRetryable: true,
      message: `recovery ${err.kind} at ${err.step} by ${err.by}: ${err.reason}\nHINT: ${AFTER_STOP[run.fenceState()]}\nHINT: the evidence record is in the repository under evidence/${runId}.json`,
    });
  }
}

/**
 * Whether replay can simply continue to the new target. Only when the new
 * target is provably at or after the current one in the same terms; anything
 * else (an earlier target, a restore point, a different kind) restores again,
 * because PostgreSQL cannot replay backwards.
 */
function isLater(current: Target, next: Target, replay: ReplayResult): boolean {
  if ('latest' in current) return false;
  if ('latest' in next) return true;
  if ('time' in current && 'time' in next) return Date.parse(next.time) >= Date.parse(current.time);
  if ('lsn' in current && 'lsn' in next)
    return (
      parseLsnInWorkflow(next.lsn) >= parseLsnInWorkflow(current.lsn) &&
      parseLsnInWorkflow(next.lsn) >= parseLsnInWorkflow(replay.lsn)
    );
  return false;
}

/** What the checklist's first line says of an ended run. */
function outcomeOf(e: Evidence): NonNullable<RecoveryStatus['outcome']> {
  return {
    verdict: e.validationStatus,
    ...(e.rtoObservedSeconds !== undefined ? { rtoObservedSeconds: e.rtoObservedSeconds } : {}),
    ...(e.rpoObservedSeconds !== undefined ? { rpoObservedSeconds: e.rpoObservedSeconds } : {}),
    ...(e.promotedAt ? { promotedAt: e.promotedAt } : {}),
  };
}
