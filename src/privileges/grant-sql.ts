// The SQL that grants what the runbook's role needs (needs.ts), where one
// GRANT cannot name it ahead: DO blocks a superuser runs that find the
// relations a query reads, the sequences the built-in check reads, or the
// databases that allow connections, and grant on each. Every block is
// idempotent: a GRANT of a privilege already held changes nothing.
import { OWNED_INTEGER_SEQUENCES } from '../pg/owned-sequences';

/** A string as an SQL literal (standard_conforming_strings, the default since 9.1). */
export function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * Grants SELECT on every relation `sql` reads, and USAGE on their schemas,
 * found the way PostgreSQL itself finds them: the query is made into a
 * temporary view and the view's dependencies are read from pg_depend. Run by
 * a superuser, so names resolve whatever the role may see; idempotent (GRANT
 * of a privilege already held changes nothing). `$1` (capture queries get
 * the target time there) becomes NULL: the view only needs to parse.
 */
export function selectOnReadTablesBlock(role: string, sql: string, label: string): string {
  const body = probeBody(sql);
  const tag = dollarTag(body, 'q');
  const outer = dollarTag(body, 'lifeboat');
  return [
    `DO ${outer}`,
    'DECLARE rel regclass;',
    'BEGIN',
    '  BEGIN',
    `    EXECUTE ${tag}${body}${tag};`,
    '  EXCEPTION WHEN others THEN',
    // A query that does not parse here (a table not there yet, a typo) is its
    // step's problem, not a grant's: say so and go on with the other grants.
    `    RAISE WARNING '% does not run in this database, so no SELECT was granted for it: %', ${literal(label)}, SQLERRM;`,
    '    RETURN;',
    '  END;',
    '  FOR rel IN',
    '    SELECT DISTINCT d.refobjid::regclass FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid',
    "     WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass",
    "       AND r.ev_class = 'pg_temp.lifeboat_probe'::regclass AND d.refobjid <> r.ev_class",
    '  LOOP',
    `    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel), ${literal(role)});`,
    `    EXECUTE format('GRANT SELECT ON %s TO %I', rel, ${literal(role)});`,
    `    RAISE NOTICE 'granted SELECT on % to %', rel, ${literal(role)};`,
    '  END LOOP;',
    '  DROP VIEW pg_temp.lifeboat_probe;',
    'END',
    `${outer};`,
  ].join('\n');
}

/**
 * The statement that makes `sql` a temporary view: wrapped in a subquery so
 * that duplicate or unnamed output columns do not matter, a trailing
 * semicolon dropped, `$n` parameters made NULL.
 */
export function probeBody(sql: string): string {
  const inner = sql.trim().replace(/;\s*$/, '').replace(/\$\d+/g, 'NULL');
  return `CREATE TEMP VIEW lifeboat_probe AS SELECT 1 AS lifeboat_probe FROM (${inner}) AS q`;
}

/** A dollar-quote tag that does not occur in `text`. */
function dollarTag(text: string, base: string): string {
  for (let i = 0; ; i++) {
    const tag = `$${base}${i === 0 ? '' : i}$`;
    if (!text.includes(tag)) return tag;
  }
}

/** SELECT on the sequences the built-in check reads (activities/invariants.ts sequencesAhead) and on their columns. */
export function sequencesBlock(role: string): string {
  return [
    'DO $lifeboat$',
    // o, not s: s is the sequence's alias in OWNED_INTEGER_SEQUENCES.
    'DECLARE o record;',
    'BEGIN',
    '  FOR o IN',
    '    SELECT sn.nspname AS seq_schema, s.relname AS seq, tn.nspname AS tbl_schema, t.relname AS tbl, a.attname AS col',
    ...OWNED_INTEGER_SEQUENCES.split('\n').map((l) => `    ${l}`),
    '  LOOP',
    `    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', o.seq_schema, ${literal(role)});`,
    `    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', o.tbl_schema, ${literal(role)});`,
    `    EXECUTE format('GRANT SELECT ON SEQUENCE %I.%I TO %I', o.seq_schema, o.seq, ${literal(role)});`,
    `    EXECUTE format('GRANT SELECT (%I) ON %I.%I TO %I', o.col, o.tbl_schema, o.tbl, ${literal(role)});`,
    '  END LOOP;',
    'END',
    '$lifeboat$;',
  ].join('\n');
}

/** CONNECT on every database that allows connections, where the role lacks it (normally none: PUBLIC has CONNECT). */
export function connectEverywhereBlock(role: string): string {
  return [
    'DO $lifeboat$',
    'DECLARE db name;',
    'BEGIN',
    `  FOR db IN SELECT datname FROM pg_database WHERE datallowconn AND NOT has_database_privilege(${literal(role)}, datname, 'CONNECT') LOOP`,
    `    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', db, ${literal(role)});`,
    '  END LOOP;',
    'END',
    '$lifeboat$;',
  ].join('\n');
}
