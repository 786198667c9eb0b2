// S3 Object Lock and server-side encryption on a MinIO of the test's own
// (started with a static KMS key, MINIO_KMS_SECRET_KEY): a bucket created
// with Object Lock, a real primary archiving into it through
// `lifeboat archive-push --runbook` (the runbook sets repository.objectLock
// compliance 1 day and repository.serverSide SSE-KMS), real base backups.
// Then: every WAL and base backup object is locked and KMS-encrypted; delete
// and overwrite of a locked segment are refused and the original stays
// readable and verified; `lifeboat check` reports the bucket and the sample,
// and objects without a lock; `lifeboat expire` leaves locked objects, says
// until when, and never leaves a delete marker. The store is driven with the
// archive's own credentials (MinIO's root user here: governance bypass is
// never sent, and compliance mode refuses everyone anyway).
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { readWalArchive } from '../../src/catalog/catalog';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { isLifeboatError } from '../../src/errors';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { Runbook } from '../../src/runbook/schema';
import { lifeboatCommand } from '../../src/tools';
import { sha256Hex, decodeWal } from '../../src/wal/compress';
import { fetchWalFile } from '../../src/wal/get';
import { isSegmentName } from '../../src/wal/names';
import { cliRunner } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import { postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { freePort } from '../harness/ports';
import { runCleanups } from '../harness/cleanups';

const name = 'locked';
const BUCKET = 'lifeboat-locked';
const KMS_KEY = 'lifeboat-test-key';
const DAY_MS = 86_400_000;
const cleanups: Array<() => unknown> = [];

let minio: OwnMinio;
let s3: S3Client;
let pg: Primary;
let repo: Repository;
let runbooksDir: string;
const backups: BackupMeta[] = [];
const lifeboat = cliRunner(() => ({ ...process.env, ...minio.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));

function runbookYaml(
  repository: string,
  pgPort: number,
  stateDir: string,
  ports: [number, number],
  runbookName = name,
): string {
  const yaml = demoRunbookYaml({
    name: runbookName,
    pgPort,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: 's3://placeholder/x',
    endpointEnv: 'S3_ENDPOINT',
    host: `lock${process.pid}`,
    stateDir,
    restorePort: ports[0],
    drillPort: ports[1],
    retainFull: 1,
  });
  const out = yaml.replace(/^repository: .*$/m, `repository: ${repository}`);
  expect(out).not.toBe(yaml);
  return out;
}

/** The bucket's key of a repository key (the repository is s3://BUCKET/<name>). */
const raw = (key: string) => `${name}/${key}`;

/** Every version and delete marker under a prefix. */
async function versions(prefix: string) {
  const res = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return { versions: res.Versions ?? [], markers: res.DeleteMarkers ?? [] };
}

beforeAll(async () => {
  minio = await startOwnMinio('lock', {
    env: { MINIO_KMS_SECRET_KEY: `${KMS_KEY}:${randomBytes(32).toString('base64')}` },
  });
  cleanups.push(() => minio.stop());
  // This process takes the backups and runs check/expire: it uses the test's MinIO.
  Object.assign(process.env, minio.env);
  s3 = new S3Client({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: minio.env.AWS_ACCESS_KEY_ID!, secretAccessKey: minio.env.AWS_SECRET_ACCESS_KEY! },
  });
  cleanups.push(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, ObjectLockEnabledForBucket: true }));

  // Runbooks in a directory the postgres user can read: archive_command runs as postgres.
  runbooksDir = postgresTempDir('lock-runbooks');
  const stateDir = postgresTempDir('lock-state');
  cleanups.push(
    () => rmSync(runbooksDir, { recursive: true, force: true }),
    () => rmSync(stateDir, { recursive: true, force: true }),
  );
  pg = await startPrimary({ archive: { repo: `s3://${BUCKET}/${name}`, cluster: name, env: minio.env } });
  cleanups.push(() => pg.stop());
  const ports: [number, number] = [await freePort(), await freePort()];
  writeFileSync(
    path.join(runbooksDir, `${name}.yaml`),
    runbookYaml(
      `{ url: "s3://${BUCKET}/${name}", endpointEnv: S3_ENDPOINT, serverSide: { mode: SSE-KMS, kmsKeyId: ${KMS_KEY} }, objectLock: { mode: compliance, days: 1 } }`,
      pg.port,
      stateDir,
      ports,
    ),
  );
  // The harness archives with --repo; the runbook's settings need --runbook (as the README's archive_command).
  await pg.query(
    `alter system set archive_command = '${lifeboatCommand()} archive-push %p --runbook ${name} --runbooks-dir ${runbooksDir}'`,
  );
  await pg.query('select pg_reload_conf()');

  const runbook = await loadRunbook(name, runbooksDir);
  repo = await openRepository(runbook.repository.url, runbook.repository);
  await pg.query('create table t (id int, v text)');
  for (let i = 0; i < 2; i++) {
    await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
    await switchAndWaitArchived(pg);
  }
  backups.push(await takeBaseBackup({ runbook }));
  await switchAndWaitArchived(pg);
});

