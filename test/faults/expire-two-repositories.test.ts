// A second repository is not only written, it is kept (runbook
// `repositories:`, a file:// first and an s3:// MinIO of the test's own
// second, repositoryPolicy: primary), against a real PostgreSQL 15 primary
// archiving through `lifeboat archive-push --runbook`:
//
// 1. A base backup taken while the second is down (its MinIO killed for
//    exactly the length of takeBaseBackup) reaches only the first: `lifeboat
//    check` names it as missing there; `lifeboat archive-catchup` copies it
//    (every file verified by sha256, backup.json last), a second run copies
//    nothing; check is healthy and every stored file of the copy hashes to
//    what its backup.json records.
// 2. `lifeboat expire` plans and deletes in BOTH repositories, each from its
//    own catalog: exactly the older backup and the WAL before the kept one;
//    --dry-run first shows one section per repository and deletes nothing.
// 3. The second's expire identity is a MinIO user with only the archive
//    policy (docs/iam/archive.json): the first is still expired, the command
//    exits 1 naming the second and s3:DeleteObject, the second is untouched;
//    with its own expire identity, --repo-index 2 plans it alone, and the
//    expireBackups workflow (the first has nothing left) expires it.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as retentionActivities from '../../activities/retention';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { isComplete, readCatalog, readWalArchive } from '../../src/catalog/catalog';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { requireTool } from '../../src/tools';
import { isSegmentName } from '../../src/wal/names';
import type { ExpireBackupsResult } from '../../workflows/expire-backups';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import { freePort } from '../harness/ports';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { temporalAddress } from '../harness/services';
import { archiveByRunbook, runbookWithRepositories } from '../harness/two-repositories';

const exec = promisify(execFile);
const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

const name = `expire2-${process.pid}`;
const mcDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-mc-'));
let minio: OwnMinio;
let pg: Primary;
let runbooksDir: string;
let repoDir: string;
let offsiteUrl: string;
let first: Repository;
let second: Repository;
/** The offsite expire identity, as the runbook names it: root by default, the archive-only user in part 3. */
const offsiteExpire = { id: '', secret: '' };
const archiveOnly = { id: 'lifeboat-archive-only', secret: `archive-only-${process.pid}-${Date.now().toString(36)}` };
const lifeboat = cliRunner(() => ({
  ...process.env,
  ...minio.env,
  LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
  LB_OFFSITE_EXPIRE_ID: offsiteExpire.id,
  LB_OFFSITE_EXPIRE_SECRET: offsiteExpire.secret,
}));
const backups: string[] = [];

async function mc(...args: string[]): Promise<string> {
  const { stdout } = await exec(requireTool('mc'), ['--config-dir', mcDir, '--no-color', ...args], {
    env: {
      ...process.env,
      MC_HOST_lb: minio.endpoint.replace(
        '://',
        `://${minio.env.AWS_ACCESS_KEY_ID}:${minio.env.AWS_SECRET_ACCESS_KEY}@`,
      ),
    },
  });
  return stdout;
}

