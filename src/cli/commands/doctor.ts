// `lifeboat doctor --runbook <name>`: before the incident, not during it.
// Connects to the primary AS the runbook's role and names every piece it
// lacks with the exact SQL that grants it (src/privileges/check.ts); then,
// per base backup, whether the privileges recorded when it was taken let a
// restored copy do its part (a copy has the catalog of its backup, so a grant
// made since is not in it). With --repair-tables, also what a repair of those
// tables needs, on the primary (backups record none of it). Exit 0 when
// nothing is missing, 1 otherwise.
import { Client } from 'pg';
import { listBackups } from '../../catalog/catalog';
import { errorMessage, isLifeboatError } from '../../errors';
import { primaryClientConfig } from '../../pg/connect';
import { grantCommand } from '../../privileges/grants';
import { inspectPrivileges, type MissingPrivilege, type PrivilegeReport } from '../../privileges/check';
import type { Use } from '../../privileges/needs';
import { copyUses, judgeBackup, type BackupJudgement } from '../../privileges/record';
import { checkReplicationLogin } from '../../privileges/replication';
import { openRepository } from '../../repository';
import { openEngine } from '../../engine';
import { engineSetting } from '../../runbook/engine';
import { clusterName, type Runbook } from '../../runbook/schema';
import { requireRunbook, type RepoOptions } from '../context';
import { repairTablesOption } from './grants';
import { EXIT, printJson } from '../run';

const USE_WORDS: Record<Use, string> = {
  backup: 'lifeboat backup',
  checkpoint: 'lifeboat checkpoint',
  'recovery-primary': 'recoveries (on the primary)',
  'recovery-copy': 'recoveries (in the restored copy)',
  'drill-copy': 'drills (in the drill copy)',
  'repair-copy': 'repairs (in the restored copy)',
  'repair-primary': 'repairs (on the primary)',
};

interface BackupLine extends BackupJudgement {
  backupId: string;
}

