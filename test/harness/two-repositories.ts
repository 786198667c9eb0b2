// Runbooks with `repositories:` (issue 15's second repository) for the tests
// that archive into more than one: the demo runbook with its `repository:`
// line replaced, written where the primary's archive_command reads it, and
// the rows around a recovery target that the fallback tests restore.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { demoRunbookYaml, type DemoRunbookParams } from '../../src/dev/demo-runbook';
import type { Runbook } from '../../src/runbook/schema';
import { lifeboatCommand } from '../../src/tools';
import { switchAndWaitArchived, type Primary } from './postgres';

/**
 * The demo runbook for `p` with `repositories:` in place of its
 * `repository:` line: `entries` are the list's YAML lines as written (each
 * starting with "  - " or continuing an entry), then the policy.
 */
export function runbookWithRepositories(p: DemoRunbookParams, entries: string[], policy: 'all' | 'primary'): string {
  return demoRunbookYaml(p).replace(
    /^repository: .*$/m,
    ['repositories:', ...entries, `repositoryPolicy: ${policy}`].join('\n'),
  );
}

/** Writes `yaml` as `<name>.yaml` in `runbooksDir` and has `pg` archive by it (every repository, by its policy); returns the file. */
export async function archiveByRunbook(pg: Primary, runbooksDir: string, name: string, yaml: string): Promise<string> {
  const runbookFile = path.join(runbooksDir, `${name}.yaml`);
  writeFileSync(runbookFile, yaml, { mode: 0o644 });
  await pg.query(`alter system set archive_command = '${lifeboatCommand()} archive-push %p --runbook ${runbookFile}'`);
  await pg.query('select pg_reload_conf()');
  return runbookFile;
}

/**
 * Table t with 100 rows before a base backup and 100 after it, the target
 * (the time right after those), the segment holding it archived (`damaged`:
 * the one a fallback test damages in the first repository), then 50 rows
 * after the target, archived too. A restore to `target` shows rows 1 to 200.
 */
export async function rowsAroundATarget(
  pg: Primary,
  runbook: Runbook,
): Promise<{ backup: Awaited<ReturnType<typeof takeBaseBackup>>; target: string; damaged: string }> {
  await pg.query('create table t (id int primary key, v text)');
  // Enough rows that the base backup has file parts of its own besides part 0 (the directories).
  await pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
  const backup = await takeBaseBackup({ runbook });
  await pg.query(`insert into t select g, 'after backup' from generate_series(101, 200) g`);
  const [{ now: target }] = (await pg.query<{ now: string }>(
    `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as now`,
  )) as [{ now: string }];
  const damaged = await switchAndWaitArchived(pg);
  await pg.query(`insert into t select g, 'after the target' from generate_series(201, 250) g`);
  await switchAndWaitArchived(pg);
  return { backup, target, damaged };
}
