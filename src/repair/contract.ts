// The public contract of repairFromPointInTime (DESIGN.md §4.3): its input,
// what its status shows of the diff and the apply, and what each of its own
// activities takes and returns. Its steps, signals, update and query are the
// recovery's (src/recovery/contract.ts, src/recovery/messages.ts).
//
// Imported by workflow code (zod works in the sandbox): no Node builtins.
import { z } from 'zod';
import { Target, type CacheResult } from '../recovery/contract';
import type { TeardownResult } from '../drill/contract';
import type { RepairClass, SampleRow } from './classify';

/** A table name as the operator writes it: `orders`, `shop.orders`, `"Shop"."Orders"`. */
const PART = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const TABLE_RE = new RegExp(`^${PART}(?:\\.${PART})?$`);

const notLatest = (t: Target) => !('latest' in t);

export const RepairInput = z
  .strictObject({
    runbook: z
      .string({ error: 'expected the runbook name, e.g. "orders"' })
      .min(1, { error: 'expected the runbook name' }),
    tables: z
      .array(z.string().regex(TABLE_RE, { error: 'expected a table name such as "orders" or "shop.orders"' }), {
        error: 'expected a list of table names, e.g. ["public.orders"]',
      })
      .min(1, { error: 'expected at least one table' })
      .max(20, { error: 'expected at most 20 tables' })
      .refine((ts) => new Set(ts).size === ts.length, { error: 'expected each table once' }),
    /** SQL predicate selecting the rows to compare, run as given on the copy and on the primary in a READ ONLY transaction. */
    where: z
      .string({ error: 'expected an SQL predicate, e.g. "status = \'canceled\'"' })
      .trim()
      .min(1)
      .max(4000)
      .optional(),
    /** Just before the incident: the copy is replayed to it first. */
    before: Target.refine(notLatest, { error: 'expected a point before the incident, not the end of the archive' }),
    /** Right after the bad statement: without it nothing is classified as safe (every difference is a candidate). */
    after: Target.refine(notLatest, {
      error: 'expected the end of the bad statement, not the end of the archive',
    }).optional(),
    incident: z.string({ error: 'expected the incident reference, e.g. "INC-1234"' }).max(200).optional(),
    reason: z.string({ error: 'expected a short reason' }).max(2000).optional(),
    /** Stop after diff: nothing is written to the primary. */
    dryRun: z.boolean({ error: 'expected true or false' }).optional(),
    /** Keep the copy running after the run (stopped and removed otherwise). */
    keepCopy: z.boolean({ error: 'expected true or false' }).optional(),
  })
  .superRefine((input, ctx) => {
    // Replay only goes forwards: an after target at or before the before target would leave the copy where it is.
    // Only what can be compared is checked (xids wrap around; a name's position is the archive's to say).
    const { before, after } = input;
    if (!after) return;
    const lsn = (l: string) => l.split('/').reduce((n, part) => n * 2n ** 32n + BigInt(`0x${part}`), 0n);
    const notLater =
      ('time' in before && 'time' in after && Date.parse(after.time) <= Date.parse(before.time)) ||
      ('lsn' in before && 'lsn' in after && lsn(after.lsn) <= lsn(before.lsn)) ||
      ('name' in before && 'name' in after && after.name === before.name);
    if (notLater)
      ctx.addIssue({
        code: 'custom',
        path: ['after'],
        message: 'expected a point after the before target (the end of the bad statement): replay only goes forwards',
      });
  });
export type RepairInput = z.input<typeof RepairInput>;
/** A RepairInput after validation (xid as a string). */
export type ParsedRepairInput = z.output<typeof RepairInput>;

/** Classes an approver may add to the safe ones (damaged, deletedByIncident). */
export type IncludableClass = 'changedSince' | 'candidate';

/** The diff of one table, as the status and the evidence show it (samples trimmed). */
export interface RepairTableDiff {
  table: string;
  keyColumns: string[];
  counts: Record<RepairClass, number>;
  /** Rows in the plan per class (restorable when the class is approved). */
  planned: Partial<Record<RepairClass, number>>;
  /** A few rows per class, before/after/now side by side; long values cut at 200 characters. */
  samples: Partial<Record<RepairClass, SampleRow[]>>;
  /** The SQL the apply runs for this table (src/repair/sql.ts repairSqlText). */
  sql: string;
}

export interface RepairDiff {
  withAfter: boolean;
  tables: RepairTableDiff[];
  /** Where the artefact is: `<repository>/<cluster>/repair/<workflowId>/diff.json` (plans beside it). */
  artefact: string;
  diffedAt: string;
}

/** What apply-repair did to one table (src/repair/apply.ts ApplyResult, keys capped). */
export interface RepairApplied {
  table: string;
  alreadyApplied: boolean;
  updated: number;
  inserted: number;
  skipped: number;
  /** Keys of skipped rows (changed since the diff), at most 20; `skipped` is exact. */
  skippedKeys: string[][];
  sequencesAdvanced: string[];
  auditTable: string;
  transactionMs: number;
  lockedMs: number;
}

/** status.repair and evidence.repair. */
export interface RepairStatus {
  tables: string[];
  where?: string;
  before: Target;
  after?: Target;
  keepCopy: boolean;
  /** Who may approve and the tables' keys, from preflight. */
  checked?: RepairTableCheck[];
  diff?: RepairDiff;
  /** Classes the approval restores. */
  classes?: RepairClass[];
  approvedBy?: string[];
  applied?: RepairApplied[];
}

export interface RepairTableCheck {
  table: string;
  keyColumns: string[];
  columns: number;
}

export interface RepairSnapshot {
  label: 'before' | 'after';
  tables: Array<{ table: string; rows: number }>;
  /** The copy's replay position when read. */
  at?: string;
}

interface RunRef {
  runbook: string;
  workflowId: string;
}

/** The activities only repairFromPointInTime calls (activities/repair.ts); it reuses the recovery's and the drill's for the rest. */
export interface RepairActivities {
  /** On the primary (lifeboat queue): each table exists, has a primary key, is readable; nothing written. */
  checkRepairTables(input: { runbook: string; tables: string[]; write?: boolean }): Promise<RepairTableCheck[]>;
  /** On the drill host: the rows of each table read from the paused copy into snapshot files. */
  snapshotRepairCopy(
    input: RunRef & { tables: string[]; where?: string; label: 'before' | 'after' },
  ): Promise<RepairSnapshot>;
  /** On the drill host: the snapshots merged with the live primary, plans written, the artefact stored in the repository. */
  diffRepair(
    input: RunRef & { runId: string; tables: string[]; where?: string; withAfter: boolean },
  ): Promise<RepairDiff>;
  /** On the drill host: the approved classes of each plan applied on the primary, once (repair id = workflow id). */
  applyRepair(input: RunRef & { classes: RepairClass[]; approvedBy: string[] }): Promise<RepairApplied[]>;
  /** On the drill host: the runbook's caches invalidated for the repaired keys. */
  invalidateRepairCaches(input: RunRef & { classes: RepairClass[] }): Promise<CacheResult[]>;
  /** On the drill host: the copy stopped and removed (only ours, by its marker), and the run's work files. */
  teardownRepairCopy(input: RunRef): Promise<TeardownResult & { workDirRemoved?: string }>;
}
