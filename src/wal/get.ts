// Restoring WAL files from the repository: what `lifeboat archive-get`
// (PostgreSQL's restore_command) and its background prefetcher do.
//
// Nothing is ever handed to PostgreSQL unverified: every file is checked
// against the sha256 recorded when it was archived, after decompression, and
// written under a temporary name before it appears at its final path.
//
// The prefetch spool (pg_wal/.lifeboat-prefetch by default) holds segments
// downloaded ahead of replay: `<name>` with `<name>.sha256` ("<sha256>
// <target>"), written only complete, checked again when served.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, isLifeboatError } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { decodeWal, sha256Hex } from './compress';
import { isSegmentName, nextSegmentName } from './names';
import { pidTextAlive } from './pid';

export interface Fetched {
  content: Buffer;
  sha256: string;
}

/** A WAL file's verified original content; undefined when the archive does not have it. */
export async function fetchWalFile(repo: Repository, cluster: string, walFile: string): Promise<Fetched | undefined> {
  const key = keys.wal(cluster, walFile);
  const obj = await repo.get(key);
  if (!obj) return undefined;
  const where = `${walFile} in ${repo.url} (cluster ${cluster}, object ${key})`;
  const expected = obj.info.sha256;
  if (!expected) {
    throw corrupt(`${where} has no recorded sha256, so it cannot be verified`, walFile, key);
  }
  let content: Buffer;
  try {
    content = await decodeWal(walFile, obj.body);
  } catch (err) {
    throw corrupt(`${where} cannot be decompressed (${(err as Error).message}); ${obj.body.length} bytes stored`, walFile, key);
  }
  const actual = sha256Hex(content);
  if (actual !== expected) {
    throw corrupt(`${where} does not match its checksum: recorded sha256 ${expected}, content sha256 ${actual}`, walFile, key);
  }
  return { content, sha256: actual };
}

function corrupt(what: string, walFile: string, object: string): LifeboatError {
  return new LifeboatError('WAL_CHECKSUM_MISMATCH', what, {
    hints: [
      'the archived copy is damaged; recovery cannot continue past it with this archive',
      'if the primary still has this file in pg_wal, archive it again into a fresh repository or cluster name',
      'otherwise recover to a target before this segment, or from a newer base backup',
    ],
    details: { walFile, object },
  });
}

/**
 * fetchWalFile with retries for errors that may pass (network, store
 * restarting). A checksum mismatch is a fact about the data and is not
 * retried; neither is a clean "absent".
 */
export async function fetchWalFileWithRetry(
  repo: Repository,
  cluster: string,
  walFile: string,
  { attempts = 4, baseDelayMs = 500 }: { attempts?: number; baseDelayMs?: number } = {},
): Promise<Fetched | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchWalFile(repo, cluster, walFile);
    } catch (err) {
      const permanent = isLifeboatError(err) && (err.code === 'WAL_CHECKSUM_MISMATCH' || err.code === 'REPOSITORY_INVALID');
      if (permanent || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (attempt - 1)));
    }
  }
}

