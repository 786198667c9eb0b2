// What the runbook's role (cluster.primary.user) needs, derived from the
// runbook alone: one entry per piece, with why, where it is used and the SQL
// that grants it. grants.ts prints them; check.ts asks PostgreSQL, as the
// role, which are missing. Each entry names the code that uses it, so a new
// SQL call that needs a new privilege has one place to be written down.
// The DO blocks some grants need are in grant-sql.ts.
//
// Two catalogs matter. The primary's, now: gates, forensics, the WAL switch,
// checkpoints and backups run there. And the backup's: a restored copy starts
// with the catalog its base backup copied, read-only until promoted, so
// invariants, the replay pause, gates re-asserted after promotion and the
// drill's smoke write run with the grants that existed when the backup was
// taken; nothing granted later reaches it.
import { quoteIdent, quoteQualified } from '../gates/sql';
import type { Runbook } from '../runbook/schema';
import { connectEverywhereBlock, selectOnReadTablesBlock, sequencesBlock } from './grant-sql';

/** What a piece is used for, i.e. which runs fail without it. */
export type Use =
  /** lifeboat backup (pg_basebackup). */
  | 'backup'
  /** lifeboat checkpoint. */
  | 'checkpoint'
  /** A recovery on the live primary: WAL switch, forensics, gates. */
  | 'recovery-primary'
  /** A recovery in the restored copy (catalog of the backup): invariants, replay pause, gates re-asserted, outbox. */
  | 'recovery-copy'
  /** A drill in its copy (catalog of the backup): the smoke write. */
  | 'drill-copy'
  /** A repair (issue 14) reading its tables in the restored copy (catalog of the backup). */
  | 'repair-copy'
  /** A repair on the live primary: reading now, staging, restoring, sequences, audit (repair-needs.ts). */
  | 'repair-primary';

export interface Need {
  /** Stable id, recorded in backup.json: 'replication', 'execute:pg_switch_wal()', 'invariant:<name>'. */
  key: string;
  /** What is needed, in words: "EXECUTE on pg_catalog.pg_switch_wal() in database bank". */
  what: string;
  /** Why, for the comment above its grant. */
  why: string;
  uses: Use[];
  /** Role attributes and memberships hold in every database; the rest only in `database`. */
  scope: 'role' | 'database';
  /** The statements that grant it, run as a superuser in the runbook's database. */
  grant: string[];
  /** Not needed for any run to succeed (doctor says so, preflight ignores it). */
  optional?: boolean;
  /** For check.ts: how to find out. */
  probe: Probe;
}

export type Probe =
  | { kind: 'attribute'; attribute: 'rolcanlogin' | 'rolreplication' | 'rolcreaterole' }
  | { kind: 'member'; role: string }
  | { kind: 'function'; signature: string }
  | { kind: 'connect' }
  | { kind: 'connect-all' }
  | { kind: 'table'; table: string; privileges: Array<'SELECT' | 'INSERT' | 'UPDATE'> }
  | { kind: 'columns'; table: string; select: string[]; update: string[] }
  | { kind: 'query'; sql: string }
  | { kind: 'sequences' }
  | { kind: 'create-schema' }
  /** TEMPORARY on the current database. */
  | { kind: 'temporary' }
  /** USAGE and CREATE on a named schema. */
  | { kind: 'schema-create'; schema: string }
  /** SELECT, INSERT, UPDATE on a table (schema USAGE) and SELECT, UPDATE on the sequences its columns own. */
  | { kind: 'repair-table'; table: string };

/** The role and database every need is about. */
export function roleOf(runbook: Runbook): { role: string; database: string } {
  return { role: runbook.cluster.primary.user, database: runbook.cluster.primary.database };
}

/**
 * A schema of the role's search_path it may CREATE in, for a table Lifeboat
 * creates there on first use (`why`: which). Granted by making the schema
 * named after the role, owned by it.
 */
export function ownSchemaNeed(key: string, role: string, database: string, why: string, uses: Use[]): Need {
  const r = quoteIdent(role);
  return {
    key,
    what: `a schema of ${role}'s search_path in which it may CREATE, in database ${database}`,
    why:
      `${why}; PostgreSQL 15 gives ` +
      'PUBLIC no CREATE on schema public, and a schema named after the role is first in the default search_path ("$user", public)',
    uses,
    scope: 'database',
    grant: [`CREATE SCHEMA IF NOT EXISTS ${r} AUTHORIZATION ${r};`],
    probe: { kind: 'create-schema' },
  };
}

/** The schema part of a runbook table name, when it has one. */
function schemaOf(table: string): string | undefined {
  const dot = table.indexOf('.');
  return dot > 0 ? table.slice(0, dot) : undefined;
}

