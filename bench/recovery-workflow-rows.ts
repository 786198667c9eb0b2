// The recovery bench's rows run by recoverToPointInTime on the bench's own
// worker: Lifeboat from each repository, the warm standby, the pgBackRest
// engine, and the engine's delta restore after a retarget (engine-delta).
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import type { Evidence, RecoveryStatus, StepId, Target } from '../src/recovery/contract';
import { decideUpdate, retargetSignal, statusQuery } from '../src/recovery/messages';
import { parseLsn } from '../src/wal/names';
import { MiB, span, stopPostgres } from './common';
import { startupProcessTimes } from './cpu';
import { lastRestoreCommand } from './pgbackrest';
import { targetOf, type Bench, type LifeboatKind, type Run } from './recovery-config';
import { checkCopy, clearRestoreSite } from './recovery-rows';
import { restoreCalls } from './restore-log';

/** What restore-base-backup leaves beside the copy: its log file, and whether a standby was taken over. */
interface Marker {
  logFile: string;
  result?: { standby?: unknown };
}

const readMarker = (dataDir: string) =>
  JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8')) as Marker;

/** Starts recoverToPointInTime on the row's runbook. */
async function startRecovery(b: Bench, kind: LifeboatKind, target: Target): Promise<WorkflowHandle> {
  const k = b.kinds[kind];
  return b.client.workflow.start('recoverToPointInTime', {
    taskQueue: b.taskQueue,
    workflowId: `bench-${k.runbook}-${Date.now().toString(36)}`,
    args: [{ runbook: k.runbook, target, incident: 'BENCH', reason: 'recovery benchmark' }],
  });
}

/** How many times replay-wal ran so far (a retarget runs it again). */
const replayRuns = (st: RecoveryStatus) => st.steps.find((s) => s.id === 'replay-wal')?.runs ?? 0;

/**
 * Gives each approval as soon as it is asked for, until approve-promote is
 * asked after replay-wal ran more than `replaysBefore` times (after a
 * retarget: the pause it reached again, not the one before); throws when a
 * step fails (the run terminated).
 */
async function untilPromoteAsked(
  wf: WorkflowHandle,
  runbook: string,
  approved: Set<StepId>,
  replaysBefore = 0,
): Promise<RecoveryStatus> {
  for (;;) {
    const st = await wf.query(statusQuery).catch(() => undefined);
    const failed = st?.steps.find((s) => s.state === 'failed');
    if (failed) {
      await wf.terminate('recovery bench: a step failed').catch(() => undefined);
      throw new Error(
        `${runbook}: ${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`,
      );
    }
    const p = st?.pending;
    const replayDone = st?.steps.find((s) => s.id === 'replay-wal')?.state === 'done';
    if (st && p?.kind === 'approval' && p.step === 'approve-promote' && replayDone && replayRuns(st) > replaysBefore)
      return st;
    if (p?.kind === 'approval' && p.step !== 'approve-promote' && !approved.has(p.step)) {
      approved.add(p.step);
      await wf.executeUpdate(decideUpdate, { args: [{ step: p.step, decision: 'approve', by: 'bench' }] });
    }
    await sleep(50);
  }
}

/** The paused run's step times: restore-base-backup (files), replay-wal, and the total from the run's start. */
function stepTimes(st: RecoveryStatus): Pick<Run, 'files' | 'replay' | 'total'> {
  const step = (id: string) => st.steps.find((s) => s.id === id);
  return {
    files: span(step('restore-base-backup')?.startedAt, step('restore-base-backup')?.finishedAt) ?? NaN,
    replay: span(step('replay-wal')?.startedAt, step('replay-wal')?.finishedAt) ?? NaN,
    total: span(st.startedAt, step('replay-wal')?.finishedAt) ?? NaN,
  };
}

/**
 * recoverToPointInTime to the restore point, each approval given as soon as
 * it is asked for, up to the paused copy (approve-promote asked). Then it
 * promotes (`promote`: the evidence is returned) or is terminated and its
 * copy stopped and removed, so that the next round restores afresh.
 */
