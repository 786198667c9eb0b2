// Classifying every key of a table for a repair without failover (issue 14):
// a streaming merge of up to three primary-key-ordered row sources (see
// snapshot.ts for the order): B, the copy at the *before* target; A, the copy
// at the *after* target (optional); N, the live primary now. Memory holds one
// row per source plus the samples, whatever the table's size.
//
// With A (the incident's effect is known):
//   damaged            B != A and N = A   the incident changed it, nobody since: safe to restore B
//   changedSince       B != A and N != A  changed by the incident AND since (or deleted since):
//                                         a conflict for a person; restoring it overwrites a legitimate write
//   deletedByIncident  in B, not in A nor N: safe to re-insert B
//   insertedByIncident not in B, in A and N unchanged: shown, never deleted by a repair
//   insertedSince      only in N: left alone
//   unchanged          B = A: the incident did not touch it (later writes to it are the application's)
// Without A, nothing is known to be the incident's: every key where B and N
// differ (including in B only) is a `candidate`, never safe.
//
// Columns are matched by name (keys.matchShapes): the copy's columns, each
// also on the primary, are compared and restored; a column the incident
// dropped and an operator added back since is one of them (its values come
// back). A column the copy at the after target lacks reads as NULL there (the
// added-back column holds NULL for rows nobody wrote since). A column only on
// the primary (added since) is neither compared nor restored.
//
// A `where` predicate selects rows on each side separately: one on a column
// the incident changed makes rows appear deleted by it; the insert of such a
// row then conflicts with the live row and is skipped by apply, not doubled.
import { LifeboatError } from '../errors';
import { createLinesFile } from './lines-file';
import { matchAfterShape, matchShapes, type TableShape } from './keys';
import type { RowSource, TextRow } from './snapshot';

export const REPAIR_CLASSES = [
  'damaged',
  'changedSince',
  'deletedByIncident',
  'insertedByIncident',
  'insertedSince',
  'unchanged',
  'candidate',
] as const;
export type RepairClass = (typeof REPAIR_CLASSES)[number];

/** Classes a repair restores without a person choosing them. */
export const SAFE_CLASSES: readonly RepairClass[] = ['damaged', 'deletedByIncident'];
/** Classes the plan file holds (restorable if an approver includes them). */
const PLANNED: readonly RepairClass[] = ['damaged', 'deletedByIncident', 'changedSince', 'candidate'];

export type NamedRow = Record<string, string | null>;
export interface SampleRow {
  key: NamedRow;
  before: NamedRow | null;
  after: NamedRow | null;
  now: NamedRow | null;
}

/**
 * One line of the plan file after its header: restore `restore` (B) at `key`,
 * by UPDATE when `expect` is a row (the guard: the live row must still equal
 * it, column by column as text), by INSERT when `expect` is null (the guard:
 * no live row with that key).
 */
export interface PlanRow {
  class: RepairClass;
  key: string[];
  restore: TextRow;
  expect: TextRow | null;
}
export interface PlanHeader {
  lifeboatRepairPlan: 1;
  table: string;
  columns: TableShape['columns'];
  keyColumns: string[];
  withAfter: boolean;
}

export interface ClassifyResult {
  table: string;
  /** The columns compared and restored (the copy's, by name, with the primary's types): what repairSqlText and apply use. */
  shape: Pick<TableShape, 'qualified' | 'columns' | 'keyColumns'>;
  /** Columns of the primary not in the copy (added since): not compared, not restored. */
  onlyOnPrimary: string[];
  /** Columns the copy at the after target lacks (dropped by the incident): read as NULL there. */
  absentAfter: string[];
  keyColumns: string[];
  withAfter: boolean;
  counts: Record<RepairClass, number>;
  samples: Record<RepairClass, SampleRow[]>;
  /** Rows written to the plan file, per class. */
  planned: Partial<Record<RepairClass, number>>;
  planFile: string;
}

/** Compares two key texts by code point, which is the order of `COLLATE "C"` on UTF-8. */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 code unit order equals code point order unless a surrogate pair
  // meets a code unit in U+E000..U+FFFF; only then compare the UTF-8 bytes.
  if (/[\uD800-\uDFFF]/.test(a) || /[\uD800-\uDFFF]/.test(b))
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  return a < b ? -1 : 1;
}

