// Base backups the first repository holds and another lacks (runbook
// `repositories:`, repositoryPolicy primary: a backup whose copy into a
// secondary failed is only a warning when it is taken). `lifeboat
// archive-catchup` copies them; `lifeboat check` names them.
//
// A copy is safe to run twice and never spreads damage or overwrites:
// every object is read from the first and checked against the sha256 that
// backup.json records for it before anything is written; it is written
// create-only, then read back from the target and checked again; an object
// already there counts as copied only when it has the same content (else
// the copy stops, the stored object kept). backup.json goes last: until
// then the target lists the backup as incomplete, never as a wrong one.
import { createHash } from 'node:crypto';
import { LifeboatError } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { isComplete, readCatalog, type CompleteEntry } from './catalog';

/** Complete backups of `first` that are not complete in `target`, oldest first. */
export async function backupsMissingIn(
  first: Repository | CompleteEntry[],
  target: Repository,
  cluster: string,
): Promise<CompleteEntry[]> {
  const have = Array.isArray(first) ? first : (await readCatalog(first, cluster)).filter(isComplete);
  const theirs = new Set((await readCatalog(target, cluster)).filter(isComplete).map((e) => e.backupId));
  return have.filter((e) => !theirs.has(e.backupId));
}

/** sha256 (hex) of an object's bytes as stored; undefined when absent. */
async function storedSha256(repo: Repository, key: string): Promise<string | undefined> {
  const got = await repo.getStream(key);
  if (!got) return undefined;
  const hash = createHash('sha256');
  for await (const chunk of got.stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface BackupCopy {
  backupId: string;
  /** Objects written now; the others were already there with the same content. */
  written: number;
  objects: number;
  storedBytes: number;
}

/** Copies one complete backup of `from` into `to`: every file, then backup.json, each verified by sha256. */
export async function copyBackup(
  from: Repository,
  to: Repository,
  cluster: string,
  entry: CompleteEntry,
): Promise<BackupCopy> {
  const { backupId, meta } = entry;
  const where = `backup ${backupId} of cluster ${cluster}`;
  const metaKey = keys.backupMeta(cluster, backupId);
  const metaObj = await from.get(metaKey);
  if (!metaObj)
    throw new LifeboatError('BACKUP_NOT_FOUND', `${where} is no longer in ${from.url}: nothing copied into ${to.url}`, {
      hints: ['expired meanwhile; nothing to do'],
    });
  const metaSha = createHash('sha256').update(metaObj.body).digest('hex');
  if (metaObj.info.sha256 && metaObj.info.sha256 !== metaSha) {
    throw new LifeboatError(
      'BACKUP_VERIFY_FAILED',
      `backup.json of ${where} in ${from.url} does not match its recorded sha256 (${metaObj.info.sha256}, read ${metaSha}): not copied into ${to.url}`,
    );
  }
  let written = 0;
  let storedBytes = 0;
  for (const f of meta.files) {
    const key = keys.backupFile(cluster, backupId, f.name);
    // What the stored bytes must hash to: recorded for parts (version 2) and for files stored as they are.
    const recorded = f.storedSha256 ?? (f.compression === 'none' ? f.sha256 : undefined);
    const source = await storedSha256(from, key);
    if (source === undefined)
      throw new LifeboatError(
        'BACKUP_NOT_FOUND',
        `${f.name} of ${where} is not in ${from.url}: nothing more copied into ${to.url}`,
      );
    if (recorded !== undefined && source !== recorded) {
      throw new LifeboatError(
        'BACKUP_VERIFY_FAILED',
        `${f.name} of ${where} in ${from.url} does not match backup.json (sha256 ${recorded}, read ${source}): not copied into ${to.url}`,
        {
          hints: [
            "the first repository's copy is damaged; the backup must come from another repository, or take a new backup",
          ],
        },
      );
    }
    const got = await from.getStream(key);
    if (!got)
      throw new LifeboatError('BACKUP_NOT_FOUND', `${f.name} of ${where} disappeared from ${from.url} while copying`);
    const res = await to.put(key, got.stream, { sha256: f.sha256, ifAbsent: true });
    if (res.written) written++;
    const there = await storedSha256(to, key);
    if (there !== source) {
      throw new LifeboatError(
        'ARCHIVE_CONFLICT',
        `${f.name} of ${where} in ${to.url} ${res.written ? 'reads back' : 'is already there'} with sha256 ${there ?? '(absent)'}, not ${source} as in ${from.url}; the stored object is kept and backup.json not written`,
        {
          hints: [
            res.written
              ? 'the target store changed the object: check it, then run again'
              : 'move that object aside in the target (never deleted by Lifeboat), then run again',
          ],
        },
      );
    }
    storedBytes += f.storedSize;
  }
  // backup.json last, as a backup writes it.
  const res = await to.put(metaKey, metaObj.body, { sha256: metaSha, ifAbsent: true });
  if (res.written) written++;
  const back = await to.get(metaKey);
  const backSha = back && createHash('sha256').update(back.body).digest('hex');
  if (backSha !== metaSha) {
    throw new LifeboatError(
      'ARCHIVE_CONFLICT',
      `backup.json of ${where} in ${to.url} has sha256 ${backSha ?? '(absent)'}, not ${metaSha} as in ${from.url}; the stored object is kept`,
    );
  }
  return { backupId, written, objects: meta.files.length + 1, storedBytes: storedBytes + metaObj.body.length };
}
