// The drill's evidence record (DESIGN.md §7, kind 'drill') and its verdict:
// measured RTO with a phase breakdown, observed RPO, WAL replayed, backup
// size, invariants, steps; compared with the runbook's objectives. A failed
// step, a failed invariant or a missed objective fails the drill, and each
// is named in the notes.
import { repositorySources, repositorySourceNotes } from '../../src/recovery/repository-sources';
import { RTO_PHASES, type SmokeWriteResult } from '../../src/drill/contract';
import type {
  BackupChoice,
  Evidence,
  InvariantResult,
  ReplayResult,
  RestoreResult,
  RestoreSource,
  Target,
} from '../../src/recovery/contract';
import type { Runbook } from '../../src/runbook/schema';
import { engineSetting } from '../../src/runbook/engine';
import { closeRecordStep, observedRpo } from '../recovery/evidence';
import { DrillRun } from './run';

export interface DrillFacts {
  runbook: Runbook;
  cluster: string;
  workflowId: string;
  runId: string;
  startedAt: string;
  target?: Target;
  backup?: BackupChoice;
  restored?: RestoreResult;
  replay?: ReplayResult;
  invariants?: InvariantResult[];
  promotedAt?: string;
  smoke?: SmokeWriteResult;
  /** Set when the drill was asked to use the warm standby: which source restore-base-backup used, and why. */
  restoreSource?: RestoreSource;
  notes: string[];
}

export interface Measured {
  rtoObservedSeconds?: number;
  rtoPhases?: Record<string, number>;
  rpoObservedSeconds?: number;
  objectives: NonNullable<Evidence['objectives']>;
}

export interface Verdict {
  passed: boolean;
  /** One line per reason the drill failed: the step, invariant or objective, with the figures. */
  failures: string[];
  /** Objectives missed, one line each (also in failures). */
  missed: string[];
}

const tenths = (s: number) => Math.round(s * 10) / 10;

/**
 * RTO from the drill's start to the smoke write read back (promoted and
 * writable); RPO from the target and the last replayed commit.
 */
export function measure(run: DrillRun, f: DrillFacts): Measured {
  const smoke = run.steps.get('smoke-write')!;
  const rto = smoke.state === 'done' ? DrillRun.seconds(f.startedAt, smoke.finishedAt) : undefined;
  const phases: Record<string, number> = {};
  for (const [phase, ids] of RTO_PHASES) {
    let sum: number | undefined;
    for (const id of ids) {
      const st = run.steps.get(id)!;
      const s = DrillRun.seconds(st.startedAt, st.finishedAt);
      if (s !== undefined) sum = (sum ?? 0) + s;
    }
    if (sum !== undefined) phases[phase] = tenths(sum);
  }
  const target = f.target;
  // No commit replayed at all: nothing committed between the backup and the
  // target, so nothing before the target was lost (observedRpo notes why).
  const quiet = target && f.replay && !f.replay.time ? observedRpo(target, f.replay, f.backup) : undefined;
  if (quiet?.note && !f.notes.includes(quiet.note)) f.notes.push(quiet.note);
  const rpo = quiet
    ? quiet.seconds
    : target && 'time' in target && f.replay?.time
      ? tenths(Math.max(0, (Date.parse(target.time) - Date.parse(f.replay.time)) / 1000))
      : undefined;
  const o = f.runbook.objectives;
  return {
    ...(rto !== undefined ? { rtoObservedSeconds: tenths(rto) } : {}),
    ...(Object.keys(phases).length > 0 ? { rtoPhases: phases } : {}),
    ...(rpo !== undefined ? { rpoObservedSeconds: rpo } : {}),
    objectives: {
      rpoSeconds: o.rpoSeconds,
      rtoSeconds: o.rtoSeconds,
      ...(rpo !== undefined ? { rpoMet: rpo <= o.rpoSeconds } : {}),
      ...(rto !== undefined ? { rtoMet: tenths(rto) <= o.rtoSeconds } : {}),
    },
  };
}

