// How check.ts finds out whether the role connected on a client has one
// need (needs.ts Probe): has_*_privilege for what has a name, EXPLAIN for
// the runbook's queries (PostgreSQL checks table privileges when the
// executor starts, and EXPLAIN starts it: a missing SELECT fails EXPLAIN
// exactly as it would fail the query, without running it). Reads only;
// the one write, a temporary view that names the tables a refused query
// reads, is rolled back. A probe that finds a piece missing says the
// grant that adds it, as precisely as PostgreSQL lets it know.
import type { Client } from 'pg';
import { errorMessage } from '../errors';
import { quoteIdent } from '../gates/sql';
import { OWNED_INTEGER_SEQUENCES } from '../pg/owned-sequences';
import { probeBody } from './grant-sql';
import type { Need } from './needs';

/** true: the role has it; otherwise missing, with the grant that fixes it and what PostgreSQL said when known. */
export type Found = true | { fix?: string; detail?: string } | undefined;

/** Whether the role connected on `client` (`me`: its pg_roles row) has `need`; `notes` gets what is not a privilege. */
export async function probe(client: Client, need: Need, me: Record<string, unknown>, notes: string[]): Promise<Found> {
  const p = need.probe;
  const role = quoteIdent(String(me.me));
  switch (p.kind) {
    case 'attribute':
      return me[p.attribute] === true ? true : undefined;
    case 'member':
      return (await one<boolean>(client, `select pg_catalog.pg_has_role(current_user, $1, 'USAGE') as v`, [p.role]))
        ? true
        : undefined;
    case 'function':
      return (await one<boolean>(client, `select pg_catalog.has_function_privilege(current_user, $1, 'EXECUTE') as v`, [
        p.signature,
      ]))
        ? true
        : undefined;
    case 'connect':
      // This very connection proves it.
      return true;
    case 'connect-all': {
      const { rows } = await client.query<{ datname: string }>(
        `select datname from pg_catalog.pg_database where datallowconn and not has_database_privilege(current_user, datname, 'CONNECT') order by 1`,
      );
      if (rows.length === 0) return true;
      return {
        fix: rows.map((r) => `GRANT CONNECT ON DATABASE ${quoteIdent(r.datname)} TO ${role};`).join('\n'),
        detail: `no CONNECT on ${rows.map((r) => r.datname).join(', ')}`,
      };
    }
    case 'table':
      return probeTable(
        client,
        p.table,
        p.privileges.map((priv) => ({ priv })),
        role,
      );
    case 'columns':
      return probeTable(
        client,
        p.table,
        [
          ...p.select.map((c) => ({ priv: 'SELECT' as const, column: c })),
          ...p.update.map((c) => ({ priv: 'UPDATE' as const, column: c })),
        ],
        role,
      );
    case 'query':
      return probeQuery(client, p.sql, role, notes, need);
    case 'sequences':
      return probeSequences(client, role);
    case 'create-schema': {
      const ok = await one<boolean>(
        client,
        `select coalesce(bool_or(has_schema_privilege(s, 'CREATE')), false) as v from unnest(current_schemas(false)) as s`,
      );
      return ok ? true : undefined;
    }
    case 'temporary':
      return (await one<boolean>(client, `select has_database_privilege(current_database(), 'TEMPORARY') as v`))
        ? true
        : undefined;
    case 'schema-create': {
      const ok = await one<boolean | null>(
        client,
        `select case when exists (select from pg_namespace where nspname = $1) then has_schema_privilege($1, 'USAGE') and has_schema_privilege($1, 'CREATE') end as v`,
        [p.schema],
      );
      if (ok === null)
        return {
          fix: `CREATE SCHEMA ${quoteIdent(p.schema)}; GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(p.schema)} TO ${role};`,
          detail: `no schema ${p.schema}`,
        };
      return ok ? true : undefined;
    }
    case 'repair-table':
      return probeRepairTable(client, p.table, role);
    default: {
      const unknown: never = p;
      throw new Error(`no probe for ${JSON.stringify(unknown)}`);
    }
  }
}

async function one<T>(client: Client, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await client.query<{ v: T }>(sql, params);
  return rows[0]!.v;
}

