// What an approval of a repair restores, in one place: the safe classes
// (damaged, deleted by the incident) when an after target classified them,
// plus what an approver explicitly included (changedSince: conflicts, rows
// legitimately written since; candidate: rows that differ when there was no
// after target). A conflict is never restored because nobody objected.
import type { DecisionRecord } from '../../src/recovery/contract';
import type { RepairClass } from '../../src/repair/classify';
import type { RepairDiff } from '../../src/repair/contract';

export const SAFE: readonly RepairClass[] = ['damaged', 'deletedByIncident'];

/** The classes the counted approvals of approve-repair restore. */
export function classesApproved(
  decisions: readonly DecisionRecord[],
  approvedBy: ReadonlySet<string>,
  withAfter: boolean,
): RepairClass[] {
  const classes = new Set<RepairClass>(withAfter ? SAFE : []);
  for (const d of decisions) {
    if (d.step !== 'approve-repair' || d.decision !== 'approve' || !approvedBy.has(d.by)) continue;
    for (const c of d.include ?? []) if (c === 'changedSince' ? withAfter : !withAfter) classes.add(c);
  }
  return [...classes];
}

/** Rows the plans hold in these classes (what the apply would load). */
export function plannedRows(diff: RepairDiff, classes: readonly RepairClass[]): number {
  return diff.tables.reduce((n, t) => n + classes.reduce((m, c) => m + (t.planned[c] ?? 0), 0), 0);
}

/** The diff step's one line: counts per class that matter, per table. */
export function diffSummary(diff: RepairDiff): string {
  return diff.tables
    .map((t) => {
      const c = t.counts;
      const parts = diff.withAfter
        ? [
            `${c.damaged} damaged`,
            `${c.deletedByIncident} deleted by the incident`,
            `${c.changedSince} changed since (conflicts)`,
            `${c.insertedSince} inserted since`,
          ]
        : [`${c.candidate} candidates (no after target)`, `${c.insertedSince} inserted since`];
      return `${t.table}: ${parts.join(', ')}, ${c.unchanged} unchanged`;
    })
    .join('; ');
}