export async function run(opts: RepoOptions & { json?: boolean; repairTables?: string }): Promise<number> {
  const tables = repairTablesOption(opts.repairTables);
  const runbook = await requireRunbook(opts, 'doctor');
  const p = runbook.cluster.primary;
  let primary: PrivilegeReport | undefined;
  let primaryError: string | undefined;
  try {
    primary = await checkPrimary(runbook, tables);
  } catch (err) {
    primaryError = isLifeboatError(err) ? err.message : errorMessage(err);
  }
  // pg_hba.conf's replication line, which no SQL grants: tried as pg_basebackup would, unless REPLICATION itself is missing.
  if (primary && !primary.missing.some((m) => m.key === 'replication')) {
    const repl = await checkReplicationLogin(runbook);
    primary.checked.push('pg_hba:replication');
    if (repl.missing) primary.missing.push(repl.missing);
    if (repl.note) primary.notes.push(repl.note);
  }
  let backups: BackupLine[] = [];
  let backupsError: string | undefined;
  /** Another engine's backups (runbook engine:): listed, not judged; they carry no record of the role's privileges. */
  let engineLine: string | undefined;
  try {
    if (engineSetting(runbook).kind !== 'lifeboat') {
      const engine = await openEngine(runbook);
      const listed = await engine.listBackups();
      engineLine =
        `  ${listed.length} backup${listed.length === 1 ? '' : 's'} in ${engine.label}${listed.length > 0 ? `, newest ${listed[listed.length - 1]!.backupId}` : ''}: ` +
        'no privilege record (a restored copy has the grants of the moment each was taken)';
    } else {
      const repo = await openRepository(runbook.repository.url, runbook.repository);
      const metas = await listBackups(repo, clusterName(runbook));
      backups = metas.map((m) => ({ backupId: m.backupId, ...judgeBackup(m, runbook, copyUses('drill')) }));
    }
  } catch (err) {
    backupsError = isLifeboatError(err) ? err.message : errorMessage(err);
  }
  const required = primary?.missing.filter((m) => !m.optional) ?? [];
  const newest = backups[backups.length - 1];
  const ok =
    primary !== undefined && required.length === 0 && backupsError === undefined && newest?.verdict !== 'lacking';

  if (opts.json) {
    printJson({
      ok,
      runbook: runbook.name,
      role: p.user,
      database: p.database,
      primary: primary ?? { error: primaryError },
      backups: backupsError ? { error: backupsError } : backups,
      ...(engineLine ? { engineBackups: engineLine.trim() } : {}),
      ...(tables.length > 0 ? { repairTables: tables } : {}),
      grants: `lifeboat grants --runbook ${runbook.name}${tables.length > 0 ? ` --repair-tables ${tables.join(',')}` : ''}`,
    });
    return ok ? EXIT.ok : EXIT.failed;
  }

  const out: string[] = [
    `lifeboat doctor: runbook ${runbook.name}, role ${p.user} on the primary ${p.host}:${p.port}, database ${p.database}` +
      (tables.length > 0 ? `, and repairs of ${tables.join(', ')}` : ''),
    '',
  ];
  if (!primary) {
    out.push(
      `Privileges on the primary: NOT CHECKED, could not connect as ${p.user}:`,
      ...indent(primaryError ?? '', '  '),
    );
  } else {
    const total = primary.checked.length;
    out.push(
      `Privileges on the primary, checked as ${p.user}: ${total - primary.missing.length} of ${total} pieces present` +
        (required.length > 0 ? `, ${required.length} MISSING` : ''),
    );
    // What a run needs first; the optional pieces after.
    for (const m of [...required, ...primary.missing.filter((x) => x.optional)]) out.push(...missingLines(m));
    for (const n of primary.notes) out.push(`  note: ${n}`);
  }
  out.push('', 'Base backups (a restored copy has the grants its backup copied, not those made since):');
  if (backupsError) out.push(...indent(`could not read the catalog: ${backupsError}`, '  '));
  else if (engineLine) out.push(engineLine);
  else if (backups.length === 0)
    out.push(`  none yet: take one after granting: lifeboat backup --runbook ${runbook.name}`);
  for (const b of backups) {
    const word = b.verdict === 'complete' ? 'ok' : b.verdict === 'lacking' ? 'LACKING' : 'no record';
    out.push(`  ${b.backupId}  ${word}: ${b.detail}`);
  }
  if (tables.length > 0)
    out.push(
      `  repairs: a backup records none of a repair's grants; a copy restored from one taken before them cannot be read by the repair ` +
        `(snapshot-before fails PRIVILEGE_MISSING): take a backup after granting (lifeboat backup --runbook ${runbook.name})`,
    );
  out.push('');
  out.push(`All grants at once (safe to repeat): ${grantCommand(runbook, tables)}`);
  const verdict: string[] = [];
  if (!primary) verdict.push('the primary could not be checked');
  if (backupsError) verdict.push('the backups could not be read');
  else if (required.length > 0)
    verdict.push(`${required.length} piece${required.length === 1 ? '' : 's'} missing on the primary`);
  if (newest?.verdict === 'lacking') {
    verdict.push(
      `the newest backup ${newest.backupId} lacks ${newest.missing.length} piece${newest.missing.length === 1 ? '' : 's'} its restored copy needs: ` +
        `after granting, take a new one (lifeboat backup --runbook ${runbook.name})`,
    );
  } else if (newest?.verdict === 'unrecorded') {
    out.push(
      `note: the newest backup ${newest.backupId} has no privilege record; after granting, a new backup (lifeboat backup --runbook ${runbook.name}) has one`,
    );
  }
  out.push(ok ? 'Result: nothing missing' : `Result: ${verdict.join('; ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return ok ? EXIT.ok : EXIT.failed;
}

async function checkPrimary(runbook: Runbook, repairTables: string[]): Promise<PrivilegeReport> {
  const client = new Client(primaryClientConfig(runbook, { application_name: 'lifeboat-doctor' }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await inspectPrivileges(
      client,
      runbook,
      repairTables.length > 0 ? { repair: { tables: repairTables } } : {},
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

function missingLines(m: MissingPrivilege): string[] {
  const lines = [`  ${m.optional ? 'optional' : 'MISSING'}: ${m.what}${m.detail ? ` (${m.detail})` : ''}`];
  if (m.uses.length > 0) lines.push(`    needed by: ${m.uses.map((u) => USE_WORDS[u]).join(', ')}`);
  lines.push(
    m.key === 'pg_hba:replication'
      ? '    fix:'
      : `    fix, as a superuser${m.database ? ` connected to database ${m.database}` : ''}:`,
    ...indent(m.fix, '      '),
  );
  return lines;
}

function indent(text: string, by: string): string[] {
  return text.split('\n').map((l) => `${by}${l}`);
}