/** Schema USAGE, the table's existence, then each privilege (has_table_privilege with a list answers "any of them"). */
async function probeTable(
  client: Client,
  table: string,
  wanted: Array<{ priv: 'SELECT' | 'INSERT' | 'UPDATE'; column?: string }>,
  role: string,
): Promise<Found> {
  const dot = table.indexOf('.');
  const schema = dot > 0 ? table.slice(0, dot) : undefined;
  const name = dot > 0 ? `${quoteIdent(schema!)}.${quoteIdent(table.slice(dot + 1))}` : quoteIdent(table);
  if (schema) {
    const usage = await one<boolean | null>(
      client,
      `select case when exists (select from pg_namespace where nspname = $1) then has_schema_privilege($1, 'USAGE') end as v`,
      [schema],
    );
    if (usage === null)
      return {
        fix: `-- schema ${schema} does not exist in this database: check the runbook's table name ${table}`,
        detail: `no schema ${schema}`,
      };
    if (!usage)
      return { fix: `GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${role};`, detail: `no USAGE on schema ${schema}` };
  }
  const exists = await one<boolean>(client, `select to_regclass($1) is not null as v`, [name]);
  if (!exists)
    return {
      fix: `-- table ${table} does not exist in this database (or not in the role's search_path): check the runbook`,
      detail: `no table ${table}`,
    };
  // Per privilege, the columns lacking it ([] for a table-wide privilege): GRANT SELECT ("a", "b"), UPDATE ("b").
  const lackingBy = new Map<string, string[]>();
  for (const w of wanted) {
    const ok = w.column
      ? await one<boolean>(client, `select has_column_privilege($1, $2, $3) as v`, [name, w.column, w.priv])
      : await one<boolean>(client, `select has_table_privilege($1, $2) as v`, [name, w.priv]);
    if (!ok) lackingBy.set(w.priv, [...(lackingBy.get(w.priv) ?? []), ...(w.column ? [quoteIdent(w.column)] : [])]);
  }
  if (lackingBy.size === 0) return true;
  const lacking = [...lackingBy].map(([priv, cols]) => (cols.length > 0 ? `${priv} (${cols.join(', ')})` : priv));
  return { fix: `GRANT ${lacking.join(', ')} ON TABLE ${name} TO ${role};`, detail: `lacks ${lacking.join(', ')}` };
}

/** An operator's table name (orders, shop.orders, "Shop"."Orders") as schema and name, folded as PostgreSQL folds them. */
function splitTableName(table: string): { schema?: string; name: string } {
  const parts = [...table.matchAll(/"((?:[^"]|"")+)"|([^.]+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!.toLowerCase(),
  );
  return parts.length > 1 ? { schema: parts[0]!, name: parts[1]! } : { name: parts[0] ?? table };
}

/** The table's privileges (probeTable), then SELECT, UPDATE on each sequence its columns own. */
async function probeRepairTable(client: Client, table: string, role: string): Promise<Found> {
  const { schema, name } = splitTableName(table);
  const onTable = await probeTable(
    client,
    schema ? `${schema}.${name}` : name,
    [{ priv: 'SELECT' }, { priv: 'INSERT' }, { priv: 'UPDATE' }],
    role,
  );
  if (onTable !== true) return onTable;
  const { rows } = await client.query<{ schema: string; seq: string; usage: boolean; ok: boolean }>(
    `select n.nspname as schema, c.relname as seq, has_schema_privilege(n.oid, 'USAGE') as usage,
            has_sequence_privilege(c.oid, 'SELECT') and has_sequence_privilege(c.oid, 'UPDATE') as ok
       from pg_depend d join pg_class c on c.oid = d.objid join pg_namespace n on n.oid = c.relnamespace
      where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjid = $1::regclass
        and d.deptype in ('a', 'i') and c.relkind = 'S'
      order by 1, 2`,
    [schema ? `${quoteIdent(schema)}.${quoteIdent(name)}` : quoteIdent(name)],
  );
  const lacking = rows.filter((r) => !r.usage || !r.ok);
  if (lacking.length === 0) return true;
  return {
    fix: [
      ...[...new Set(lacking.filter((r) => !r.usage).map((r) => r.schema))].map(
        (s) => `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${role};`,
      ),
      ...lacking.map(
        (r) => `GRANT SELECT, UPDATE ON SEQUENCE ${quoteIdent(r.schema)}.${quoteIdent(r.seq)} TO ${role};`,
      ),
    ].join('\n'),
    detail: `lacks SELECT, UPDATE on ${lacking.map((r) => `${r.schema}.${r.seq}`).join(', ')}`,
  };
}

/**
 * EXPLAIN as the role: refused (42501) means a privilege is missing. Then
 * the tables the query reads, found through a temporary view (creating a
 * view checks no privilege on what it reads), name each grant; without
 * that, PostgreSQL's message names the first refused object.
 */
