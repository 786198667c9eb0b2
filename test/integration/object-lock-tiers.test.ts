// S3 Object Lock and the retention tiers, and the archive identity against a
// locked bucket, on a MinIO of the test's own with a bucket created with
// Object Lock (governance mode here, so that a bypass can be tried).
//
// A real primary archives through `lifeboat archive-push --runbook` as the
// ARCHIVE identity: a MinIO user holding exactly docs/iam/archive.json, its
// keys reaching archive_command through a credentials file only postgres
// reads (LIFEBOAT_CREDENTIALS_FILE, as src/repository/credentials-file.ts).
// Two real base backups (MinIO's root user: the backup identity is not the
// point here); the first one's start and end times in backup.json are FORGED
// three years back (a new version of backup.json, the locked one stays), so
// that the yearly tier keeps it for an ended year. `expireBackups` runs on
// the real Temporal server as the EXPIRE identity (docs/iam/expire.json) and
// must move the retain-until date of every object of that backup and of its
// own WAL to the day it leaves the yearly tier, leave an object already
// locked longer as it was, touch nothing else, and change nothing when run
// again. The archive identity may push (objects locked) but neither delete,
// nor shorten a lock, nor bypass governance.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as retentionActivities from '../../activities/retention';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { readWalArchive } from '../../src/catalog/catalog';
import { walFilesOfBackup } from '../../src/catalog/lock-extend';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { chownToUser } from '../../src/restore/os-user';
import { loadRunbook } from '../../src/runbook/load';
import { lifeboatCommand, requireTool } from '../../src/tools';
import { sha256Hex, decodeWal } from '../../src/wal/compress';
import { fetchWalFile } from '../../src/wal/get';
import { isSegmentName } from '../../src/wal/names';
import type { ExpireBackupsResult } from '../../workflows/expire-backups';
import { cliRunner } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { freePort } from '../harness/ports';
import { temporalAddress } from '../harness/services';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const name = 'tierlock';
const BUCKET = 'lifeboat-tier-lock';
const PREFIX = 'repo';
const DAY_MS = 86_400_000;
const ROLES = ['archive', 'expire'] as const;
type Role = (typeof ROLES)[number];
const taskQueue = `lifeboat-test-tier-lock-${process.pid}`;
const cleanups: Array<() => unknown> = [];
const mcDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-tierlock-mc-'));

let minio: OwnMinio;
let root: S3Client;
let asArchive: S3Client;
let pg: Primary;
let repo: Repository;
let runbooksDir: string;
let b1: BackupMeta;
let b2: BackupMeta;
let client: Client;
let worker: Worker;
let workerRun: Promise<void>;
const identity = {} as Record<Role, { id: string; secret: string }>;
const lifeboat = cliRunner(() => ({ ...process.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));

/** The bucket's key of a repository key. */
const raw = (key: string) => `${PREFIX}/${key}`;

/** `mc` as MinIO's root user (alias lb), with a configuration directory of the test's own (as test/integration/storage-identities.test.ts). */
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

/** Retain-until (ISO) and mode of the current version of each key, as root reads them. */
async function retention(keyList: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of keyList) {
    const h = await root.send(new HeadObjectCommand({ Bucket: BUCKET, Key: raw(k) }));
    out[k] =
      `${h.ObjectLockMode} ${h.ObjectLockRetainUntilDate ? new Date(h.ObjectLockRetainUntilDate).toISOString() : 'none'}`;
  }
  return out;
}

async function allKeys(): Promise<string[]> {
  return (await repo.list(`${name}/`))
    .map((o) => o.key)
    .filter((k) => k.startsWith(`${name}/base/`) || k.startsWith(`${name}/wal/`));
}

