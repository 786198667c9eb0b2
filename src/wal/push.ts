// Archiving WAL files into the repository: what `lifeboat archive-push`
// (PostgreSQL's archive_command) does for one file, and the read-ahead that
// pushes other segments PostgreSQL has already marked ready.
//
// PostgreSQL runs archive_command once per file, one at a time, and only
// moves on when it exits 0. Starting a process per 16 MB segment caps the
// archive rate, so each call also pushes a few of the next `.ready` files in
// parallel and leaves a marker (src/wal/marker.ts) for each. When PostgreSQL later asks for
// one of those, the call checks the file against its marker and exits 0
// without touching the network. archive_status itself belongs to
// PostgreSQL: it is read here, never written.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { decodeWal, encodeWal, sha256Hex } from './compress';
import { walFileKind } from './names';
import { fileIdentity, markerDir, markerText, writeMarker } from './marker';

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

/**
 * Pushes up to `max` other files PostgreSQL has marked ready (history files
 * first, then oldest first, the order its archiver uses), in parallel, and
 * leaves a marker for each one archived. A failure here is not the caller's:
 * PostgreSQL will ask for that file itself and see the error then.
 */
export async function pushAhead(
  repo: Repository,
  cluster: string,
  pgWalDir: string,
  current: string,
  max: number,
  target: string,
): Promise<{ pushed: PushOutcome[]; failed: { walFile: string; error: unknown }[] }> {
  let ready: string[];
  try {
    ready = (await fs.readdir(path.join(pgWalDir, 'archive_status')))
      .filter((n) => n.endsWith('.ready'))
      .map((n) => n.slice(0, -'.ready'.length))
      .filter((n) => n !== current && walFileKind(n) !== 'other');
  } catch {
    return { pushed: [], failed: [] }; // not a data directory's pg_wal: nothing to read ahead
  }
  await removeStaleMarkers(pgWalDir, new Set(ready));
  const rank = (n: string) => (walFileKind(n) === 'history' ? 0 : 1);
  const batch = ready.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1)).slice(0, max);
  if (batch.length === 0) return { pushed: [], failed: [] };
  await fs.mkdir(markerDir(pgWalDir), { recursive: true, mode: 0o700 });
  const results = await Promise.allSettled(
    batch.map(async (walFile) => {
      const file = path.join(pgWalDir, walFile);
      const before = fileIdentity(file);
      const outcome = await pushWalFile(repo, cluster, file);
      // Marked only when the file did not change while it was read and pushed.
      if (before !== undefined && fileIdentity(file) === before) {
        await writeMarker(pgWalDir, walFile, markerText(before, outcome.sha256, target));
      }
      return outcome;
    }),
  );
  const pushed: PushOutcome[] = [];
  const failed: { walFile: string; error: unknown }[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') pushed.push(r.value);
    else failed.push({ walFile: batch[i] as string, error: r.reason });
  });
  return { pushed, failed };
}

/** A marker whose file is no longer ready will never be asked for (archive_mode changed, file removed). */
async function removeStaleMarkers(pgWalDir: string, ready: Set<string>): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(markerDir(pgWalDir));
  } catch {
    return;
  }
  await Promise.all(
    names.filter((n) => !ready.has(n)).map((n) => fs.rm(path.join(markerDir(pgWalDir), n), { force: true })),
  );
}
