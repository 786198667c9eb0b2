// Where things live in a repository (shared/DESIGN.md §6). Every key is built
// here so the layout is written down exactly once.
import { walFileKind } from '../wal/names';

export const WAL_COMPRESSED_SUFFIX = '.zst';

export const keys = {
  clusterPrefix: (cluster: string) => `${cluster}/`,
  basePrefix: (cluster: string) => `${cluster}/base/`,
  backupPrefix: (cluster: string, backupId: string) => `${cluster}/base/${backupId}/`,
  backupFile: (cluster: string, backupId: string, file: string) => `${cluster}/base/${backupId}/${file}`,
  backupMeta: (cluster: string, backupId: string) => `${cluster}/base/${backupId}/backup.json`,
  walPrefix: (cluster: string) => `${cluster}/wal/`,
  /** Segments are stored compressed; history, .backup and .partial files as PostgreSQL wrote them. */
  wal: (cluster: string, walFile: string) =>
    `${cluster}/wal/${walFile}${walFileKind(walFile) === 'segment' ? WAL_COMPRESSED_SUFFIX : ''}`,
  evidence: (cluster: string, runId: string) => `${cluster}/evidence/${runId}.json`,
  audit: (cluster: string, runId: string) => `${cluster}/audit/${runId}.jsonl`,
  /** Where a side-by-side recovery re-pointed the cluster's primary (src/catalog/primary.ts). */
  primaryOverlay: (cluster: string) => `${cluster}/primary.json`,
};

/** The WAL file name of a key under <cluster>/wal/, or undefined for other keys. */
export function walFileOfKey(cluster: string, key: string): string | undefined {
  const prefix = keys.walPrefix(cluster);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  if (name.includes('/')) return undefined;
  return name.endsWith(WAL_COMPRESSED_SUFFIX) ? name.slice(0, -WAL_COMPRESSED_SUFFIX.length) : name;
}