/** Every piece the runbook's role needs, in the order grants.ts prints them. */
export function needsOf(runbook: Runbook): Need[] {
  const { role, database } = roleOf(runbook);
  const r = quoteIdent(role);
  const db = quoteIdent(database);
  const inDb = `in database ${database}`;
  const needs: Need[] = [
    {
      key: 'login',
      what: `role ${role} with LOGIN`,
      why: 'every Lifeboat connection logs in as this role (cluster.primary.user)',
      uses: ['backup', 'checkpoint', 'recovery-primary', 'recovery-copy', 'drill-copy'],
      scope: 'role',
      grant: [`ALTER ROLE ${r} WITH LOGIN;`],
      probe: { kind: 'attribute', attribute: 'rolcanlogin' },
    },
    {
      key: 'replication',
      what: `REPLICATION for role ${role}`,
      why:
        'lifeboat backup runs pg_basebackup, which connects for replication (src/backup/base-backup.ts). ' +
        'It also needs a line in pg_hba.conf, which no SQL can grant, e.g.: host replication ' +
        role +
        ' <worker address>/32 scram-sha-256',
      uses: ['backup'],
      scope: 'role',
      grant: [`ALTER ROLE ${r} WITH REPLICATION;`],
      probe: { kind: 'attribute', attribute: 'rolreplication' },
    },
  ];
  const gates = runbook.gates;
  if (gates) {
    const apps = gates.writers.readOnlyRoles.join(', ');
    needs.push(
      {
        key: 'createrole',
        what: `CREATEROLE for role ${role}`,
        why:
          `the writer gate runs ALTER ROLE ${apps} SET default_transaction_read_only on the primary and again in the promoted copy ` +
          '(src/gates/writer-gate.ts); in PostgreSQL 15 only CREATEROLE lets a role that is not a superuser alter other (non-superuser) roles',
        uses: ['recovery-primary', 'recovery-copy'],
        scope: 'role',
        grant: [`ALTER ROLE ${r} WITH CREATEROLE;`],
        probe: { kind: 'attribute', attribute: 'rolcreaterole' },
      },
      {
        key: 'member:pg_signal_backend',
        what: `membership of ${role} in pg_signal_backend`,
        why: `the writer gate ends the open sessions of ${apps} with pg_terminate_backend, which a role may do to other roles' sessions only as a member of pg_signal_backend`,
        uses: ['recovery-primary', 'recovery-copy'],
        scope: 'role',
        grant: [`GRANT pg_signal_backend TO ${r};`],
        probe: { kind: 'member', role: 'pg_signal_backend' },
      },
    );
  }
  needs.push({
    key: 'member:pg_monitor',
    what: `membership of ${role} in pg_monitor (optional)`,
    why:
      'lets lifeboat check and preflight count the WAL files waiting for the archiver (pg_ls_archive_statusdir) ' +
      'when the archiver is stale, and lifeboat metrics report them and the size of pg_wal (pg_ls_waldir); ' +
      'without it those figures are left out',
    uses: [],
    scope: 'role',
    grant: [`GRANT pg_monitor TO ${r};`],
    optional: true,
    probe: { kind: 'member', role: 'pg_monitor' },
  });

  needs.push(
    {
      key: `connect:${database}`,
      what: `CONNECT on database ${database}`,
      why: "the runbook's database (cluster.primary.database); PUBLIC has it unless it was revoked",
      uses: ['backup', 'checkpoint', 'recovery-primary', 'recovery-copy', 'drill-copy'],
      scope: 'database',
      grant: [`GRANT CONNECT ON DATABASE ${db} TO ${r};`],
      probe: { kind: 'connect' },
    },
    {
      key: 'execute:pg_switch_wal()',
      what: `EXECUTE on pg_catalog.pg_switch_wal() ${inDb}`,
      why:
        "preflight closes the primary's current WAL segment so a target a minute ago is archived before it is judged (src/recovery/switch-wal.ts); " +
        'lifeboat checkpoint archives its restore point the same way',
      uses: ['recovery-primary', 'checkpoint'],
      scope: 'database',
      grant: [`GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO ${r};`],
      probe: { kind: 'function', signature: 'pg_catalog.pg_switch_wal()' },
    },
    {
      key: 'execute:pg_create_restore_point(text)',
      what: `EXECUTE on pg_catalog.pg_create_restore_point(text) ${inDb}`,
      why: 'lifeboat checkpoint creates the named restore point a recovery can go back to (src/checkpoint/checkpoint.ts)',
      uses: ['checkpoint'],
      scope: 'database',
      grant: [`GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO ${r};`],
      probe: { kind: 'function', signature: 'pg_catalog.pg_create_restore_point(text)' },
    },
    {
      key: 'execute:pg_wal_replay_pause()',
      what: `EXECUTE on pg_catalog.pg_wal_replay_pause() ${inDb}`,
      why: "a replay to the end of the archive (--to-latest) pauses the copy itself there (src/restore/replay.ts); the copy runs with the backup's catalog",
      uses: ['recovery-copy', 'drill-copy'],
      scope: 'database',
      grant: [`GRANT EXECUTE ON FUNCTION pg_catalog.pg_wal_replay_pause() TO ${r};`],
      probe: { kind: 'function', signature: 'pg_catalog.pg_wal_replay_pause()' },
    },
    {
      key: 'connect:every-database',
      what: 'CONNECT on every database that allows connections',
      why: 'the built-in invariant "every database accepts connections" logs in to each (activities/invariants.ts); PUBLIC has CONNECT unless it was revoked',
      uses: ['recovery-copy', 'drill-copy'],
      scope: 'database',
      grant: [connectEverywhereBlock(role)],
      probe: { kind: 'connect-all' },
    },
  );

  if (gates) {
    const schema = schemaOf(gates.table);
    const tableGrant = [
      ...(schema ? [`GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${r};`] : []),
      `GRANT SELECT, INSERT, UPDATE ON TABLE ${quoteQualified(gates.table)} TO ${r};`,
    ];
    needs.push({
      key: `gate-table:${gates.table}`,
      what: `SELECT, INSERT, UPDATE on table ${gates.table} ${inDb}`,
      why:
        'the gates are rows of this table, set off (and created when missing) on the primary, again in the promoted copy, and on at the end (src/gates/row-gate.ts)' +
        (schema ? `; USAGE on schema ${schema} to reach it` : ''),
      uses: ['recovery-primary', 'recovery-copy'],
      scope: 'database',
      grant: tableGrant,
      probe: { kind: 'table', table: gates.table, privileges: ['SELECT', 'INSERT', 'UPDATE'] },
    });
    if (gates.outbox) {
      const o = gates.outbox;
      const oschema = schemaOf(o.table);
      needs.push({
        key: `outbox:${o.table}`,
        what: `SELECT (${o.idColumn}, ${o.publishedColumn}) and UPDATE (${o.publishedColumn}) on table ${o.table} ${inDb}`,
        why:
          'capture-forensics reads the outbox high-water mark on the primary (activities/forensics.ts); reconcile-outbox marks rows ' +
          'already published as published in the promoted copy (activities/outbox.ts)',
        uses: ['recovery-primary', 'recovery-copy'],
        scope: 'database',
        grant: [
          ...(oschema ? [`GRANT USAGE ON SCHEMA ${quoteIdent(oschema)} TO ${r};`] : []),
          `GRANT SELECT (${quoteIdent(o.idColumn)}, ${quoteIdent(o.publishedColumn)}), UPDATE (${quoteIdent(o.publishedColumn)}) ON TABLE ${quoteQualified(o.table)} TO ${r};`,
        ],
        probe: {
          kind: 'columns',
          table: o.table,
          select: [o.idColumn, o.publishedColumn],
          update: [o.publishedColumn],
        },
      });
    }
  }

  for (const inv of runbook.invariants) {
    needs.push({
      key: `invariant:${inv.name}`,
      what: `SELECT on the tables invariant "${inv.name}" reads ${inDb}`,
      why: `run-invariants runs it in the restored copy before promotion (activities/invariants.ts): ${oneLine(inv.sql)}`,
      uses: ['recovery-copy', 'drill-copy'],
      scope: 'database',
      grant: [selectOnReadTablesBlock(role, inv.sql, `invariant "${inv.name}"`)],
      probe: { kind: 'query', sql: inv.sql },
    });
  }
  needs.push({
    key: 'sequences',
    what: `SELECT on the sequences owned by integer columns, and on those columns, ${inDb}`,
    why: 'the built-in invariant "sequences ahead of their columns" reads each sequence and max() of its column in the restored copy (activities/invariants.ts)',
    uses: ['recovery-copy', 'drill-copy'],
    scope: 'database',
    grant: [sequencesBlock(role)],
    probe: { kind: 'sequences' },
  });
  for (const cap of runbook.capture) {
    needs.push({
      key: `capture:${cap.name}`,
      what: `SELECT on the tables capture query "${cap.name}" reads ${inDb}`,
      why: `capture-forensics runs it on the primary before the restore erases what it shows (activities/forensics.ts): ${oneLine(cap.sql)}`,
      uses: ['recovery-primary'],
      scope: 'database',
      grant: [selectOnReadTablesBlock(role, cap.sql, `capture query "${cap.name}"`)],
      probe: { kind: 'query', sql: cap.sql },
    });
  }
  if (runbook.drill) {
    needs.push(
      ownSchemaNeed(
        'smoke-schema',
        role,
        database,
        'a drill proves its promoted copy takes a write by creating lifeboat_drill_smoke there (src/drill/instance.ts)',
        ['drill-copy'],
      ),
    );
  }
  return needs;
}

function oneLine(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}
