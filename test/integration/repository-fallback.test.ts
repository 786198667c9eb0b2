// A recovery that falls back to the second repository (runbook
// `repositories:`): a real PostgreSQL 15 primary archives through `lifeboat
// archive-push --runbook` into a file:// repository and the run's MinIO
// (repositoryPolicy all), a base backup goes into both; then the first is
// damaged: one WAL segment the replay needs has a byte flipped, and the
// backup's backup.json is moved aside there. restore-base-backup and
// replay-wal (the recovery's activities, as restore.test.ts runs them) take
// the backup and that segment from the second, every other segment from
// the first, and pause at the target with exactly its rows; their results
// say which repository served what and why the first did not.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from 'pg';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { isLifeboatError } from '../../src/errors';
import { repositorySourceNotes, repositorySources } from '../../src/recovery/repository-sources';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { stopPrefetcher } from '../../src/restore/prefetch';
import { loadRunbook } from '../../src/runbook/load';
import { fetchWalFile } from '../../src/wal/get';
import { activity } from '../harness/activity';
import { freePort } from '../harness/ports';
import { asPostgres, PG_BIN, postgresTempDir, startPrimary, type Primary } from '../harness/postgres';
import { s3Env, s3RepoUrl, useS3Env } from '../harness/services';
import { archiveByRunbook, rowsAroundATarget, runbookWithRepositories } from '../harness/two-repositories';
import { runCleanups } from '../harness/cleanups';

const name = `fallback-${process.pid}`;
const runbooksDir = postgresTempDir('runbooks');
const repoDir = postgresTempDir('repo1');
const stateDir = postgresTempDir('state');
const offsiteUrl = s3RepoUrl('fallback');
const cleanups: Array<() => unknown> = [];
let pg: Primary;

beforeAll(async () => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  pg = await startPrimary({ archive: { repo: `file://${repoDir}`, cluster: name, env: s3Env() } });
  cleanups.push(() => pg.stop());
  const params = {
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: `file://${repoDir}`,
    host: 'fallback',
    stateDir,
    restorePort: await freePort(),
    drillPort: await freePort(),
  };
  const yaml = runbookWithRepositories(
    params,
    [
      `  - { name: local, url: "file://${repoDir}" }`,
      `  - { name: offsite, url: "${offsiteUrl}", endpointEnv: S3_ENDPOINT }`,
    ],
    'all',
  );
  await archiveByRunbook(pg, runbooksDir, name, yaml);
}, 120_000);

afterAll(async () => {
  const dataDir = path.join(stateDir, 'recovery');
  if (existsSync(path.join(dataDir, 'postmaster.pid')))
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => '');
  await stopPrefetcher(dataDir).catch(() => undefined);
  await runCleanups(cleanups);
  // Directories this test made: provably ours.
  for (const d of [runbooksDir, repoDir, stateDir]) rmSync(d, { recursive: true, force: true });
});

async function onRestored<T>(port: number, sql: string): Promise<T[]> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

