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
import { DEFAULT_WAL_SEGMENT_SIZE, isSegmentSize, walFileKind } from './names';
import { restorePointCandidates } from './restore-points';
import { TimelineWatch, type Supersession } from './superseded';

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
 * name is a conflict, and the archived copy is left as it is. WAL of a
 * timeline that a newer archived timeline replaced is refused
 * (TIMELINE_SUPERSEDED, ./superseded.ts). `watch` keeps the history files
 * found between calls (the read-ahead pusher passes one for all its pushes).
 */
export async function pushWalFile(
  repo: Repository,
  cluster: string,
  file: string,
  watch?: TimelineWatch,
): Promise<PushOutcome> {
  return pushPrepared(repo, cluster, await readWalToPush(file), watch);
}

/**
 * One WAL file read once, for one repository or several (./push-repositories.ts):
 * checksum, compression and restore-point count are computed on first use and
 * shared, so a second repository costs an upload, not a second compression.
 */
export interface WalToPush {
  file: string;
  walFile: string;
  segSize: number;
  /** Size of the file as PostgreSQL wrote it. */
  bytes: number;
  encode(): Promise<{ sha256: string; stored: Buffer; restorePoints?: number }>;
}

export async function readWalToPush(file: string): Promise<WalToPush> {
  const walFile = path.basename(file);
  checkWalFileName(walFile);
  const content = await fs.readFile(file);
  // A segment's size is the cluster's WAL segment size (initdb --wal-segsize).
  const kind = walFileKind(walFile);
  const segSize =
    (kind === 'segment' || kind === 'partial') && isSegmentSize(content.length)
      ? content.length
      : DEFAULT_WAL_SEGMENT_SIZE;
  let encoded: ReturnType<WalToPush['encode']> | undefined;
  const encode = () =>
    (encoded ??= (async () => {
      const sha256 = sha256Hex(content);
      // Where restore points may be, so a search for one reads only those segments.
      const restorePoints = kind === 'segment' ? restorePointCandidates(content) : undefined;
      return {
        sha256,
        stored: await encodeWal(walFile, content),
        ...(restorePoints !== undefined ? { restorePoints } : {}),
      };
    })());
  return { file, walFile, segSize, bytes: content.length, encode };
}

/**
 * Stores a read WAL file in one repository. `watch` null: no probe for a
 * newer timeline (a second repository: the first one's probe decides).
 */
export async function pushPrepared(
  repo: Repository,
  cluster: string,
  wal: WalToPush,
  watch?: TimelineWatch | null,
): Promise<PushOutcome> {
  const { walFile, file } = wal;
  // The probe for newer timelines runs while the file is compressed. A probe
  // that fails does not stop archiving: keeping WAL safe comes first, a
  // repository that is really down fails the put below, and lifeboat check
  // still reports a second writer. (On AWS S3, GET of a missing key answers
  // 403 instead of 404 to a role without s3:ListBucket.)
  const superseded =
    watch === null
      ? Promise.resolve(undefined)
      : (watch ?? new TimelineWatch(repo, cluster)).check(walFile, wal.segSize).catch(() => undefined);
  const { sha256, stored, restorePoints } = await wal.encode();
  const key = keys.wal(cluster, walFile);
  const outcome = { walFile, sha256, bytes: wal.bytes, storedBytes: stored.length };
  const by = await superseded;
  if (by) {
    // Archived before the newer timeline appeared (PostgreSQL retrying a
    // call whose answer it never got): that is done, not a new write.
    const existing = await repo.head(key);
    const archivedSha = existing ? (existing.sha256 ?? (await shaOfArchived(repo, key, walFile))) : undefined;
    if (archivedSha === sha256) return { ...outcome, result: 'already-archived' };
    throw await supersededError(repo, cluster, file, by);
  }
  const res = await repo.put(key, stored, {
    sha256,
    ifAbsent: true,
    ...(restorePoints !== undefined ? { restorePoints } : {}),
  });
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

/** What the old primary's server log shows, once per retry: who replaced it, when, and what to do. */
async function supersededError(
  repo: Repository,
  cluster: string,
  file: string,
  s: Supersession,
): Promise<LifeboatError> {
  const when = s.archivedAt ? `, archived ${s.archivedAt.toISOString()}` : '';
  const reason = s.reason ? ` (${s.reason})` : '';
  const hints: string[] = [];
  try {
    // Loaded only here: archive-push must start fast, and this is the rare path.
    const { readPrimaryOverlay } = await import('../catalog/primary');
    const o = await readPrimaryOverlay(repo, cluster);
    if (o && o.timeline >= s.by) {
      hints.push(
        `the cluster's primary is now ${o.host}:${o.port} (timeline ${o.timeline}), promoted by recovery ${o.workflowId} at ${o.promotedAt}`,
      );
    }
  } catch {
    /* the hint is a courtesy; the refusal stands without it */
  }
  hints.push(
    `this server is no longer the primary of cluster ${cluster}: stop it (pg_ctl stop -D <its data directory>), or, if it must keep running, point its archive_command at another repository or --cluster`,
    'nothing is lost: PostgreSQL keeps the file in pg_wal and retries it (pg_wal grows until this server stops or archives elsewhere)',
    `lifeboat check reports it as two writers; a backup of this server cannot be continued from the archive`,
  );
  return new LifeboatError(
    'TIMELINE_SUPERSEDED',
    `refused to archive ${s.walFile} (timeline ${s.timeline}, from ${s.startLsn}) into ${repo.url} (cluster ${cluster}): ` +
      `timeline ${s.by} branched off timeline ${s.timeline} at ${s.switchLsn}${reason} (${s.historyFile}${when}), ` +
      `so timeline ${s.timeline} past that point is WAL no restore of this cluster reads`,
    {
      hints,
      details: { walFile: s.walFile, file, cluster, timeline: s.timeline, supersededBy: s.by, switchLsn: s.switchLsn },
    },
  );
}