export async function lifeboatRun(
  b: Bench,
  id: Exclude<LifeboatKind, 'engine-delta'> | 'near',
  promote: boolean,
): Promise<Run & { evidence?: Evidence }> {
  // The near row is the warm runbook with a standby built closer to the target.
  const kind: LifeboatKind = id === 'near' ? 'warm' : id;
  const k = b.kinds[kind];
  const meter = b.meter();
  meter.start();
  const wf = await startRecovery(b, kind, targetOf(b.ds));
  const approved = new Set<StepId>();
  const st = await untilPromoteAsked(wf, k.runbook, approved).catch((err: unknown) => {
    meter.stop();
    throw err;
  });
  const cpu = meter.stop();
  const startup = startupProcessTimes(k.restoreDir);
  const cpuBy = meter.breakdown();
  await checkCopy(`Lifeboat ${kind}`, k.restorePort, b.ds);
  const marker = readMarker(k.restoreDir);
  const source = st.steps.find((s) => s.id === 'restore-base-backup')?.summary ?? '';
  if (kind === 'warm' && (!source.startsWith('standby: ') || !marker.result?.standby)) {
    await wf.terminate('recovery bench: the standby was not used').catch(() => undefined);
    throw new Error(
      `${k.runbook}: restore-base-backup restored a backup instead of taking the standby over (${source}); the warm row measures nothing`,
    );
  }
  const calls = restoreCalls(marker.logFile);
  const run: Run = { ...stepTimes(st), cpu, ...calls, ...(startup ? { startup } : {}), cpuBy };
  // What the take-over copy really replayed: from where its start began redo
  // (the standby's last restartpoint, at a checkpoint of the primary, which
  // may be well before the standby's position) to the pause.
  const redo = [...readFileSync(marker.logFile, 'utf8').matchAll(/redo starts at ([0-9A-F]+\/[0-9A-F]+)/g)].at(-1)?.[1];
  const from = (marker.result?.standby as { replayLsn?: string } | undefined)?.replayLsn;
  if (id === 'near' && redo && from && st.replay?.lsn) {
    run.replayedMiB = Number(parseLsn(st.replay.lsn) - parseLsn(redo)) / MiB;
    run.behindMiB = Number(parseLsn(st.replay.lsn) - parseLsn(from)) / MiB;
  }
  if (promote) {
    const evidence = await promoteRun(wf, k.runbook, approved);
    await stopPostgres(k.restoreDir);
    if (kind === 'warm' && evidence.restoreSource?.kind !== 'standby')
      throw new Error(
        `${k.runbook}: the evidence says the copy came from ${JSON.stringify(evidence.restoreSource)}, not the standby`,
      );
    return { ...run, evidence };
  }
  await wf.terminate('recovery bench: measured up to the paused copy');
  await clearRestoreSite(k.restoreDir);
  return run;
}

/** Approves the promotion and every approval after it; returns the evidence. */
async function promoteRun(wf: WorkflowHandle, runbook: string, approved: Set<StepId>): Promise<Evidence> {
  let settled = false;
  const result = wf.result().finally(() => (settled = true));
  result.catch(() => undefined); // awaited below
  await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'bench' }] });
  approved.add('approve-promote');
  while (!settled) {
    const s = await wf.query(statusQuery).catch(() => undefined);
    const failed = s?.steps.find((x) => x.state === 'failed');
    if (failed)
      throw new Error(
        `${runbook}: ${failed.id} failed after the pause: ${failed.error?.type} ${failed.error?.message}`,
      );
    if (s?.pending?.kind === 'approval' && !approved.has(s.pending.step)) {
      approved.add(s.pending.step);
      await wf.executeUpdate(decideUpdate, { args: [{ step: s.pending.step, decision: 'approve', by: 'bench' }] });
    }
    await sleep(100);
  }
  return (await result) as Evidence;
}

/**
 * The engine-delta row: recoverToPointInTime on the pgBackRest engine with
 * engine.delta: true, first to the later restore point (untimed), then
 * retargeted to the target, an earlier point that replay cannot reach going
 * forward: restore-base-backup runs again, and pgBackRest restores with
 * --delta over the run's own paused copy (its postmaster stopped with
 * pg_ctl stop -m fast first: src/restore/delta.ts), then replay-wal replays
 * to the target. Timed from the retarget signal to the copy paused again
 * (approve-promote asked anew); never promoted. pgBackRest's own log must
 * show that the second restore ran with --delta into the run's directory.
 */
export async function engineDeltaRun(b: Bench): Promise<Run> {
  const k = b.kinds['engine-delta'];
  const wf = await startRecovery(b, 'engine-delta', { name: b.ds.laterName });
  const approved = new Set<StepId>();
  try {
    const first = await untilPromoteAsked(wf, k.runbook, approved);
    // The copy's server log so far: the first replay's calls are not this row's.
    const before = readMarker(k.restoreDir).logFile;
    const logFrom = { file: before, size: statSync(before).size };
    const meter = b.meter();
    meter.start();
    const retargetedAt = new Date().toISOString();
    const st = await (async () => {
      await wf.signal(retargetSignal, { by: 'bench', target: targetOf(b.ds), comment: 'recovery benchmark: delta' });
      return untilPromoteAsked(wf, k.runbook, approved, replayRuns(first));
    })().catch((err: unknown) => {
      meter.stop();
      throw err;
    });
    const cpu = meter.stop();
    const startup = startupProcessTimes(k.restoreDir);
    const cpuBy = meter.breakdown();
    await checkCopy('Lifeboat engine-delta', k.restorePort, b.ds);
    const restore = lastRestoreCommand(b.pgbr);
    if (!restore.includes(' --delta ') || !restore.includes(`--pg1-path=${k.restoreDir} `))
      throw new Error(
        `${k.runbook}: after the retarget pgBackRest's last restore was not --delta into ${k.restoreDir}: ${restore}`,
      );
    const { logFile } = readMarker(k.restoreDir);
    const calls = restoreCalls(logFile, logFile === logFrom.file ? logFrom.size : 0);
    // A step keeps the start of its first run across a retarget: the second
    // restore-base-backup starts when the workflow takes the signal, and
    // replay-wal right after it ends.
    const restored = st.steps.find((s) => s.id === 'restore-base-backup')?.finishedAt;
    const replayed = st.steps.find((s) => s.id === 'replay-wal')?.finishedAt;
    const times = {
      files: span(retargetedAt, restored) ?? NaN,
      replay: span(restored, replayed) ?? NaN,
      total: span(retargetedAt, replayed) ?? NaN,
    };
    return { ...times, cpu, ...calls, ...(startup ? { startup } : {}), cpuBy };
  } finally {
    await wf.terminate('recovery bench: measured up to the paused copy').catch(() => undefined);
    await clearRestoreSite(k.restoreDir);
  }
}
