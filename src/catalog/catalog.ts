// The catalog: which base backups and WAL files a repository holds for one
// cluster. Only a backup whose backup.json is valid, names its own directory
// and cluster, and whose listed files are all there with their recorded
// sizes is complete; anything else under base/ (an upload that died, a
// backup still being written, a hand-copied directory) is listed as
// incomplete and never trusted by restores, checks or expiry.
import { LifeboatError, errorMessage, withContext } from '../errors';
import { keys, walFileOfKey } from '../repository/layout';
import type { ObjectInfo, Repository } from '../repository/types';
import { walFileKind } from '../wal/names';
import { BackupMeta } from './backup-meta';

export type CatalogEntry =
  | { backupId: string; status: 'complete'; meta: BackupMeta; objects: number; storedBytes: number }
  | { backupId: string; status: 'incomplete'; problem: string; objects: number; storedBytes: number };

export type CompleteEntry = Extract<CatalogEntry, { status: 'complete' }>;

export function isComplete(e: CatalogEntry): e is CompleteEntry {
  return e.status === 'complete';
}

/** Every backup directory under <cluster>/base/, oldest first (backup ids sort by start time). */
export async function readCatalog(repo: Repository, cluster: string): Promise<CatalogEntry[]> {
  let objects: ObjectInfo[];
  try {
    objects = await repo.list(keys.basePrefix(cluster));
  } catch (err) {
    throw withContext(`while listing the base backups of cluster ${cluster} in ${repo.url}`, err);
  }
  const dirs = new Map<string, ObjectInfo[]>();
  const prefix = keys.basePrefix(cluster);
  for (const o of objects) {
    const rest = o.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue; // a stray object directly under base/ is no backup
    const id = rest.slice(0, slash);
    const list = dirs.get(id) ?? [];
    list.push(o);
    dirs.set(id, list);
  }
  const ids = [...dirs.keys()].sort();
  const entries: CatalogEntry[] = [];
  // A handful of small reads at a time: a repository can hold hundreds of backups.
  for (let i = 0; i < ids.length; i += 16) {
    const batch = ids.slice(i, i + 16).map((id) => readEntry(repo, cluster, id, dirs.get(id) ?? []));
    entries.push(...(await Promise.all(batch)));
  }
  return entries;
}

/** The complete (verified) backups, oldest first: what restores may use. */
export async function listBackups(repo: Repository, cluster: string): Promise<BackupMeta[]> {
  return (await readCatalog(repo, cluster)).filter(isComplete).map((e) => e.meta);
}

async function readEntry(
  repo: Repository,
  cluster: string,
  backupId: string,
  objects: ObjectInfo[],
): Promise<CatalogEntry> {
  const storedBytes = objects.reduce((n, o) => n + o.size, 0);
  const incomplete = (problem: string): CatalogEntry => ({
    backupId,
    status: 'incomplete',
    problem,
    objects: objects.length,
    storedBytes,
  });
  const metaKey = keys.backupMeta(cluster, backupId);
  if (!objects.some((o) => o.key === metaKey))
    return incomplete('no backup.json (the backup never finished, or is still being written)');
  let got: Awaited<ReturnType<Repository['get']>>;
  try {
    got = await repo.get(metaKey);
  } catch (err) {
    // A store that does not answer, or an encryption key that is missing or
    // wrong, is not a fact about this backup: every backup would read as
    // incomplete and the operator would see no reason why.
    if (
      err instanceof LifeboatError &&
      (err.code === 'REPOSITORY_UNREACHABLE' || err.code === 'ENCRYPTION_KEY_MISMATCH' || err.code === 'SECRET_MISSING')
    )
      throw err;
    return incomplete(`backup.json cannot be read: ${errorMessage(err).split('\n')[0]}`);
  }
  if (!got) return incomplete('backup.json disappeared while listing');
  let json: unknown;
  try {
    json = JSON.parse(got.body.toString('utf8'));
  } catch (err) {
    return incomplete(`backup.json is not valid JSON: ${errorMessage(err)}`);
  }
  const parsed = BackupMeta.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? first.path.join('.') : '(top level)';
    return incomplete(`backup.json does not match the schema: ${where}: ${first?.message ?? 'invalid'}`);
  }
  const meta = parsed.data;
  if (meta.backupId !== backupId)
    return incomplete(`backup.json names backup ${meta.backupId}, but lies in ${backupId}/`);
  if (meta.cluster !== cluster) return incomplete(`backup.json belongs to cluster ${meta.cluster}, not ${cluster}`);
  const byName = new Map(objects.map((o) => [o.key.slice(keys.backupPrefix(cluster, backupId).length), o]));
  for (const f of meta.files) {
    const o = byName.get(f.name);
    if (!o) return incomplete(`${f.name} is listed in backup.json but missing`);
    if (o.size !== f.storedSize) return incomplete(`${f.name} is ${o.size} bytes, backup.json says ${f.storedSize}`);
  }
  return { backupId, status: 'complete', meta, objects: objects.length, storedBytes };
}