/** Writes a file that appears complete or not at all: temporary name beside it, fsync, rename. */
export async function writeFileAtomic(dest: string, content: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.lifeboat-tmp-${process.pid}`);
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, dest);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export class Spool {
  constructor(
    readonly dir: string,
    /** Archive target the spooled files came from (archiveTargetId). */
    private readonly target: string,
  ) {}

  private file(walFile: string): string {
    return path.join(this.dir, walFile);
  }

  /**
   * Moves a spooled segment to `dest` if it is there, came from this target
   * and still matches its checksum; false otherwise (the caller downloads).
   * The file is first renamed to a private name, so a concurrent prefetcher
   * can never change it between the check and the move.
   */
  async take(walFile: string, dest: string): Promise<boolean> {
    const sidecar = `${this.file(walFile)}.sha256`;
    let meta: string;
    try {
      meta = (await fs.readFile(sidecar, 'utf8')).trim();
    } catch {
      return false;
    }
    const [sha, ...rest] = meta.split(' ');
    const claimed = path.join(path.dirname(dest), `.${path.basename(dest)}.lifeboat-spool-${process.pid}`);
    try {
      await fs.rename(this.file(walFile), claimed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') return false;
      return this.takeByCopy(walFile, dest, sha, rest.join(' '));
    }
    await fs.rm(sidecar, { force: true });
    try {
      if (rest.join(' ') !== this.target || sha256Hex(await fs.readFile(claimed)) !== sha) return false;
      await fs.rename(claimed, dest);
      return true;
    } finally {
      await fs.rm(claimed, { force: true });
    }
  }

  /** The spool is on another file system than %p: verify, then write atomically. */
  private async takeByCopy(walFile: string, dest: string, sha: string | undefined, target: string): Promise<boolean> {
    try {
      const content = await fs.readFile(this.file(walFile));
      if (target !== this.target || sha256Hex(content) !== sha) return false;
      await writeFileAtomic(dest, content);
      return true;
    } catch {
      return false;
    } finally {
      await this.forget(walFile);
    }
  }

  private async forget(walFile: string): Promise<void> {
    await Promise.all([fs.rm(this.file(walFile), { force: true }), fs.rm(`${this.file(walFile)}.sha256`, { force: true })]);
  }

  /** How many segments right after `walFile` are spooled or being downloaded. */
  async readyAhead(walFile: string, count: number): Promise<number> {
    let names: Set<string>;
    try {
      names = new Set(await fs.readdir(this.dir));
    } catch {
      return 0;
    }
    let n = 0;
    let next = walFile;
    for (; n < count; n++) {
      next = nextSegmentName(next);
      if (!names.has(next) && !(names.has(`${next}.lock`) && (await this.lockAlive(next)))) break;
    }
    return n;
  }

  /**
   * Downloads `count` segments from `first` on into the spool, `parallel` at
   * a time, skipping those spooled or locked by another prefetcher, and
   * stopping at the first one the archive does not have (the end of the
   * archive, for now). Segments before `first` are removed: replay is past them.
   */
  async prefetch(repo: Repository, cluster: string, first: string, count: number, parallel = 4): Promise<{ fetched: string[]; missing?: string }> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.removeOlderThan(first);
    const names: string[] = [];
    for (let i = 0, n = first; i < count; i++, n = nextSegmentName(n)) names.push(n);
    const fetched: string[] = [];
    let missing: string | undefined;
    let index = 0;
    const worker = async (): Promise<void> => {
      while (index < names.length) {
        const walFile = names[index++] as string;
        if (missing !== undefined && walFile > missing) return;
        const got = await this.fetchOne(repo, cluster, walFile);
        if (got === 'missing') {
          if (missing === undefined || walFile < missing) missing = walFile;
        } else if (got === 'fetched') {
          fetched.push(walFile);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, names.length) }, worker));
    return { fetched: fetched.sort(), ...(missing ? { missing } : {}) };
  }

  /**
   * Keeps `count` segments spooled ahead of replay for as long as replay
   * takes them: one long-lived process per spool, so a store that is slow to
   * start (S3: the SDK, the connection) pays that once, not at every refill.
   * Replay's position is read from the spool itself: a spooled segment that
   * is gone was served. Returns when another follower is alive, when nothing
   * was served or fetched for `idleMs` (replay paused, or over), or when the
   * spool is removed (promotion).
   */
  async follow(repo: Repository, cluster: string, after: string, count: number, idleMs = 30_000): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const pidFile = path.join(this.dir, FOLLOWER_PID);
    if (!(await claimPidFile(pidFile))) return;
    try {
      let base = after;
      let lastActivity = Date.now();
      const seen = new Set<string>();
      for (;;) {
        // Gone or taken over: the spool was removed (promotion, a copy moved
        // aside) and maybe made again for another replay, which is not ours.
        if ((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim() !== String(process.pid)) return;
        let names: Set<string>;
        try {
          names = new Set(await fs.readdir(this.dir));
        } catch {
          return;
        }
        for (const n of [...seen].sort()) {
          if (names.has(n)) continue;
          seen.delete(n);
          if (n > base) base = n;
          lastActivity = Date.now();
        }
        const r = await this.prefetch(repo, cluster, nextSegmentName(base), count);
        for (const n of names) if (isSegmentName(n) && n > base) seen.add(n);
        for (const f of r.fetched) seen.add(f);
        if (r.fetched.length > 0) lastActivity = Date.now();
        if (Date.now() - lastActivity > idleMs) return;
        // At the end of the archive there is nothing to fetch until more WAL is archived.
        await new Promise((resolve) => setTimeout(resolve, r.missing ? 1000 : 100));
      }
    } finally {
      const mine = await fs.readFile(pidFile, 'utf8').catch(() => '');
      if (mine.trim() === String(process.pid)) await fs.rm(pidFile, { force: true });
    }
  }

  /** Whether a follower (Spool.follow) is keeping this spool filled. */
  async followerAlive(): Promise<boolean> {
    return pidTextAlive(await fs.readFile(path.join(this.dir, FOLLOWER_PID), 'utf8').catch(() => ''));
  }

  private async fetchOne(repo: Repository, cluster: string, walFile: string): Promise<'fetched' | 'skipped' | 'missing'> {
    const lock = `${this.file(walFile)}.lock`;
    if (await exists(this.file(walFile))) return 'skipped';
    try {
      await fs.writeFile(lock, String(process.pid), { flag: 'wx' });
    } catch {
      if (await this.lockAlive(walFile)) return 'skipped';
      await fs.rm(lock, { force: true }); // its prefetcher died; the next run takes it
      return 'skipped';
    }
    const tmp = `${this.file(walFile)}.tmp`;
    try {
      if (await exists(this.file(walFile))) return 'skipped';
      const got = await fetchWalFileWithRetry(repo, cluster, walFile, { attempts: 3, baseDelayMs: 200 });
      if (!got) return 'missing';
      // No fsync: a spool file damaged by a crash fails its check when served
      // and is downloaded again.
      await fs.writeFile(tmp, got.content, { mode: 0o600 });
      await fs.writeFile(`${this.file(walFile)}.sha256`, `${got.sha256} ${this.target}\n`, { mode: 0o600 });
      await fs.rename(tmp, this.file(walFile));
      return 'fetched';
    } finally {
      await Promise.all([fs.rm(tmp, { force: true }), fs.rm(lock, { force: true })]);
    }
  }

  private async lockAlive(walFile: string): Promise<boolean> {
    return pidTextAlive(await fs.readFile(`${this.file(walFile)}.lock`, 'utf8').catch(() => ''));
  }

  private async removeOlderThan(first: string): Promise<void> {
    const entries = await fs.readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(
      entries
        .filter((e) => {
          // Locks too: a prefetcher still busy with one of these only
          // leaves a file that the next clean-up removes.
          const name = e.slice(0, 24);
          return isSegmentName(name) && name < first;
        })
        .map((e) => fs.rm(path.join(this.dir, e), { force: true })),
    );
  }
}

/** The follower's pid file in the spool; bin/lifeboat reads it too. */
export const FOLLOWER_PID = 'prefetcher.pid';

/** Takes the pid file, or false when a live process holds it. A dead holder's file is taken over. */
async function claimPidFile(file: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      if (pidTextAlive(await fs.readFile(file, 'utf8').catch(() => ''))) return false;
      await fs.rm(file, { force: true });
    }
  }
  return false;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
