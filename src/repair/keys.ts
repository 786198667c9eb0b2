// The shape of a table a repair works on, read from the catalog: its primary
// key and its columns. Repair without failover (issue 14) matches rows of a
// restored copy and of the live primary by primary key, so a table without
// one is refused here, before anything is read.
//
// Every value a repair compares travels as text (`col::text`), so the format
// of that text must be the same in every session that reads or compares it:
// `pinTextFormat` sets it (a timestamptz prints in the session's TimeZone, a
// float in extra_float_digits, a bytea in bytea_output).
import type { ClientBase } from 'pg';
import { LifeboatError } from '../errors';

export interface RepairColumn {
  name: string;
  /** format_type(atttypid, atttypmod): the type a text value is cast back to on the primary. */
  type: string;
  /** GENERATED ALWAYS AS (...) STORED: compared, never written. */
  generated: boolean;
  /** GENERATED ALWAYS AS IDENTITY: inserted with OVERRIDING SYSTEM VALUE, never updated. */
  identityAlways: boolean;
}

export interface TableShape {
  schema: string;
  name: string;
  /** "schema"."name", quoted for SQL. */
  qualified: string;
  /** Every live column in attnum order (dropped columns excluded). */
  columns: RepairColumn[];
  /** Primary key columns in key order (each also in `columns`). */
  keyColumns: string[];
}

/** Quotes an identifier for SQL (what quote_ident does, always quoting). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Session settings that fix the text form of values, as SET LOCAL (call it
 * inside the transaction). The copy and the primary have the same
 * postgresql.conf but a client (PGTZ, PGDATESTYLE) or a role's settings may
 * differ; without this a timestamptz read as '... +00' on the copy would
 * never equal '... +02' on the primary and every row would look changed.
 */
export async function pinTextFormat(client: ClientBase): Promise<void> {
  await client.query(
    `set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres';
     set local extra_float_digits = 1; set local bytea_output = 'hex'`,
  );
}

/**
 * Reads the key and columns of `table` (schema-qualified, or found on the
 * search_path as PostgreSQL would). Refuses a table that does not exist, is
 * not an ordinary or partitioned table, or has no primary key.
 */
export async function readTableShape(client: ClientBase, table: string): Promise<TableShape> {
  const found = await client.query<{ oid: string; schema: string; name: string; relkind: string }>(
    `select c.oid::text as oid, n.nspname as schema, c.relname as name, c.relkind::text as relkind
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.oid = to_regclass($1)`,
    [table],
  );
  const rel = found.rows[0];
  if (!rel) {
    const { rows } = await client.query<{ sp: string; db: string }>(`select current_setting('search_path') as sp, current_database() as db`);
    const searchPath = rows[0]?.sp ?? '?';
    throw new LifeboatError('INPUT_INVALID', `table ${table} does not exist (or this role cannot see it) in database ${rows[0]?.db ?? '?'}`, {
      hints: [
        `name it schema-qualified (e.g. public.${table.split('.').pop()}); unqualified names are looked up on the search_path (${searchPath})`,
        'the role needs USAGE on its schema to see it',
      ],
    });
  }
  const qualified = `${ident(rel.schema)}.${ident(rel.name)}`;
  if (rel.relkind !== 'r' && rel.relkind !== 'p') {
    throw new LifeboatError('INPUT_INVALID', `${qualified} is not a table (relkind ${rel.relkind}): a repair restores rows of ordinary or partitioned tables`, {
      hints: ['name the table the view or materialized view reads from'],
    });
  }
  const cols = await client.query<{ name: string; type: string; generated: boolean; identity_always: boolean }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
            a.attgenerated <> '' as generated, a.attidentity = 'a' as identity_always
       from pg_attribute a
      where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped
      order by a.attnum`,
    [rel.oid],
  );
  const keys = await client.query<{ name: string }>(
    `select a.attname as name
       from pg_index i
       cross join lateral unnest(i.indkey) with ordinality as k(attnum, pos)
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = $1::oid and i.indisprimary
      order by k.pos`,
    [rel.oid],
  );
  if (keys.rows.length === 0) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `table ${qualified} has no primary key: a repair matches the rows of the restored copy and of the primary by primary key, and cannot tell which row is which without one`,
      {
        hints: [
          `add a primary key on the column(s) that identify a row (ALTER TABLE ${qualified} ADD PRIMARY KEY (...)), then start the repair again`,
          'or repair this table by hand from the restored copy (lifeboat drill --keep leaves one to read from)',
        ],
        details: { table: qualified },
      },
    );
  }
  return {
    schema: rel.schema,
    name: rel.name,
    qualified,
    columns: cols.rows.map((c) => ({ name: c.name, type: c.type, generated: c.generated, identityAlways: c.identity_always })),
    keyColumns: keys.rows.map((k) => k.name),
  };
}

/**
 * Refuses to compare two shapes of "the same" table that differ (a column
 * added, dropped or retyped between the copy's target and now): the row
 * values would be compared position by position and mean nothing.
 */
export function assertSameShape(what: string, expected: Pick<TableShape, 'qualified' | 'columns' | 'keyColumns'>, actual: Pick<TableShape, 'columns' | 'keyColumns'>): void {
  const describe = (s: Pick<TableShape, 'columns' | 'keyColumns'>) =>
    `columns (${s.columns.map((c) => `${c.name} ${c.type}`).join(', ')}) key (${s.keyColumns.join(', ')})`;
  if (describe(expected) !== describe(actual)) {
    throw new LifeboatError('INPUT_INVALID', `${what}: table ${expected.qualified} differs: ${describe(expected)} against ${describe(actual)}`, {
      hints: [
        'a repair compares rows column by column, so both sides must have the same columns and key',
        'a column dropped or changed since the target is not supported by this repair: restore its values by hand from the copy',
      ],
    });
  }
}
