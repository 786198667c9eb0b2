// Fault: the second of two repositories (runbook `repositories:`, a file://
// first and an s3:// MinIO of the test's own second) goes away while a real
// PostgreSQL 15 primary archives into both through `lifeboat archive-push
// --runbook` (repositoryPolicy: primary).
//
// Held states, no timing: the MinIO is killed (refused connections) or
// frozen (SIGSTOP: connections accepted, nothing answered) for as long as
// the test looks; segments are switched and waited for in pg_stat_archiver.
//
// Checked: archiving goes on into the first repository; the catch-up queue
// on the primary's host holds exactly the segments the second lacks; `lifeboat
// check` names the second as behind, the first missing file and since when;
// once the store answers, the next archive-push drains the queue (killed
// case) or `lifeboat archive-catchup` copies them (frozen case); then check
// is healthy and every WAL object of the first is in the second with the same
// sha256. The base backup was copied into both.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { openRepository } from '../../src/repository';
import { keys, walFileOfKey } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { CATCHUP_DIR } from '../../src/wal/catchup';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import { freePort } from '../harness/ports';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { archiveByRunbook, runbookWithRepositories } from '../harness/two-repositories';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

const name = `tworepo-${process.pid}`;
let minio: OwnMinio;
let pg: Primary;
let runbooksDir: string;
let first: Repository;
let second: Repository;
const lifeboat = cliRunner(() => ({ ...process.env, ...minio.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));

beforeAll(async () => {
  minio = await startOwnMinio('tworepo');
  cleanups.push(() => minio.stop());
  // This process (the base backup) stores into the test's MinIO too.
  Object.assign(process.env, minio.env);
  const repoDir = postgresTempDir('repo1');
  const stateDir = postgresTempDir('state');
  runbooksDir = postgresTempDir('runbooks');
  cleanups.push(() => {
    // Directories this test made: provably ours.
    for (const d of [repoDir, stateDir, runbooksDir]) rmSync(d, { recursive: true, force: true });
  });
  pg = await startPrimary({ archive: { repo: `file://${repoDir}`, cluster: name, env: minio.env } });
  cleanups.push(() => pg.stop());
  const params = {
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: `file://${repoDir}`,
    host: `tworepo${process.pid}`,
    stateDir,
    restorePort: await freePort(),
    drillPort: await freePort(),
  };
  const yaml = runbookWithRepositories(
    params,
    [
      `  - { name: local, url: "file://${repoDir}" }`,
      `  - { name: offsite, url: "s3://${minio.bucket}/${name}", endpointEnv: S3_ENDPOINT }`,
    ],
    'primary',
  );
  // The primary archives by the runbook: every repository, by its policy.
  await archiveByRunbook(pg, runbooksDir, name, yaml);
  first = await openRepository(`file://${repoDir}`);
  second = await openRepository(`s3://${minio.bucket}/${name}`, { endpointEnv: 'S3_ENDPOINT' });
  cleanups.push(() => (second as { destroy?: () => void }).destroy?.());
}, 300_000);

/** WAL objects by file name with their sha256. */
async function walShas(repo: Repository): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const o of await repo.list(keys.walPrefix(name))) {
    const f = walFileOfKey(name, o.key);
    if (f) out.set(f, o.sha256 ?? (await repo.head(o.key))?.sha256);
  }
  return out;
}

function queueOf(repoName: string): string[] {
  const dir = path.join(pg.dataDir, 'pg_wal', CATCHUP_DIR, repoName);
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => !n.startsWith('.'))
        .sort()
    : [];
}

async function writeAndSwitch(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
    out.push(await switchAndWaitArchived(pg));
  }
  return out;
}

