// The catch-up queue of a second repository (runbook `repositoryPolicy:
// primary`): WAL the first repository has and another did not take in time.
//
// One small file per WAL file and repository, on the archiving host beside
// the pusher's markers: <pg_wal>/.lifeboat-catchup/<repository name>/<walFile>.
// pg_basebackup copies nothing of pg_wal but archive_status, so the queue
// never travels into a backup.
//
// Nothing is lost in a crash: archive-push writes (and fsyncs) the entry
// before it answers PostgreSQL, and until it answers PostgreSQL keeps the
// file and calls again. Draining is idempotent: the copy is create-only, and
// a repository that already holds the same sha256 counts as done (an upload
// that was given up on may still have landed), so an entry is removed only
// once the repository provably holds the file.
//
// The queue is the fast path, not the truth: `lifeboat check` compares the
// repositories' listings (repositoryLag below), and `lifeboat
// archive-catchup` copies whatever the first holds and another lacks, so a
// queue lost with its host still catches up.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage, LifeboatError } from '../errors';
import { keys, walFileOfKey } from '../repository/layout';
import type { OpenedRepository } from '../repository/multi';
import type { ObjectInfo, Repository } from '../repository/types';
import { decodeWal, sha256Hex } from './compress';

export const CATCHUP_DIR = '.lifeboat-catchup';

export interface QueueEntry {
  walFile: string;
  sha256: string;
  queuedAt: string;
  /** Why the repository did not take it then (first line of the error). */
  reason: string;
}

export function queueDirOf(pgWalDir: string): string {
  return path.join(pgWalDir, CATCHUP_DIR);
}

function repoDir(queueDir: string, repoName: string): string {
  return path.join(queueDir, repoName);
}

/** Records a WAL file for a repository; durable (fsync of the file and its directory) before it returns. */
export function enqueue(queueDir: string, repoName: string, entry: QueueEntry): void {
  const dir = repoDir(queueDir, repoName);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const final = path.join(dir, entry.walFile);
  const tmp = `${final}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(entry)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, final);
  const dfd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** The entries waiting for a repository, oldest WAL first. */
export function queued(queueDir: string, repoName: string): QueueEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(repoDir(queueDir, repoName));
  } catch {
    return [];
  }
  const out: QueueEntry[] = [];
  for (const n of names.filter((x) => !x.endsWith('.tmp') && !x.startsWith('.')).sort()) {
    try {
      out.push(JSON.parse(fs.readFileSync(path.join(repoDir(queueDir, repoName), n), 'utf8')) as QueueEntry);
    } catch {
      /* removed meanwhile by another drain */
    }
  }
  return out;
}

function dequeue(queueDir: string, repoName: string, walFile: string): void {
  fs.rmSync(path.join(repoDir(queueDir, repoName), walFile), { force: true });
}

// A repository that let an upload time out (a frozen store accepts the
// connection and then says nothing) is not asked again for a while: every
// archive-push would otherwise wait the whole timeout, and PostgreSQL archives
// one file at a time. Refused connections fail fast and need no pause.
const DOWN_FILE = '.down';
export const DOWN_PAUSE_MS = 30_000;

export function markDown(queueDir: string, repoName: string): void {
  fs.mkdirSync(repoDir(queueDir, repoName), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(repoDir(queueDir, repoName), DOWN_FILE), new Date().toISOString());
}

export function recentlyDown(queueDir: string, repoName: string, now = Date.now()): boolean {
  try {
    const at = Date.parse(fs.readFileSync(path.join(repoDir(queueDir, repoName), DOWN_FILE), 'utf8'));
    return Number.isFinite(at) && now - at < DOWN_PAUSE_MS;
  } catch {
    return false;
  }
}

export function clearDown(queueDir: string, repoName: string): void {
  fs.rmSync(path.join(repoDir(queueDir, repoName), DOWN_FILE), { force: true });
}

/**
 * Copies one archived WAL file from `from` to `to` as stored, after checking
 * it against its recorded sha256 (a damaged copy is never spread). Create-only;
 * the same content already there is success.
 */
export async function copyWalFile(
  from: Repository,
  to: Repository,
  cluster: string,
  walFile: string,
): Promise<'copied' | 'already-there'> {
  const key = keys.wal(cluster, walFile);
  const obj = await from.get(key);
  if (!obj) {
    throw new LifeboatError(
      'WAL_GAP',
      `${walFile} is not in ${from.url} (cluster ${cluster}): nothing to copy into ${to.url}`,
      {
        hints: [
          'expired from the first repository before it reached this one, or the first repository lost it: lifeboat check --runbook <name> reports the gap',
        ],
      },
    );
  }
  const plain = await decodeWal(walFile, obj.body);
  const sha256 = sha256Hex(plain);
  if (obj.info.sha256 && obj.info.sha256 !== sha256) {
    throw new LifeboatError(
      'WAL_CHECKSUM_MISMATCH',
      `${walFile} in ${from.url} (cluster ${cluster}) does not match its recorded sha256 (${obj.info.sha256}, read ${sha256}): not copied into ${to.url}`,
      { hints: ["the first repository's copy is damaged; the file must come from another repository or from pg_wal"] },
    );
  }
  const res = await to.put(key, obj.body, {
    sha256,
    ifAbsent: true,
    ...(obj.info.restorePoints !== undefined ? { restorePoints: obj.info.restorePoints } : {}),
  });
  if (res.written) return 'copied';
  if (res.existing.sha256 === sha256) return 'already-there';
  const there = await to.get(key);
  if (there && sha256Hex(await decodeWal(walFile, there.body)) === sha256) return 'already-there';
  throw new LifeboatError(
    'ARCHIVE_CONFLICT',
    `${walFile} is already in ${to.url} (cluster ${cluster}) with content other than ${from.url}'s (sha256 ${res.existing.sha256 ?? 'unrecorded'}, expected ${sha256}); the stored copy is kept`,
    {
      hints: [
        'two servers may archive into this repository under the same cluster name: check archive_command everywhere',
      ],
    },
  );
}

