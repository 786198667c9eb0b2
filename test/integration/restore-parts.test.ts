// restore-base-backup of a backup stored in parts (backup.json version 2,
// src/backup/parts.ts) and of one stored the version 1 way (a single
// base.tar.zst), from file:// and from MinIO as s3://, against a real
// PostgreSQL 15 primary archiving into the repository. A part whose bytes
// were altered in the repository fails the restore, and the copy can never
// be started.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { activity } from '../harness/activity';
import { postgresTempDir, switchAndWaitArchived, clearRestoredCopies } from '../harness/postgres';
import { startTestCluster, type RepoKind, type TestCluster } from '../harness/cluster';
import { useS3Env } from '../harness/services';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { baseLayout, type BackupMeta, type StoredPart } from '../../src/catalog/backup-meta';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { RestoreInput, RestoreProgress } from '../../src/recovery/contract';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(() => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

interface Fixture {
  tc: TestCluster;
  runbook: Runbook;
  /** Version 2: in parts of at most 4 MiB of data directory, so a small cluster has many. */
  parts: BackupMeta;
  /** Version 1: one base.tar.zst, as backups were stored before parts. */
  single: BackupMeta;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/**
 * A backup id of the same second with its own suffix, for a damaged copy a
 * case stores beside a real backup. Backup ids allow one suffix: a second
 * backup taken in the same second is already "<time>-1", and "<time>-1-bad"
 * would not be a backup id at all.
 */
const siblingId = (backupId: string, tag: string) => `${backupId.replace(/-[a-z0-9]+$/, '')}-${tag}`;
const zstdDecompress = (b: Buffer) => execFileSync('zstd', ['-d', '-q', '-c'], { input: b, maxBuffer: 1 << 30 });
const zstdCompress = (b: Buffer) => execFileSync('zstd', ['-q', '-1', '-c'], { input: b, maxBuffer: 1 << 30 });
const ROWS = `select count(*)::int as n, max(id) as max from t`;

/** Rows 1-5000 in both backups, 5001-5100 only through the WAL archive, then restore point 'rp'. */
async function fixture(kind: RepoKind): Promise<Fixture> {
  const tc = await startTestCluster({ name: `rparts-${kind}`, kind, runbooksDir, host: 'rparts' });
  cleanups.push(() => tc.stop());
  const runbook = await loadRunbook(tc.name);
  await tc.pg.query(`create table t as select g as id, md5(g::text) as v from generate_series(1, 5000) g`);
  const parts = await takeBaseBackup({ runbook, partBytes: 4 * 1024 * 1024 });
  const single = await takeBaseBackup({ runbook, singleArchive: true });
  await tc.pg.query(`insert into t select g, 'after' from generate_series(5001, 5100) g`);
  await tc.pg.query(`select pg_create_restore_point('rp')`);
  await tc.pg.query(`insert into t values (9999, 'after the restore point')`);
  await switchAndWaitArchived(tc.pg);
  return { tc, runbook, parts, single };
}

function partsOf(meta: BackupMeta): StoredPart[] {
  const layout = baseLayout(meta);
  if (!('kind' in layout) || layout.kind !== 'parts') throw new Error(`backup ${meta.backupId} is not in parts`);
  return [layout.dirs, ...layout.files];
}

function restoreInput(f: Fixture, backup: BackupMeta, workflowId: string): RestoreInput {
  return {
    runbook: f.tc.name,
    backupId: backup.backupId,
    mode: 'side-by-side',
    workflowId,
    runId: `${workflowId}-run`,
  };
}

async function rowsOfRestored(runbook: Runbook): Promise<unknown[]> {
  const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(ROWS)).rows;
  } finally {
    await c.end();
  }
}

/**
 * A copy of the parts backup under its own id whose part `name` has one
 * byte changed in the middle, same size: what bit rot in the repository looks like.
 */
async function damagedCopy(
  f: Fixture,
  name: string,
): Promise<{ backupId: string; damaged: Buffer; entry: StoredPart }> {
  const repo = await openRepository(f.tc.repoUrl, f.runbook.repository);
  const cluster = f.tc.name;
  const backupId = siblingId(f.parts.backupId, 'bad');
  for (const file of f.parts.files) {
    const body = (await repo.get(keys.backupFile(cluster, f.parts.backupId, file.name)))!.body;
    if (file.name === name) body.writeUInt8(body.readUInt8(body.length >> 1) ^ 0xff, body.length >> 1);
    await repo.put(keys.backupFile(cluster, backupId, file.name), body, { sha256: file.sha256 });
  }
  const metaText = Buffer.from(JSON.stringify({ ...f.parts, backupId }));
  await repo.put(keys.backupMeta(cluster, backupId), metaText, { sha256: sha(metaText) });
  cleanups.push(async () => repo.delete((await repo.list(keys.backupPrefix(cluster, backupId))).map((o) => o.key)));
  const damaged = (await repo.get(keys.backupFile(cluster, backupId, name)))!.body;
  return { backupId, damaged, entry: partsOf(f.parts).find((p) => p.name === name)! };
}

