// The evidence record of a recovery (DESIGN.md §7), built from the run's
// state. Times come from activity results and step timestamps.
import type {
  DecisionRecord,
  Evidence,
  RecoveryInput,
  ReplayResult,
  StepError,
  StepState,
  Target,
} from '../../src/recovery/contract';
import { repositorySourceNotes } from '../../src/recovery/repository-sources';
import type { Runbook } from '../../src/runbook/schema';
import { engineSetting } from '../../src/runbook/engine';
import { formatLsn, parseLsn, segnoOfLsn } from '../../src/wal/names';
import type { RecoveryMachine } from './machine';

/**
 * What the run has found out for its evidence, under the evidence's names
 * (restoreSource: runbooks with a standby; repositories: runbooks with
 * several). walSegmentsReplayed counts from the copy's base backup (walFigures).
 */
export interface RunFacts extends Pick<Evidence, FactName> {
  input: RecoveryInput;
  runbook?: Runbook;
  cluster?: string;
  workflowId: string;
  runId: string;
}

type FactName =
  | 'promotedAt'
  | 'forensics'
  | 'outbox'
  | 'caches'
  | 'traffic'
  | 'primary'
  | 'restoreSource'
  | 'repositories'
  | 'walSegmentsReplayed'
  | 'walBytesReplayed'
  | 'validationStatus'
  | 'notes';

const seconds = (from?: string, to?: string) =>
  from && to ? Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000)) : undefined;

export function buildEvidence(m: RecoveryMachine, f: RunFacts): Evidence {
  const s = m.status();
  const finishedAt = new Date().toISOString();
  const step = (id: string) => s.steps.find((x) => x.id === id);
  const restore = step('restore-base-backup');
  const replay = step('replay-wal');
  const rto = seconds(s.startedAt, f.promotedAt);
  const phases: Record<string, number> = {};
  const add = (name: string, a?: string, b?: string) => {
    const v = seconds(a, b);
    if (v !== undefined) phases[name] = v;
  };
  add('restore', restore?.startedAt, restore?.finishedAt);
  add('replay', replay?.startedAt, replay?.finishedAt);
  if (rto !== undefined) phases.rest = Math.max(0, rto - (phases.restore ?? 0) - (phases.replay ?? 0));
  const objectives = f.runbook?.objectives;
  const wal = walFigures(f, s.replay?.lsn);
  return {
    ...evidenceHead('recovery', m, f),
    dryRun: s.dryRun,
    mode: s.mode,
    // Taken over from the standby: its base backup, none restored (preflight's choice was not used).
    ...(wal.standby
      ? { backupId: wal.standby.backupId }
      : s.backup
        ? { backupId: s.backup.backupId, baseBackupBytes: s.backup.sizeBytes }
        : {}),
    target: s.target,
    startedAt: s.startedAt,
    ...(f.promotedAt ? { promotedAt: f.promotedAt } : {}),
    finishedAt,
    ...(rto !== undefined ? { rtoObservedSeconds: rto, rtoPhases: phases } : {}),
    ...(s.rpoObservedSeconds !== undefined ? { rpoObservedSeconds: s.rpoObservedSeconds } : {}),
    ...(s.replay ? { replayedToLsn: s.replay.lsn, ...(s.replay.time ? { replayedToTime: s.replay.time } : {}) } : {}),
    ...(wal.segments !== undefined ? { walSegmentsReplayed: wal.segments } : {}),
    ...(wal.bytes !== undefined ? { walBytesReplayed: wal.bytes } : {}),
    invariants: s.invariants ?? [],
    ...(m.invariantOverride ? { invariantOverride: m.invariantOverride } : {}),
    approvals: s.decisions.map(evidenceApproval),
    // Built while record-evidence runs: writing this record is that step's end.
    steps: closeRecordStep(s.steps.map(evidenceStep), finishedAt),
    ...(f.forensics ? { forensics: f.forensics } : {}),
    ...(f.outbox ? { outbox: f.outbox } : {}),
    ...(f.caches ? { caches: f.caches } : {}),
    ...(f.traffic ? { traffic: f.traffic } : {}),
    ...(f.primary ? { primary: f.primary } : {}),
    ...(f.restoreSource ? { restoreSource: f.restoreSource } : {}),
    ...(f.repositories ? { repositories: f.repositories } : {}),
    ...(objectives
      ? {
          objectives: {
            ...objectives,
            ...(s.rpoObservedSeconds !== undefined ? { rpoMet: s.rpoObservedSeconds <= objectives.rpoSeconds } : {}),
            ...(rto !== undefined ? { rtoMet: rto <= objectives.rtoSeconds } : {}),
          },
        }
      : {}),
    validationStatus: f.validationStatus,
    notes: [...f.notes, ...(wal.note ? [wal.note] : []), ...consumedNote(f), ...repositorySourceNotes(f.repositories)],
  };
}

/** How the evidence of a runbook workflow (recovery, repair) begins: the run, the runbook, the incident. */
export function evidenceHead(
  kind: 'recovery' | 'repair',
  m: RecoveryMachine,
  f: {
    runId: string;
    workflowId: string;
    cluster?: string;
    input: { runbook: string; incident?: string; reason?: string };
  },
) {
  return {
    runId: f.runId,
    workflowId: f.workflowId,
    kind,
    runbook: f.input.runbook,
    cluster: f.cluster ?? f.input.runbook,
    // Which engine held the backup and the WAL, or restored a repair's copy
    // (absent when preflight never returned a runbook).
    ...(m.runbook ? { engine: engineSetting(m.runbook).kind } : {}),
    ...(f.input.incident ? { incident: f.input.incident } : {}),
    ...(f.input.reason ? { reason: f.input.reason } : {}),
  };
}

