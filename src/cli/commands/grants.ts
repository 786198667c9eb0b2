// `lifeboat grants --runbook <name>`: the exact SQL that gives the runbook's
// role what Lifeboat needs, and nothing more (src/privileges/grants.ts), on
// stdout and nothing else there, so it can be piped into psql; how to use it
// goes to stderr.
import { grantCommand, grantsSql } from '../../privileges/grants';
import { requireRunbook, type RepoOptions } from '../context';
import { EXIT } from '../run';
import { LifeboatError } from '../../errors';

/** Comma-separated table names; a comma inside a quoted name ("a,b") stays in it. */
export function splitTables(list: string): string[] {
  return (list.match(/(?:"(?:[^"]|"")*"|[^,])+/g) ?? []).map((t) => t.trim()).filter((t) => t !== '');
}

/** --repair-tables of grants and doctor: the tables, or [] without the option; refuses a list that names none. */
export function repairTablesOption(value: string | undefined): string[] {
  const tables = value === undefined ? [] : splitTables(value);
  if (value !== undefined && tables.length === 0) {
    throw new LifeboatError('INPUT_INVALID', `--repair-tables names no table: '${value}'`, {
      hints: ['name the tables a repair may restore, comma-separated: --repair-tables public.orders,public.payments'],
    });
  }
  return tables;
}

export async function run(opts: RepoOptions & { repairTables?: string }): Promise<number> {
  const tables = repairTablesOption(opts.repairTables);
  const runbook = await requireRunbook(opts, 'grants');
  const p = runbook.cluster.primary;
  process.stdout.write(grantsSql(runbook, tables.length > 0 ? { repair: { tables } } : {}));
  process.stderr.write(
    [
      `lifeboat grants: SQL for role ${p.user} in database ${p.database}; run it as a superuser connected to that database:`,
      `  ${grantCommand(runbook)}`,
      `then check it as the role (lifeboat doctor --runbook ${runbook.name}) and take a new base backup (lifeboat backup --runbook ${runbook.name}):`,
      'a restored copy has the grants of its backup, not those made since.',
      '',
    ].join('\n'),
  );
  return EXIT.ok;
}