describe.each(['file', 's3'] as const)('restore-base-backup of a backup in parts from a %s:// repository', (kind) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture(kind);
  });
  afterEach(async () => {
    if (f) await clearRestoredCopies(f.runbook.restore.dataDir);
  });

  it('stores the data directory in numbered parts, each with the sha256 of its stored bytes, and restores them into a copy that replays to the restore point', async () => {
    const parts = partsOf(f.parts);
    expect(f.parts.version).toBe(2);
    expect(parts.length).toBeGreaterThanOrEqual(5);
    expect(parts.map((p) => p.name)).toEqual(parts.map((_, i) => `base.${String(i).padStart(4, '0')}.tar.zst`));
    expect(f.parts.files.map((x) => x.name)).toEqual([...parts.map((p) => p.name), 'backup_manifest']);
    expect(f.parts.sizeBytes).toBe(parts.reduce((n, p) => n + p.size, 0));
    const repo = await openRepository(f.tc.repoUrl, f.runbook.repository);
    for (const p of parts)
      expect(sha((await repo.get(keys.backupFile(f.tc.name, f.parts.backupId, p.name)))!.body)).toBe(p.storedSha256);

    const { result, beats } = await activity(restoreBaseBackup, restoreInput(f, f.parts, `wf-parts-${kind}`));
    const stored = parts.reduce((n, p) => n + p.storedSize, 0);
    expect(result).toMatchObject({ dataDir: f.runbook.restore.dataDir, bytes: f.parts.sizeBytes });
    expect(result.files).toBeGreaterThan(900);
    const progress = beats as RestoreProgress[];
    expect(progress.some((p) => p.phase === 'downloading' && p.totalBytes === stored)).toBe(true);
    expect(progress.find((p) => p.phase === 'verifying')).toBeDefined();
    expect(progress.at(-1)).toEqual({
      phase: 'done',
      bytes: stored,
      totalBytes: stored,
      text: expect.stringMatching(/^restored: .* \(100 %\)$/) as string,
    });
    expect(statSync(f.runbook.restore.dataDir).mode & 0o777).toBe(0o700);

    const { result: replayed } = await activity(replayWal, {
      runbook: f.tc.name,
      target: { name: 'rp' },
      workflowId: `wf-parts-${kind}`,
      runId: `wf-parts-${kind}-run`,
    });
    expect(replayed).toMatchObject({ paused: true, timeline: 1 });
    expect(await rowsOfRestored(f.runbook)).toEqual([{ n: 5100, max: 5100 }]);
  });

  it("fails with BACKUP_VERIFY_FAILED when a part's stored bytes differ from backup.json, keeps the copy for inspection, and replay-wal refuses to start PostgreSQL on it", async () => {
    // The biggest file part: the sha256 of its bytes is what catches it (zstd may or may not notice on its own).
    const victim = [...partsOf(f.parts)].slice(1).sort((a, b) => b.storedSize - a.storedSize)[0]!.name;
    const bad = await damagedCopy(f, victim);
    const dataDir = f.runbook.restore.dataDir;
    const wf = `wf-bad-${kind}`;
    await expect(
      activity(restoreBaseBackup, restoreInput(f, { ...f.parts, backupId: bad.backupId }, wf)),
    ).rejects.toMatchObject({
      type: 'BACKUP_VERIFY_FAILED',
      nonRetryable: true,
      message: [
        `${victim} of backup ${bad.backupId} does not match backup.json: sha256 of the stored bytes is ${sha(bad.damaged)} (${bad.damaged.length} bytes), backup.json says ${bad.entry.storedSha256} (${bad.entry.storedSize} bytes)`,
        `HINT: the restored copy in ${dataDir} is kept as it is for inspection; a retry moves it aside and restores again`,
        'HINT: if it fails again, the stored backup is damaged: recover from another backup (lifeboat backups lists them)',
      ].join('\n'),
    });
    expect(JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      workflowId: wf,
      state: 'extracting',
      keep: expect.stringContaining(victim) as string,
    });
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
    await expect(
      activity(replayWal, { runbook: f.tc.name, target: { name: 'rp' }, workflowId: wf, runId: `${wf}-run` }),
    ).rejects.toMatchObject({
      type: 'BACKUP_NOT_FOUND',
      message: expect.stringContaining(
        `replay-wal: the extraction of backup ${bad.backupId} into ${dataDir} never finished`,
      ) as string,
    });
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });

  it('fails with BACKUP_VERIFY_FAILED when backup.json leaves out a part: pg_verifybackup finds the files of the manifest that are not on disk', async () => {
    const repo = await openRepository(f.tc.repoUrl, f.runbook.repository);
    const cluster = f.tc.name;
    const backupId = siblingId(f.parts.backupId, 'short');
    const last = partsOf(f.parts).at(-1)!;
    const files = f.parts.files.filter((x) => x.name !== last.name);
    for (const file of files) {
      const body = (await repo.get(keys.backupFile(cluster, f.parts.backupId, file.name)))!.body;
      await repo.put(keys.backupFile(cluster, backupId, file.name), body, { sha256: file.sha256 });
    }
    const metaText = Buffer.from(JSON.stringify({ ...f.parts, backupId, files }));
    await repo.put(keys.backupMeta(cluster, backupId), metaText, { sha256: sha(metaText) });
    cleanups.push(async () => repo.delete((await repo.list(keys.backupPrefix(cluster, backupId))).map((o) => o.key)));
    const dataDir = f.runbook.restore.dataDir;
    const err = await activity(restoreBaseBackup, restoreInput(f, { ...f.parts, backupId }, `wf-short-${kind}`)).catch(
      (e: unknown) => e as { type: string; message: string },
    );
    expect(err).toMatchObject({ type: 'BACKUP_VERIFY_FAILED', nonRetryable: true });
    const lines = (err as { message: string }).message.split('\n');
    expect(lines[0]).toBe(
      `pg_verifybackup found that ${dataDir} does not match the manifest of backup ${backupId} (exit 1):`,
    );
    expect(lines.find((l) => /is present in the manifest but not on disk/.test(l))).toBeDefined();
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });

  it('fails with BACKUP_VERIFY_FAILED when the version 1 archive does not match the sha256 backup.json recorded, and keeps the copy for inspection', async () => {
    // A copy of the version 1 backup whose tar has one byte of PG_VERSION
    // changed: it still decompresses and extracts, only the checksum can tell.
    const repo = await openRepository(f.tc.repoUrl, f.runbook.repository);
    const cluster = f.tc.name;
    const badId = siblingId(f.single.backupId, 'badv1');
    const orig = (await repo.get(keys.backupFile(cluster, f.single.backupId, 'base.tar.zst')))!.body;
    const tarBytes = zstdDecompress(orig);
    const header = tarBytes.indexOf(Buffer.from('./PG_VERSION\0'));
    expect(header % 512).toBe(0);
    expect(tarBytes.subarray(header + 512, header + 515).toString()).toBe('15\n');
    tarBytes.write('16', header + 512);
    const damaged = zstdCompress(tarBytes);
    const entry = f.single.files.find((x) => x.name === 'base.tar.zst')!;
    const manifest = (await repo.get(keys.backupFile(cluster, f.single.backupId, 'backup_manifest')))!.body;
    const meta = {
      ...f.single,
      backupId: badId,
      files: f.single.files.map((x) => (x.name === 'base.tar.zst' ? { ...x, storedSize: damaged.length } : x)),
    };
    const metaText = Buffer.from(JSON.stringify(meta));
    await repo.put(keys.backupFile(cluster, badId, 'base.tar.zst'), damaged, { sha256: entry.sha256 });
    await repo.put(keys.backupFile(cluster, badId, 'backup_manifest'), manifest, { sha256: f.single.manifestSha256 });
    await repo.put(keys.backupMeta(cluster, badId), metaText, { sha256: sha(metaText) });
    try {
      const dataDir = f.runbook.restore.dataDir;
      await expect(
        activity(restoreBaseBackup, restoreInput(f, { ...f.single, backupId: badId }, `wf-bad-v1-${kind}`)),
      ).rejects.toMatchObject({
        type: 'BACKUP_VERIFY_FAILED',
        nonRetryable: true,
        message: [
          `base.tar.zst of backup ${badId} does not match backup.json: sha256 of the content is ${sha(tarBytes)} (${tarBytes.length} bytes), backup.json says ${entry.sha256} (${entry.size} bytes)`,
          `HINT: the restored copy in ${dataDir} is kept as it is for inspection; a retry moves it aside and restores again`,
          'HINT: if it fails again, the stored backup is damaged: recover from another backup (lifeboat backups lists them)',
        ].join('\n'),
      });
      expect(readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8')).toBe('16\n');
      expect(JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
        workflowId: `wf-bad-v1-${kind}`,
        state: 'extracting',
      });
    } finally {
      // Objects this test wrote under its own backup id.
      await repo.delete((await repo.list(keys.backupPrefix(cluster, badId))).map((o) => o.key));
    }
  });

  it('restores a backup stored the version 1 way, as one base.tar.zst, checked against its sha256 and every checksum of the manifest', async () => {
    expect(f.single.version).toBe(1);
    expect(f.single.files.map((x) => x.name)).toEqual(['base.tar.zst', 'backup_manifest']);
    const archive = f.single.files[0]!;
    const { result, beats } = await activity(restoreBaseBackup, restoreInput(f, f.single, `wf-single-${kind}`));
    expect(result).toMatchObject({ bytes: archive.size });
    expect((beats as RestoreProgress[]).at(-1)).toMatchObject({
      phase: 'done',
      bytes: archive.storedSize,
      totalBytes: archive.storedSize,
    });
    await activity(replayWal, {
      runbook: f.tc.name,
      target: { name: 'rp' },
      workflowId: `wf-single-${kind}`,
      runId: `wf-single-${kind}-run`,
    });
    expect(await rowsOfRestored(f.runbook)).toEqual([{ n: 5100, max: 5100 }]);
  });
});