/**
 * Drains up to `limit` queued files into one repository, oldest first;
 * stops at the first failure (the repository is still down). Returns how
 * many were removed from the queue.
 */
export async function drainQueue(
  queueDir: string,
  primary: Repository,
  target: OpenedRepository,
  cluster: string,
  limit: number,
): Promise<{ drained: number; left: number; error?: string }> {
  const entries = queued(queueDir, target.name);
  let drained = 0;
  for (const e of entries.slice(0, limit)) {
    try {
      await copyWalFile(primary, target.repo, cluster, e.walFile);
    } catch (err) {
      return { drained, left: entries.length - drained, error: errorMessage(err).split('\n', 1)[0] ?? '' };
    }
    dequeue(queueDir, target.name, e.walFile);
    drained++;
  }
  if (drained === entries.length) clearDown(queueDir, target.name);
  return { drained, left: entries.length - drained };
}

export interface RepositoryLag {
  name: string;
  url: string;
  /** WAL files the first repository holds and this one lacks. */
  missing: string[];
  /** When the first repository archived the oldest of them: behind since then. */
  since?: Date;
}

/** Archived WAL by file name, with when it was stored. */
async function walListing(repo: Repository, cluster: string): Promise<Map<string, ObjectInfo>> {
  const out = new Map<string, ObjectInfo>();
  for (const o of await repo.list(keys.walPrefix(cluster))) {
    const name = walFileOfKey(cluster, o.key);
    if (name !== undefined) out.set(name, o);
  }
  return out;
}

/**
 * How far each other repository is behind the first: by listing both, not by
 * any queue, so it is right whatever happened to the archiving host.
 */
export async function repositoryLag(
  list: OpenedRepository[],
  cluster: string,
  primaryListing?: Map<string, ObjectInfo>,
): Promise<RepositoryLag[]> {
  const [first, ...others] = list;
  if (!first || others.length === 0) return [];
  const have = primaryListing ?? (await walListing(first.repo, cluster));
  return Promise.all(
    others.map(async (o) => {
      const theirs = await walListing(o.repo, cluster);
      const missing = [...have.keys()].filter((n) => !theirs.has(n)).sort();
      const times = missing
        .map((n) => have.get(n)?.lastModified?.getTime())
        .filter((t): t is number => t !== undefined);
      return {
        name: o.name,
        url: o.url,
        missing,
        ...(times.length > 0 ? { since: new Date(Math.min(...times)) } : {}),
      };
    }),
  );
}

/**
 * `lifeboat archive-catchup`: copies into every other repository what the
 * first holds and it lacks, a few at a time, then clears the local queue's
 * entries it made redundant.
 */
export async function catchUp(
  list: OpenedRepository[],
  cluster: string,
  opts: { parallel?: number; queueDir?: string; log?: (line: string) => void } = {},
): Promise<
  Array<{
    name: string;
    url: string;
    copied: number;
    alreadyThere: number;
    failed: Array<{ walFile: string; error: string }>;
  }>
> {
  const [first] = list;
  if (!first) return [];
  const lags = await repositoryLag(list, cluster);
  const out = [];
  for (const lag of lags) {
    const target = list.find((r) => r.name === lag.name)!;
    let copied = 0;
    let alreadyThere = 0;
    const failed: Array<{ walFile: string; error: string }> = [];
    const todo = [...lag.missing];
    const worker = async () => {
      for (let walFile = todo.shift(); walFile !== undefined; walFile = todo.shift()) {
        try {
          if ((await copyWalFile(first.repo, target.repo, cluster, walFile)) === 'copied') copied++;
          else alreadyThere++;
          if (opts.queueDir) dequeue(opts.queueDir, target.name, walFile);
        } catch (err) {
          failed.push({ walFile, error: errorMessage(err).split('\n', 1)[0] ?? '' });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.parallel ?? 4) }, worker));
    if (opts.queueDir && failed.length === 0) {
      // Entries of files the listing did not show missing were already there
      // (an upload given up on while the store hung may land later).
      for (const e of queued(opts.queueDir, target.name)) {
        const there = await target.repo.head(keys.wal(cluster, e.walFile));
        if (there && (!there.sha256 || there.sha256 === e.sha256)) {
          dequeue(opts.queueDir, target.name, e.walFile);
          alreadyThere++;
        }
      }
      clearDown(opts.queueDir, target.name);
    }
    opts.log?.(
      `${target.name} (${target.url}): ${copied} copied, ${alreadyThere} already there, ${failed.length} failed`,
    );
    out.push({ name: target.name, url: target.url, copied, alreadyThere, failed });
  }
  return out;
}
