// Applying a repair's plans (classify.ts, one per table) on the live primary,
// in ONE transaction (applyPlans; applyPlan is the one-table case): either
// every restored row of every table, the sequences and the audit rows commit
// together, or nothing does.
//
// - Each table's rows are loaded into a temporary staging table (ON COMMIT
//   DROP, dropped after the table) in batched multi-row INSERTs
//   (pg-copy-streams is not a dependency), then restored by one
//   `UPDATE ... FROM staging` and one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
// - The guard: an UPDATE only touches a row whose every compared column, as text, is
//   still IS NOT DISTINCT FROM the value classify saw (A, or N as shown). In
//   READ COMMITTED a row another transaction changes while we wait for its
//   lock is re-checked against the committed version (EvalPlanQual), so a
//   row changed between classify (or approval) and apply is skipped and
//   reported, never overwritten. An INSERT skips a key that exists again.
// - Columns are the plan's, matched by name (keys.matchShapes): a column
//   added on the primary since is neither compared nor written (a re-inserted
//   row gets its default there).
// - Triggers fire: they are the application's (an updated_at stamp, an
//   outbox row); disabling them needs superuser or table ownership and would
//   hide the repair from what depends on them. Foreign keys are checked as
//   always: tables are restored parents first (fk-order.ts), DEFERRABLE keys
//   are deferred to the commit (SET CONSTRAINTS ALL DEFERRED), and a restored
//   row pointing at a parent deleted since (and not restored) makes the whole
//   transaction fail with SQL_FAILED naming the constraint, nothing applied.
//   A cycle of NOT DEFERRABLE keys between repaired tables is tried in the
//   given order; when its rows refer to each other it fails the same way,
//   with a hint to make the keys DEFERRABLE or repair the tables apart.
// - Sequences owned by a column of the table are moved to at least the
//   column's max after inserts (never backwards).
// - Audit: one row per repaired table in <auditSchema>.lifeboat_repair_audit
//   (created on first use; auditSchema defaults to current_schema()), all
//   written last in the same transaction. Its primary key (repair_id,
//   table_name) makes apply idempotent: a row for this repair and table means
//   that table's restore committed, and apply returns it as "already applied";
//   a crash during commit leaves all of a repair's rows or none.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ClientBase } from 'pg';
import { LifeboatError } from '../errors';
import { applyFailure } from './apply-failure';
import { SAFE_CLASSES, type PlanHeader, type PlanRow, type RepairClass } from './classify';
import type { RepairApplied } from './contract';
import { parentsFirst } from './fk-order';
import { ident, matchShapes, pinTextFormat, readTableShape } from './keys';
import { STAGING, repairStatements } from './sql';

export interface ApplyOptions {
  /** Unique per repair run (the workflow id): the idempotence key. */
  repairId: string;
  planFile: string;
  /** Plan classes to restore (default: damaged, deletedByIncident). changedSince and candidate only when an approver includes them. */
  classes?: readonly RepairClass[];
  /** Who approved (recorded in the audit row). */
  approvedBy: string[];
  /** Schema of lifeboat_repair_audit (default: current_schema()). */
  auditSchema?: string;
  /** Keys of skipped rows returned (the count is always exact). Default 1000. */
  skippedKeysLimit?: number;
  onProgress?: (rowsLoaded: number) => void;
  /** lock_timeout for the transaction (a row held by a long transaction fails the apply instead of waiting forever). Default: the role's setting. */
  lockTimeoutMs?: number;
}

/**
 * What the apply did to one table: the workflow's RepairApplied (its
 * `skippedKeys` at most skippedKeysLimit; `transactionMs` the whole
 * transaction's length; `lockedMs` from the table's first restoring
 * statement to commit, the longest a writer of a restored row waited) and
 * the repair id.
 */
export interface ApplyResult extends RepairApplied {
  repairId: string;
}

const AUDIT_TABLE = 'lifeboat_repair_audit';

async function auditTableName(client: ClientBase, schema: string | undefined): Promise<string> {
  const s = schema ?? (await client.query<{ s: string | null }>('select current_schema() as s')).rows[0]?.s;
  if (!s) {
    throw new LifeboatError(
      'INPUT_INVALID',
      'no schema for the repair audit table: the search_path names no existing schema',
      {
        hints: [
          "set auditSchema (e.g. the runbook gates' schema) or give the role a search_path with a schema it can create in",
        ],
      },
    );
  }
  return `${ident(s)}.${AUDIT_TABLE}`;
}

interface OpenPlan {
  file: string;
  header: PlanHeader;
  rows: AsyncGenerator<PlanRow>;
  close(): void;
}

async function readPlan(file: string): Promise<OpenPlan> {
  const input = createReadStream(file);
  const rl = createInterface({ input, crlfDelay: Infinity });
  const lines = rl[Symbol.asyncIterator]();
  const close = () => {
    rl.close();
    input.destroy();
  };
  const first = await lines.next().catch((err: unknown) => {
    close();
    throw err;
  });
  const header = first.done ? undefined : (JSON.parse(first.value) as PlanHeader);
  if (!header || header.lifeboatRepairPlan !== 1) {
    close();
    throw new LifeboatError('INPUT_INVALID', `${file} is not a repair plan (no header line)`, {
      hints: ['plans are written by classify'],
    });
  }
  async function* rows(): AsyncGenerator<PlanRow> {
    for (;;) {
      const next = await lines.next();
      if (next.done) return;
      if (next.value !== '') yield JSON.parse(next.value) as PlanRow;
    }
  }
  return { file, header, rows: rows(), close };
}

