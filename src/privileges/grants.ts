// Least privilege, written down and verified (issue 11). This folder holds
// what the runbook's role (cluster.primary.user) needs and nothing more:
//   needs.ts   each piece, why, which runs use it, the SQL that grants it;
//   grants.ts  that SQL as one script for a superuser (`lifeboat grants`);
//   check.ts   which pieces are missing, asked of PostgreSQL as the role
//              (`lifeboat doctor`, preflight, and at backup time the record
//              of what the backup's catalog grants).
import type { Runbook } from '../runbook/schema';
import { literal } from './grant-sql';
import { needsOf, roleOf, type Need } from './needs';
import { repairNeeds } from './repair-needs';

export interface GrantsOptions {
  /** Also what a repair without failover of these tables needs (lifeboat grants --repair-tables). */
  repair?: { tables: readonly string[]; auditSchema?: string };
}

/** A word for a POSIX shell: as it is when safe, else in single quotes. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_.,:/@%+=-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** psql as a superuser, connected to the runbook's database on its primary, stopping at the first error. */
export function psqlCommand(runbook: Runbook): string {
  const p = runbook.cluster.primary;
  return `psql -h ${shellWord(p.host)} -p ${p.port} -U postgres -d ${shellWord(p.database)} -v ON_ERROR_STOP=1`;
}

/** The whole of it in one line: the grants piped into psql. */
export function grantCommand(runbook: Runbook, repairTables: readonly string[] = []): string {
  const repair = repairTables.length > 0 ? ` --repair-tables ${repairTables.join(',')}` : '';
  return `lifeboat grants --runbook ${runbook.name}${repair} | ${psqlCommand(runbook)} -f -`;
}

/**
 * The exact SQL that gives the runbook's role what Lifeboat needs, to be run
 * as a superuser connected to the runbook's database on the primary (with
 * psql -f, or as one multi-statement query). Safe to run again: GRANT and
 * ALTER ROLE ... WITH repeat without harm, and the rest are DO blocks that
 * look before they act. It never sets a password.
 */
export function grantsSql(runbook: Runbook, opts: GrantsOptions = {}): string {
  const { role, database } = roleOf(runbook);
  const p = runbook.cluster.primary;
  const needs = needsOf(runbook);
  const out: string[] = [
    `-- Lifeboat: the privileges of role ${role} for runbook ${runbook.name}, and nothing more.`,
    `-- Run as a superuser connected to database ${database} on the primary (${p.host}:${p.port}):`,
    `--   lifeboat grants --runbook ${runbook.name} > lifeboat-${runbook.name}-grants.sql`,
    `--   ${psqlCommand(runbook)} -f lifeboat-${runbook.name}-grants.sql`,
    '-- Safe to run again. It sets no password: give the role one yourself (in psql: \\password ' + role + ')',
    `-- and name the variable holding it in the runbook (cluster.primary.passwordEnv), or let pg_hba.conf authenticate it otherwise.`,
    '-- Run it BEFORE the next base backup, then take one: a restored copy starts with the catalog of its backup,',
    '-- so what is granted after a backup is missing in every copy restored from it:',
    `--   lifeboat backup --runbook ${runbook.name}`,
    `-- Then check each piece as the role: lifeboat doctor --runbook ${runbook.name}`,
    '-- Run it again (and take a backup) after adding tables, sequences, invariants or capture queries.',
    '',
    `-- Function and table privileges exist only in the database they are granted in: stop in any other.`,
    'DO $lifeboat$',
    'BEGIN',
    `  IF current_database() <> ${literal(database)} THEN`,
    `    RAISE EXCEPTION 'connected to database %, but these grants belong in database ${raiseText(database)} (psql -d ${raiseText(shellWord(database))})', current_database();`,
    '  END IF;',
    'END',
    '$lifeboat$;',
    '',
    '-- The role, created without a password when it does not exist yet.',
    'DO $lifeboat$',
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${literal(role)}) THEN`,
    `    EXECUTE format('CREATE ROLE %I LOGIN', ${literal(role)});`,
    '  END IF;',
    'END',
    '$lifeboat$;',
    '',
    '-- ===== Role attributes and memberships: granted once, they hold in every database of the cluster =====',
  ];
  const section = (needs: Need[]) => {
    for (const n of needs) {
      out.push('');
      out.push(...comment(`${n.what}: ${n.why}`));
      if (n.optional) out.push(...n.grant.map((g) => `-- ${g}`));
      else out.push(...n.grant);
    }
  };
  section(needs.filter((n) => n.scope === 'role'));
  out.push('', `-- ===== In database ${database} only: run again in the database a new runbook names =====`);
  section(needs.filter((n) => n.scope === 'database'));
  if (opts.repair && opts.repair.tables.length > 0) {
    out.push(
      '',
      `-- ===== Repair without failover (lifeboat repair) of ${opts.repair.tables.join(', ')}, in database ${database}: before the base backup a repair restores =====`,
    );
    section(repairNeeds(role, database, opts.repair.tables, opts.repair.auditSchema));
  }
  out.push('');
  return out.join('\n');
}

/** Text inside a RAISE format string literal: quotes doubled, % escaped. */
function raiseText(text: string): string {
  return text.replace(/'/g, "''").replace(/%/g, '%%');
}

/** Wraps text into SQL comment lines of about 120 characters. */
function comment(text: string): string[] {
  const lines: string[] = [];
  let line = '--';
  for (const word of text.split(/\s+/)) {
    if (line.length + word.length + 1 > 120 && line !== '--') {
      lines.push(line);
      line = '--';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}
