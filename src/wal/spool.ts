// The prefetch spool of `lifeboat archive-get` (src/wal/get.ts fetches and
// verifies; this keeps what it fetched ahead of replay on local disk).
//
// The prefetch spool (pg_wal/.lifeboat-prefetch by default) holds segments
// (and history files) downloaded ahead of replay: `<name>` with
// `<name>.sha256` ("<sha256> <boot id> <target>"), written only complete and
// only after the content matched the sha256 recorded in the repository.
//
// Verified once, when it enters the spool. bin/lifeboat hands a spooled file
// to PostgreSQL with one rename and no second sha256, which is only sound
// because of who can write there: the spool is a directory of the user
// restore_command runs as (cluster.osUser), mode 0700, so only that user
// (and root) can put a file in it, and that user's only writer there is this
// code, which writes nothing unverified (spoolTrusted below; bin/lifeboat
// makes the same check with `[ -O ]` and one `stat`). A spool that is not
// (group or others may write, another owner, a symlink) is never read from
// nor written to: archive-get then downloads and verifies each file itself.
// Files are written without fsync, so the sidecar names the boot it was
// written in (/proc/sys/kernel/random/boot_id): after a power loss a renamed
// file may hold anything, and bin/lifeboat serves only files of this boot
// (Node, which hashes again, may serve older ones).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Repository } from '../repository/types';
import { sha256Hex } from './compress';
import { fetchWalFileWithRetry, writeFileAtomic, type Fetched } from './get';
import { isSegmentName, nextSegmentName, parseSegmentName } from './names';
import { pidTextAlive } from './pid';
import { HISTORY_REFRESH_MS, refreshHistories } from './spool-history';

/** How the spool reads one WAL file: from `repo` by default; from the next repository too with --fallback-repo (get-fallback.ts). */
export type WalReader = (repo: Repository, cluster: string, walFile: string) => Promise<Fetched | undefined>;

/** What prefetch() fetches: `count` segments from `first` on, `parallel` at a time (4 unless given). */
type FillArgs = [repo: Repository, cluster: string, first: string, count: number, parallel?: number];
/** The segments fetched, and the first one the archive does not have. */
type Filled = { fetched: string[]; missing?: string };

