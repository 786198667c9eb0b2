// The evidence record of a repair (DESIGN.md §7, kind "repair"): the
// recovery's fields that apply (engine, backup, target, replay position, approvals,
// steps), and `repair` with the counts per class, the classes applied, what
// the one transaction restored and skipped per table (with keys), who approved,
// and the lock time on the live table.
import type { CacheResult, Evidence } from '../../src/recovery/contract';
import type { RepairInput } from '../../src/repair/contract';
import { closeRecordStep, evidenceApproval, evidenceHead, evidenceStep } from '../recovery/evidence';
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
  const finishedAt = new Date().toISOString();
  return {
    ...evidenceHead('repair', m, f),
    dryRun: s.dryRun,
    ...(s.backup ? { backupId: s.backup.backupId, baseBackupBytes: s.backup.sizeBytes } : {}),
    target: s.target,
    startedAt: s.startedAt,
    finishedAt,
    ...(s.replay ? { replayedToLsn: s.replay.lsn, ...(s.replay.time ? { replayedToTime: s.replay.time } : {}) } : {}),
    invariants: [],
    // With the classes an approver included (approve-repair).
    approvals: s.decisions.map((d) => ({ ...evidenceApproval(d), ...(d.include ? { include: d.include } : {}) })),
    // Built while record-evidence runs: writing this record is that step's end.
    steps: closeRecordStep(s.steps.map(evidenceStep), finishedAt),
    ...(f.caches ? { caches: f.caches } : {}),
    ...(s.repair ? { repair: s.repair } : {}),
    validationStatus: f.validationStatus,
    notes: f.notes,
  };
}
