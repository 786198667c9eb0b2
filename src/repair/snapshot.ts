// Reading the rows of a table for a repair, ordered by primary key, streamed:
// a server-side cursor fetched in batches (pg-copy-streams and pg-cursor are
// not dependencies; DECLARE/FETCH needs nothing more than `pg`), so neither
// the worker nor the server holds all rows at once, and a snapshot file on
// disk (JSON lines) that classify.ts reads back the same way.
//
// Order: every key column is ordered by its text form with COLLATE "C"
// (`k::text COLLATE "C"`), on the copy and on the primary alike, and the merge
// in classify.ts compares keys the same way (code point order, which is the
// byte order of UTF-8). Ordering by the key's own type or the database's
// collation would be faster (an index scan), but the merge must compare keys
// in exactly the order the server sorted them, and JavaScript cannot
// reproduce a libc/ICU collation or every type's ordering; a merge that
// disagrees with the server would pair the wrong rows. The copy of a database
// restored on another host could even sort text differently (another glibc).
// So the database must be UTF8 (refused otherwise: "C" then sorts bytes of
// another encoding than the client sees).
//
// The optional `where` is operator SQL, run as given, on the copy and on the
// primary, inside a READ ONLY transaction (it cannot write; it can be slow).
// It selects rows on each side separately: a predicate on a column the
// incident changed selects different rows before and after it (see
// classify.ts).
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ClientBase } from 'pg';
import { LifeboatError, withContext } from '../errors';
import { createLinesFile } from './lines-file';
import { ident, pinTextFormat, readTableShape, type TableShape } from './keys';

/** A row as text per column (attnum order); null is SQL NULL, distinct from ''. */
export type TextRow = (string | null)[];

export interface SnapshotHeader {
  lifeboatRepairSnapshot: 1;
  schema: string;
  name: string;
  table: string;
  columns: TableShape['columns'];
  keyColumns: string[];
  where: string | null;
}

export interface RowSource {
  shape: TableShape;
  rows: AsyncGenerator<TextRow>;
  /** Ends the source (its read transaction), read to the end or not. */
  close(): Promise<void>;
}

const FETCH_ROWS = 10_000;
const identity = (v: string) => v;

/** SELECT of every column as text, ordered by key as the merge expects. */
export function selectSql(shape: TableShape, where?: string): string {
  const cols = shape.columns.map((c) => `${ident(c.name)}::text`).join(', ');
  const order = shape.keyColumns.map((k) => `${ident(k)}::text collate "C"`).join(', ');
  return `select ${cols} from ${shape.qualified}${where ? ` where (${where})` : ''} order by ${order}`;
}

async function assertUtf8(client: ClientBase): Promise<void> {
  const { rows } = await client.query<{ enc: string; db: string }>(
    'select pg_encoding_to_char(encoding) as enc, datname as db from pg_database where datname = current_database()',
  );
  const enc = rows[0]?.enc;
  if (enc !== 'UTF8') {
    throw new LifeboatError(
      'INPUT_INVALID',
      `database ${rows[0]?.db ?? '?'} is encoded ${enc}: a repair orders keys by their UTF-8 bytes and supports UTF8 databases only`,
      {
        hints: ['repair this database by hand from the restored copy'],
      },
    );
  }
}

/** A failed read: the server refused the query (the predicate, a privilege) or the connection failed. */
function readFailure(err: unknown, table: string, where: string | undefined): LifeboatError {
  const sqlstate = (err as { code?: unknown }).code;
  const what = `reading ${table}${where ? ` where (${where})` : ''} failed: ${(err as Error).message}`;
  if (typeof sqlstate !== 'string' || !/^[0-9A-Z]{5}$/.test(sqlstate)) {
    return new LifeboatError('PG_UNREACHABLE', what, {
      cause: err,
      hints: ['the connection to the server failed; the read is retried from the start'],
    });
  }
  if (sqlstate === '42501') {
    return new LifeboatError('PRIVILEGE_MISSING', what, {
      cause: err,
      hints: [`the role needs USAGE on the schema and SELECT on ${table} (lifeboat grants)`],
    });
  }
  return new LifeboatError(where ? 'INPUT_INVALID' : 'SQL_FAILED', what, {
    cause: err,
    hints: where
      ? [
          'check the --where predicate: it is run as given, on the copy and on the primary, inside a READ ONLY transaction (it cannot write)',
        ]
      : ['the server refused the read; its log says more'],
    details: { sqlstate },
  });
}

/**
 * A read the restored copy refused for want of a privilege: the copy has the
 * grants its base backup recorded, and a copy paused in recovery takes no
 * GRANT, so readFailure's hint (grant it) cannot help this run, only the
 * copies of later backups. Any other error is returned as it is.
 */