beforeAll(async () => {
  minio = await startOwnMinio('expire2');
  cleanups.push(() => minio.stop());
  Object.assign(process.env, minio.env);
  offsiteExpire.id = minio.env.AWS_ACCESS_KEY_ID!;
  offsiteExpire.secret = minio.env.AWS_SECRET_ACCESS_KEY!;
  // A user with exactly the archive policy of docs/iam for the second repository's prefix: it cannot delete.
  const policy = path.join(mcDir, 'archive.json');
  writeFileSync(
    policy,
    readFileSync(path.resolve(__dirname, '../../docs/iam/archive.json'), 'utf8')
      .replaceAll('EXAMPLE-BUCKET', minio.bucket)
      .replaceAll('EXAMPLE-PREFIX', name),
  );
  await mc('admin', 'policy', 'create', 'lb', 'lifeboat-archive', policy);
  await mc('admin', 'user', 'add', 'lb', archiveOnly.id, archiveOnly.secret);
  await mc('admin', 'policy', 'attach', 'lb', 'lifeboat-archive', '--user', archiveOnly.id);

  repoDir = postgresTempDir('repo1');
  const stateDir = postgresTempDir('state');
  runbooksDir = postgresTempDir('runbooks');
  cleanups.push(() => {
    // Directories this test made: provably ours.
    for (const d of [repoDir, stateDir, runbooksDir, mcDir]) rmSync(d, { recursive: true, force: true });
  });
  pg = await startPrimary({ archive: { repo: `file://${repoDir}`, cluster: name, env: minio.env } });
  cleanups.push(() => pg.stop());
  offsiteUrl = `s3://${minio.bucket}/${name}`;
  const params = {
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: `file://${repoDir}`,
    host: `expire2${process.pid}`,
    stateDir,
    restorePort: await freePort(),
    drillPort: await freePort(),
    retainFull: 1,
  };
  const yaml = runbookWithRepositories(
    params,
    [
      `  - { name: local, url: "file://${repoDir}" }`,
      `  - name: offsite`,
      `    url: "${offsiteUrl}"`,
      '    endpointEnv: S3_ENDPOINT',
      '    credentials: { expire: { accessKeyIdEnv: LB_OFFSITE_EXPIRE_ID, secretAccessKeyEnv: LB_OFFSITE_EXPIRE_SECRET } }',
    ],
    'primary',
  );
  await archiveByRunbook(pg, runbooksDir, name, yaml);
  first = await openRepository(`file://${repoDir}`);
  second = await openRepository(offsiteUrl, { endpointEnv: 'S3_ENDPOINT' });
  cleanups.push(() => (second as { destroy?: () => void }).destroy?.());
}, 300_000);

async function writeAndSwitch(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
    await switchAndWaitArchived(pg);
  }
}

async function verifiedIds(repo: Repository): Promise<string[]> {
  return (await readCatalog(repo, name)).filter(isComplete).map((e) => e.backupId);
}

async function segments(repo: Repository): Promise<string[]> {
  return (await readWalArchive(repo, name)).files.map((f) => f.name).filter(isSegmentName);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

interface CheckJson {
  healthy: boolean;
  repositories: Array<{ name: string; missingBackups?: string[] }>;
  problems: Array<{ kind: string; message: string; hints: string[] }>;
}

it(
  'a backup taken while the second repository is down: check names it, archive-catchup copies it verified, twice is a no-op, check healthy',
  { timeout: 600_000 },
  async () => {
    await pg.query('create table t (id int, v text)');
    await writeAndSwitch(1);
    const runbook = await loadRunbook(name, runbooksDir);
    backups.push((await takeBaseBackup({ runbook })).backupId);
    await writeAndSwitch(1);

    // Held out: the second's MinIO is killed for exactly the backup.
    await minio.kill();
    const held = await takeBaseBackup({ runbook });
    await minio.restart();
    backups.push(held.backupId);
    await writeAndSwitch(1); // drains the WAL queue
    expect(await verifiedIds(first)).toEqual(backups);
    expect(await verifiedIds(second)).toEqual([backups[0]]);

    const before = await lifeboat('check', '--runbook', name, '--no-primary', '--json');
    const report = JSON.parse(before.stdout) as CheckJson;
    expect(before.code).toBe(1);
    expect(report.repositories.find((r) => r.name === 'offsite')?.missingBackups).toEqual([held.backupId]);
    expect(report.problems.filter((p) => p.kind === 'repository-backups-missing')).toEqual([
      {
        kind: 'repository-backups-missing',
        message: `repository offsite (${offsiteUrl}) lacks 1 verified backup that local holds: ${held.backupId}`,
        hints: [
          `to copy them now (each file verified by sha256, backup.json last): lifeboat archive-catchup --runbook ${name}`,
          'until then a recovery that falls back to it cannot start from them',
        ],
      },
    ]);
    const text = await lifeboat('check', '--runbook', name, '--no-primary');
    process.stdout.write(`check, backup missing in the second:\n${text.stdout}`);
    expect(text.stdout).toContain(
      `repository offsite (${offsiteUrl}): 1 verified backup, lacks backup ${held.backupId}, `,
    );

    const catchup = await lifeboat('archive-catchup', '--runbook', name);
    process.stdout.write(`archive-catchup:\n${catchup.stdout}${catchup.stderr}`);
    expect(catchup.code).toBe(0);
    expect(catchup.stdout).toContain(`offsite (${offsiteUrl}): backups: 1 copied (${held.backupId}), 0 failed`);
    const again = await lifeboat('archive-catchup', '--runbook', name, '--json');
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { backups: unknown }).backups).toEqual([
      { name: 'offsite', url: offsiteUrl, copied: [], failed: [] },
    ]);

    const after = await lifeboat('check', '--runbook', name, '--no-primary');
    process.stdout.write(`check, after archive-catchup:\n${after.stdout}`);
    expect(after.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(after.code).toBe(0);
    // Every object of the copy: the same bytes as the first's, and what backup.json records.
    const meta = (await readCatalog(second, name)).filter(isComplete).find((e) => e.backupId === held.backupId)!.meta;
    expect(meta).toEqual(held);
    for (const f of meta.files) {
      const key = keys.backupFile(name, held.backupId, f.name);
      const copied = (await second.get(key))!.body;
      expect(sha256(copied), f.name).toBe(sha256((await first.get(key))!.body));
      expect(sha256(copied), f.name).toBe(f.storedSha256 ?? f.sha256);
    }
    const metaKey = keys.backupMeta(name, held.backupId);
    expect((await second.get(metaKey))!.body.equals((await first.get(metaKey))!.body)).toBe(true);
  },
);