export function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareText(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

function sameRow(a: TextRow, b: TextRow): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A row source read one row ahead, checking it is strictly ordered by key. */
class Cursor {
  private it: AsyncIterator<TextRow>;
  private readonly source: RowSource;
  /** For each compared column, its index in the source's rows (-1: absent, read as NULL); undefined when the same. */
  private readonly projection: number[] | undefined;
  row: TextRow | undefined;
  key: string[] | undefined;
  constructor(
    private readonly label: string,
    source: RowSource,
    compared: Pick<TableShape, 'columns'>,
    private readonly keyIdx: number[],
  ) {
    this.source = source;
    const idx = compared.columns.map((c) => source.shape.columns.findIndex((s) => s.name === c.name));
    this.projection = idx.length === source.shape.columns.length && idx.every((v, i) => v === i) ? undefined : idx;
    this.it = source.rows[Symbol.asyncIterator]();
  }
  async advance(): Promise<void> {
    const prev = this.key;
    const next = await this.it.next();
    const raw = next.done ? undefined : next.value;
    const p = this.projection;
    this.row = raw && p ? p.map((i) => (i < 0 ? null : (raw[i] ?? null))) : raw;
    this.key = this.row ? this.keyIdx.map((i) => this.row![i] as string) : undefined;
    if (this.key && prev && compareKeys(prev, this.key) >= 0) {
      throw new LifeboatError(
        'INVARIANT_FAILED',
        `rows of ${this.label} are not in key order: (${this.key.join(', ')}) came after (${prev.join(', ')})`,
        {
          hints: [
            'the rows must be read with snapshot.ts (ordered by key::text COLLATE "C"); a merge out of order would pair the wrong rows',
          ],
        },
      );
    }
  }
  async close(): Promise<void> {
    await this.source.close();
  }
}

export async function classify(opts: {
  before: RowSource;
  after?: RowSource;
  now: RowSource;
  planFile: string;
  /** Rows kept per class for the diff shown to approvers (default 20). */
  sampleSize?: number;
  onProgress?: (keys: number) => void;
}): Promise<ClassifyResult> {
  let matched: ReturnType<typeof matchShapes>;
  let absentAfter: string[];
  try {
    matched = matchShapes('the live primary', opts.before.shape, opts.now.shape);
    absentAfter = opts.after ? matchAfterShape('the copy at the after target', matched.shape, opts.after.shape) : [];
  } catch (err) {
    await Promise.all([opts.before.close(), opts.after?.close(), opts.now.close()]);
    throw err;
  }
  const shape = matched.shape;
  const keyIdx = shape.keyColumns.map((k) => shape.columns.findIndex((c) => c.name === k));
  const names = shape.columns.map((c) => c.name);
  const named = (r: TextRow | undefined): NamedRow | null =>
    r ? Object.fromEntries(names.map((n, i) => [n, r[i] ?? null])) : null;
  const sampleSize = opts.sampleSize ?? 20;
  const withAfter = opts.after !== undefined;

  const counts = Object.fromEntries(REPAIR_CLASSES.map((c) => [c, 0])) as Record<RepairClass, number>;
  const samples = Object.fromEntries(REPAIR_CLASSES.map((c) => [c, [] as SampleRow[]])) as Record<
    RepairClass,
    SampleRow[]
  >;
  const planned: Partial<Record<RepairClass, number>> = {};

  let out: Awaited<ReturnType<typeof createLinesFile>>;
  try {
    out = await createLinesFile(opts.planFile);
  } catch (err) {
    await Promise.all([opts.before.close(), opts.after?.close(), opts.now.close()]);
    throw err;
  }
  const header: PlanHeader = {
    lifeboatRepairPlan: 1,
    table: shape.qualified,
    columns: shape.columns,
    keyColumns: shape.keyColumns,
    withAfter,
  };

  const b = new Cursor('the copy at the before target', opts.before, shape, keyIdx);
  const a = opts.after ? new Cursor('the copy at the after target', opts.after, shape, keyIdx) : undefined;
  const n = new Cursor('the live primary', opts.now, shape, keyIdx);
  let keys = 0;
  try {
    await out.write(header);
    await Promise.all([b.advance(), a?.advance(), n.advance()]);
    for (;;) {
      let min: string[] | undefined;
      for (const c of [b, a, n]) if (c?.key && (!min || compareKeys(c.key, min) < 0)) min = c.key;
      if (!min) break;
      const at = (c: Cursor | undefined) => (c?.key && compareKeys(c.key, min!) === 0 ? c.row : undefined);
      const B = at(b);
      const A = at(a);
      const N = at(n);

      let cls: RepairClass;
      let expect: TextRow | null = null;
      if (!withAfter) {
        if (B && N) cls = sameRow(B, N) ? 'unchanged' : 'candidate';
        else if (B) cls = 'candidate';
        else cls = 'insertedSince';
        expect = N ?? null;
      } else if (B && A) {
        if (sameRow(B, A)) cls = 'unchanged';
        else if (N && sameRow(N, A)) cls = 'damaged';
        else cls = 'changedSince';
        expect = N ?? null;
      } else if (B) {
        // Deleted by the incident; re-inserted since is a legitimate write.
        cls = N ? 'changedSince' : 'deletedByIncident';
        expect = N ?? null;
      } else if (A) {
        cls = N && sameRow(N, A) ? 'insertedByIncident' : N ? 'insertedSince' : 'unchanged';
      } else {
        cls = 'insertedSince';
      }
      counts[cls] += 1;
      if (samples[cls].length < sampleSize) {
        const keyRow = Object.fromEntries(shape.keyColumns.map((k, i) => [k, min![i]!]));
        samples[cls].push({ key: keyRow, before: named(B), after: withAfter ? named(A) : null, now: named(N) });
      }
      if (B && PLANNED.includes(cls)) {
        const row: PlanRow = { class: cls, key: min, restore: B, expect };
        await out.write(row);
        planned[cls] = (planned[cls] ?? 0) + 1;
      }
      keys += 1;
      if (keys % 50_000 === 0) opts.onProgress?.(keys);
      await Promise.all([B && b.advance(), A && a!.advance(), N && n.advance()]);
    }
    await out.close();
  } catch (err) {
    await out.abort();
    throw err;
  } finally {
    await Promise.all([b.close(), a?.close(), n.close()]);
  }
  return {
    table: shape.qualified,
    shape: { qualified: shape.qualified, columns: shape.columns, keyColumns: shape.keyColumns },
    onlyOnPrimary: matched.onlyOnPrimary,
    absentAfter,
    keyColumns: shape.keyColumns,
    withAfter,
    counts,
    samples,
    planned,
    planFile: opts.planFile,
  };
}
