// The small decisions of a repair, on their own: which classes an approval
// restores, how a cache pattern becomes a repaired key, and what the Temporal
// UI's current details show of a diff and an apply.
import { describe, expect, it } from 'vitest';
import type { DecisionRecord, RecoveryStatus } from '../../src/recovery/contract';
import { placeholdersOf, substitute } from '../../src/repair/caches';
import { RepairInput, type RepairDiff } from '../../src/repair/contract';
import { renderStatus } from '../../src/cli/status-view';
import { renderChecklist } from '../../workflows/recovery/checklist';
import { classesApproved, plannedRows } from '../../workflows/repair/decide';

const approve = (by: string, include?: DecisionRecord['include']): DecisionRecord => ({
  step: 'approve-repair',
  by,
  at: '2026-11-21T15:00:00Z',
  decision: 'approve',
  via: 'update',
  ...(include ? { include } : {}),
});

describe('classes an approval restores', () => {
  it('are damaged and deleted rows by default, conflicts only when a counted approver includes them', () => {
    expect(classesApproved([approve('alice'), approve('bob')], new Set(['alice', 'bob']), true)).toEqual([
      'damaged',
      'deletedByIncident',
    ]);
    expect(
      classesApproved([approve('alice', ['changedSince']), approve('bob')], new Set(['alice', 'bob']), true),
    ).toEqual(['damaged', 'deletedByIncident', 'changedSince']);
    // An approval of an earlier, reset round (not among those counted) includes nothing.
    expect(classesApproved([approve('mallory', ['changedSince'])], new Set(['alice']), true)).toEqual([
      'damaged',
      'deletedByIncident',
    ]);
  });

  it('without an after target are nothing unless candidates are included, and never conflicts (there are none)', () => {
    expect(classesApproved([approve('alice')], new Set(['alice']), false)).toEqual([]);
    expect(classesApproved([approve('alice', ['changedSince', 'candidate'])], new Set(['alice']), false)).toEqual([
      'candidate',
    ]);
  });
});

describe('a cache pattern with key placeholders', () => {
  const orders = { name: 'orders', keyColumns: ['id'] };
  const items = { name: 'order_items', keyColumns: ['order_id', 'line'] };
  it('becomes one key per repaired row of each table whose key has the columns', () => {
    expect(placeholdersOf('cart:{order_id}:{line}')).toEqual(['order_id', 'line']);
    expect(substitute('shop:orders:{id}', orders, ['42'])).toBe('shop:orders:42');
    expect(substitute('{table}:{order_id}:{line}', items, ['42', '3'])).toBe('order_items:42:3');
    expect(substitute('shop:orders:{id}', items, ['42', '3'])).toBeUndefined();
  });
});

describe('the current details of a repair', () => {
  const diff: RepairDiff = {
    withAfter: true,
    artefact: 'file:///repo/orders/repair/r1/diff.json',
    diffedAt: '2026-11-21T15:00:00Z',
    tables: [
      {
        table: '"shop"."orders"',
        keyColumns: ['id'],
        counts: {
          damaged: 95,
          changedSince: 6,
          deletedByIncident: 0,
          insertedByIncident: 0,
          insertedSince: 12,
          unchanged: 300,
          candidate: 0,
        },
        planned: { damaged: 95, changedSince: 6 },
        samples: {
          damaged: [
            {
              key: { id: '4' },
              before: { id: '4', status: 'pending' },
              after: { id: '4', status: 'canceled' },
              now: { id: '4', status: 'canceled' },
            },
          ],
        },
        sql: '...',
      },
    ],
  };
  it('show the counts per class with a sample, the artefact, and plannedRows counts what the apply loads', () => {
    const s: RecoveryStatus = {
      workflow: 'repairFromPointInTime',
      runbook: 'orders',
      target: { name: 'before-bad-update' },
      mode: 'side-by-side',
      dryRun: false,
      phase: 'running',
      startedAt: '2026-11-21T14:59:00Z',
      steps: [],
      decisions: [],
      ignored: [],
      repair: {
        tables: ['shop.orders'],
        before: { name: 'before-bad-update' },
        after: { name: 'after-bad-update' },
        keepCopy: false,
        diff,
      },
    };
    const md = renderChecklist(s, 'repair-orders-1');
    expect(md.split('\n')[0]).toBe(
      '**Repair of `shop.orders` (runbook `orders`) from a copy at restore point "before-bad-update", after restore point "after-bad-update"**',
    );
    expect(md).toContain('- damaged (restored): 95 — e.g. id=4: status: "pending" → "canceled" → now "canceled"');
    expect(md).toContain('- changed since (conflicts: left unless included): 6');
    expect(md).toContain('Artefact (samples, the exact SQL, the plans): `file:///repo/orders/repair/r1/diff.json`');
    // lifeboat status (and repair --follow) says the same in plain text, with the approve commands.
    const pending = {
      step: 'approve-repair' as const,
      kind: 'approval' as const,
      since: '2026-11-21T15:00:01Z',
      approvers: ['alice', 'bob'],
      min: 1,
      approvedBy: [],
      how: [],
    };
    const text = renderStatus(
      { workflowId: 'repair-orders-1', status: { ...s, pending }, progress: {} },
      { now: new Date('2026-11-21T15:01:00Z'), color: false },
    );
    expect(text.split('\n')[0]).toBe(
      'repair shop.orders of orders from restore point "before-bad-update" / restore point "after-bad-update"',
    );
    expect(text).toContain('Diff of "shop"."orders": damaged 95, changedSince 6, insertedSince 12, unchanged 300');
    expect(text).toContain('lifeboat approve repair-orders-1 approve-repair --as <who> --include changedSince');
    expect(plannedRows(diff, ['damaged', 'deletedByIncident'])).toBe(95);
    expect(plannedRows(diff, ['damaged', 'deletedByIncident', 'changedSince'])).toBe(101);
  });
});

describe('a repair input', () => {
  const issues = (raw: unknown) =>
    RepairInput.safeParse(raw).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  it('refuses an after target that is not after the before target, when the two can be compared', () => {
    const base = { runbook: 'orders', tables: ['public.orders'] };
    expect(
      issues({ ...base, before: { time: '2026-06-04T14:32:00Z' }, after: { time: '2026-06-04T14:31:00Z' } }),
    ).toEqual([
      'after: expected a point after the before target (the end of the bad statement): replay only goes forwards',
    ]);
    expect(issues({ ...base, before: { lsn: '0/3000060' }, after: { lsn: '0/2FFFFFF' } })).toHaveLength(1);
    expect(issues({ ...base, before: { lsn: '0/3000060' }, after: { lsn: '1/0' } })).toBeUndefined();
    expect(issues({ ...base, before: { name: 'before-bad-update' }, after: { xid: '7421' } })).toBeUndefined();
  });

  it('refuses an unknown field, a table name that is not one, and a table named twice', () => {
    const found = issues({
      runbook: 'orders',
      tables: ['orders', 'orders; drop table x'],
      before: { name: 'b' },
      keep: true,
    });
    expect(found).toHaveLength(2);
    expect(found).toContain('tables.1: expected a table name such as "orders" or "shop.orders"');
    expect(issues({ runbook: 'orders', tables: ['orders', 'orders'], before: { name: 'b' } })).toEqual([
      'tables: expected each table once',
    ]);
  });
});