export interface WalArchiveFile {
  /** File name as PostgreSQL knows it: segment, history, .partial or .backup file. */
  name: string;
  /** Every key it is stored under (normally one). */
  keys: string[];
  /** Stored bytes over those keys. */
  size: number;
}

export interface WalArchive {
  files: WalArchiveFile[];
  /** Texts of the timeline history files, by file name. */
  histories: Record<string, string>;
}

/** The WAL archive of a cluster: every file under <cluster>/wal/ and the text of each history file. */
export async function readWalArchive(repo: Repository, cluster: string): Promise<WalArchive> {
  let objects: ObjectInfo[];
  try {
    objects = await repo.list(keys.walPrefix(cluster));
  } catch (err) {
    throw withContext(`while listing the WAL archive of cluster ${cluster} in ${repo.url}`, err);
  }
  const byName = new Map<string, WalArchiveFile>();
  for (const o of objects) {
    const name = walFileOfKey(cluster, o.key);
    if (name === undefined) continue;
    const f = byName.get(name) ?? { name, keys: [], size: 0 };
    f.keys.push(o.key);
    f.size += o.size;
    byName.set(name, f);
  }
  const files = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const histories: Record<string, string> = {};
  // History files are a few hundred bytes and there are as many as promotions.
  await Promise.all(
    files
      .filter((f) => walFileKind(f.name) === 'history')
      .map(async (f) => {
        try {
          const got = await repo.get(f.keys[0]!);
          if (got) histories[f.name] = got.body.toString('utf8');
        } catch (err) {
          if (err instanceof LifeboatError && err.code === 'REPOSITORY_UNREACHABLE') throw err;
          // Left out of `histories`: the chain check reports it as unreadable.
        }
      }),
  );
  return { files, histories };
}

/**
 * Deletes one backup's objects. backup.json goes first: from that moment the
 * catalog lists what is left as incomplete, so a deletion cut short never
 * leaves a half-deleted backup that still looks restorable.
 */
export async function deleteBackupObjects(
  repo: Repository,
  cluster: string,
  backupId: string,
): Promise<{ objects: number; storedBytes: number }> {
  const prefix = keys.backupPrefix(cluster, backupId);
  try {
    const objects = await repo.list(prefix);
    const metaKey = keys.backupMeta(cluster, backupId);
    if (objects.some((o) => o.key === metaKey)) await repo.delete([metaKey]);
    const rest = objects.filter((o) => o.key !== metaKey).map((o) => o.key);
    if (rest.length > 0) await repo.delete(rest);
    return { objects: objects.length, storedBytes: objects.reduce((n, o) => n + o.size, 0) };
  } catch (err) {
    throw withContext(`while deleting backup ${backupId} of cluster ${cluster} from ${repo.url}`, err);
  }
}
