// run-invariants (DESIGN.md §4.1 step 9): on the restored instance, paused
// at the target and read-only (a hot standby), before anyone approves the
// promotion: the runbook's SQL invariants, then built-in checks of what a
// restore can get wrong (invalid indexes, databases that refuse connections,
// extensions whose files are missing, sequences that would hand out ids
// already used). Everything here only reads: a paused standby refuses writes.
//
// A failed check is a result, not an error: the operator sees every result at
// approve-promote. Only an instance that does not answer fails the activity.
import type { Client, CustomTypesConfig } from 'pg';
import { errorMessage, isLifeboatError } from '../src/errors';
import { restoredEndpoint } from '../src/gates';
import { inTransaction, withClient, type Endpoint } from '../src/gates/sql';
import type { InvariantResult, RestoreInstanceKind } from '../src/recovery/contract';
import { restoreSite, siteClientConfig } from '../src/restore/site';
import { loadRunbook } from '../src/runbook/load';
import type { Runbook } from '../src/runbook/schema';
import { lifeboatActivity } from './failure';
import { OWNED_INTEGER_SEQUENCES } from '../src/pg/owned-sequences';

/** Per invariant: long enough for a count over a big table, short of hanging the step. */
const INVARIANT_TIMEOUT = '120s';

/**
 * Step 9: the runbook's invariants and the built-in checks on the paused
 * copy. Run twice: every query runs in a read-only transaction that is
 * rolled back, so a second run only reads again.
 */
export async function runInvariants(input: {
  runbook: string;
  instance?: RestoreInstanceKind;
}): Promise<InvariantResult[]> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const endpoint = instanceEndpoint(runbook, input.instance);
    return withClient(endpoint({}), async (client) => {
      const results: InvariantResult[] = [];
      for (const inv of runbook.invariants) results.push(await runInvariant(client, inv));
      results.push(...(await perDatabaseChecks(endpoint, client)));
      results.push(await sequencesAhead(client));
      return results;
    });
  });
}

type EndpointOf = (overrides: { database?: string }) => Endpoint;

/** The restored instance (a recovery), or the drill copy of restoreDrill. */
function instanceEndpoint(runbook: Runbook, instance: RestoreInstanceKind | undefined): EndpointOf {
  if (instance !== 'drill') return (o) => restoredEndpoint(runbook, o);
  const site = restoreSite(runbook, 'drill');
  return (o) => ({
    config: siteClientConfig(runbook, site, o),
    label: 'the drill copy',
    unreachableHints: [
      `check that the drill's PostgreSQL runs on ${site.host} in ${site.dataDir} and listens on ${site.address}:${site.port}`,
      'the replay-wal step starts it; see its log beside the data directory',
    ],
  });
}

// PostgreSQL's own text for every value ('t', '0.00', timestamps as the
// server prints them): what an operator would see in psql, and what the
// runbook's `expect` is written against.
const asText: CustomTypesConfig = {
  getTypeParser: (() => (value: string) => value) as unknown as CustomTypesConfig['getTypeParser'],
};

/** Read-only, with a time limit, rolled back: works on a paused standby and touches nothing on a promoted one. */
async function readOnly<T>(client: Client, body: () => Promise<T>): Promise<T> {
  return inTransaction(client, 'begin read only', async () => {
    await client.query(`set local statement_timeout = '${INVARIANT_TIMEOUT}'`);
    return body();
  });
}

async function runInvariant(client: Client, inv: Runbook['invariants'][number]): Promise<InvariantResult> {
  const expected = String(inv.expect);
  try {
    const res = await readOnly(client, () =>
      client.query<unknown[]>({ text: inv.sql, rowMode: 'array', types: asText }),
    );
    const first = res.rows[0];
    if (first === undefined) return { name: inv.name, passed: false, value: '(no rows)', expected };
    const raw = first[0];
    const value = raw === null || raw === undefined ? 'NULL' : String(raw);
    return { name: inv.name, passed: raw !== null && raw !== undefined && matches(value, inv.expect), value, expected };
  } catch (err) {
    if (isLifeboatError(err)) throw err;
    return { name: inv.name, passed: false, value: '', expected, error: errorMessage(err) };
  }
}

/**
 * `expect` against PostgreSQL's text: booleans as 't'/'f' (or 'true'/'false'),
 * numbers by value so that expect 0 also passes '0.00' from a numeric column,
 * anything else as the exact text.
 */
function matches(value: string, expect: string | number | boolean): boolean {
  if (typeof expect === 'boolean')
    return expect ? value === 't' || value === 'true' : value === 'f' || value === 'false';
  if (typeof expect === 'number' && value.trim() !== '' && Number(value) === expect) return true;
  return value === String(expect);
}

interface DbFinding {
  db: string;
  what: string;
}

/**
 * Connects to every database that allows connections (a restore can leave
 * one that does not start, e.g. with a missing tablespace) and, in each that
 * answers, looks for invalid indexes and for extensions whose installed
 * version has no control file on this host.
 */