it(
  'keeps archiving into the first repository while the second is down, queues what the second lacks, check says since when, and everything catches up once it is back',
  { timeout: 600_000 },
  async () => {
    await pg.query('create table t (id int, v text)');
    const backup = await takeBaseBackup({ runbook: await loadRunbook(name, runbooksDir) });
    // The backup is in both repositories, backup.json included.
    expect(await first.head(keys.backupMeta(name, backup.backupId))).toBeDefined();
    expect(await second.head(keys.backupMeta(name, backup.backupId))).toBeDefined();
    await writeAndSwitch(2);

    const healthy = await lifeboat('check', '--runbook', name, '--no-primary');
    process.stdout.write(`check, both up:\n${healthy.stdout}`);
    expect(healthy.stdout).toContain('repository offsite (s3://');
    expect(healthy.stdout).toContain('up to date with local');
    expect(healthy.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(healthy.code).toBe(0);

    // --- killed: connections refused -------------------------------------
    await minio.kill();
    const killedAt = new Date();
    const during = await writeAndSwitch(3);
    // Archiving went on: each segment is in the first repository and queued for the second.
    const firstShas = await walShas(first);
    for (const s of during) expect(firstShas.has(s)).toBe(true);
    expect(queueOf('offsite')).toEqual(expect.arrayContaining(during));
    const entry = JSON.parse(
      readFileSync(path.join(pg.dataDir, 'pg_wal', CATCHUP_DIR, 'offsite', during[0]!), 'utf8'),
    ) as { walFile: string; sha256: string; reason: string };
    expect(entry.walFile).toBe(during[0]);
    expect(entry.sha256).toBe(firstShas.get(during[0]!));
    expect(entry.reason).toContain('ECONNREFUSED');
    const down = await lifeboat('check', '--runbook', name, '--no-primary');
    process.stdout.write(`check, second down:\n${down.stdout}`);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^repository offsite \(s3:\/\/[^)]+\) cannot be read: /m);

    // Back, and nothing archived yet: behind, by exactly the queued files, since the first of them was archived.
    await minio.restart();
    const queued = queueOf('offsite');
    const behind = await lifeboat('check', '--runbook', name, '--no-primary', '--json');
    const report = JSON.parse(behind.stdout) as {
      healthy: boolean;
      repositories: Array<{ name: string; behind?: { files: number; first?: string; since?: string } }>;
      problems: Array<{ kind: string; message: string }>;
    };
    process.stdout.write(`check, second back, behind: ${JSON.stringify(report.repositories)}\n`);
    expect(behind.code).toBe(1);
    expect(report.healthy).toBe(false);
    const offsite = report.repositories.find((r) => r.name === 'offsite')!;
    expect(offsite.behind?.files).toBe(queued.length);
    expect(offsite.behind?.first).toBe(queued[0]);
    const since = new Date(offsite.behind!.since!);
    expect(since.getTime()).toBeGreaterThanOrEqual(killedAt.getTime() - 1000);
    expect(since.getTime()).toBeLessThanOrEqual(Date.now());
    const problem = report.problems.find((p) => p.kind === 'repository-behind')!;
    expect(problem.message).toContain(
      `repository offsite (s3://${minio.bucket}/${name}) is behind local: ${queued.length} WAL files missing, ${queued[0]} .. ${queued[queued.length - 1]} since ${since.toISOString()}`,
    );

    // The next archive-push reaches it and drains the queue.
    await writeAndSwitch(1);
    expect(queueOf('offsite')).toEqual([]);
    const caughtUp = await lifeboat('check', '--runbook', name, '--no-primary');
    process.stdout.write(`check, caught up:\n${caughtUp.stdout}`);
    expect(caughtUp.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(caughtUp.code).toBe(0);
    const a = await walShas(first);
    const b = await walShas(second);
    for (const [f, sha] of a) expect(b.get(f), f).toBe(sha);

    // --- frozen: connections accepted, nothing answered --------------------
    minio.freeze();
    const t0 = Date.now();
    const [frozenSeg] = await writeAndSwitch(1);
    process.stdout.write(
      `archive-push with the second frozen: ${((Date.now() - t0) / 1000).toFixed(1)} s (waits at most SECONDARY_WAIT_MS once)\n`,
    );
    expect(queueOf('offsite')).toEqual([frozenSeg]);
    // Asked again only after a pause: the next segment is queued without waiting on it.
    const [next] = await writeAndSwitch(1);
    expect(queueOf('offsite')).toEqual([frozenSeg, next]);
    minio.thaw();
    const catchup = await lifeboat('archive-catchup', '--runbook', name, '--pg-wal', path.join(pg.dataDir, 'pg_wal'));
    process.stdout.write(`archive-catchup:\n${catchup.stdout}${catchup.stderr}`);
    expect(catchup.code).toBe(0);
    // An upload given up on while frozen may still land once thawed: then it is "already there".
    const m = /^offsite \(s3:\/\/[^)]+\): (\d+) copied, (\d+) already there, 0 failed$/m.exec(catchup.stdout);
    expect(m, catchup.stdout).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(2);
    expect(queueOf('offsite')).toEqual([]);
    const end = await lifeboat('check', '--runbook', name, '--no-primary');
    expect(end.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    const a2 = await walShas(first);
    const b2 = await walShas(second);
    for (const [f, sha] of a2) expect(b2.get(f), f).toBe(sha);
  },
);