/** One table's plan applied in a transaction of its own (applyPlans with one plan). */
export async function applyPlan(client: ClientBase, opts: ApplyOptions): Promise<ApplyResult> {
  const { planFile, onProgress, ...rest } = opts;
  const [result] = await applyPlans(client, {
    ...rest,
    planFiles: [planFile],
    ...(onProgress ? { onProgress: (_table: string, rows: number) => onProgress(rows) } : {}),
  });
  return result!;
}

export interface ApplyPlansOptions extends Omit<ApplyOptions, 'planFile' | 'onProgress'> {
  /** One plan per table, each table at most once; the results come back in this order. */
  planFiles: readonly string[];
  onProgress?: (table: string, rowsLoaded: number) => void;
}

/**
 * Every table's plan applied in ONE transaction: all staging loads, guarded
 * restores, sequence moves and audit rows commit together or not at all.
 * Tables run parents first (fk-order.ts); SET CONSTRAINTS ALL DEFERRED moves
 * DEFERRABLE foreign keys' checks to COMMIT. A table that already has this
 * repair's audit row (every table, after a committed attempt; some, after
 * per-table applies of an older Lifeboat) is reported "already applied" and
 * not touched again; the others are applied.
 */
export async function applyPlans(client: ClientBase, opts: ApplyPlansOptions): Promise<ApplyResult[]> {
  const classes = opts.classes ?? SAFE_CLASSES;
  const plans: OpenPlan[] = [];
  const closeAll = () => plans.forEach((p) => p.close());
  try {
    for (const f of opts.planFiles) plans.push(await readPlan(f));
  } catch (err) {
    closeAll();
    throw err;
  }
  if (plans.length === 0) return [];
  const named = plans.map((p) => p.header.table);
  const started = Date.now();
  /** What the transaction was doing when it failed (for the message of a several-table repair). */
  let at = 'its start';
  let cycle: string[] = [];
  await client.query('begin isolation level read committed');
  try {
    await pinTextFormat(client);
    if (opts.lockTimeoutMs !== undefined)
      await client.query(`set local lock_timeout = ${Math.max(0, Math.floor(opts.lockTimeoutMs))}`);
    // A worker killed mid-apply leaves its session behind; PostgreSQL notices
    // a vanished client only when it next talks to it, so a session waiting
    // on a row lock would keep the rows it already restored locked (live
    // writers wait) until that wait ends. Polling the socket every second
    // (PostgreSQL 14+, Linux) ends it and rolls it back instead.
    await client.query(
      `select set_config('client_connection_check_interval', '1000', true) where current_setting('server_version_num')::int >= 140000`,
    );
    // DEFERRABLE foreign keys (between repaired tables, or reached by the
    // application's triggers) are checked at COMMIT, still inside this
    // transaction; NOT DEFERRABLE ones per statement, hence parents first.
    await client.query('set constraints all deferred');
    const audit = await auditTableName(client, opts.auditSchema);
    // The plans' columns, matched by name on each table as it is now (a column
    // added since is left alone; one dropped or retyped since refuses).
    const shapes = [];
    for (const p of plans) {
      at = p.header.table;
      const live = await readTableShape(client, p.header.table);
      shapes.push(matchShapes('the live primary at apply', { ...p.header, qualified: p.header.table }, live).shape);
    }
    at = 'its start';
    const qualified = shapes.map((s) => s.qualified);
    const twice = qualified.filter((q, i) => qualified.indexOf(q) !== i);
    if (twice.length > 0) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `repair ${opts.repairId} names ${[...new Set(twice)].join(', ')} more than once: one plan per table`,
        {
          hints: ['list each table once (the diff writes one plan per table)', 'nothing was applied'],
        },
      );
    }
    await client.query(
      `create table if not exists ${audit} (
         repair_id text not null, table_name text not null,
         updated bigint not null, inserted bigint not null, skipped bigint not null,
         classes text[] not null, approved_by text[] not null,
         applied_by text not null default current_user, applied_at timestamptz not null default now(),
         primary key (repair_id, table_name))`,
    );
    // Two applies of one repair at once: the second waits here, then sees the
    // first's rows. One lock per table (the key a one-table apply has always
    // taken), in one order, so two applies never wait on each other crosswise.
    for (const q of [...qualified].sort()) {
      await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `lifeboat-repair:${opts.repairId}:${q}`,
      ]);
    }
    const prior = await client.query<{ table_name: string; updated: string; inserted: string; skipped: string }>(
      `select table_name, updated::text, inserted::text, skipped::text from ${audit} where repair_id = $1 and table_name = any($2::text[])`,
      [opts.repairId, qualified],
    );
    const results: Array<Omit<ApplyResult, 'transactionMs' | 'lockedMs'> & { lockedFrom?: number }> = shapes.map(
      (s) => {
        const p = prior.rows.find((r) => r.table_name === s.qualified);
        return {
          repairId: opts.repairId,
          table: s.qualified,
          alreadyApplied: p !== undefined,
          updated: Number(p?.updated ?? 0),
          inserted: Number(p?.inserted ?? 0),
          skipped: Number(p?.skipped ?? 0),
          skippedKeys: [],
          sequencesAdvanced: [],
          auditTable: audit,
        };
      },
    );
    const todo = results.flatMap((r, i) => (r.alreadyApplied ? [] : [i]));
    const finished = () => {
      const end = Date.now();
      return results.map(({ lockedFrom, ...r }) => ({
        ...r,
        transactionMs: end - started,
        lockedMs: lockedFrom === undefined ? 0 : end - lockedFrom,
      }));
    };
    if (todo.length === 0) {
      await client.query('rollback');
      closeAll();
      return finished();
    }
    const ordered = await parentsFirst(
      client,
      todo.map((i) => qualified[i]!),
    );
    cycle = ordered.cycle;

    for (const i of ordered.order.map((j) => todo[j]!)) {
      const shape = shapes[i]!;
      const res = results[i]!;
      at = shape.qualified;
      const cols = shape.columns;
      const nk = shape.keyColumns.length;
      const st = repairStatements(shape);
      await client.query(st.createStaging);
      const perRow = st.stagingColumns.length;
      const batchRows = Math.max(1, Math.floor(30_000 / perRow));
      let batch: unknown[] = [];
      let loaded = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        const nrows = batch.length / perRow;
        const values = Array.from(
          { length: nrows },
          (_, r) => `(${Array.from({ length: perRow }, (_, c) => `$${r * perRow + c + 1}`).join(',')})`,
        ).join(',');
        await client.query(`insert into ${STAGING} (${st.stagingColumns.join(',')}) values ${values}`, batch);
        batch = [];
        opts.onProgress?.(shape.qualified, loaded);
      };
      for await (const r of plans[i]!.rows) {
        if (!classes.includes(r.class)) continue;
        loaded += 1;
        const expect = r.expect ?? cols.map(() => null);
        batch.push(loaded, r.expect ? 'update' : 'insert', ...r.key, ...r.restore, ...expect);
        if (batch.length >= batchRows * perRow) await flush();
      }
      await flush();
      await client.query(`analyze ${STAGING}`);

      // From this table's first restored row on, its row lock is held until
      // the one commit: lockedMs is what writers of those rows wait at most.
      res.lockedFrom = Date.now();
      res.updated = st.update ? Number((await client.query<{ n: string }>(st.update)).rows[0]?.n ?? 0) : 0;
      res.inserted = Number((await client.query<{ n: string }>(st.insert)).rows[0]?.n ?? 0);
      const skippedRes = await client.query<Record<string, string>>(st.skipped, [opts.skippedKeysLimit ?? 1000]);
      res.skipped = Number(skippedRes.rows[0]?.total ?? 0);
      res.skippedKeys = skippedRes.rows.map((r) => Array.from({ length: nk }, (_, j) => r[`k${j}`]!));
      // The next table stages under the same name (the SQL shown to approvers).
      await client.query(`drop table ${STAGING}`);

      if (res.inserted > 0) {
        const seqs = await client.query<{ seq: string; col: string }>(
          `select pg_get_serial_sequence($1, a.attname) as seq, a.attname as col
             from pg_attribute a where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
              and pg_get_serial_sequence($1, a.attname) is not null`,
          [shape.qualified],
        );
        for (const { seq, col } of seqs.rows) {
          // setval(seq, max, true): the next value is max + 1. Only forwards:
          // a sequence ahead of the column (the usual case) is left alone.
          const r = await client.query<{ moved: boolean }>(
            `select coalesce((select max(${ident(col)}) from ${shape.qualified}) > (select case when is_called then last_value else last_value - 1 end from ${seq}), false) as moved`,
          );
          if (r.rows[0]?.moved) {
            await client.query(`select setval($1, (select max(${ident(col)}) from ${shape.qualified}), true)`, [seq]);
            res.sequencesAdvanced.push(seq);
          }
        }
      }
    }

    // The audit rows last, all in this transaction: present means every table's restore committed.
    at = 'its audit rows';
    for (const i of ordered.order.map((j) => todo[j]!)) {
      const r = results[i]!;
      await client.query(
        `insert into ${audit} (repair_id, table_name, updated, inserted, skipped, classes, approved_by) values ($1, $2, $3, $4, $5, $6, $7)`,
        [opts.repairId, r.table, r.updated, r.inserted, r.skipped, [...classes], opts.approvedBy],
      );
    }
    at = 'commit (deferred constraints are checked there)';
    await client.query('commit');
    return finished();
  } catch (err) {
    closeAll();
    await client.query('rollback').catch(() => undefined);
    if (err instanceof LifeboatError) throw err;
    throw applyFailure(err, { repairId: opts.repairId, named, at, cycle, lockTimeoutMs: opts.lockTimeoutMs });
  }
}
