// Archiving one WAL file into the repository: what `lifeboat archive-push`
// (PostgreSQL's archive_command) and the read-ahead pusher (./ahead.ts) do
// for each file. archive_status belongs to PostgreSQL: it is read by the
// pusher, never written.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { decodeWal, encodeWal, sha256Hex } from './compress';
import { walFileKind } from './names';

export interface PushOutcome {
  walFile: string;
  /** `stored`: written now; `already-archived`: the same content was there. */
  result: 'stored' | 'already-archived';
  sha256: string;
  bytes: number;
  storedBytes: number;
}

/** Refuses names PostgreSQL never archives, so a key can never leave <cluster>/wal/. */
export function checkWalFileName(walFile: string): void {
  if (walFileKind(walFile) === 'other') {
    throw new LifeboatError('INPUT_INVALID', `${JSON.stringify(walFile)} is not a WAL file name`, {
      hints: [
        'archive-push archives WAL segments, timeline history, .backup and .partial files',
        "use it as archive_command = 'lifeboat archive-push %p ...'",
      ],
    });
  }
}

/**
 * Archives one WAL file: compressed, checksummed, create-only. Content that
 * is already archived counts as success; different content under the same
 * name is a conflict, and the archived copy is left as it is.
 */
export async function pushWalFile(repo: Repository, cluster: string, file: string): Promise<PushOutcome> {
  const walFile = path.basename(file);
  checkWalFileName(walFile);
  const content = await fs.readFile(file);
  const sha256 = sha256Hex(content);
  const stored = await encodeWal(walFile, content);
  const key = keys.wal(cluster, walFile);
  const res = await repo.put(key, stored, { sha256, ifAbsent: true });
  const outcome = { walFile, sha256, bytes: content.length, storedBytes: stored.length };
  if (res.written) return { ...outcome, result: 'stored' };
  const archivedSha = res.existing.sha256 ?? (await shaOfArchived(repo, key, walFile));
  if (archivedSha === sha256) return { ...outcome, result: 'already-archived' };
  throw new LifeboatError(
    'ARCHIVE_CONFLICT',
    `${walFile} is already archived in ${repo.url} (cluster ${cluster}) with different content: ` +
      `archived sha256 ${archivedSha ?? 'unreadable'}, ${file} sha256 ${sha256}; the archived copy is kept`,
    {
      hints: [
        'two servers may be archiving into the same repository and cluster name: check archive_command (--repo/--cluster or the runbook) on every server',
        'a server restored from a backup must archive on a new timeline or into its own cluster name',
        'PostgreSQL retries this file until archive-push succeeds; pg_wal grows meanwhile',
      ],
      details: { walFile, cluster, archivedSha, localSha: sha256 },
    },
  );
}

/** Checksum of an archived object that has none recorded: decompress and hash it. */
async function shaOfArchived(repo: Repository, key: string, walFile: string): Promise<string | undefined> {
  const obj = await repo.get(key);
  if (!obj) return undefined;
  try {
    return sha256Hex(await decodeWal(walFile, obj.body));
  } catch {
    return undefined;
  }
}