it(
  'expire plans and deletes in both repositories, each from its own catalog: exactly the older backup and the WAL before the kept one',
  { timeout: 300_000 },
  async () => {
    const [older, kept] = backups as [string, string];
    const keptStart = (await readCatalog(first, name)).filter(isComplete).find((e) => e.backupId === kept)!.meta
      .startWal;
    const segsBefore = { local: await segments(first), offsite: await segments(second) };
    for (const s of Object.values(segsBefore)) expect(s.some((x) => x < keptStart)).toBe(true);

    const dry = await lifeboat('expire', '--runbook', name, '--local', '--dry-run');
    process.stdout.write(`expire --dry-run:\n${dry.stdout}${dry.stderr}`);
    expect(dry.code).toBe(0);
    const sections = dry.stdout.split(/^(?=== repository )/m);
    expect(sections.map((s) => s.split('\n')[0])).toEqual([
      `== repository local (file://${repoDir}) ==`,
      `== repository offsite (${offsiteUrl}) ==`,
    ]);
    for (const s of sections) expect(s).toMatch(new RegExp(`backups would delete:\\n  ${older} `));
    expect(await verifiedIds(second)).toEqual(backups);

    const run = await lifeboat('expire', '--runbook', name, '--local', '--json');
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(run.stdout) as {
      plan: {
        repository: string;
        expire: Array<{ backupId: string }>;
        repositories: Array<{ name: string; plan: { repository: string } }>;
      };
      applied: {
        deletedBackups: Array<{ backupId: string }>;
        repositories: Array<{
          name: string;
          applied: { deletedBackups: Array<{ backupId: string }>; walDeletedCount: number };
        }>;
      };
    };
    // The fields of before describe the first repository; the list has each.
    expect(result.plan.repository).toBe(`file://${repoDir}`);
    expect(result.applied.deletedBackups.map((b) => b.backupId)).toEqual([older]);
    expect(result.plan.repositories.map((r) => [r.name, r.plan.repository])).toEqual([
      ['local', `file://${repoDir}`],
      ['offsite', offsiteUrl],
    ]);
    expect(result.applied.repositories.map((r) => [r.name, r.applied.deletedBackups.map((b) => b.backupId)])).toEqual([
      ['local', [older]],
      ['offsite', [older]],
    ]);

    for (const [label, repo] of [
      ['local', first],
      ['offsite', second],
    ] as const) {
      expect(await verifiedIds(repo), label).toEqual([kept]);
      expect(await repo.list(keys.backupPrefix(name, older)), label).toEqual([]);
      const expected = segsBefore[label].filter((s) => s >= keptStart);
      const now = await segments(repo);
      expect(
        now.filter((s) => segsBefore[label].includes(s)),
        label,
      ).toEqual(expected);
      expect(result.applied.repositories.find((r) => r.name === label)!.applied.walDeletedCount, label).toBe(
        segsBefore[label].length - expected.length,
      );
    }
    const check = await lifeboat('check', '--runbook', name, '--no-primary');
    process.stdout.write(`check after expire:\n${check.stdout}`);
    expect(check.stdout.trimEnd().split('\n').pop()).toBe('healthy');
    expect(check.code).toBe(0);
  },
);

