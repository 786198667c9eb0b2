// The evidence record of a repair (DESIGN.md §7, kind "repair"): the
// recovery's fields that apply (engine, backup, target, replay position, approvals,
// steps), and `repair` with the counts per class, the classes applied, what
// the one transaction restored and skipped per table (with keys), who approved,
// and the lock time on the live table.
import type { CacheResult, Evidence } from '../../src/recovery/contract';
import type { RepairInput } from '../../src/repair/contract';
import { engineSetting } from '../../src/runbook/engine';
import type { RecoveryMachine } from '../recovery/machine';

export interface RepairFacts {
  input: RepairInput;
  workflowId: string;
  runId: string;
  cluster?: string;
  caches?: CacheResult[];
  validationStatus: Evidence['validationStatus'];
  notes: string[];
}

export function buildRepairEvidence(m: RecoveryMachine, f: RepairFacts): Evidence {
  const s = m.status();
  return {
    runId: f.runId,
    workflowId: f.workflowId,
    kind: 'repair',
    runbook: f.input.runbook,
    cluster: f.cluster ?? f.input.runbook,
    // Which engine restored the copy (absent when preflight never returned a runbook).
    ...(m.runbook ? { engine: engineSetting(m.runbook).kind } : {}),
    ...(f.input.incident ? { incident: f.input.incident } : {}),
    ...(f.input.reason ? { reason: f.input.reason } : {}),
    dryRun: s.dryRun,
    ...(s.backup ? { backupId: s.backup.backupId, baseBackupBytes: s.backup.sizeBytes } : {}),
    target: s.target,
    startedAt: s.startedAt,
    finishedAt: new Date().toISOString(),
    ...(s.replay ? { replayedToLsn: s.replay.lsn, ...(s.replay.time ? { replayedToTime: s.replay.time } : {}) } : {}),
    invariants: [],
    approvals: s.decisions.map((d) => ({
      step: d.step,
      by: d.by,
      at: d.at,
      decision: d.decision,
      ...(d.comment ? { comment: d.comment } : {}),
      ...(d.include ? { include: d.include } : {}),
    })),
    steps: s.steps.map((st) => ({
      id: st.id,
      state: st.state,
      ...(st.startedAt ? { startedAt: st.startedAt } : {}),
      ...(st.finishedAt ? { finishedAt: st.finishedAt } : {}),
      ...(st.summary ? { summary: st.summary } : {}),
      ...(st.error
        ? { error: [`${st.error.type}: ${st.error.message}`, ...st.error.hints.map((h) => `HINT: ${h}`)].join('\n') }
        : {}),
    })),
    ...(f.caches ? { caches: f.caches } : {}),
    ...(s.repair ? { repair: s.repair } : {}),
    validationStatus: f.validationStatus,
    notes: f.notes,
  };
}