async function perDatabaseChecks(endpoint: EndpointOf, client: Client): Promise<InvariantResult[]> {
  const connect: InvariantResult = {
    name: 'built-in: every database accepts connections',
    builtin: true,
    passed: false,
    value: '',
    expected: 'all',
  };
  const indexes: InvariantResult = {
    name: 'built-in: no invalid indexes',
    builtin: true,
    passed: false,
    value: '',
    expected: '0',
  };
  const extensions: InvariantResult = {
    name: 'built-in: installed extensions have their files',
    builtin: true,
    passed: false,
    value: '',
    expected: '0',
  };
  let databases: string[];
  try {
    const { rows } = await readOnly(client, () =>
      client.query<{ datname: string }>('select datname from pg_database where datallowconn order by datname'),
    );
    databases = rows.map((r) => r.datname);
  } catch (err) {
    for (const r of [connect, indexes, extensions]) r.error = errorMessage(err);
    return [connect, indexes, extensions];
  }

  const refused: DbFinding[] = [];
  const invalid: DbFinding[] = [];
  const orphaned: DbFinding[] = [];
  const errors: string[] = [];
  for (const db of databases) {
    try {
      await withClient(endpoint({ database: db }), (c) =>
        readOnly(c, async () => {
          const idx = await c.query<{ name: string }>(
            `select format('%s on %s', i.indexrelid::regclass, i.indrelid::regclass) as name
               from pg_index i where not i.indisvalid order by 1`,
          );
          invalid.push(...idx.rows.map((r) => ({ db, what: r.name })));
          const ext = await c.query<{ name: string }>(
            `select format('%s %s', e.extname, e.extversion) as name
               from pg_extension e
              where not exists (select 1 from pg_available_extension_versions v where v.name = e.extname and v.version = e.extversion)
              order by 1`,
          );
          orphaned.push(...ext.rows.map((r) => ({ db, what: r.name })));
        }),
      );
    } catch (err) {
      // A refused login is this check's finding; a failed query is an error of the other two.
      if (isLifeboatError(err) && err.details.phase === 'connect') {
        refused.push({ db, what: errorMessage(err.cause ?? err) });
      } else errors.push(`${db}: ${errorMessage(err)}`);
    }
  }

  connect.passed = refused.length === 0;
  connect.value = connect.passed
    ? `all ${databases.length} (${databases.join(', ')})`
    : `${databases.length - refused.length} of ${databases.length}; refused: ${refused.map((f) => `${f.db}: ${f.what}`).join('; ')}`;
  for (const [result, found, why] of [
    [indexes, invalid, ''],
    [extensions, orphaned, ' (no control file for that version on this host)'],
  ] as const) {
    result.passed = found.length === 0 && errors.length === 0;
    result.value =
      found.length === 0 ? '0' : `${found.length}: ${found.map((f) => `${f.what} in ${f.db}`).join(', ')}${why}`;
    if (errors.length > 0) result.error = errors.join('; ');
  }
  return [connect, indexes, extensions];
}

interface OwnedSequence {
  seq: string;
  tbl: string;
  col: string;
  increment: string;
}

/**
 * Sequences owned by an integer column (serial, identity) whose next value
 * is already used in that column: after a restore, the first inserts would
 * fail with duplicate keys. Descending sequences are checked against min().
 * The next value comes from the sequence relation itself (last_value,
 * is_called), which a hot standby can read; nextval() it could not call.
 */
async function sequencesAhead(client: Client): Promise<InvariantResult> {
  const result: InvariantResult = {
    name: 'built-in: sequences ahead of their columns',
    builtin: true,
    passed: false,
    value: '',
    expected: '0',
  };
  const behind: string[] = [];
  try {
    await readOnly(client, async () => {
      const { rows } = await client.query<OwnedSequence>(
        `select format('%I.%I', sn.nspname, s.relname) as seq,
                format('%I.%I', tn.nspname, t.relname) as tbl,
                format('%I', a.attname) as col,
                (select q.seqincrement from pg_sequence q where q.seqrelid = s.oid)::text as increment
           ${OWNED_INTEGER_SEQUENCES}
          order by 1`,
      );
      for (const o of rows) {
        const up = !o.increment.startsWith('-');
        // tbl and col were quoted by format('%I'); seq too, so it can be read as a relation.
        const { rows: found } = await client.query<{ next: string; edge: string | null; behind: boolean | null }>(
          `select s.next::text, m.edge::text, ${up ? 's.next <= m.edge' : 's.next >= m.edge'} as behind
             from (select case when is_called then last_value::numeric + $1::numeric else last_value::numeric end as next from ${o.seq}) s,
                  (select ${up ? 'max' : 'min'}(${o.col})::numeric as edge from ${o.tbl}) m`,
          [o.increment],
        );
        const f = found[0];
        if (f?.behind)
          behind.push(
            `${o.seq} would hand out ${f.next}, but ${up ? 'max' : 'min'}(${o.tbl}.${o.col}) is ${String(f.edge)}`,
          );
      }
    });
  } catch (err) {
    if (isLifeboatError(err)) throw err;
    result.error = errorMessage(err);
    return result;
  }
  result.passed = behind.length === 0;
  result.value = behind.length === 0 ? '0' : `${behind.length}: ${behind.join('; ')}`;
  return result;
}