afterAll(async () => {
  await runCleanups(cleanups);
});

it("writes every WAL and base backup object locked in compliance mode for the runbook's days, encrypted with the KMS key", async () => {
  const objects = (await repo.list(`${name}/`)).filter(
    (o) => o.key.startsWith(`${name}/wal/`) || o.key.startsWith(`${name}/base/`),
  );
  const wal = objects.filter((o) => o.key.startsWith(`${name}/wal/`));
  expect(wal.length).toBeGreaterThanOrEqual(3);
  expect(objects.length - wal.length).toBeGreaterThanOrEqual(3);
  for (const o of objects) {
    const h = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: raw(o.key) }));
    const retained = new Date(h.ObjectLockRetainUntilDate!).getTime() - h.LastModified!.getTime();
    expect({ key: o.key, mode: h.ObjectLockMode, sse: h.ServerSideEncryption, kms: h.SSEKMSKeyId }).toEqual({
      key: o.key,
      mode: 'COMPLIANCE',
      sse: 'aws:kms',
      kms: `arn:aws:kms:${KMS_KEY}`,
    });
    expect(Math.abs(retained - DAY_MS)).toBeLessThan(10 * 60_000);
  }
});

it('refuses to delete or overwrite a locked segment; the original version stays intact and verified', async () => {
  const first = (await readWalArchive(repo, name)).files.find((f) => isSegmentName(f.name))!;
  const key = first.keys[0]!;
  const original = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: raw(key) }));
  const v0 = original.VersionId!;
  const stored = Buffer.from(
    await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: raw(key) }))).Body!.transformToByteArray(),
  );

  // Delete by version: refused, by DeleteObject and by DeleteObjects alike.
  await expect(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0 }))).rejects.toThrow(
    'Object is WORM protected and cannot be overwritten',
  );
  const batch = await s3.send(
    new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: raw(key), VersionId: v0 }] } }),
  );
  expect(batch.Errors?.map((e) => e.Message)).toEqual(['Object is WORM protected and cannot be overwritten']);

  // Lifeboat's own writes are create-only: refused, the stored object reported.
  const put = await repo.put(key, Buffer.from('not a segment'), {
    sha256: sha256Hex(Buffer.from('not a segment')),
    ifAbsent: true,
  });
  expect(put.written).toBe(false);
  expect(put.written === false && put.existing.sha256).toBe(original.Metadata!.sha256);
  await expect(
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: raw(key), Body: 'evil', IfNoneMatch: '*' })),
  ).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });

  // An unconditional PUT in a versioned bucket adds a version; the locked one is untouched.
  const evil = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: raw(key), Body: 'evil' }));
  expect(evil.VersionId).not.toBe(v0);
  // archive-get refuses the impostor (no recorded checksum) rather than hand it to PostgreSQL...
  await expect(fetchWalFile(repo, name, first.name)).rejects.toSatisfy(
    (e) => isLifeboatError(e) && e.code === 'WAL_CHECKSUM_MISMATCH',
  );
  // ...and the original version is there, byte for byte, its checksum intact.
  const kept = Buffer.from(
    await (
      await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: v0 }))
    ).Body!.transformToByteArray(),
  );
  expect(kept.equals(stored)).toBe(true);
  expect(sha256Hex(await decodeWal(first.name, kept))).toBe(original.Metadata!.sha256);

  // A DELETE without a version id only places a delete marker: the object vanishes from
  // LIST and HEAD, the locked version stays.
  const marker = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key) }));
  expect(marker.DeleteMarker).toBe(true);
  expect(await repo.head(key)).toBeUndefined();
  const hidden = await versions(raw(key));
  expect(hidden.versions.map((v) => v.VersionId)).toContain(v0);
  // lifeboat check finds the hidden segment and says how to undo the delete.
  const seen = await lifeboat('check', '--runbook', name, '--no-primary');
  expect(seen.code).toBe(1);
  expect(seen.stdout).toContain(
    `s3://${BUCKET}/${name}: 1 object is hidden by a delete marker (deleted without a version id: LIST, HEAD and GET no longer see it, every version is still stored); first: ${key} since `,
  );
  expect(seen.stdout).toContain(
    `  HINT: bring it back by deleting the marker: aws s3api delete-object --bucket ${BUCKET} --key ${raw(key)} --version-id ${marker.VersionId}\n`,
  );

  // Undo both (neither is locked): the original is current again and verifies.
  await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: marker.VersionId! }));
  await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(key), VersionId: evil.VersionId! }));
  const back = await fetchWalFile(repo, name, first.name);
  expect(back?.sha256).toBe(original.Metadata!.sha256);
  expect((await versions(raw(key))).versions.map((v) => v.VersionId)).toEqual([v0]);
});

