// Object Lock extension by the retention tiers on TWO s3:// repositories
// (runbook `repositories:`), each a bucket created with Object Lock on a
// MinIO of the test's own, each with its own objectLock (governance, 1 day
// and 2 days at upload). A real PostgreSQL 15 primary archives to both
// through `lifeboat archive-push --runbook` (repositoryPolicy all); two real
// base backups reach both (takeBaseBackup copies into the second); the
// first one's backup.json is FORGED three years back in each (a new version;
// the locked one stays) so that the yearly tier keeps it for an ended year.
// `lifeboat expire` must then move the lock of every object of that backup
// and of its own WAL, in EACH repository, to the day it leaves the yearly
// tier, touch nothing else, and print one section per repository.
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { readWalArchive } from '../../src/catalog/catalog';
import { walFilesOfBackup } from '../../src/catalog/lock-extend';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { lifeboatCommand } from '../../src/tools';
import { sha256Hex } from '../../src/wal/compress';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import { freePort } from '../harness/ports';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';

const name = `lock2-${process.pid}`;
const PREFIX = 'repo';
const DAY_MS = 86_400_000;
/** Two lock-enabled buckets, each repository with its own upload lock. */
const REPOS = [
  { name: 'east', bucket: 'lifeboat-lock-east', days: 1 },
  { name: 'west', bucket: 'lifeboat-lock-west', days: 2 },
] as const;
const cleanups: Cleanups = [];
let minio: OwnMinio;
let root: S3Client;
let pg: Primary;
let runbooksDir: string;
const repos: Repository[] = [];
let b1: BackupMeta;
let b2: BackupMeta;
const lifeboat = cliRunner(() => ({ ...process.env, ...minio.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));
const urlOf = (i: number) => `s3://${REPOS[i]!.bucket}/${PREFIX}`;

/** Mode and retain-until of the current version of each key, as MinIO's root user reads them. */
async function retention(i: number, keyList: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of keyList) {
    const h = await root.send(new HeadObjectCommand({ Bucket: REPOS[i]!.bucket, Key: `${PREFIX}/${k}` }));
    out[k] =
      `${h.ObjectLockMode} ${h.ObjectLockRetainUntilDate ? new Date(h.ObjectLockRetainUntilDate).toISOString() : 'none'}`;
  }
  return out;
}

beforeAll(async () => {
  minio = await startOwnMinio('lock2');
  cleanups.push(() => minio.stop());
  // This process (backups, forging) and expire act as MinIO's root user (the default chain): identities are not the point here.
  Object.assign(process.env, minio.env);
  root = new S3Client({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: minio.env.AWS_ACCESS_KEY_ID!, secretAccessKey: minio.env.AWS_SECRET_ACCESS_KEY! },
  });
  cleanups.push(() => root.destroy());
  for (const r of REPOS)
    await root.send(new CreateBucketCommand({ Bucket: r.bucket, ObjectLockEnabledForBucket: true }));

  runbooksDir = postgresTempDir('lock2-runbooks');
  const stateDir = postgresTempDir('lock2-state');
  cleanups.push(() => {
    // Directories this test made: provably ours.
    for (const d of [runbooksDir, stateDir]) rmSync(d, { recursive: true, force: true });
  });
  pg = await startPrimary({ archive: { repo: urlOf(0), cluster: name, env: minio.env } });
  cleanups.push(() => pg.stop());
  const yaml = demoRunbookYaml({
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: 's3://placeholder/x',
    endpointEnv: 'S3_ENDPOINT',
    host: `lock2${process.pid}`,
    stateDir,
    restorePort: await freePort(),
    drillPort: await freePort(),
  })
    .replace(
      /^repository: .*$/m,
      [
        'repositories:',
        ...REPOS.map(
          (r, i) =>
            `  - { name: ${r.name}, url: "${urlOf(i)}", endpointEnv: S3_ENDPOINT, objectLock: { mode: governance, days: ${r.days} } }`,
        ),
        'repositoryPolicy: all',
      ].join('\n'),
    )
    .replace(/retainFull: \d+, /, '');
  expect(yaml).not.toContain('retainFull');
  const runbookFile = path.join(runbooksDir, `${name}.yaml`);
  writeFileSync(runbookFile, `${yaml}retention:\n  full: { daily: 7, yearly: 7 }\n  wal: 1d\n`, { mode: 0o644 });
  await pg.query(`alter system set archive_command = '${lifeboatCommand()} archive-push %p --runbook ${runbookFile}'`);
  await pg.query('select pg_reload_conf()');

  const runbook = await loadRunbook(name, runbooksDir);
  expect(runbook.repositories.map((r) => r.url)).toEqual([urlOf(0), urlOf(1)]);
  for (const entry of runbook.repositories) repos.push(await openRepository(entry.url, { ...entry, role: 'backup' }));
  cleanups.push(() => {
    for (const r of repos) (r as { destroy?: () => void }).destroy?.();
  });
  await pg.query('create table t (id int, v text)');
  await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
  await switchAndWaitArchived(pg);
  const first = await takeBaseBackup({ runbook });
  await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
  await switchAndWaitArchived(pg);
  b2 = await takeBaseBackup({ runbook });
  await switchAndWaitArchived(pg);

  // Forged in both: the first backup started three years ago (a new version of backup.json; the locked one stays).
  const took = Date.parse(first.endTime) - Date.parse(first.startTime);
  const start = new Date(Date.UTC(new Date().getUTCFullYear() - 3, 5, 15, 1));
  b1 = { ...first, startTime: start.toISOString(), endTime: new Date(start.getTime() + took).toISOString() };
  const body = Buffer.from(`${JSON.stringify(b1, null, 2)}\n`);
  for (const repo of repos) await repo.put(keys.backupMeta(name, b1.backupId), body, { sha256: sha256Hex(body) });
}, 300_000);

