// No secret in any log of a copy Lifeboat restores from s3://, even at
// log_min_messages = debug5, where PostgreSQL prints its whole environment
// ("PostmasterMain: initial environment dump") and every restore_command it
// runs: the keys reach archive-get, the prefetcher and (once promoted) the
// copy's archive-push through the copy's credentials file, never through the
// postmaster's environment (src/restore/secret-file.ts).
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { activity } from '../harness/activity';
import { asPostgres, postgresTempDir, switchAndWaitArchived, PG_BIN } from '../harness/postgres';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { useS3Env } from '../harness/services';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { promoteRestored, replayWal, restoreBaseBackup } from '../../activities/restore';
import { readMarker } from '../../src/restore/marker';
import { osUserIds } from '../../src/restore/os-user';
import { stopPrefetcher } from '../../src/restore/prefetch';
import { credentialsFilePath } from '../../src/restore/secret-file';
import { readCredentialsFile } from '../../src/repository/credentials-file';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let tc: TestCluster;
let runbook: Runbook;
let backupId: string;

beforeAll(async () => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  tc = await startTestCluster({ name: 'secrets-s3', kind: 's3', runbooksDir, host: 'sec' });
  cleanups.push(() => tc.stop());
  runbook = await loadRunbook(tc.name);
  await tc.pg.query('create table t (id int primary key, v text)');
  await tc.pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
  backupId = (await takeBaseBackup({ runbook })).backupId;
  // Only the archive has these: replay must fetch WAL through archive-get.
  await tc.pg.query(`insert into t select g, 'after backup' from generate_series(101, 200) g`);
  await tc.pg.query(`select pg_create_restore_point('secrets-point')`);
  await tc.pg.query(`insert into t values (1000, 'after the point')`);
  await switchAndWaitArchived(tc.pg);
});

afterAll(async () => {
  const dataDir = runbook?.restore.dataDir;
  if (dataDir && existsSync(path.join(dataDir, 'postmaster.pid'))) {
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => '');
  }
  if (dataDir) await stopPrefetcher(dataDir);
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** Every regular file under dir (recursively) but `except`. */
function filesUnder(dir: string, except: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, except));
    else if (e.isFile() && p !== except) out.push(p);
  }
  return out;
}

/** The copy's files that may hold a log line: its data directory (log/, the server log when kept inside) and its files beside it. */
function copyFiles(dataDir: string, credentials: string): string[] {
  const parent = path.dirname(dataDir);
  const beside = readdirSync(parent)
    .filter((n) => n.startsWith(`${path.basename(dataDir)}.`))
    .map((n) => path.join(parent, n))
    .filter((p) => statSync(p).isFile());
  return [...filesUnder(dataDir, credentials), ...beside];
}

function holding(files: string[], needle: string): string[] {
  return files.filter((f) => readFileSync(f).includes(needle));
}

async function onCopy<T>(sql: string): Promise<T[]> {
  const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

describe('a copy restored from s3:// at log_min_messages = debug5', () => {
  it('replays through archive-get with the keys from its credentials file, and no log, environment or result holds the secret', async () => {
    const secret = process.env.AWS_SECRET_ACCESS_KEY!;
    expect(secret.length).toBeGreaterThan(7);
    const dataDir = runbook.restore.dataDir;
    const workflowId = 'wf-secrets';
    const { result: restored, beats: restoreBeats } = await activity(restoreBaseBackup, {
      runbook: tc.name,
      backupId,
      mode: 'side-by-side',
      workflowId,
      runId: `${workflowId}-run`,
    });
    // The restored configuration, as the test's own: PostgreSQL's most verbose level.
    await asPostgres('/bin/sh', ['-c', `echo "log_min_messages = debug5" >> ${path.join(dataDir, 'postgresql.conf')}`]);
    const { result: replayed, beats: replayBeats } = await activity(replayWal, {
      runbook: tc.name,
      target: { name: 'secrets-point' },
      workflowId,
      runId: `${workflowId}-run`,
    });
    expect(replayed).toMatchObject({ paused: true, timeline: 1 });
    expect(await onCopy<{ n: number; max: number }>('select count(*)::int as n, max(id) as max from t')).toEqual([
      { n: 200, max: 200 },
    ]);

    // The keys are in the file, and only there: 0600, the OS user's.
    const credentials = credentialsFilePath(dataDir);
    const st = statSync(credentials);
    expect({ mode: (st.mode & 0o777).toString(8), uid: st.uid }).toEqual({
      mode: '600',
      uid: (await osUserIds('postgres')).uid,
    });
    expect(readCredentialsFile(credentials)).toMatchObject({ role: 'restore', env: { AWS_SECRET_ACCESS_KEY: secret } });

    // The postmaster's own environment, as the kernel has it.
    const pid = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain(`LIFEBOAT_CREDENTIALS_FILE=${credentials}`);
    expect(environ.filter((l) => l.includes(secret))).toEqual([]);

    // The log is the one PostgreSQL wrote at debug5: its environment dump is
    // there (so a secret in the environment would be too), and the
    // restore_command lines it ran.
    const logFile = (await readMarker(dataDir))!.logFile!;
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('PostmasterMain: initial environment dump');
    expect(log).toContain(`LIFEBOAT_CREDENTIALS_FILE=${credentials}`);
    expect(log).toMatch(/executing restore command ".*archive-get/);
    const files = copyFiles(dataDir, credentials);
    expect(files).toContain(logFile);
    expect(holding(files, secret)).toEqual([]);
    const results = JSON.stringify({ restored, restoreBeats, replayed, replayBeats });
    expect(results).not.toContain(secret);

    // Promoted by a recovery, the copy is the primary: its archive_command
    // (the old primary's archive-push) archives with the file's keys, now
    // the archive identity's, still never from its environment.
    await activity(promoteRestored, { runbook: tc.name, workflowId, runId: `${workflowId}-run` });
    expect(readCredentialsFile(credentials)).toMatchObject({ role: 'archive', env: { AWS_SECRET_ACCESS_KEY: secret } });
    await onCopy(`insert into t values (5000, 'written on the promoted copy')`);
    // dataDir: switchAndWaitArchived also waits for the copy's archive_status to empty up to the segment.
    const copy = { query: (sql: string) => onCopy(sql), dataDir } as unknown as Parameters<
      typeof switchAndWaitArchived
    >[0];
    const pushed = await switchAndWaitArchived(copy);
    expect(pushed.slice(0, 8)).toBe('00000002');
    expect(readFileSync(logFile, 'utf8')).toMatch(/executing archive command ".*archive-push/);
    const after = copyFiles(dataDir, credentials);
    expect(holding(after, secret)).toEqual([]);
    console.log(
      `debug5 copy: ${after.length} files (log ${statSync(logFile).size} bytes) searched for the secret, none holds it; archived ${pushed} after promotion`,
    );
  });
});
