// Copying a base backup the first repository holds into another that lacks
// it (lifeboat archive-catchup, src/catalog/copy-backups.ts), on real
// file:// repositories with a forged, small backup (its parts are bytes, not
// tar archives: only their sha256 matter here): verified, idempotent, never
// spreading a damaged part, never overwriting an object already there, and
// backup.json last.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BackupMeta, partName } from '../../src/catalog/backup-meta';
import { isComplete, readCatalog, type CompleteEntry } from '../../src/catalog/catalog';
import { backupsMissingIn, copyBackup } from '../../src/catalog/copy-backups';
import { isLifeboatError } from '../../src/errors';
import { FileRepository } from '../../src/repository/file';
import { keys } from '../../src/repository/layout';

const dirs: string[] = [];
afterAll(() => {
  // Temporary directories this file made.
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function repo(label: string): { dir: string; repo: FileRepository } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lifeboat-copy-${label}-`));
  dirs.push(dir);
  return { dir, repo: new FileRepository(`file://${dir}`) };
}

const cluster = 'orders';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A backup with two parts and a manifest in `r`; returns its catalog entry. */
async function forgeBackup(r: FileRepository, backupId: string): Promise<CompleteEntry> {
  const bodies = new Map([
    [partName(0), Buffer.from(`directories of ${backupId}`)],
    [partName(1), Buffer.from(`files of ${backupId} `.repeat(1000))],
    ['backup_manifest', Buffer.from(`{"manifest": "${backupId}"}`)],
  ]);
  for (const [name, body] of bodies)
    await r.put(keys.backupFile(cluster, backupId, name), body, { sha256: sha(body), ifAbsent: true });
  const meta = BackupMeta.parse({
    version: 2,
    backupId,
    cluster,
    pgVersion: '15.18',
    systemIdentifier: '7000000000000000001',
    type: 'full',
    tool: 'pg_basebackup',
    toolVersion: '15.18',
    startTime: '2026-12-01T00:00:00.000Z',
    endTime: '2026-12-01T00:01:00.000Z',
    startLsn: '0/2000028',
    endLsn: '0/2000100',
    timeline: 1,
    startWal: '000000010000000000000002',
    endWal: '000000010000000000000002',
    walSegmentSize: 16 * 1024 * 1024,
    sizeBytes: 0,
    storedBytes: [...bodies.values()].reduce((n, b) => n + b.length, 0),
    files: [...bodies].map(([name, body]) => ({
      name,
      storedSize: body.length,
      size: body.length,
      sha256: sha(body),
      compression: name === 'backup_manifest' ? 'none' : 'zstd',
      ...(name === 'backup_manifest' ? {} : { storedSha256: sha(body) }),
    })),
    manifestSha256: sha(bodies.get('backup_manifest')!),
    verifiedAt: '2026-12-01T00:02:00.000Z',
    verifiedBy: 'pg_verifybackup',
    label: backupId,
  });
  const text = Buffer.from(`${JSON.stringify(meta, null, 2)}\n`);
  await r.put(keys.backupMeta(cluster, backupId), text, { sha256: sha(text), ifAbsent: true });
  return (await readCatalog(r, cluster)).filter(isComplete).find((e) => e.backupId === backupId)!;
}

it('copies a missing backup verified, backup.json byte for byte, and a second run writes nothing', async () => {
  const a = repo('a');
  const b = repo('b');
  const one = await forgeBackup(a.repo, '20261201T000000Z');
  const two = await forgeBackup(a.repo, '20261202T000000Z');
  await forgeBackup(b.repo, '20261201T000000Z');
  expect((await backupsMissingIn(a.repo, b.repo, cluster)).map((e) => e.backupId)).toEqual([two.backupId]);

  const copied = await copyBackup(a.repo, b.repo, cluster, two);
  expect(copied).toEqual({ backupId: two.backupId, written: 4, objects: 4, storedBytes: expect.any(Number) as number });
  for (const o of await a.repo.list(keys.backupPrefix(cluster, two.backupId))) {
    expect(readFileSync(path.join(b.dir, o.key)).equals(readFileSync(path.join(a.dir, o.key))), o.key).toBe(true);
  }
  expect(await backupsMissingIn(a.repo, b.repo, cluster)).toEqual([]);
  expect((await copyBackup(a.repo, b.repo, cluster, two)).written).toBe(0);
  expect((await copyBackup(a.repo, b.repo, cluster, one)).written).toBe(0);
});

it('never spreads a damaged part: a part that does not match backup.json in the first is refused, nothing of it written', async () => {
  const a = repo('a');
  const b = repo('b');
  const entry = await forgeBackup(a.repo, '20261203T000000Z');
  const part = path.join(a.dir, keys.backupFile(cluster, entry.backupId, partName(1)));
  const bytes = readFileSync(part);
  bytes[10] = bytes[10]! ^ 0xff;
  writeFileSync(part, bytes);
  const err = await copyBackup(a.repo, b.repo, cluster, entry).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLifeboatError(err) && err.code).toBe('BACKUP_VERIFY_FAILED');
  expect((err as Error).message).toContain(
    `${partName(1)} of backup ${entry.backupId} of cluster ${cluster} in file://${a.dir} does not match backup.json`,
  );
  expect(await b.repo.head(keys.backupFile(cluster, entry.backupId, partName(1)))).toBeUndefined();
  expect(await b.repo.head(keys.backupMeta(cluster, entry.backupId))).toBeUndefined();
});

it('never overwrites: an object already in the target with other content stops the copy, kept, and backup.json is not written', async () => {
  const a = repo('a');
  const b = repo('b');
  const entry = await forgeBackup(a.repo, '20261204T000000Z');
  const key = keys.backupFile(cluster, entry.backupId, partName(1));
  const other = Buffer.from('something else');
  await b.repo.put(key, other, { sha256: sha(other) });
  const err = await copyBackup(a.repo, b.repo, cluster, entry).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isLifeboatError(err) && err.code).toBe('ARCHIVE_CONFLICT');
  expect((err as Error).message).toContain('is already there with sha256');
  expect(readFileSync(path.join(b.dir, key)).equals(other)).toBe(true);
  expect(await b.repo.head(keys.backupMeta(cluster, entry.backupId))).toBeUndefined();
  expect((await readCatalog(b.repo, cluster)).map((e) => [e.backupId, e.status])).toEqual([
    [entry.backupId, 'incomplete'],
  ]);
});
