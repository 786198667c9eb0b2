// What the Temporal UI's current details show of a repair besides its steps
// (workflows/recovery/checklist.ts renders the rest): the head line, the
// diff's counts per class with a sample row side by side, and what the apply
// restored and skipped. Plain markdown, as the checklist's.
import { describeTarget, type RecoveryStatus } from '../../src/recovery/contract';
import type { RepairTableDiff } from '../../src/repair/contract';

const CLASS_WORDS: Record<string, string> = {
  damaged: 'damaged (restored)',
  deletedByIncident: 'deleted by the incident (re-inserted)',
  changedSince: 'changed since (conflicts: left unless included)',
  candidate: 'candidates (no after target: restored only if included)',
  insertedByIncident: 'inserted by the incident (left)',
  insertedSince: 'inserted since (left)',
  unchanged: 'unchanged',
};

export function repairHead(s: RecoveryStatus): string {
  const r = s.repair!;
  const after = r.after ? `, after ${describeTarget(r.after)}` : ', no after target';
  const tables = r.tables.map((t) => `\`${t}\``).join(', ');
  const copyAt = `from a copy at ${describeTarget(s.target)}${after}`;
  const incident = s.incident ? ` · ${s.incident}` : '';
  const dryRun = s.dryRun ? ' · dry run' : '';
  const where = r.where ? ` · where \`${r.where}\`` : '';
  return `**Repair of ${tables} (runbook \`${s.runbook}\`) ${copyAt}**${incident}${dryRun}${where}`;
}

/** A sample row: the columns that differ between before, after and now. */
function sampleLine(t: RepairTableDiff, cls: string): string | undefined {
  const row = t.samples[cls as keyof typeof t.samples]?.[0];
  if (!row) return undefined;
  const key = Object.entries(row.key)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const cols = new Set([
    ...Object.keys(row.before ?? {}),
    ...Object.keys(row.after ?? {}),
    ...Object.keys(row.now ?? {}),
  ]);
  const diffs = [...cols]
    .filter((c) => row.before?.[c] !== row.now?.[c] || (row.after && row.after[c] !== row.before?.[c]))
    .slice(0, 4)
    .map((c) => {
      const shown = (values: typeof row.now) => (values ? JSON.stringify(values[c]) : '(none)');
      const after = row.after ? ` → ${JSON.stringify(row.after[c])}` : '';
      return `${c}: ${shown(row.before)}${after} → now ${shown(row.now)}`;
    });
  return `e.g. ${key}: ${diffs.join('; ') || 'no column differs'}`;
}

export function repairLines(s: RecoveryStatus): string[] {
  const r = s.repair;
  if (!r) return [];
  const out: string[] = [];
  for (const t of r.diff?.tables ?? []) {
    const classes = Object.entries(t.counts).filter(([c, n]) => n > 0 && c !== 'unchanged');
    // A blank line before the list: the UI's markdown does not let a list interrupt a paragraph.
    out.push('', `**Diff of \`${t.table}\`** (key ${t.keyColumns.join(', ')}; ${t.counts.unchanged} unchanged):`, '');
    if (classes.length === 0) out.push('- no row differs');
    for (const [c, n] of classes) {
      const sample = sampleLine(t, c);
      out.push(`- ${CLASS_WORDS[c] ?? c}: ${n}${sample ? ` — ${sample}` : ''}`);
    }
  }
  if (r.diff) out.push('', `Artefact (samples, the exact SQL, the plans): \`${r.diff.artefact}\``);
  if (r.classes)
    out.push(
      '',
      `Approved classes: ${r.classes.join(', ')}${r.approvedBy?.length ? ` (by ${r.approvedBy.join(', ')})` : ''}`,
    );
  for (const a of r.applied ?? []) {
    const earlier = a.alreadyApplied ? ' (already applied earlier, found in the audit table)' : '';
    const keys = a.skippedKeys
      .slice(0, 5)
      .map((k) => `(${k.join(', ')})`)
      .join(' ');
    const examples = a.skippedKeys.length ? `, e.g. ${keys}` : '';
    const skipped = `${a.skipped} skipped (changed since the diff: never overwritten)${examples}`;
    const counts = `${a.updated} updated, ${a.inserted} inserted, ${skipped}`;
    out.push('', `**Applied to \`${a.table}\`**${earlier}: ${counts}; rows locked ${a.lockedMs} ms`);
  }
  return out;
}

export function repairEndedLine(s: RecoveryStatus): string {
  const o = s.outcome!;
  const applied = s.repair?.applied ?? [];
  const total = (k: 'updated' | 'inserted' | 'skipped') => applied.reduce((n, a) => n + a[k], 0);
  const what = s.dryRun
    ? 'dry run: diff only, nothing applied'
    : applied.length
      ? `${total('updated')} updated, ${total('inserted')} inserted, ${total('skipped')} skipped`
      : 'nothing applied';
  const verdict =
    o.verdict === 'passed' ? 'repaired' : o.verdict === 'failed' ? 'repaired, with a failed check' : o.verdict;
  const ended = s.dryRun && o.verdict === 'passed' ? 'diffed' : verdict;
  return `**Ended: ${ended}** · ${what} · no failover, no traffic touched`;
}
