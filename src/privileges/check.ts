// Which of the role's needs (needs.ts) are missing, asked of PostgreSQL on a
// connection AS the role, one probe per need (probes.ts: has_*_privilege for
// what has a name, EXPLAIN for the runbook's queries). Reads only; the one
// write, a temporary view that names the tables a refused query reads, is
// rolled back.
import type { Client } from 'pg';
import type { Runbook } from '../runbook/schema';
import { needsOf, roleOf, type Need, type Use } from './needs';
import { probe } from './probes';
import { repairNeeds } from './repair-needs';

export interface MissingPrivilege {
  /** The need's stable id (needs.ts), as recorded in backup.json. */
  key: string;
  what: string;
  /** The exact SQL that grants it, to be run as a superuser (in `database` when set). */
  fix: string;
  /** Set for privileges that exist per database: the fix must run connected to it. */
  database?: string;
  uses: Use[];
  optional?: boolean;
  /** What PostgreSQL said, when a query was refused. */
  detail?: string;
}

export interface PrivilegeReport {
  role: string;
  database: string;
  checkedAt: string;
  superuser: boolean;
  /** Keys of every need that was checked (present or not). */
  checked: string[];
  missing: MissingPrivilege[];
  /** Things seen that are not missing privileges (a query that fails for another reason). */
  notes: string[];
}

/** The missing pieces, optional ones included (marked). `client` is connected as the runbook's role. */
export async function checkPrivileges(
  client: Client,
  runbook: Runbook,
  opts: InspectOptions = {},
): Promise<MissingPrivilege[]> {
  return (await inspectPrivileges(client, runbook, opts)).missing;
}

export interface InspectOptions {
  /** Also what a repair of these tables needs (repair-needs.ts); auditSchema as given to apply. */
  repair?: { tables: readonly string[]; auditSchema?: string };
}

export async function inspectPrivileges(
  client: Client,
  runbook: Runbook,
  opts: InspectOptions = {},
): Promise<PrivilegeReport> {
  const { role, database } = roleOf(runbook);
  const { rows } = await client.query<{
    me: string;
    rolsuper: boolean;
    rolcanlogin: boolean;
    rolreplication: boolean;
    rolcreaterole: boolean;
  }>(
    `select current_user as me, rolsuper, rolcanlogin, rolreplication, rolcreaterole from pg_catalog.pg_roles where rolname = current_user`,
  );
  const me = rows[0]!;
  const needs = [
    ...needsOf(runbook),
    ...(opts.repair ? repairNeeds(role, database, opts.repair.tables, opts.repair.auditSchema) : []),
  ];
  const report: PrivilegeReport = {
    role,
    database,
    checkedAt: new Date().toISOString(),
    superuser: me.rolsuper,
    checked: needs.map((n) => n.key),
    missing: [],
    notes: [],
  };
  if (me.me !== role)
    report.notes.push(`connected as ${me.me}, not as the runbook's role ${role}: the result is ${me.me}'s`);
  if (me.rolsuper) {
    report.notes.push(
      `${me.me} is a superuser: it has every privilege, so nothing is missing, but least privilege is not in force (lifeboat grants prints what a role that is not a superuser needs)`,
    );
    return report;
  }
  report.missing = await missingNeeds(client, needs, database, report.notes);
  return report;
}

/** Which of `needs` the role connected on `client` lacks (a superuser lacks nothing: check that first). */
export async function missingNeeds(
  client: Client,
  needs: readonly Need[],
  database: string,
  notes: string[] = [],
): Promise<MissingPrivilege[]> {
  const { rows } = await client.query<Record<string, unknown>>(
    `select current_user as me, rolsuper, rolcanlogin, rolreplication, rolcreaterole from pg_catalog.pg_roles where rolname = current_user`,
  );
  const me = rows[0]!;
  const missing: MissingPrivilege[] = [];
  for (const need of needs) {
    const found = await probe(client, need, me, notes);
    if (found === true) continue;
    missing.push({
      key: need.key,
      what: need.what,
      fix: found?.fix ?? need.grant.join('\n'),
      ...(need.scope === 'database' ? { database } : {}),
      uses: need.uses,
      ...(need.optional ? { optional: true } : {}),
      ...(found?.detail ? { detail: found.detail } : {}),
    });
  }
  return missing;
}

/** The missing pieces a run needs (optional ones never), for preflight. */
export function missingFor(missing: readonly MissingPrivilege[], uses: readonly Use[]): MissingPrivilege[] {
  return missing.filter((m) => !m.optional && m.uses.some((u) => uses.includes(u)));
}

/** One missing piece as a hint line: what, and the SQL to run where. */
export function describeMissing(m: MissingPrivilege): string {
  const where = m.database ? `as a superuser in database ${m.database}` : 'as a superuser';
  return `${m.what}${m.detail ? ` (${m.detail})` : ''}: ${where}: ${m.fix.replace(/\n/g, ' ')}`;
}
