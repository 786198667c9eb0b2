// Applying a repair plan (classify.ts) on the live primary, in ONE
// transaction: either every restored row, the sequences and the audit row
// commit together, or nothing does.
//
// - Rows are loaded into a temporary staging table (ON COMMIT DROP) in
//   batched multi-row INSERTs (pg-copy-streams is not a dependency), then
//   restored by one `UPDATE ... FROM staging` and one
//   `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
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
//   always: a restored row pointing at a parent deleted since makes the whole
//   transaction fail with SQL_FAILED naming the constraint, nothing applied.
// - Sequences owned by a column of the table are moved to at least the
//   column's max after inserts (never backwards).
// - Audit: one row per repaired table in <auditSchema>.lifeboat_repair_audit
//   (created on first use; auditSchema defaults to current_schema()). Its
//   primary key (repair_id, table_name) makes apply idempotent: a row for this
//   repair and table means the repair committed, and apply returns it as
//   "already applied"; a crash during commit leaves either both or neither.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ClientBase } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import { SAFE_CLASSES, type PlanHeader, type PlanRow, type RepairClass } from './classify';
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

export interface ApplyResult {
  repairId: string;
  table: string;
  alreadyApplied: boolean;
  updated: number;
  inserted: number;
  skipped: number;
  /** Keys of skipped rows (each an array of key column texts), at most skippedKeysLimit. */
  skippedKeys: string[][];
  sequencesAdvanced: string[];
  auditTable: string;
  /** Staging load + restore, in milliseconds (the transaction's length). */
  transactionMs: number;
  /** From the first restoring statement to commit: the longest a writer of a restored row waited on its lock. */
  lockedMs: number;
}

const AUDIT_TABLE = 'lifeboat_repair_audit';

async function auditTableName(client: ClientBase, schema: string | undefined): Promise<string> {
  const s = schema ?? (await client.query<{ s: string | null }>('select current_schema() as s')).rows[0]?.s;
  if (!s) {
    throw new LifeboatError('INPUT_INVALID', 'no schema for the repair audit table: the search_path names no existing schema', {
      hints: ['set auditSchema (e.g. the runbook gates\' schema) or give the role a search_path with a schema it can create in'],
    });
  }
  return `${ident(s)}.${AUDIT_TABLE}`;
}

async function readPlan(file: string): Promise<{ header: PlanHeader; rows: AsyncGenerator<PlanRow> }> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await lines.next();
  const header = first.done ? undefined : (JSON.parse(first.value) as PlanHeader);
  if (!header || header.lifeboatRepairPlan !== 1) throw new LifeboatError('INPUT_INVALID', `${file} is not a repair plan (no header line)`, { hints: ['plans are written by classify'] });
  async function* rows(): AsyncGenerator<PlanRow> {
    for (;;) {
      const next = await lines.next();
      if (next.done) return;
      if (next.value !== '') yield JSON.parse(next.value) as PlanRow;
    }
  }
  return { header, rows: rows() };
}