export function judge(run: DrillRun, f: DrillFacts, m: Measured): Verdict {
  const failures: string[] = [];
  const missed: string[] = [];
  const failed = run.failedStep();
  if (failed?.error)
    failures.push(`step ${failed.id} failed: ${failed.error.type}: ${failed.error.message.split('\n')[0]}`);
  for (const i of f.invariants ?? []) {
    if (i.passed) continue;
    const expected = i.expected !== undefined ? `, expected ${i.expected}` : '';
    const error = i.error ? ` (${i.error})` : '';
    failures.push(`invariant "${i.name}" failed: got ${i.value || '(nothing)'}${expected}${error}`);
  }
  if (m.objectives.rtoMet === false)
    missed.push(objectiveMissed('RTO', m.rtoObservedSeconds, m.objectives.rtoSeconds, 'rtoSeconds'));
  if (m.objectives.rpoMet === false)
    missed.push(objectiveMissed('RPO', m.rpoObservedSeconds, m.objectives.rpoSeconds, 'rpoSeconds'));
  failures.push(...missed);
  return { passed: failures.length === 0, failures, missed };
}

/** "RTO objective missed: observed 310 s, objective 300 s (objectives.rtoSeconds)". */
function objectiveMissed(what: string, observed: number | undefined, objective: number, field: string): string {
  return `${what} objective missed: observed ${observed} s, objective ${objective} s (objectives.${field})`;
}

export function buildDrillEvidence(
  run: DrillRun,
  f: DrillFacts,
  m: Measured,
  v: Verdict,
  finishedAt: string,
): Evidence {
  // Runbooks with several repositories: what another than the first served.
  const sources = repositorySources(f.restored, f.replay);
  return {
    runId: f.runId,
    workflowId: f.workflowId,
    kind: 'drill',
    runbook: f.runbook.name,
    cluster: f.cluster,
    engine: engineSetting(f.runbook).kind,
    mode: 'side-by-side',
    // A clone of the standby restored the standby's base backup, not preflight's choice.
    ...(f.restoreSource?.standby
      ? { backupId: f.restoreSource.standby.backupId }
      : f.backup
        ? { backupId: f.backup.backupId }
        : {}),
    // Only when pick-target itself failed is there no target; the notes say so.
    target: f.target ?? { latest: true },
    startedAt: f.startedAt,
    ...(f.promotedAt ? { promotedAt: f.promotedAt } : {}),
    finishedAt,
    ...(m.rtoObservedSeconds !== undefined ? { rtoObservedSeconds: m.rtoObservedSeconds } : {}),
    ...(m.rtoPhases ? { rtoPhases: m.rtoPhases } : {}),
    ...(m.rpoObservedSeconds !== undefined ? { rpoObservedSeconds: m.rpoObservedSeconds } : {}),
    ...(f.replay ? { replayedToLsn: f.replay.lsn, ...(f.replay.time ? { replayedToTime: f.replay.time } : {}) } : {}),
    ...(f.replay
      ? { walSegmentsReplayed: f.replay.walSegmentsReplayed, walBytesReplayed: f.replay.walBytesReplayed }
      : {}),
    // Bytes of the data directory as extracted; the backup's own figure when the restore did not finish.
    ...(f.restored ? { baseBackupBytes: f.restored.bytes } : f.backup ? { baseBackupBytes: f.backup.sizeBytes } : {}),
    ...(f.restoreSource ? { restoreSource: f.restoreSource } : {}),
    ...(sources ? { repositories: sources } : {}),
    invariants: f.invariants ?? [],
    approvals: [],
    steps: closeRecordStep(run.evidenceSteps(), finishedAt),
    objectives: m.objectives,
    validationStatus: v.passed ? 'passed' : 'failed',
    notes: [...v.failures.map((x) => `FAILED: ${x}`), ...f.notes, ...repositorySourceNotes(sources)],
  };
}
