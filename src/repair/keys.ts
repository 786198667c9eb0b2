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
    const { rows } = await client.query<{ sp: string; db: string }>(
      `select current_setting('search_path') as sp, current_database() as db`,
    );
    const searchPath = rows[0]?.sp ?? '?';
    throw new LifeboatError(
      'INPUT_INVALID',
      `table ${table} does not exist (or this role cannot see it) in database ${rows[0]?.db ?? '?'}`,
      {
        hints: [
          `name it schema-qualified (e.g. public.${table.split('.').pop()}); unqualified names are looked up on the search_path (${searchPath})`,
          'the role needs USAGE on its schema to see it',
        ],
      },
    );
  }
  const qualified = `${ident(rel.schema)}.${ident(rel.name)}`;
  if (rel.relkind !== 'r' && rel.relkind !== 'p') {
    throw new LifeboatError(
      'INPUT_INVALID',
      `${qualified} is not a table (relkind ${rel.relkind}): a repair restores rows of ordinary or partitioned tables`,
      {
        hints: ['name the table the view or materialized view reads from'],
      },
    );
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
    columns: cols.rows.map((c) => ({
      name: c.name,
      type: c.type,
      generated: c.generated,
      identityAlways: c.identity_always,
    })),
    keyColumns: keys.rows.map((k) => k.name),
  };
}

type ShapeLike = Pick<TableShape, 'qualified' | 'columns' | 'keyColumns'>;

/** What differs between the columns of `copy` and `other`, matched by name. */
function columnDifferences(copy: ShapeLike, other: ShapeLike) {
  const byName = new Map(other.columns.map((c) => [c.name, c]));
  const missing = copy.columns.filter((c) => !byName.has(c.name));
  const retyped = copy.columns.flatMap((c) => {
    const o = byName.get(c.name);
    return o && o.type !== c.type ? [{ name: c.name, copy: c.type, other: o.type }] : [];
  });
  const keyDiffers = copy.keyColumns.join('\u0000') !== other.keyColumns.join('\u0000');
  const names = new Set(copy.columns.map((c) => c.name));
  return {
    byName,
    missing,
    retyped,
    keyDiffers,
    onlyInOther: other.columns.filter((c) => !names.has(c.name)).map((c) => c.name),
  };
}

function refuseShape(
  what: string,
  copy: ShapeLike,
  other: ShapeLike,
  d: ReturnType<typeof columnDifferences>,
  side: 'primary' | 'after',
): never {
  const missingHint = side === 'primary';
  const list = (names: string[]) => names.join(', ');
  const problems = [
    ...(d.keyDiffers
      ? [`primary key (${list(copy.keyColumns)}) on the copy, (${list(other.keyColumns)}) on ${what}`]
      : []),
    ...(missingHint && d.missing.length > 0
      ? [`column${d.missing.length > 1 ? 's' : ''} ${list(d.missing.map((c) => `${c.name} ${c.type}`))} not on ${what}`]
      : []),
    ...d.retyped.map((r) => `column ${r.name} is ${r.copy} on the copy, ${r.other} on ${what}`),
  ];
  const hints: string[] = [];
  if (d.keyDiffers)
    hints.push('a repair matches rows by primary key: the copy and the primary need the same key columns');
  if (missingHint && d.missing.length > 0) {
    hints.push(
      `to restore the values of a dropped column, add it back on the primary (${d.missing.map((c) => `ALTER TABLE ${other.qualified} ADD COLUMN ${ident(c.name)} ${c.type}`).join('; ')}), then start the repair again: its values are restored into it`,
    );
  }
  if (d.retyped.length > 0 && side === 'primary') {
    hints.push(
      `values are compared and restored as text in the column's type: give the column on the primary the copy's type (${d.retyped.map((r) => `ALTER TABLE ${other.qualified} ALTER COLUMN ${ident(r.name)} TYPE ${r.copy}`).join('; ')}), or restore it by hand from the copy`,
    );
  }
  if (d.retyped.length > 0 && side === 'after') {
    hints.push(
      "the incident changed the column's type, so its values before and after it do not compare as text: repair without an after target (every difference shown as a candidate), or by hand from the copy",
    );
  }
  throw new LifeboatError(
    'INPUT_INVALID',
    `table ${copy.qualified} on ${what} does not match the copy at the before target: ${problems.join('; ')}`,
    {
      hints,
      details: { table: copy.qualified },
    },
  );
}

export interface MatchedShape {
  /** The copy's columns in the copy's order, each with the primary's type and flags: what a repair compares and restores. */
  shape: TableShape;
  /** Columns of the primary the copy does not have (added since): neither compared nor restored, kept as they are. */
  onlyOnPrimary: string[];
}

/**
 * Matches the columns of the copy's table (the rows to restore) with the
 * primary's BY NAME, not by position: a column the incident dropped and an
 * operator added back since has a new attnum, at the end, and its values are
 * restored into it. A column added on the primary since is left alone.
 * Refused, naming the columns: another primary key; a column of the copy the
 * primary does not have (its values would be silently lost); a column with
 * another type on each side (text forms of two types need not compare).
 */
export function matchShapes(what: string, copy: ShapeLike, primary: TableShape): MatchedShape {
  const d = columnDifferences(copy, primary);
  if (d.keyDiffers || d.missing.length > 0 || d.retyped.length > 0) refuseShape(what, copy, primary, d, 'primary');
  return {
    shape: { ...primary, columns: copy.columns.map((c) => d.byName.get(c.name)!) },
    onlyOnPrimary: d.onlyInOther,
  };
}

/**
 * Matches the copy at the *after* target with the shape being compared: a
 * column it lacks (the incident dropped it; it is added back only later) is
 * read as NULL there, which is what the column added back holds for rows
 * nobody wrote since. Returns those columns; refuses another key or type.
 */
export function matchAfterShape(what: string, compared: ShapeLike, after: ShapeLike): string[] {
  const d = columnDifferences(compared, after);
  if (d.keyDiffers || d.retyped.length > 0) refuseShape(what, compared, after, d, 'after');
  return d.missing.map((c) => c.name);
}