it("lifeboat check reports the bucket's lock and the sample; an unlocked object and a bucket without Object Lock are problems", async () => {
  const ok = await lifeboat('check', '--runbook', name, '--no-primary');
  expect(ok.stdout).toMatch(
    /^object lock and encryption: bucket Object Lock enabled; \d+ objects sampled \(newest backup, newest 16 WAL files\); all stored with SSE-KMS$/m,
  );
  expect(ok.stdout).toMatch(/\nhealthy\n$/);
  expect(ok.code).toBe(0);

  // An object written without the lock (as archive-push --repo, without the runbook, would): reported.
  const segs = (await readWalArchive(repo, name)).files.filter((f) => isSegmentName(f.name));
  const stray = keys.wal(name, segs[segs.length - 1]!.name.replace(/.$/, 'F'));
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: raw(stray),
      Body: 'x',
      Metadata: { sha256: sha256Hex(Buffer.from('x')) },
    }),
  );
  try {
    const bad = await lifeboat('check', '--runbook', name, '--no-primary');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`s3://${BUCKET}/${name}: 1 of `);
    expect(bad.stdout).toContain(` sampled objects carry no Object Lock retention; first: ${stray}\n`);
    expect(bad.stdout).toContain(
      "  HINT: were they written with the runbook's settings? archive_command must be lifeboat archive-push --runbook <name> (not --repo)",
    );
    expect(bad.stdout).toContain(
      ` sampled objects are not stored with the runbook's SSE-KMS (key ${KMS_KEY}); first: ${stray}: no server-side encryption\n`,
    );
  } finally {
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: raw(stray), VersionId: put.VersionId! }));
  }

  // The same settings against a bucket created without Object Lock.
  const other = 'nolock';
  const yaml = runbookYaml(
    `{ url: "s3://${minio.bucket}/${other}", endpointEnv: S3_ENDPOINT, objectLock: { mode: governance, days: 7 } }`,
    pg.port,
    '/tmp',
    [1, 2],
    other,
  );
  writeFileSync(path.join(runbooksDir, `${other}.yaml`), yaml);
  const none = await lifeboat('check', '--runbook', other, '--no-primary');
  expect(none.code).toBe(1);
  expect(none.stdout).toContain(
    `s3://${minio.bucket}/${other}: the bucket has no Object Lock configuration, but the runbook sets repository.objectLock (governance, 7 days): nothing in it can be locked, and every write with a lock fails\n` +
      '  HINT: Object Lock is chosen when a bucket is created: create one with it (aws s3api create-bucket --object-lock-enabled-for-bucket; MinIO: mc mb --with-lock) and move the repository there\n',
  );
});

it('lifeboat expire leaves locked backups and WAL, says until when, and deletes an unlocked expired segment by version (no delete marker)', async () => {
  // A second backup: with retainFull 1 the first one and the WAL before the second expire.
  const runbook = await loadRunbook(name, runbooksDir);
  await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
  await switchAndWaitArchived(pg);
  backups.push(await takeBaseBackup({ runbook }));
  await switchAndWaitArchived(pg);
  // An old segment written without a lock (before objectLock was set, say): expiry may take it.
  const unlockedKey = keys.wal(name, '000000010000000000000000');
  await s3.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: raw(unlockedKey),
      Body: 'old',
      Metadata: { sha256: sha256Hex(Buffer.from('old')) },
    }),
  );
  const before = (await repo.list(`${name}/`)).map((o) => o.key);

  const dry = await lifeboat('expire', '--runbook', name, '--local', '--dry-run');
  expect(dry.code).toBe(0);
  const b1 = backups[0]!.backupId;
  expect(dry.stdout).toMatch(
    new RegExp(
      `\\n  ${b1} would be skipped: \\d+ objects locked \\(S3 Object Lock\\) until (\\S+Z); deletable after \\1\\n`,
    ),
  );
  expect(dry.stdout).toMatch(
    /\nof these, WAL kept because locked \(S3 Object Lock\): \d+ files, [0-9A-F]{24} \.\. [0-9A-F]{24}, locked until \S+Z \.\. (\S+Z); deletable after \1\n/,
  );
  expect((await repo.list(`${name}/`)).map((o) => o.key)).toEqual(before);

  const run = await lifeboat('expire', '--runbook', name, '--local');
  expect(run.code).toBe(0);
  const until =
    /\n {2}(\S+) skipped: (\d+) objects locked \(S3 Object Lock\) until (\S+Z); deletable after (\S+Z)\n/.exec(
      run.stdout,
    );
  expect(until?.[1]).toBe(b1);
  expect(until?.[3]).toBe(until?.[4]);
  // Locked for the runbook's day from the backup's upload.
  expect(Math.abs(new Date(until![3]!).getTime() - (Date.parse(backups[0]!.endTime) + DAY_MS))).toBeLessThan(
    10 * 60_000,
  );
  expect(run.stdout).toMatch(/\nWAL kept because locked \(S3 Object Lock\): \d+ files, .* deletable after \S+Z\n/);
  expect(run.stdout).toMatch(/\nbackups deleted:\n {2}\(none\)\n/);
  expect(run.stdout).toMatch(/\nWAL deleted: 1 segment, /);

  // Everything locked is there; the unlocked segment is gone, every version of it, no delete marker anywhere.
  expect((await repo.list(`${name}/`)).map((o) => o.key)).toEqual(before.filter((k) => k !== unlockedKey));
  const gone = await versions(raw(unlockedKey));
  expect(gone).toEqual({ versions: [], markers: [] });
  expect((await versions(raw(`${name}/`))).markers).toEqual([]);
  // The archive is intact: every segment left reads back and verifies against its sha256.
  for (const f of (await readWalArchive(repo, name)).files.filter((x) => isSegmentName(x.name))) {
    expect((await fetchWalFile(repo, name, f.name))?.sha256).toMatch(/^[0-9a-f]{64}$/);
  }
});

