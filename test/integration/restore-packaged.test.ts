// A primary laid out like a packaged install (Debian's pg_createcluster):
// postgresql.conf, pg_hba.conf and pg_ident.conf in a separate configuration
// directory, started with `pg_ctl -D <that directory>`. Its base backups hold
// none of those files, and PostgreSQL cannot start a copy without them. The
// restore says so before anything starts, and with restore.hbaFile and
// restore.confFile the copy starts with the primary's settings, its path
// settings disabled.
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { Client } from 'pg';
import { afterAll, expect, it } from 'vitest';
import { promoteRestored, replayWal, restoreBaseBackup, stopRestored } from '../../activities/restore';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { chownToOsUser, initSandboxPrimary } from '../../src/dev/sandbox-pg';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { loadRunbook } from '../../src/runbook/load';
import { lifeboatCommand } from '../../src/tools';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { asPostgres, PG_BIN, postgresTempDir } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

async function query<T>(port: number, sql: string): Promise<T[]> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

const run = <R>(fn: (...a: never[]) => Promise<R>, input: unknown): Promise<R> =>
  new MockActivityEnvironment().run(fn as (i: unknown) => Promise<R>, input);

it('restores a packaged-layout primary once restore.hbaFile and restore.confFile name its configuration', async () => {
  const root = postgresTempDir('packaged');
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const dataDir = path.join(root, 'data');
  const etc = path.join(root, 'etc');
  const repoDir = postgresTempDir('packaged-repo');
  cleanups.push(() => rmSync(repoDir, { recursive: true, force: true }));
  const runbooksDir = postgresTempDir('packaged-runbooks');
  cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const port = await freePort();
  const repoUrl = `file://${repoDir}`;

  // The packaged layout: the configuration moved out of the data directory.
  await initSandboxPrimary(
    { dataDir, port, socketDir: root, logFile: path.join(root, 'pg.log'), pgBin: PG_BIN, osUser: 'postgres' },
    {
      archiveCommand: `${lifeboatCommand()} archive-push %p --repo ${repoUrl} --cluster packaged`,
      conf: ['work_mem = 7MB'],
    },
  );
  mkdirSync(etc);
  chownToOsUser(etc, 'postgres');
  for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'])
    renameSync(path.join(dataDir, f), path.join(etc, f));
  appendFileSync(
    path.join(etc, 'postgresql.conf'),
    `data_directory = '${dataDir}'\nhba_file = '${etc}/pg_hba.conf'\nident_file = '${etc}/pg_ident.conf'\n`,
  );
  await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', etc, '-l', path.join(root, 'pg.log'), '-w', 'start']);
  cleanups.push(() => asPostgres(`${PG_BIN}/pg_ctl`, ['-D', etc, 'stop', '-m', 'immediate', '-w']));

  const stateDir = postgresTempDir('packaged-state');
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const restorePort = await freePort();
  const yaml = demoRunbookYaml({
    name: 'packaged',
    pgPort: port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl,
    host: 'pk',
    stateDir,
    restorePort,
    drillPort: restorePort + 1,
  });
  writeFileSync(path.join(runbooksDir, 'packaged.yaml'), yaml);
  const runbook = await loadRunbook('packaged');

  await query(port, 'create table t as select g as id from generate_series(1, 100) g');
  const backup = await takeBaseBackup({ runbook });
  await query(port, 'insert into t select g from generate_series(101, 150) g');
  const [{ walfile }] = (await query<{ walfile: string }>(
    port,
    'select pg_walfile_name(pg_switch_wal()) as walfile',
  )) as [{ walfile: string }];
  await waitFor('the switch to be archived', async () => {
    const [s] = await query<{ last: string | null }>(port, 'select last_archived_wal as last from pg_stat_archiver');
    return s?.last && s.last >= walfile ? true : undefined;
  });
  const input = {
    runbook: 'packaged',
    backupId: backup.backupId,
    mode: 'side-by-side',
    workflowId: 'wf-pk',
    runId: 'wf-pk-run',
  };
  cleanups.push(() => run(stopRestored, { runbook: 'packaged', workflowId: 'wf-pk' }));

  // Without the files named: a clear refusal before PostgreSQL is started.
  const err = await run(restoreBaseBackup, input).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe('RUNBOOK_INVALID');
  expect((err as ApplicationFailure).message).toBe(
    [
      `the base backup restored into ${runbook.restore.dataDir} has no pg_hba.conf, so PostgreSQL cannot start there`,
      'HINT: packaged installs keep it outside the data directory (Debian: /etc/postgresql/<version>/<cluster>/pg_hba.conf)',
      'HINT: put a copy on restore host pk and name it in the runbook as restore.hbaFile, then retry this step (the restored files are kept and reused)',
    ].join('\n'),
  );

  // The operator copies the primary's files to the restore host and names them; the retry reuses the extraction.
  const copies = path.join(stateDir, 'etc-copy');
  mkdirSync(copies);
  copyFileSync(path.join(etc, 'postgresql.conf'), path.join(copies, 'postgresql.conf'));
  copyFileSync(path.join(etc, 'pg_hba.conf'), path.join(copies, 'pg_hba.conf'));
  writeFileSync(
    path.join(runbooksDir, 'packaged.yaml'),
    yaml.replace(
      /^restore: \{ (.*) \}$/m,
      `restore: { $1, confFile: ${copies}/postgresql.conf, hbaFile: ${copies}/pg_hba.conf }`,
    ),
  );
  const restored = await run(restoreBaseBackup, input);
  expect(restored.configNotes).toEqual([
    `pg_hba.conf from ${copies}/pg_hba.conf`,
    'pg_ident.conf written empty',
    `postgresql.conf from ${copies}/postgresql.conf (path settings disabled)`,
  ]);
  const conf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.conf'), 'utf8');
  expect(conf).toContain(`# disabled by Lifeboat (names a path of the primary): data_directory = '${dataDir}'`);

  await run(replayWal, { runbook: 'packaged', target: { latest: true }, workflowId: 'wf-pk', runId: 'wf-pk-run' });
  expect(await query(restorePort, 'select count(*)::int as n, max(id) as max from t')).toEqual([{ n: 150, max: 150 }]);
  // The primary's own settings came with the copied postgresql.conf.
  expect(await query(restorePort, 'show work_mem')).toEqual([{ work_mem: '7MB' }]);
  await run(promoteRestored, { runbook: 'packaged', workflowId: 'wf-pk', runId: 'wf-pk-run' });
  expect(await query(restorePort, 'select pg_is_in_recovery() as r')).toEqual([{ r: false }]);
});