/** A decision as the evidence lists it under approvals. */
export function evidenceApproval(d: DecisionRecord): Evidence['approvals'][number] {
  return { step: d.step, by: d.by, at: d.at, decision: d.decision, ...(d.comment ? { comment: d.comment } : {}) };
}

/**
 * A step as the evidence of a drill or a repair records it, its error with
 * the hints: the evidence is read later, without the Temporal UI at hand.
 */
/** Writing the record is record-evidence's end: a record built while that step runs lists it done, finished now. */
export function closeRecordStep(steps: Evidence['steps'], finishedAt: string): Evidence['steps'] {
  return steps.map((s) =>
    s.id === 'record-evidence' && s.state === 'running' ? { ...s, state: 'done' as const, finishedAt } : s,
  );
}

export function evidenceStep(st: {
  id: string;
  state: StepState;
  startedAt?: string;
  finishedAt?: string;
  summary?: string;
  error?: StepError;
}): Evidence['steps'][number] {
  return {
    id: st.id,
    state: st.state,
    ...(st.startedAt ? { startedAt: st.startedAt } : {}),
    ...(st.finishedAt ? { finishedAt: st.finishedAt } : {}),
    ...(st.summary ? { summary: st.summary } : {}),
    ...(st.error
      ? { error: [`${st.error.type}: ${st.error.message}`, ...st.error.hints.map((h) => `HINT: ${h}`)].join('\n') }
      : {}),
  };
}

/** A run that took the standby over used it up: nothing rebuilds it (no automatic rebuild, by design). */
function consumedNote(f: RunFacts): string[] {
  const sb = f.restoreSource?.standby;
  if (!sb) return [];
  const host = f.runbook?.standby?.host;
  return [
    `the warm standby ${sb.from} was consumed by this recovery (taken over at LSN ${sb.replayLsn}); ` +
      'nothing rebuilds it and until it is rebuilt recoveries restore from a backup: ' +
      `lifeboat standby build --runbook ${f.input.runbook}${host ? ` on host ${host}` : ''}`,
  ];
}

/**
 * The WAL this recovery replayed. replay-wal counts from the start of the
 * copy's base backup; a copy taken over from the standby had replayed most
 * of that before this run, so the count starts at the standby's replay
 * position when it was paused (the segment it was in counts as replayed
 * here). PostgreSQL itself re-reads from the standby's last restartpoint on
 * start, a little before that position: re-applying what it had, not new WAL.
 */
function walFigures(
  f: RunFacts,
  replayedTo: string | undefined,
): { segments?: number; bytes?: number; standby?: NonNullable<RunFacts['restoreSource']>['standby']; note?: string } {
  const plain = {
    ...(f.walSegmentsReplayed !== undefined ? { segments: f.walSegmentsReplayed } : {}),
    ...(f.walBytesReplayed !== undefined ? { bytes: f.walBytesReplayed } : {}),
  };
  const sb = f.restoreSource?.kind === 'standby' ? f.restoreSource.standby : undefined;
  if (!sb) return plain;
  if (!replayedTo) return { ...plain, standby: sb };
  const from = parseLsn(sb.replayLsn);
  const at = parseLsn(replayedTo);
  const bytes = Number(at > from ? at - from : 0n);
  const lastCommit = sb.lastReplayTime ? ` (last commit ${sb.lastReplayTime})` : '';
  const what =
    `restored from the warm standby ${sb.from}, ` +
    `built from backup ${sb.backupId} and taken over at LSN ${sb.replayLsn}${lastCommit}`;
  if (!sb.walSegmentSize) {
    return {
      ...plain,
      bytes,
      standby: sb,
      note:
        `${what}: walBytesReplayed counts from that position to ${replayedTo}; ` +
        `walSegmentsReplayed counts from the start of backup ${sb.backupId}, ` +
        'most of it replayed by the standby before this recovery',
    };
  }
  const last = at > from ? at - 1n : from;
  const segments = Number(segnoOfLsn(last, sb.walSegmentSize) - segnoOfLsn(from, sb.walSegmentSize)) + 1;
  return {
    segments,
    bytes,
    standby: sb,
    note:
      `${what}: walSegmentsReplayed and walBytesReplayed count the WAL this recovery replayed, ` +
      `from ${formatLsn(from)} to ${replayedTo}, not the standby's replay since its backup`,
  };
}

/**
 * Target time minus the last replayed commit: the data given up. A replay
 * paused at a time target that replayed no commit at all (PostgreSQL's
 * pg_last_xact_replay_timestamp() is null) means no transaction committed
 * between the backup's start and the target: the copy holds every
 * transaction committed before the target, so nothing before it was lost and
 * the RPO is 0, with a note saying why (the newest commit the copy holds is
 * older than the backup, which is not data lost).
 */
export function observedRpo(
  target: Target,
  replay: ReplayResult,
  backup?: { backupId: string; startTime: string },
): { seconds: number; note?: string } | undefined {
  if (!('time' in target)) return undefined;
  if (replay.time)
    return { seconds: Math.max(0, Math.round((Date.parse(target.time) - Date.parse(replay.time)) / 1000)) };
  const from = backup ? `backup ${backup.backupId} (started ${backup.startTime})` : 'the backup';
  return {
    seconds: 0,
    note:
      `observed RPO 0 s: no transaction committed between ${from} and the target ${target.time}, ` +
      'so the restored copy holds every transaction committed before the target',
  };
}
