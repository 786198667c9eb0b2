// What a repair without failover (issue 14, src/repair) needs of the
// runbook's role, for the tables it may repair, and nothing more:
//   on the restored copy (the backup's catalog): CONNECT, USAGE on each
//     table's schema, SELECT on each table (snapshot.ts reads them);
//   on the live primary: the same reads (classify.ts reads the table now),
//     TEMPORARY (apply.ts stages rows in a temporary table), INSERT and
//     UPDATE on each table (the restoring statements), SELECT and UPDATE on
//     the sequences its columns own (apply reads a sequence and moves it
//     forward with setval; a column added since with a serial default calls
//     nextval when a deleted row is inserted back, which UPDATE allows as
//     USAGE would, so USAGE is not needed), and CREATE
//     in the audit table's schema (apply creates lifeboat_repair_audit there
//     on first use; USAGE to reach it).
// The grants go to the primary BEFORE the base backup a repair restores: the
// copy has the grants of its backup (see grants.ts).
import { quoteIdent } from '../gates/sql';
import { literal } from './grant-sql';
import { ownSchemaNeed, type Need } from './needs';

/**
 * The needs of a repair of `tables` (as the operator writes them: orders,
 * shop.orders, "Shop"."Orders") by `role` in `database`. `auditSchema` is
 * where lifeboat_repair_audit lives; without it, apply uses the role's
 * current_schema(), which for the default search_path ("$user", public) is
 * a schema named after the role: it is created, owned by the role.
 */
export function repairNeeds(role: string, database: string, tables: readonly string[], auditSchema?: string): Need[] {
  const r = quoteIdent(role);
  const inDb = `in database ${database}`;
  const needs: Need[] = [
    {
      key: `repair:temporary:${database}`,
      what: `TEMPORARY on database ${database}`,
      why: 'a repair stages the rows it restores in a temporary table inside its one transaction on the primary (src/repair/apply.ts); PUBLIC has it unless it was revoked',
      uses: ['repair-primary'],
      scope: 'database',
      grant: [`GRANT TEMPORARY ON DATABASE ${quoteIdent(database)} TO ${r};`],
      probe: { kind: 'temporary' },
    },
    auditSchema
      ? {
          key: `repair:audit-schema:${auditSchema}`,
          what: `USAGE and CREATE on schema ${auditSchema} ${inDb}`,
          why: 'a repair records itself in lifeboat_repair_audit, created there on first use (src/repair/apply.ts); its row says whether a repair committed',
          uses: ['repair-primary'],
          scope: 'database',
          grant: [`GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(auditSchema)} TO ${r};`],
          probe: { kind: 'schema-create', schema: auditSchema },
        }
      : ownSchemaNeed(
          'repair:audit-schema',
          role,
          database,
          "a repair records itself in lifeboat_repair_audit, created on first use in the role's current schema (src/repair/apply.ts)",
          ['repair-primary'],
        ),
  ];
  for (const table of tables) {
    needs.push({
      key: `repair:table:${table}`,
      what: `SELECT, INSERT, UPDATE on table ${table} and SELECT, UPDATE on the sequences its columns own, ${inDb}`,
      why:
        `a repair of ${table} reads it on the restored copy and on the primary (src/repair/snapshot.ts) and restores rows with one UPDATE and one INSERT ` +
        '(src/repair/apply.ts), then moves the sequences its columns own forward (setval); USAGE on the schemas to reach them',
      uses: ['repair-copy', 'repair-primary'],
      scope: 'database',
      grant: [repairTableBlock(role, table)],
      probe: { kind: 'repair-table', table },
    });
  }
  return needs;
}

/**
 * Grants on one table and its owned sequences (serial, identity: pg_depend
 * 'a' and 'i'), found by the superuser running it. A table that is not there
 * stops the script: a repair of it would fail at 3 a.m. instead.
 */
export function repairTableBlock(role: string, table: string): string {
  return [
    'DO $lifeboat$',
    `DECLARE t regclass := to_regclass(${literal(table)}); s record;`,
    'BEGIN',
    '  IF t IS NULL THEN',
    `    RAISE EXCEPTION 'table % (to be repaired) does not exist in database %', ${literal(table)}, current_database();`,
    '  END IF;',
    `  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t), ${literal(role)});`,
    `  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON TABLE %s TO %I', t, ${literal(role)});`,
    '  FOR s IN',
    '    SELECT n.nspname AS schema, c.relname AS seq FROM pg_depend d JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace',
    "     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = t AND d.deptype IN ('a', 'i') AND c.relkind = 'S'",
    '  LOOP',
    `    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s.schema, ${literal(role)});`,
    `    EXECUTE format('GRANT SELECT, UPDATE ON SEQUENCE %I.%I TO %I', s.schema, s.seq, ${literal(role)});`,
    '  END LOOP;',
    'END',
    '$lifeboat$;',
  ].join('\n');
}