async function probeQuery(client: Client, sql: string, role: string, notes: string[], need: Need): Promise<Found> {
  const text = sql.trim().replace(/;\s*$/, '');
  const params = [...new Set(text.match(/\$\d+/g) ?? [])].map(() => null);
  try {
    await inRolledBack(client, () => client.query(`explain ${text}`, params));
    return true;
  } catch (err) {
    const state = (err as { code?: string }).code;
    if (state !== '42501') {
      // Not a privilege: the query itself is wrong, or needs a table not there now. Its step reports that.
      const [kind, ...name] = need.key.split(':');
      notes.push(
        `${kind === 'capture' ? 'capture query' : kind} "${name.join(':')}" does not run on the primary, so its privileges could not be checked: ${errorMessage(err)}`,
      );
      return true;
    }
    const refused = errorMessage(err);
    try {
      const lacking = await inRolledBack(client, async () => {
        await client.query(probeBody(sql));
        const { rows } = await client.query<{ relname: string; schema: string; usage: boolean; sel: boolean }>(
          `select distinct c.relname, n.nspname as schema,
                  has_schema_privilege(n.oid, 'USAGE') as usage, has_table_privilege(c.oid, 'SELECT') as sel
             from pg_depend d join pg_rewrite r on r.oid = d.objid
             join pg_class c on c.oid = d.refobjid join pg_namespace n on n.oid = c.relnamespace
            where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
              and r.ev_class = 'pg_temp.lifeboat_probe'::regclass and d.refobjid <> r.ev_class
            order by 1`,
        );
        return rows.filter((r) => !r.usage || !r.sel);
      });
      const schemas = [...new Set(lacking.filter((r) => !r.usage).map((r) => r.schema))];
      const lines = [
        ...schemas.map((s) => `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${role};`),
        ...lacking
          .filter((r) => !r.sel)
          .map((r) => `GRANT SELECT ON TABLE ${quoteIdent(r.schema)}.${quoteIdent(r.relname)} TO ${role};`),
      ];
      if (lines.length > 0) return { fix: lines.join('\n'), detail: refused };
    } catch (err2) {
      const schema = /permission denied for schema (\S+)/.exec(errorMessage(err2))?.[1];
      if (schema) return { fix: `GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${role};`, detail: refused };
    }
    const table = /permission denied for (?:table|view|materialized view) (\S+)/.exec(refused)?.[1];
    return { ...(table ? { fix: `GRANT SELECT ON TABLE ${quoteIdent(table)} TO ${role};` } : {}), detail: refused };
  }
}

/** The sequences the built-in check reads (activities/invariants.ts sequencesAhead), and their columns. */
async function probeSequences(client: Client, role: string): Promise<Found> {
  const { rows } = await client.query<{
    seq: string;
    tbl: string;
    col: string;
    seq_schema: string;
    tbl_schema: string;
    seq_usage: boolean;
    tbl_usage: boolean;
    seq_sel: boolean;
    col_sel: boolean;
  }>(
    `select s.relname as seq, t.relname as tbl, a.attname as col,
            sn.nspname as seq_schema, tn.nspname as tbl_schema,
            has_schema_privilege(sn.oid, 'USAGE') as seq_usage, has_schema_privilege(tn.oid, 'USAGE') as tbl_usage,
            has_sequence_privilege(s.oid, 'SELECT') as seq_sel, has_column_privilege(t.oid, a.attnum, 'SELECT') as col_sel
       ${OWNED_INTEGER_SEQUENCES}
      order by 1`,
  );
  const schemas = new Set<string>();
  const lines: string[] = [];
  const named: string[] = [];
  for (const row of rows) {
    const r = {
      ...row,
      seq: `${quoteIdent(row.seq_schema)}.${quoteIdent(row.seq)}`,
      tbl: `${quoteIdent(row.tbl_schema)}.${quoteIdent(row.tbl)}`,
    };
    if (!r.seq_usage) schemas.add(r.seq_schema);
    if (!r.tbl_usage) schemas.add(r.tbl_schema);
    if (!r.seq_sel) {
      lines.push(`GRANT SELECT ON SEQUENCE ${r.seq} TO ${role};`);
      named.push(r.seq);
    }
    if (!r.col_sel) {
      lines.push(`GRANT SELECT (${quoteIdent(r.col)}) ON TABLE ${r.tbl} TO ${role};`);
      named.push(`${r.tbl}.${quoteIdent(r.col)}`);
    }
  }
  if (schemas.size === 0 && lines.length === 0) return true;
  return {
    fix: [...[...schemas].map((s) => `GRANT USAGE ON SCHEMA ${quoteIdent(s)} TO ${role};`), ...lines].join('\n'),
    detail: [
      ...(schemas.size > 0 ? [`no USAGE on schema ${[...schemas].join(', ')}`] : []),
      ...(named.length > 0 ? [`no SELECT on ${named.join(', ')}`] : []),
    ].join('; '),
  };
}

/** Runs `body` in a transaction that is always rolled back: the probe view and any lock go with it. */
async function inRolledBack<T>(client: Client, body: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    return await body();
  } finally {
    await client.query('rollback').catch(() => undefined);
  }
}