export function copyReadRefused(err: unknown, runbook: string, tables: string[]): unknown {
  if (!(err instanceof LifeboatError) || err.code !== 'PRIVILEGE_MISSING') return err;
  return new LifeboatError('PRIVILEGE_MISSING', `on the restored copy: ${err.what}`, {
    cause: err,
    details: err.details,
    hints: [
      ...err.hints,
      'the copy was restored from a base backup and has the grants that backup recorded: a grant made on the primary after it is not in the copy, and a copy paused in recovery takes no GRANT',
      `grant it on the primary now (lifeboat grants --runbook ${runbook} --repair-tables ${tables.join(',')}) and take a base backup (lifeboat backup --runbook ${runbook}), so that copies restored from later backups have it`,
      'for this incident, an earlier backup is unlikely to have it either: repair by hand from a copy read as a role that could read these tables when the backup was taken (e.g. their owner)',
    ],
  });
}

/**
 * Streams the rows of `table` from `client`, inside its own
 * REPEATABLE READ READ ONLY transaction (one snapshot of the table, the
 * where clause cannot write). The transaction ends when the iteration ends
 * (or is abandoned by `break`/throw); the client must not be used meanwhile.
 */
export async function readRows(client: ClientBase, table: string, opts: { where?: string } = {}): Promise<RowSource> {
  await client.query('begin isolation level repeatable read read only');
  let shape: TableShape;
  try {
    await pinTextFormat(client);
    await assertUtf8(client);
    shape = await readTableShape(client, table);
    try {
      await client.query(`declare lifeboat_repair_rows no scroll cursor for ${selectSql(shape, opts.where)}`);
    } catch (err) {
      throw readFailure(err, shape.qualified, opts.where);
    }
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
  async function* rows(): AsyncGenerator<TextRow> {
    try {
      for (;;) {
        // The query (and the where predicate) runs here, not at DECLARE.
        const res = await client
          .query<TextRow>({
            text: `fetch ${FETCH_ROWS} from lifeboat_repair_rows`,
            rowMode: 'array',
            types: { getTypeParser: () => identity },
          })
          .catch((err: unknown) => {
            throw readFailure(err, shape.qualified, opts.where);
          });
        for (const r of res.rows) yield r;
        if (res.rows.length < FETCH_ROWS) break;
      }
      await client.query('commit');
    } finally {
      // After commit this is a harmless warning; after a break or an error it ends the transaction.
      await client.query('rollback').catch(() => undefined);
    }
  }
  // A generator never started does not run its finally: end the transaction here (a no-op after commit).
  return rowSource(shape, rows(), () => client.query('rollback').catch(() => undefined));
}

/** A source of `rows` whose close() ends the generator, then runs `end` (its transaction, its file). */
function rowSource(shape: TableShape, rows: AsyncGenerator<TextRow>, end: () => unknown): RowSource {
  return {
    shape,
    rows,
    async close() {
      await rows.return(undefined);
      await end();
    },
  };
}

/** Writes the rows of `table` into `file` (JSON lines: a header, then one array per row). */
export async function snapshotTable(
  client: ClientBase,
  opts: { table: string; where?: string; file: string; onProgress?: (rows: number) => void },
): Promise<{ file: string; rows: number; shape: TableShape }> {
  const out = await createLinesFile(opts.file);
  let source: RowSource;
  try {
    source = await readRows(client, opts.table, { where: opts.where });
  } catch (err) {
    await out.abort();
    throw err;
  }
  const { shape, rows } = source;
  const header: SnapshotHeader = {
    lifeboatRepairSnapshot: 1,
    schema: shape.schema,
    name: shape.name,
    table: shape.qualified,
    columns: shape.columns,
    keyColumns: shape.keyColumns,
    where: opts.where ?? null,
  };
  let n = 0;
  try {
    await out.write(header);
    for await (const r of rows) {
      await out.write(r);
      n += 1;
      if (n % 50_000 === 0) opts.onProgress?.(n);
    }
    await out.close();
  } catch (err) {
    await source.close();
    await out.abort();
    throw withContext(`while writing a snapshot of ${shape.qualified} to ${opts.file}`, err);
  }
  return { file: opts.file, rows: n, shape };
}

/** Reads a snapshot file back as a row source (streamed, line by line). */
export async function readSnapshot(file: string): Promise<RowSource> {
  const input = createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await lines.next();
  const header = first.done ? undefined : (JSON.parse(first.value) as SnapshotHeader);
  if (!header || header.lifeboatRepairSnapshot !== 1) {
    throw new LifeboatError('INPUT_INVALID', `${file} is not a repair snapshot (no header line)`, {
      hints: ['snapshots are written by snapshotTable'],
    });
  }
  const shape: TableShape = {
    schema: header.schema,
    name: header.name,
    qualified: header.table,
    columns: header.columns,
    keyColumns: header.keyColumns,
  };
  async function* rows(): AsyncGenerator<TextRow> {
    for (;;) {
      const next = await lines.next();
      if (next.done) return;
      if (next.value !== '') yield JSON.parse(next.value) as TextRow;
    }
  }
  return rowSource(shape, rows(), () => input.destroy());
}