it('SSE-S3, and a multipart upload (a large base backup part) with the lock and the KMS key', async () => {
  const plain = await openRepository(`s3://${minio.bucket}/sse`, {
    endpointEnv: 'S3_ENDPOINT',
    serverSide: { mode: 'SSE-S3' },
  });
  await plain.put('c/evidence/r1.json', Buffer.from('{}'), { sha256: sha256Hex(Buffer.from('{}')) });
  expect((await plain.head('c/evidence/r1.json'))?.serverSide).toEqual({ mode: 'SSE-S3' });
  const raw = await s3.send(new HeadObjectCommand({ Bucket: minio.bucket, Key: 'sse/c/evidence/r1.json' }));
  expect(raw.ServerSideEncryption).toBe('AES256');

  const locked = await openRepository(`s3://${BUCKET}/mp`, {
    endpointEnv: 'S3_ENDPOINT',
    serverSide: { mode: 'SSE-KMS', kmsKeyId: KMS_KEY },
    objectLock: { mode: 'governance', days: 2, walDays: 1 },
  });
  const part = Buffer.alloc(40 * 1024 * 1024, 7);
  const key = 'c/base/20260101T000000Z/base.0001.tar.zst';
  await locked.put(key, Readable.from([part.subarray(0, 20 << 20), part.subarray(20 << 20)]), {
    sha256: sha256Hex(part),
    ifAbsent: true,
  });
  const info = await locked.head(key);
  expect(info?.size).toBe(part.length);
  expect(info?.serverSide).toEqual({ mode: 'SSE-KMS', kmsKeyId: `arn:aws:kms:${KMS_KEY}` });
  expect(info?.lock?.mode).toBe('governance');
  expect(Math.abs(info!.lock!.retainUntil.getTime() - info!.lastModified!.getTime() - 2 * DAY_MS)).toBeLessThan(
    10 * 60_000,
  );

  // A KMS key the store does not have: the PUT fails with the key named, nothing stored.
  const wrong = await openRepository(`s3://${minio.bucket}/sse`, {
    endpointEnv: 'S3_ENDPOINT',
    serverSide: { mode: 'SSE-KMS', kmsKeyId: 'no-such-key' },
  });
  const err = await wrong
    .put('c/wal/000000010000000000000001.zst', Buffer.from('x'), {
      sha256: sha256Hex(Buffer.from('x')),
      ifAbsent: true,
    })
    .catch((e: unknown) => e);
  expect(isLifeboatError(err) && err.code).toBe('REPOSITORY_INVALID');
  expect((err as Error).message).toContain(
    'HINT: the store refused server-side encryption with KMS key "no-such-key" (runbook repository.serverSide)',
  );
  expect(await plain.head('c/wal/000000010000000000000001.zst')).toBeUndefined();
});

it('refuses serverSide and objectLock on a file:// repository, naming the field', () => {
  const parsed = Runbook.safeParse({
    name: 'f',
    cluster: { primary: { host: '127.0.0.1', database: 'd', user: 'u' } },
    repository: { url: 'file:///var/lib/lifeboat/repo', objectLock: { mode: 'governance', days: 7 } },
    restore: { host: 'h', dataDir: '/d', port: 5433 },
    objectives: { rpoSeconds: 300, rtoSeconds: 2700 },
  });
  expect(parsed.success).toBe(false);
  expect(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toContain(
    "repository.objectLock: expected no objectLock on a file:// repository: it is an S3 setting (s3://bucket/prefix); a file system's own encryption and immutability are set up outside Lifeboat",
  );
});