beforeAll(async () => {
  minio = await startOwnMinio('tierlock');
  cleanups.push(() => minio.stop());
  // This process takes the backups as MinIO's root user (the default chain).
  Object.assign(process.env, minio.env);
  const client3 = (id: string, secret: string) =>
    new S3Client({
      endpoint: minio.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: id, secretAccessKey: secret },
    });
  root = client3(minio.env.AWS_ACCESS_KEY_ID!, minio.env.AWS_SECRET_ACCESS_KEY!);
  cleanups.push(() => root.destroy());
  await root.send(new CreateBucketCommand({ Bucket: BUCKET, ObjectLockEnabledForBucket: true }));

  // One MinIO user per role with exactly its docs/iam policy.
  for (const role of ROLES) {
    identity[role] = { id: `lifeboat-${role}`, secret: `${role}-secret-${process.pid}-${Date.now().toString(36)}` };
    const file = path.join(mcDir, `${role}.json`);
    const policy = readFileSync(path.resolve(__dirname, '../../docs/iam', `${role}.json`), 'utf8')
      .replaceAll('EXAMPLE-BUCKET', BUCKET)
      .replaceAll('EXAMPLE-PREFIX', PREFIX);
    writeFileSync(file, policy);
    await mc('admin', 'policy', 'create', 'lb', `lifeboat-${role}`, file);
    await mc('admin', 'user', 'add', 'lb', identity[role].id, identity[role].secret);
    await mc('admin', 'policy', 'attach', 'lb', `lifeboat-${role}`, '--user', identity[role].id);
    process.env[`LB_${role.toUpperCase()}_ID`] = identity[role].id;
    process.env[`LB_${role.toUpperCase()}_SECRET`] = identity[role].secret;
  }
  asArchive = client3(identity.archive.id, identity.archive.secret);
  cleanups.push(() => asArchive.destroy());

  // The runbook: governance lock of 1 day at upload, tiers daily 7 and yearly 7, and the two identities.
  runbooksDir = postgresTempDir('tierlock-runbooks');
  // The worker's activities look runbooks up there.
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const stateDir = postgresTempDir('tierlock-state');
  cleanups.push(
    () => rmSync(runbooksDir, { recursive: true, force: true }),
    () => rmSync(stateDir, { recursive: true, force: true }),
  );
  const credentials = ROLES.map(
    (r) => `${r}: { accessKeyIdEnv: LB_${r.toUpperCase()}_ID, secretAccessKeyEnv: LB_${r.toUpperCase()}_SECRET }`,
  ).join(', ');
  const repository = `{ url: "s3://${BUCKET}/${PREFIX}", endpointEnv: S3_ENDPOINT, objectLock: { mode: governance, days: 1 }, credentials: { ${credentials} } }`;

  // archive_command as postgres: the archive identity's keys in a file only postgres reads.
  const home = postgresTempDir('tierlock-pg-home');
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  const credFile = path.join(home, 'credentials.json');
  writeFileSync(
    credFile,
    JSON.stringify({
      lifeboat: 'credentials',
      role: 'archive',
      env: { LB_ARCHIVE_ID: identity.archive.id, LB_ARCHIVE_SECRET: identity.archive.secret },
    }),
    { mode: 0o600 },
  );
  await chownToUser(credFile, 'postgres');
  pg = await startPrimary({
    archive: {
      repo: `s3://${BUCKET}/${PREFIX}`,
      cluster: name,
      env: { LIFEBOAT_CREDENTIALS_FILE: credFile, S3_ENDPOINT: minio.endpoint, AWS_REGION: 'us-east-1' },
    },
  });
  cleanups.push(() => pg.stop());
  const yaml = demoRunbookYaml({
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: 's3://placeholder/x',
    endpointEnv: 'S3_ENDPOINT',
    host: `tierlock${process.pid}`,
    stateDir,
    restorePort: await freePort(),
    drillPort: await freePort(),
  });
  const tiered = yaml.replace(/^repository: .*$/m, `repository: ${repository}`).replace(/retainFull: \d+, /, '');
  expect(tiered.includes(repository) && !tiered.includes('retainFull')).toBe(true);
  writeFileSync(
    path.join(runbooksDir, `${name}.yaml`),
    `${tiered}retention:\n  full: { daily: 7, yearly: 7 }\n  wal: 1d\n`,
  );
  await pg.query(
    `alter system set archive_command = '${lifeboatCommand()} archive-push %p --runbook ${name} --runbooks-dir ${runbooksDir}'`,
  );
  await pg.query('select pg_reload_conf()');

  const runbook = await loadRunbook(name, runbooksDir);
  repo = await openRepository(runbook.repository.url, { ...runbook.repository, role: 'backup' });
  await pg.query('create table t (id int, v text)');
  await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
  await switchAndWaitArchived(pg);
  const first = await takeBaseBackup({ runbook });
  for (let i = 0; i < 2; i++) {
    await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
    await switchAndWaitArchived(pg);
  }
  b2 = await takeBaseBackup({ runbook });
  await switchAndWaitArchived(pg);

  // Forged: the first backup started three years ago (a new version of backup.json; the locked one stays).
  const took = Date.parse(first.endTime) - Date.parse(first.startTime);
  const start = new Date(Date.UTC(new Date().getUTCFullYear() - 3, 5, 15, 1));
  b1 = { ...first, startTime: start.toISOString(), endTime: new Date(start.getTime() + took).toISOString() };
  const body = Buffer.from(`${JSON.stringify(b1, null, 2)}\n`);
  await repo.put(keys.backupMeta(name, b1.backupId), body, { sha256: sha256Hex(body) });

  client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: temporalAddress() }),
    taskQueue,
    workflowsPath: path.resolve(__dirname, '../../workflows/expire-backups.ts'),
    activities: retentionActivities,
  });
  workerRun = worker.run();
}, 240_000);

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await workerRun;
  await client?.connection.close();
  await runCleanups(cleanups);
  rmSync(mcDir, { recursive: true, force: true });
});