export class Spool {
  constructor(
    readonly dir: string,
    /** Archive target the spooled files came from (archiveTargetId). */
    readonly target: string,
    private readonly read: WalReader = (repo, cluster, walFile) =>
      fetchWalFileWithRetry(repo, cluster, walFile, { attempts: 3, baseDelayMs: 200 }),
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
    if (!(await spoolTrusted(this.dir))) return false;
    const sidecar = `${this.file(walFile)}.sha256`;
    let meta: string;
    try {
      meta = (await fs.readFile(sidecar, 'utf8')).trim();
    } catch {
      return false;
    }
    // "<sha256> <boot id> <target>"; the boot does not matter here: Node hashes again.
    const [sha, , ...rest] = meta.split(' ');
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
    await Promise.all([
      fs.rm(this.file(walFile), { force: true }),
      fs.rm(`${this.file(walFile)}.sha256`, { force: true }),
    ]);
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
  async prefetch(...args: FillArgs): Promise<Filled> {
    if (!(await this.prepare())) return { fetched: [] };
    return this.fill(...args);
  }

  /** prefetch() in a spool known to be there and ours: never makes it again. */
  private async fill(...[repo, cluster, first, count, parallel = 4]: FillArgs): Promise<Filled> {
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
  async follow(
    repo: Repository,
    cluster: string,
    after: string,
    count: number,
    { idleMs = 30_000, starting = false }: { idleMs?: number; starting?: boolean } = {},
  ): Promise<void> {
    if (!(await this.prepare())) return;
    const pidFile = path.join(this.dir, FOLLOWER_PID);
    if (!(await claimPidFile(pidFile))) return;
    try {
      // starting: `after` itself is the first to fetch (the backup's start
      // segment, spooled before the postmaster asks for it).
      let base = after;
      let first = starting ? after : nextSegmentName(after);
      let lastActivity = Date.now();
      let historiesAt = 0;
      const seen = new Set<string>();
      for (;;) {
        // Gone or taken over: the spool was removed (promotion, a copy moved
        // aside) and maybe made again for another replay, which is not ours.
        // Never made again here: a follower must not bring back a spool, or
        // a data directory, that was removed under it.
        if ((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim() !== String(process.pid)) return;
        if (!(await spoolTrusted(this.dir))) return;
        let names: Set<string>;
        try {
          names = new Set(await fs.readdir(this.dir));
        } catch {
          return;
        }
        for (const n of [...seen].sort()) {
          if (names.has(n)) continue;
          seen.delete(n);
          if (n > base) {
            base = n;
            first = nextSegmentName(base);
          }
          lastActivity = Date.now();
        }
        if (Date.now() - historiesAt >= HISTORY_REFRESH_MS) {
          historiesAt = Date.now();
          await this.refreshHistories(repo, cluster, parseSegmentName(base).timeline);
        }
        const r = await this.fill(repo, cluster, first, count);
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

  /**
   * Spools the history files the archive has from `timeline` on and marks
   * the first it lacks (src/wal/spool-history.ts). Only saves time: without
   * fresh answers bin/lifeboat asks Node. Returns the name marked absent.
   */
  async histories(repo: Repository, cluster: string, timeline: number): Promise<string | undefined> {
    if (!(await this.prepare())) return undefined;
    return this.refreshHistories(repo, cluster, timeline);
  }

  private async refreshHistories(repo: Repository, cluster: string, timeline: number): Promise<string | undefined> {
    const fetch = (name: string) => fetchWalFileWithRetry(repo, cluster, name, { attempts: 2, baseDelayMs: 200 });
    return refreshHistories(this, fetch, timeline).catch(() => undefined);
  }

  /**
   * Makes the spool (0700) and says whether it may be used: false for one
   * that is not ours alone. Only the spool itself is made, never its parent
   * (pg_wal): a prefetcher started for a data directory that is gone
   * must not make it again.
   */
  async prepare(): Promise<boolean> {
    try {
      await fs.mkdir(this.dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    }
    return spoolTrusted(this.dir);
  }

  /**
   * Puts verified content into the spool: the sidecar first, then the file
   * renamed into place, so a file that is there always has its sidecar.
   */
  async store(walFile: string, fetched: Fetched): Promise<void> {
    const tmp = `${this.file(walFile)}.tmp`;
    try {
      // No fsync: the sidecar names this boot, and a file of an earlier boot is hashed again (see the top).
      await fs.writeFile(tmp, fetched.content, { mode: 0o600 });
      await fs.writeFile(`${this.file(walFile)}.sha256`, `${fetched.sha256} ${await bootId()} ${this.target}\n`, {
        mode: 0o600,
      });
      await fs.rename(tmp, this.file(walFile));
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /** Whether a follower (Spool.follow) is keeping this spool filled. */
  async followerAlive(): Promise<boolean> {
    return pidTextAlive(await fs.readFile(path.join(this.dir, FOLLOWER_PID), 'utf8').catch(() => ''));
  }

  private async fetchOne(
    repo: Repository,
    cluster: string,
    walFile: string,
  ): Promise<'fetched' | 'skipped' | 'missing'> {
    const lock = `${this.file(walFile)}.lock`;
    if (await exists(this.file(walFile))) return 'skipped';
    try {
      await fs.writeFile(lock, String(process.pid), { flag: 'wx' });
    } catch {
      if (await this.lockAlive(walFile)) return 'skipped';
      await fs.rm(lock, { force: true }); // its prefetcher died; the next run takes it
      return 'skipped';
    }
    try {
      if (await exists(this.file(walFile))) return 'skipped';
      const got = await this.read(repo, cluster, walFile);
      if (!got) return 'missing';
      await this.store(walFile, got);
      return 'fetched';
    } finally {
      await fs.rm(lock, { force: true });
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

/**
 * A spool directory that only this process's user can write: not a
 * symlink, owned by us, no write bit for group or others. bin/lifeboat
 * serves its files without hashing them again only under the same test.
 */
export async function spoolTrusted(dir: string): Promise<boolean> {
  const st = await fs.lstat(dir).catch(() => undefined);
  return st !== undefined && st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

let boot: Promise<string> | undefined;

/** This boot's id, as bin/lifeboat reads it; '-' where there is none (then bin/lifeboat always asks Node). */
export function bootId(): Promise<string> {
  boot ??= fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (t) => t.trim() || '-',
    () => '-',
  );
  return boot;
}

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