it(
  "the second repository's expire identity cannot delete: the first is still expired, exit 1 naming the second and s3:DeleteObject, the second untouched until its own identity runs (--repo-index, then the workflow)",
  { timeout: 300_000 },
  async () => {
    const older = backups[1]!;
    await writeAndSwitch(1);
    const newest = await takeBaseBackup({ runbook: await loadRunbook(name, runbooksDir) });
    await writeAndSwitch(1);
    expect(await verifiedIds(second)).toEqual([older, newest.backupId]);
    const offsiteObjects = (await second.list(`${name}/`)).map((o) => `${o.key} ${o.size}`);

    offsiteExpire.id = archiveOnly.id;
    offsiteExpire.secret = archiveOnly.secret;
    const refused = await lifeboat('expire', '--runbook', name, '--local');
    process.stdout.write(
      `expire, offsite with the archive identity: exit ${refused.code}\n${refused.stdout}${refused.stderr}`,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr.split('\n')[0]).toBe(
      `lifeboat: repository offsite (${offsiteUrl}) was not expired: while deleting backup ${older} of cluster ${name} from ${offsiteUrl}: ${offsiteUrl}: 1 of 1 deletions refused (AccessDenied), ` +
        `first ${name}/${name}/base/${older}/backup.json: the expire identity ($LB_OFFSITE_EXPIRE_ID, runbook repositories[1].credentials.expire) lacks s3:DeleteObject on s3://${minio.bucket}/${name}/; nothing of this batch was deleted`,
    );
    expect(refused.stderr).toContain('HINT: grant s3:DeleteObject to that identity');
    expect(refused.stderr).toContain(`--repo-index offsite`);
    expect(refused.stdout).toMatch(
      new RegExp(`== repository local \\(file://[^)]+\\) ==[\\s\\S]*backups deleted:\\n  ${older} `),
    );
    expect(await verifiedIds(first)).toEqual([newest.backupId]);
    expect((await second.list(`${name}/`)).map((o) => `${o.key} ${o.size}`)).toEqual(offsiteObjects);

    offsiteExpire.id = minio.env.AWS_ACCESS_KEY_ID!;
    offsiteExpire.secret = minio.env.AWS_SECRET_ACCESS_KEY!;
    const only = await lifeboat('expire', '--runbook', name, '--local', '--dry-run', '--repo-index', '2');
    expect({ code: only.code, stderr: only.stderr }).toEqual({ code: 0, stderr: '' });
    expect(only.stdout.split('\n')[0]).toBe(`== repository offsite (${offsiteUrl}) ==`);
    expect(only.stdout).not.toContain('== repository local');
    expect(only.stdout).toMatch(new RegExp(`backups would delete:\\n  ${older} `));

    // Again through the expireBackups workflow (a worker of this test's own on the shared Temporal):
    // the first has nothing left to do, only the second has, and that is applied.
    Object.assign(process.env, {
      LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
      LB_OFFSITE_EXPIRE_ID: offsiteExpire.id,
      LB_OFFSITE_EXPIRE_SECRET: offsiteExpire.secret,
    });
    const taskQueue = `lifeboat-test-expire2-${process.pid}`;
    const worker = await Worker.create({
      connection: await NativeConnection.connect({ address: temporalAddress() }),
      taskQueue,
      workflowsPath: path.resolve(__dirname, '../../workflows/expire-backups.ts'),
      activities: retentionActivities,
    });
    const client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    const result = await worker.runUntil(
      client.workflow.execute('expireBackups', {
        taskQueue,
        workflowId: `test-expire2-${Date.now()}`,
        args: [{ runbook: name }],
      }) as Promise<ExpireBackupsResult>,
    );
    await client.connection.close();
    expect(result.plan.expire).toEqual([]);
    expect(result.plan.repositories?.map((r) => [r.name, r.plan?.expire.map((e) => e.backupId)])).toEqual([
      ['local', []],
      ['offsite', [older]],
    ]);
    expect(
      result.applied?.repositories?.map((r) => [r.name, r.error, r.applied?.deletedBackups.map((b) => b.backupId)]),
    ).toEqual([
      ['local', undefined, undefined],
      ['offsite', undefined, [older]],
    ]);
    expect(await verifiedIds(second)).toEqual([newest.backupId]);
    expect(await verifiedIds(first)).toEqual([newest.backupId]);
  },
);
