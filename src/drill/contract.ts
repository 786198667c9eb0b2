// restoreDrill's public contract (shared/DESIGN.md §4, §7): its input, its
// step ids, and what its own activities take and return. The evidence it
// writes is the recovery's Evidence record with kind 'drill'.
//
// Imported by workflow code (zod works in the sandbox) and by activities and
// the CLI: keep it free of Node builtins.
import { z } from 'zod';
import {
  RepositoryChoice,
  RunbookName,
  Target,
  type UseStandbyInput,
  type UseStandbyResult,
} from '../recovery/contract';

export const DrillInput = z.strictObject({
  runbook: RunbookName,
  /** Without one, a random moment of the runbook's drill.targetWindow that the archive covers. */
  target: Target.optional(),
  /** Leave the promoted drill copy running for inspection instead of removing it. */
  keep: z.boolean({ error: 'expected true or false' }).optional(),
  /**
   * Where the drill's copy comes from: 'backup' (the default: the drill
   * proves the backups restore) or 'standby': a clone of the runbook's warm
   * standby taken with pg_basebackup while it keeps replaying (never the
   * standby itself); a standby that cannot serve falls back to the backup,
   * with the reason in the evidence.
   */
  source: z.enum(['backup', 'standby'], { error: 'expected "backup" or "standby"' }).optional(),
  /** Extension (runbook repositories:): restore from this repository only, by name or position from 1 (--repo-index). */
  repository: RepositoryChoice,
});
export type DrillInput = z.input<typeof DrillInput>;

/** The drill's steps, in order, as they appear in the evidence's steps[]. */
export const DRILL_STEP_IDS = [
  'pick-target',
  'preflight',
  'restore-base-backup',
  'replay-wal',
  'run-invariants',
  'promote',
  'smoke-write',
  'teardown',
  'record-evidence',
] as const;
export type DrillStepId = (typeof DRILL_STEP_IDS)[number];

/** Which steps make up the observed RTO, by the name of their phase in rtoPhases. */
export const RTO_PHASES: ReadonlyArray<[phase: string, steps: readonly DrillStepId[]]> = [
  ['preflight', ['pick-target', 'preflight']],
  ['restore', ['restore-base-backup']],
  ['replay', ['replay-wal']],
  ['invariants', ['run-invariants']],
  ['promote', ['promote']],
  ['smoke', ['smoke-write']],
];

export interface DrillTarget {
  target: Target;
  /** Why this target, in words (the window it was drawn from). */
  why: string;
  /** The window a random target was drawn from (ISO times); absent for a given target. */
  window?: { from: string; to: string };
}

export interface SmokeWriteResult {
  /** The worker's clock when the write was read back: the end of the observed RTO. */
  writableAt: string;
  table: string;
  id: string;
  /** pg_current_wal_lsn() after the write. */
  lsn: string;
}

export interface TeardownResult {
  stopped: boolean;
  /** The directory removed (ours by its marker); absent when nothing of ours was there. */
  removed?: string;
  /** Why something was left in place (not ours, kept). */
  left?: string;
}

/** cloneStandbyForDrill: a copy of the running warm standby into drill.dataDir (src/drill/from-standby.ts). */
export type CloneStandbyInput = Pick<UseStandbyInput, 'runbook' | 'target' | 'restorePoint' | 'workflowId' | 'runId'>;

/** The activities only restoreDrill calls (activities/drill.ts); it reuses the recovery's for the rest. */
export interface DrillActivities {
  /** after: a drill from the warm standby draws its target after the standby's last replayed commit. */
  pickDrillTarget(input: { runbook: string; after?: string }): Promise<DrillTarget>;
  smokeWrite(input: { runbook: string; workflowId: string }): Promise<SmokeWriteResult>;
  teardownDrill(input: { runbook: string; workflowId: string }): Promise<TeardownResult>;
  cloneStandbyForDrill(input: CloneStandbyInput): Promise<UseStandbyResult>;
}