it(
  'restores the base backup and a damaged segment from the second repository, the rest from the first, exactly the rows at the target, and says which repository served what',
  { timeout: 300_000 },
  async () => {
    const runbook = await loadRunbook(name);
    const { backup, target, damaged } = await rowsAroundATarget(pg, runbook);
    expect(damaged > backup.startWal).toBe(true);

    const local = await openRepository(`file://${repoDir}`);
    const offsite = await openRepository(offsiteUrl, { endpointEnv: 'S3_ENDPOINT' });
    cleanups.push(() => (offsite as { destroy?: () => void }).destroy?.());
    // Both hold the backup and every segment (repositoryPolicy all).
    expect(await offsite.head(keys.backupMeta(name, backup.backupId))).toBeDefined();
    expect((await offsite.head(keys.wal(name, damaged)))?.sha256).toBe(
      (await local.head(keys.wal(name, damaged)))?.sha256,
    );

    // The first repository damaged: a byte of the segment flipped, backup.json moved aside (kept, never deleted).
    const segFile = path.join(repoDir, keys.wal(name, damaged));
    const bytes = readFileSync(segFile);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(segFile, bytes);
    const metaFile = path.join(repoDir, keys.backupMeta(name, backup.backupId));
    renameSync(metaFile, `${metaFile}.aside`);
    const refused = await fetchWalFile(local, name, damaged).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLifeboatError(refused) && refused.code).toBe('WAL_CHECKSUM_MISMATCH');

    const workflowId = 'wf-fallback';
    const { result: restored } = await activity(restoreBaseBackup, {
      runbook: name,
      backupId: backup.backupId,
      mode: 'side-by-side',
      workflowId,
      runId: `${workflowId}-run`,
    });
    expect(restored.repository).toEqual({
      name: 'offsite',
      url: offsiteUrl,
      skipped: [
        { name: 'local', url: `file://${repoDir}`, reason: expect.stringContaining(backup.backupId) as string },
      ],
    });
    process.stdout.write(
      `base backup from ${restored.repository?.name}: local passed over: ${restored.repository?.skipped[0]?.reason}\n`,
    );

    const { result: replayed } = await activity(replayWal, {
      runbook: name,
      target: { time: target },
      workflowId,
      runId: `${workflowId}-run`,
    });
    expect(
      await onRestored(
        restored.port,
        `select count(*)::int as n, max(id) as max, count(*) filter (where v = 'after backup')::int as after from t`,
      ),
    ).toEqual([{ n: 200, max: 200, after: 100 }]);
    // restore_command, or the copy's prefetcher (via: prefetcher), whichever asked first: both fall back alike.
    expect(replayed.walFromOtherRepositories).toEqual([
      expect.objectContaining({
        walFile: damaged,
        servedBy: offsiteUrl,
        skipped: [
          {
            url: `file://${repoDir}`,
            reason: expect.stringMatching(/does not match its checksum|cannot be decompressed/) as string,
          },
        ],
      }),
    ]);
    // What the evidence of a recovery or drill says (workflows/*/evidence.ts build it with these).
    const notes = repositorySourceNotes(repositorySources(restored, replayed));
    expect(notes).toEqual([
      expect.stringMatching(
        new RegExp(
          `^base backup served by repository offsite \\(${offsiteUrl.replace(/[/.]/g, '\\$&')}\\); passed over: local \\(file://`,
        ),
      ) as string,
      expect.stringMatching(
        new RegExp(
          `^WAL ${damaged} served by ${offsiteUrl.replace(/[/.]/g, '\\$&')}( \\(fetched ahead by the prefetcher\\))?; passed over: file://.* does not match its checksum`,
        ),
      ) as string,
    ]);
    process.stdout.write(`evidence notes:\n${notes.join('\n')}\n`);

    // restore_command names the first with --repo and the second as a fallback, with its endpoint's variable name only.
    const conf = readFileSync(path.join(restored.dataDir, 'postgresql.auto.conf'), 'utf8');
    // (postgresql.auto.conf doubles the shell's single quotes.)
    expect(conf).toContain(
      `archive-get %f %p --repo file://${repoDir} --cluster ${name} --fallback-repo ''${offsiteUrl}#endpointEnv=S3_ENDPOINT''`,
    );

    // --repo-index local: only the damaged repository is read, so the restore is refused there, before the data directory is touched.
    const forced = await activity(restoreBaseBackup, {
      runbook: name,
      backupId: backup.backupId,
      mode: 'side-by-side',
      workflowId: 'wf-forced',
      runId: 'wf-forced-run',
      repository: 'local',
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(forced?.message).toContain(
      `backup ${backup.backupId} of cluster ${name} in file://${repoDir} is incomplete: no backup.json`,
    );
    expect(forced?.message).not.toContain(offsiteUrl);
  },
);
