// The backup side is usable before any recovery workflow exists: a
// point-in-time restore configured by hand, with `lifeboat archive-get` as
// restore_command, to a named restore point, gets back exactly the rows that
// existed at that point.
import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { postgresTempDir, switchAndWaitArchived, PG_BIN } from '../harness/postgres';
import { startTestCluster } from '../harness/cluster';
import { freePort, waitFor } from '../harness/ports';
import { s3Env, useS3Env } from '../harness/services';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { loadRunbook } from '../../src/runbook/load';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { lifeboatCommand } from '../../src/tools';
import { startSandboxPrimary, stopSandboxPrimary, type SandboxPg } from '../../src/dev/sandbox-pg';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

describe.each(['file', 's3'] as const)('a hand-configured PITR from a %s:// repository', (kind) => {
  it('replays through archive-get to a named restore point and has exactly the rows of that moment', async () => {
    useS3Env();
    const runbooksDir = postgresTempDir('runbooks');
    cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
    const tc = await startTestCluster({ name: `pitr-${kind}`, kind, runbooksDir, host: 'local' });
    cleanups.push(() => tc.stop());
    const { name: cluster, repoUrl, pg: primary } = tc;
    const env = kind === 's3' ? s3Env() : {};
    const runbook = await loadRunbook(tc.runbookFile);

    await primary.query('create table t (id int primary key, v text)');
    await primary.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
    const backup = await takeBaseBackup({ runbook });
    // Rows written after the backup can only come back through the WAL archive.
    await primary.query(`insert into t select g, 'after backup' from generate_series(101, 200) g`);
    await switchAndWaitArchived(primary);
    await primary.query(`insert into t select g, 'after backup' from generate_series(201, 250) g`);
    await primary.query(`select pg_create_restore_point('before-bad-delete')`);
    await primary.query('delete from t where id > 50');
    await primary.query(`insert into t values (1000, 'after the restore point')`);
    await switchAndWaitArchived(primary);

    // Restore by hand: fetch and extract the base backup, part 0 (the
    // directories) first, then the others in any order...
    const repo = await openRepository(repoUrl, runbook.repository);
    const parts = backup.files
      .map((f) => f.name)
      .filter((n) => /^base\.\d{4}\.tar\.zst$/.test(n))
      .sort();
    expect(parts[0]).toBe('base.0000.tar.zst');
    const root = postgresTempDir('restore');
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const dataDir = path.join(root, 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    for (const part of parts) {
      const stored = await repo.get(keys.backupFile(cluster, backup.backupId, part));
      expect(stored).toBeDefined();
      writeFileSync(path.join(root, part), stored!.body);
      await exec('tar', ['--zstd', '-xf', path.join(root, part), '-C', dataDir]);
    }
    await exec('chown', ['-R', 'postgres:postgres', root]);

    // ...then recovery settings, with archive-get as restore_command. The
    // restored copy must never archive into the repository it reads from.
    const port = await freePort();
    appendFileSync(
      path.join(dataDir, 'postgresql.auto.conf'),
      [
        `port = ${port}`,
        `unix_socket_directories = '${root}'`,
        `archive_mode = off`,
        `hot_standby = on`,
        `restore_command = '${lifeboatCommand()} archive-get %f %p --repo ${repoUrl} --cluster ${cluster}'`,
        `recovery_target_name = 'before-bad-delete'`,
        `recovery_target_action = 'pause'`,
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(dataDir, 'recovery.signal'), '');
    await exec('chown', [
      'postgres:postgres',
      path.join(dataDir, 'recovery.signal'),
      path.join(dataDir, 'postgresql.auto.conf'),
    ]);
    const restored: SandboxPg = {
      dataDir,
      port,
      socketDir: root,
      logFile: path.join(root, 'postgres.log'),
      pgBin: PG_BIN,
      osUser: 'postgres',
      env,
    };
    await startSandboxPrimary(restored);
    cleanups.push(() => stopSandboxPrimary(restored, 'immediate'));

    const client = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await client.connect();
    cleanups.push(() => client.end());
    await waitFor(
      'replay to pause at the restore point',
      async () => {
        const { rows } = await client.query<{ state: string }>('select pg_get_wal_replay_pause_state() as state');
        return rows[0]?.state === 'paused' ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const { rows } = await client.query<{ n: string; min: number; max: number; after: string }>(
      `select count(*) as n, min(id) as min, max(id) as max, count(*) filter (where v = 'after backup') as after from t`,
    );
    expect(rows[0]).toEqual({ n: '250', min: 1, max: 250, after: '150' });
    const { rows: recovery } = await client.query<{ in_recovery: boolean }>(
      'select pg_is_in_recovery() as in_recovery',
    );
    expect(recovery[0]?.in_recovery).toBe(true);
  });
});