export async function applyPlan(client: ClientBase, opts: ApplyOptions): Promise<ApplyResult> {
  const classes = opts.classes ?? SAFE_CLASSES;
  const { header, rows } = await readPlan(opts.planFile);
  const started = Date.now();
  await client.query('begin isolation level read committed');
  try {
    await pinTextFormat(client);
    if (opts.lockTimeoutMs !== undefined) await client.query(`set local lock_timeout = ${Math.max(0, Math.floor(opts.lockTimeoutMs))}`);
    // A worker killed mid-apply leaves its session behind; PostgreSQL notices
    // a vanished client only when it next talks to it, so a session waiting
    // on a row lock would keep the rows it already restored locked (live
    // writers wait) until that wait ends. Polling the socket every second
    // (PostgreSQL 14+, Linux) ends it and rolls it back instead.
    await client.query(`select set_config('client_connection_check_interval', '1000', true) where current_setting('server_version_num')::int >= 140000`);
    const audit = await auditTableName(client, opts.auditSchema);
    // The plan's columns, matched by name on the table as it is now (a column
    // added since is left alone; one dropped or retyped since refuses).
    const live = await readTableShape(client, header.table);
    const { shape } = matchShapes('the live primary at apply', { ...header, qualified: header.table }, live);
    await client.query(
      `create table if not exists ${audit} (
         repair_id text not null, table_name text not null,
         updated bigint not null, inserted bigint not null, skipped bigint not null,
         classes text[] not null, approved_by text[] not null,
         applied_by text not null default current_user, applied_at timestamptz not null default now(),
         primary key (repair_id, table_name))`,
    );
    // Two applies of one repair at once: the second waits here, then sees the first's row.
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`lifeboat-repair:${opts.repairId}:${shape.qualified}`]);
    const prior = await client.query<{ updated: string; inserted: string; skipped: string }>(
      `select updated::text, inserted::text, skipped::text from ${audit} where repair_id = $1 and table_name = $2`,
      [opts.repairId, shape.qualified],
    );
    if (prior.rows[0]) {
      await client.query('rollback');
      const p = prior.rows[0];
      return {
        repairId: opts.repairId, table: shape.qualified, alreadyApplied: true,
        updated: Number(p.updated), inserted: Number(p.inserted), skipped: Number(p.skipped), skippedKeys: [], sequencesAdvanced: [],
        auditTable: audit, transactionMs: Date.now() - started, lockedMs: 0,
      };
    }

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
      const values = Array.from({ length: nrows }, (_, r) => `(${Array.from({ length: perRow }, (_, c) => `$${r * perRow + c + 1}`).join(',')})`).join(',');
      await client.query(`insert into ${STAGING} (${st.stagingColumns.join(',')}) values ${values}`, batch);
      batch = [];
      opts.onProgress?.(loaded);
    };
    for await (const r of rows) {
      if (!classes.includes(r.class)) continue;
      loaded += 1;
      const expect = r.expect ?? cols.map(() => null);
      batch.push(loaded, r.expect ? 'update' : 'insert', ...r.key, ...r.restore, ...expect);
      if (batch.length >= batchRows * perRow) await flush();
    }
    await flush();
    await client.query(`analyze ${STAGING}`);

    // From the first restored row on, its row lock is held until commit: lockedMs is what writers of those rows wait at most.
    const lockedFrom = Date.now();
    const updated = st.update ? Number((await client.query<{ n: string }>(st.update)).rows[0]?.n ?? 0) : 0;
    const inserted = Number((await client.query<{ n: string }>(st.insert)).rows[0]?.n ?? 0);
    const skippedRes = await client.query<Record<string, string>>(st.skipped, [opts.skippedKeysLimit ?? 1000]);
    const skipped = Number(skippedRes.rows[0]?.total ?? 0);
    const skippedKeys = skippedRes.rows.map((r) => Array.from({ length: nk }, (_, j) => r[`k${j}`]!));

    const sequencesAdvanced: string[] = [];
    if (inserted > 0) {
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
          sequencesAdvanced.push(seq);
        }
      }
    }

    await client.query(
      `insert into ${audit} (repair_id, table_name, updated, inserted, skipped, classes, approved_by) values ($1, $2, $3, $4, $5, $6, $7)`,
      [opts.repairId, shape.qualified, updated, inserted, skipped, [...classes], opts.approvedBy],
    );
    await client.query('commit');
    return {
      repairId: opts.repairId, table: shape.qualified, alreadyApplied: false,
      updated, inserted, skipped, skippedKeys, sequencesAdvanced, auditTable: audit,
      transactionMs: Date.now() - started, lockedMs: Date.now() - lockedFrom,
    };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    if (err instanceof LifeboatError) throw err;
    const pgErr = err as { code?: string; constraint?: string; detail?: string };
    const what = `repair ${opts.repairId} of ${header.table} failed and was rolled back, nothing applied: ${errorMessage(err)}${pgErr.detail ? ` (${pgErr.detail})` : ''}`;
    const hints =
      pgErr.code === '23503'
        ? [`foreign key ${pgErr.constraint ?? '?'}: a restored row refers to a row deleted since (or a row deleted since refers to it); restore the parent rows first (repair that table too) or exclude these keys`]
        : pgErr.code === '55P03'
          ? [`a row or table lock was not granted within lock_timeout (${opts.lockTimeoutMs ?? 'the role\'s'} ms): a long transaction holds rows of the table; find it in pg_stat_activity, then apply again`]
          : pgErr.code === '42501'
          ? [`the role lacks a privilege for the repair: SELECT, INSERT, UPDATE on the table, SELECT, UPDATE on its sequences, TEMPORARY on the database, CREATE on the audit schema; lifeboat grants --runbook <name> --repair-tables ${header.table} prints them`]
          : ['the primary is unchanged: fix the cause and apply again (the same repair id is safe to retry)'];
    // The connection lost (no SQLSTATE, or the server ended the session): the
    // transaction did not commit unless COMMIT itself was in flight; either
    // way a retry with the same repair id finds out from the audit row.
    if (!pgErr.code || /^(08|57P)/.test(pgErr.code)) {
      throw new LifeboatError('PG_UNREACHABLE', what.replace('failed and was rolled back, nothing applied', 'lost its connection to the primary'), {
        cause: err,
        hints: ['apply again with the same repair id: it restores the rows if the transaction did not commit, and says "already applied" if it did'],
        details: { sqlstate: pgErr.code },
      });
    }
    throw new LifeboatError(pgErr.code === '42501' ? 'PRIVILEGE_MISSING' : 'SQL_FAILED', what, { cause: err, hints, details: { sqlstate: pgErr.code } });
  }
}