const execute = (input: Record<string, unknown>) =>
  client.workflow.execute('expireBackups', {
    taskQueue,
    workflowId: `test-tier-lock-${Date.now()}`,
    args: [input],
  }) as Promise<ExpireBackupsResult>;

describe('Object Lock covers the retention tier', () => {
  it('expire moves the lock of every object of a backup the yearly tier keeps, and of its own WAL, to the day it leaves the tier; never shortens, touches nothing else, and a second run changes nothing', async () => {
    const year = new Date().getUTCFullYear();
    const until = new Date(Date.UTC(year - 3 + 7, 0, 1)).toISOString();
    const archive = await readWalArchive(repo, name);
    const b1Objects = (await repo.list(keys.backupPrefix(name, b1.backupId))).map((o) => o.key);
    const b1Wal = walFilesOfBackup(b1, archive.files).flatMap((f) => f.keys);
    expect(b1Wal.length).toBeGreaterThanOrEqual(2); // its segments and its .backup file
    const b1Keys = [...b1Objects, ...b1Wal];
    const others = (await allKeys()).filter((k) => !b1Keys.includes(k));
    expect(others.some((k) => k.startsWith(`${name}/base/${b2.backupId}/`))).toBe(true);
    expect(others.some((k) => k.startsWith(`${name}/wal/`))).toBe(true);

    // One object of b1 is already locked longer (by hand, say a legal retention): it must stay so.
    const longer = b1Wal[0]!;
    const farther = new Date(Date.UTC(year + 20, 0, 1));
    await root.send(
      new PutObjectRetentionCommand({
        Bucket: BUCKET,
        Key: raw(longer),
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: farther },
      }),
    );
    const before = await retention([...b1Keys, ...others]);
    // Everything else: the upload lock, governance, about a day.
    for (const k of [...b1Keys, ...others].filter((x) => x !== longer)) {
      expect(before[k]).toMatch(/^GOVERNANCE \S+Z$/);
      expect(Math.abs(Date.parse(before[k]!.split(' ')[1]!) - Date.now() - DAY_MS)).toBeLessThan(60 * 60_000);
    }

    const dry = await lifeboat('expire', '--runbook', name, '--local', '--dry-run');
    console.log(`expire --dry-run:\n${dry.stdout}${dry.stderr}`);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      `Object Lock of backups kept by tiers (until each leaves its tier; never shortened): would extend ${b1Keys.length - 1} objects of 1 backup\n` +
        `  ${b1.backupId} (yearly ${year - 3}): until ${until}: ${b1Keys.length} objects (${walFilesOfBackup(b1, archive.files).length} WAL files), ${b1Keys.length - 1} to extend, 1 already locked that long\n` +
        `  ${b2.backupId} (daily ${b2.startTime.slice(0, 10)}, yearly ${year}): period still open, keeps its upload lock; extended by the first expire after `,
    );
    expect(await retention([...b1Keys, ...others])).toEqual(before);

    // The real run, on Temporal, as the expire identity: nothing to delete, locks to extend.
    const result = await execute({ runbook: name });
    expect(result.applied?.deletedBackups).toEqual([]);
    expect(result.applied?.walDeletedCount).toBe(0);
    expect(
      result.applied?.lockExtension?.backups.map(({ backupId, until: u, extended, covered }) => ({
        backupId,
        until: u,
        extended,
        covered,
      })),
    ).toEqual([{ backupId: b1.backupId, until, extended: b1Keys.length - 1, covered: 1 }]);
    const after = await retention([...b1Keys, ...others]);
    for (const k of b1Keys)
      expect(after[k]).toBe(k === longer ? `GOVERNANCE ${farther.toISOString()}` : `GOVERNANCE ${until}`);
    for (const k of others) expect(after[k]).toBe(before[k]);

    // Again: nothing to move, nothing moved. (It applies anyway: segment 1, before b1, is due but locked a day.)
    const again = await execute({ runbook: name });
    expect(again.plan.lockExtension?.extended).toBe(0);
    expect(again.plan.lockExtension?.backups.map((b) => b.covered)).toEqual([b1Keys.length]);
    expect(again.applied?.lockExtension?.extended).toBe(0);
    expect(again.applied?.locked?.wal?.count).toBe(1);
    expect(await retention([...b1Keys, ...others])).toEqual(after);
    const cli = await lifeboat('expire', '--runbook', name, '--local');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(
      `extended 0 objects of 1 backup\n  ${b1.backupId} (yearly ${year - 3}): until ${until}: ${b1Keys.length} objects`,
    );
    expect(await retention([...b1Keys, ...others])).toEqual(after);
  });
});

