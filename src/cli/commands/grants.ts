// `lifeboat grants --runbook <name>`: the exact SQL that gives the runbook's
// role what Lifeboat needs, and nothing more (src/privileges/grants.ts), on
// stdout and nothing else there, so it can be piped into psql; how to use it
// goes to stderr.
import { grantCommand, grantsSql } from '../../privileges/grants';
import { requireRunbook, type RepoOptions } from '../context';
import { EXIT } from '../run';

export async function run(opts: RepoOptions): Promise<number> {
  const runbook = await requireRunbook(opts, 'grants');
  const p = runbook.cluster.primary;
  process.stdout.write(grantsSql(runbook));
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