afterAll(async () => {
  await runCleanups(cleanups);
});

describe('Object Lock extension on two repositories', () => {
  it('expire moves the locks of the backup the yearly tier keeps to the day it leaves the tier in EACH repository (each locked at upload with its own days), touches nothing else, and reports each repository', async () => {
    const year = new Date().getUTCFullYear();
    const until = new Date(Date.UTC(year - 3 + 7, 0, 1)).toISOString();
    const b1Keys: string[][] = [];
    const others: string[][] = [];
    const before: Array<Record<string, string>> = [];
    for (const [i, repo] of repos.entries()) {
      const archive = await readWalArchive(repo, name);
      const wal = walFilesOfBackup(b1, archive.files).flatMap((f) => f.keys);
      expect(wal.length).toBeGreaterThanOrEqual(2); // its segments and its .backup file
      b1Keys[i] = [...(await repo.list(keys.backupPrefix(name, b1.backupId))).map((o) => o.key), ...wal];
      others[i] = (await repo.list(`${name}/`))
        .map((o) => o.key)
        .filter((k) => (k.startsWith(`${name}/base/`) || k.startsWith(`${name}/wal/`)) && !b1Keys[i]!.includes(k));
      expect(others[i]!.some((k) => k.startsWith(`${name}/base/${b2.backupId}/`))).toBe(true);
      // The upload lock: governance, this repository's own days.
      before[i] = await retention(i, [...b1Keys[i]!, ...others[i]!]);
      for (const [k, v] of Object.entries(before[i]!)) {
        expect(v, `${REPOS[i]!.name} ${k}`).toMatch(/^GOVERNANCE \S+Z$/);
        const leftDays = (Date.parse(v.split(' ')[1]!) - Date.now()) / DAY_MS;
        expect(Math.abs(leftDays - REPOS[i]!.days), `${REPOS[i]!.name} ${k} locked for ${leftDays} days`).toBeLessThan(
          1 / 24,
        );
      }
    }

    const run = await lifeboat('expire', '--runbook', name, '--local');
    process.stdout.write(`lifeboat expire, two lock repositories: exit ${run.code}\n${run.stdout}${run.stderr}`);
    expect(run.code).toBe(0);
    for (const [i, r] of REPOS.entries()) {
      const section = run.stdout.split(/^== repository /m).find((s) => s.startsWith(`${r.name} (${urlOf(i)}) ==`));
      expect(section, `a section for ${r.name}`).toBeDefined();
      expect(section).toMatch(
        new RegExp(
          `extended ${b1Keys[i]!.length} objects of 1 backup\\n  ${b1.backupId} \\(yearly ${year - 3}\\): until ${until}: ${b1Keys[i]!.length} objects`,
        ),
      );
      const after = await retention(i, [...b1Keys[i]!, ...others[i]!]);
      for (const k of b1Keys[i]!) expect(after[k], `${r.name} ${k}`).toBe(`GOVERNANCE ${until}`);
      for (const k of others[i]!) expect(after[k], `${r.name} ${k}`).toBe(before[i]![k]);
    }
  });
});