describe('the archive identity against the locked bucket', () => {
  it('pushes WAL that is stored locked, and can neither delete it (with or without a governance bypass) nor shorten its lock; the segment stays intact and verified', async () => {
    // archive_command pushes as the archive identity (the only keys postgres has); the segment is stored locked.
    const last = await switchAndWaitArchived(pg);
    const pushed = (await readWalArchive(repo, name)).files.find((f) => f.name === last);
    expect(pushed && isSegmentName(pushed.name)).toBe(true);
    const key = pushed!.keys[0]!;
    // Read as root: the archive policy has no s3:GetObjectRetention, so its HEAD carries no lock headers.
    const h = await root.send(new HeadObjectCommand({ Bucket: BUCKET, Key: raw(key) }));
    expect(h.ObjectLockMode).toBe('GOVERNANCE');
    const lockedUntil = new Date(h.ObjectLockRetainUntilDate!);
    expect(Math.abs(lockedUntil.getTime() - Date.now() - DAY_MS)).toBeLessThan(60 * 60_000);
    const v0 = h.VersionId!;
    const stored = Buffer.from(
      await (
        await root.send(new GetObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0 }))
      ).Body!.transformToByteArray(),
    );

    const refused = async (p: Promise<unknown>) => {
      const err = (await p.then(
        () => undefined,
        (e: unknown) => e,
      )) as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
      expect(err).toBeDefined();
      return `${err!.name} ${err!.$metadata?.httpStatusCode}`;
    };
    // Delete: no delete marker (no s3:DeleteObject), no version (no s3:DeleteObjectVersion), with or without a governance bypass.
    expect(await refused(asArchive.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key) })))).toBe(
      'AccessDenied 403',
    );
    expect(
      await refused(asArchive.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0 }))),
    ).toBe('AccessDenied 403');
    expect(
      await refused(
        asArchive.send(
          new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0, BypassGovernanceRetention: true }),
        ),
      ),
    ).toBe('AccessDenied 403');
    // Shorten the lock: refused by the lock itself (the archive identity may set a retention, never an earlier one:
    // MinIO answers InvalidRequest). The bypass header with it: see the next test.
    const earlier = { Mode: 'GOVERNANCE' as const, RetainUntilDate: new Date(Date.now() + 60_000) };
    expect(
      await refused(
        asArchive.send(
          new PutObjectRetentionCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0, Retention: earlier }),
        ),
      ),
    ).toBe('InvalidRequest 400');
    // Overwrite: Lifeboat's create-only write is refused (412); an unconditional PUT only adds a version over the locked one.
    expect(
      await refused(
        asArchive.send(new PutObjectCommand({ Bucket: BUCKET, Key: raw(key), Body: 'evil', IfNoneMatch: '*' })),
      ),
    ).toMatch(/ 412$/);
    const evil = await asArchive.send(new PutObjectCommand({ Bucket: BUCKET, Key: raw(key), Body: 'evil' }));
    expect(evil.VersionId).not.toBe(v0);
    // ...which the archive identity cannot remove either; root does (a bare PUT carries no lock and the bucket has no default retention).
    expect(
      await refused(
        asArchive.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: evil.VersionId! })),
      ),
    ).toBe('AccessDenied 403');
    await root.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: evil.VersionId! }));

    // The locked version: same bytes, same lock, and it verifies.
    const now = await root.send(new HeadObjectCommand({ Bucket: BUCKET, Key: raw(key) }));
    expect({ version: now.VersionId, until: new Date(now.ObjectLockRetainUntilDate!).toISOString() }).toEqual({
      version: v0,
      until: lockedUntil.toISOString(),
    });
    const kept = Buffer.from(
      await (
        await root.send(new GetObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0 }))
      ).Body!.transformToByteArray(),
    );
    expect(kept.equals(stored)).toBe(true);
    expect(sha256Hex(await decodeWal(last, kept))).toBe(h.Metadata!.sha256);
    expect((await fetchWalFile(repo, name, last))?.sha256).toBe(h.Metadata!.sha256);
  });

  it('a governance lock can be shortened on MinIO by any identity with s3:PutObjectRetention and the bypass header (a MinIO deviation from S3); a compliance lock by nobody', async () => {
    // Objects of the test's own under wal/ (names no segment of this cluster has), locked by root for a day.
    const inADay = new Date(Date.now() + DAY_MS);
    const put = async (seg: string, mode: 'GOVERNANCE' | 'COMPLIANCE') =>
      (
        await root.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: raw(keys.wal(name, seg)),
            Body: seg,
            ObjectLockMode: mode,
            ObjectLockRetainUntilDate: inADay,
          }),
        )
      ).VersionId!;
    const gov = {
      key: raw(keys.wal(name, '0000000100000000000000F0')),
      v: await put('0000000100000000000000F0', 'GOVERNANCE'),
    };
    const comp = {
      key: raw(keys.wal(name, '0000000100000000000000F1')),
      v: await put('0000000100000000000000F1', 'COMPLIANCE'),
    };
    const soon = new Date(Date.now() + 60_000);
    const until = async (o: { key: string; v: string }) =>
      new Date(
        (await root.send(new HeadObjectCommand({ Bucket: BUCKET, Key: o.key, VersionId: o.v })))
          .ObjectLockRetainUntilDate!,
      ).toISOString();

    // S3 refuses this without s3:BypassGovernanceRetention, which docs/iam/archive.json does not grant. MinIO
    // (cmd/bucket-object-lock.go enforceRetentionBypassForPut) takes the header alone for the bypass and
    // s3:PutObjectRetention for the permission: the archive identity shortens the lock. Hence the README:
    // on MinIO, use compliance mode. (Should MinIO fix it, this fails: then the README's warning goes.)
    await asArchive.send(
      new PutObjectRetentionCommand({
        Bucket: BUCKET,
        Key: gov.key,
        VersionId: gov.v,
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: soon },
        BypassGovernanceRetention: true,
      }),
    );
    expect(await until(gov)).toBe(soon.toISOString());
    // It still cannot delete: the delete path does check s3:BypassGovernanceRetention.
    const refusedDelete = await asArchive
      .send(
        new DeleteObjectCommand({ Bucket: BUCKET, Key: gov.key, VersionId: gov.v, BypassGovernanceRetention: true }),
      )
      .then(
        () => 'deleted',
        (e: { name?: string }) => e.name,
      );
    expect(refusedDelete).toBe('AccessDenied');

    // Compliance: no header and no permission shortens it.
    const shortened = await asArchive
      .send(
        new PutObjectRetentionCommand({
          Bucket: BUCKET,
          Key: comp.key,
          VersionId: comp.v,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: soon },
          BypassGovernanceRetention: true,
        }),
      )
      .then(
        () => 'shortened',
        (e: { name?: string; $metadata?: { httpStatusCode?: number } }) => `${e.name} ${e.$metadata?.httpStatusCode}`,
      );
    expect(shortened).toBe('InvalidRequest 400');
    expect(await until(comp)).toBe(inADay.toISOString());
    // Root clears the governance one (bypass); the compliance one stays until the MinIO of this test goes.
    await root.send(
      new DeleteObjectCommand({ Bucket: BUCKET, Key: gov.key, VersionId: gov.v, BypassGovernanceRetention: true }),
    );
  });
});
