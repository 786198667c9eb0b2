// Extracting a version 2 base backup (src/backup/parts.ts): part 0 (the
// directories) first and alone, then the file parts, `parallel` at a time,
// biggest first (so a 1 GiB relation segment does not start last), each
//   object -> tar --zstd -x (tar runs `zstd -d` itself) as the OS user.
//
// No byte of data passes through JavaScript for file://: the worker opens
// the part (the OS user may not be allowed to read the repository; the
// worker is) and hands the descriptor to tar as its stdin, while a worker
// thread hashes the same descriptor with positional reads (file-hasher.ts).
// For s3:// the bytes arrive in this process (the SDK's stream) and are
// written straight to tar's stdin, hashed on the way: compressed bytes
// only, a fraction of the data directory.
//
// What proves the copy, checked once, during extraction:
//   - each part's sha256 of its stored bytes against backup.json
//     (storedSha256, recorded when the part was written from the verified
//     copy): a part altered in the repository fails the restore here;
//   - zstd's own frame checksum (XXH64 of the decompressed content, written
//     by the zstd CLI by default): the decompressor's output is that content;
//   - tar's exit status: every member was written out.
// What is left for pg_verifybackup, run with -s (no checksums) and -n (no
// WAL parsing: replay reads the WAL, and archive-get checks every segment):
// that the files on disk are exactly those of the manifest, each with its
// size: no part missing from backup.json, nothing extra in the directory.
// It reads the manifest and stats each file (milliseconds), where its
// checksum pass re-read the whole data directory to prove again what the
// part checksums already proved (0.6 s for 786 MiB, measured in issue 13).
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { defaultParallel, inParallel } from '../backup/parts';
import type { StoredPart } from '../catalog/backup-meta';
import { LifeboatError, errorMessage, isLifeboatError } from '../errors';
import { keys } from '../repository/layout';
import type { ExtractOptions } from './extract';
import { FileHasher } from './file-hasher';
import { MARKER_FILE } from './marker';
import { baseEnv, spawnAsOsUser } from './os-user';

export interface PartsResult {
  /** Bytes of the parts' tars as backup.json records them: the data directory as restored. */
  bytes: number;
  /** Bytes read from the repository. */
  storedBytes: number;
}

/** How often the progress of file:// parts is read from their descriptors' offsets. */
const PROGRESS_POLL_MS = 500;

export async function extractParts(
  opts: ExtractOptions,
  layout: { dirs: StoredPart; files: StoredPart[] },
): Promise<PartsResult> {
  const all = [layout.dirs, ...layout.files];
  const total = all.reduce((n, p) => n + p.storedSize, 0);
  const parallel = Math.max(1, opts.parallel ?? defaultParallel());
  const progress = new Progress(total, opts.onDownload);
  const hashers: FileHasher[] = [];
  const idle: FileHasher[] = [];
  // One stop for every running part: the first failure (or the activity's
  // cancellation) ends the others, so no tar goes on writing after we report.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setInterval(() => void progress.poll(), PROGRESS_POLL_MS);
  const run = async (part: StoredPart) => {
    let hasher: FileHasher | undefined;
    try {
      if (opts.repo.openLocal) {
        hasher = idle.pop();
        if (!hasher) hashers.push((hasher = new FileHasher()));
      }
      await extractPart(opts, part, { progress, hasher, stop: stop.signal });
    } catch (err) {
      stop.abort();
      throw err;
    } finally {
      if (hasher) idle.push(hasher);
    }
  };
  try {
    // Part 0 alone: the directories exist before any file lands in them.
    await run(layout.dirs);
    const biggestFirst = [...layout.files].sort((a, b) => b.size - a.size);
    await inParallel(biggestFirst, parallel, run);
  } catch (err) {
    opts.signal?.throwIfAborted();
    throw err;
  } finally {
    clearInterval(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all(hashers.map((h) => h.close()));
  }
  opts.signal?.throwIfAborted();
  return { bytes: all.reduce((n, p) => n + p.size, 0), storedBytes: total };
}

/** Bytes read so far over all parts: finished ones, and the offsets of the running file:// ones. */
class Progress {
  private done = 0;
  private readonly running = new Map<string, { fd?: number; bytes: number }>();

  constructor(
    private readonly total: number,
    private readonly report: (bytes: number, total: number) => void,
  ) {}

  start(name: string, fd?: number): void {
    this.running.set(name, fd === undefined ? { bytes: 0 } : { fd, bytes: 0 });
  }

  add(name: string, n: number): void {
    const r = this.running.get(name);
    if (r) r.bytes += n;
    this.emit();
  }

  finish(name: string, storedSize: number): void {
    this.running.delete(name);
    this.done += storedSize;
    this.emit();
  }

  drop(name: string): void {
    this.running.delete(name);
  }

  /** The shared offset of a descriptor tar reads: Linux shows it in /proc/self/fdinfo. */
  async poll(): Promise<void> {
    let changed = false;
    for (const r of this.running.values()) {
      if (r.fd === undefined) continue;
      const text = await readFile(`/proc/self/fdinfo/${r.fd}`, 'utf8').catch(() => '');
      const pos = /^pos:\s*(\d+)/m.exec(text);
      if (pos && Number(pos[1]) !== r.bytes) {
        r.bytes = Number(pos[1]);
        changed = true;
      }
    }
    if (changed) this.emit();
  }

  private emit(): void {
    let bytes = this.done;
    for (const r of this.running.values()) bytes += r.bytes;
    this.report(Math.min(bytes, this.total), this.total);
  }
}

interface PartContext {
  progress: Progress;
  /** Present for file:// (openLocal): hashes the descriptor tar reads. */
  hasher: FileHasher | undefined;
  stop: AbortSignal;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function spawnTar(opts: ExtractOptions, stdin: number | 'pipe'): ChildProcess {
  // -b 2048: read zstd's output in 1 MiB records, not tar's default 10 KiB:
  // half tar's CPU on a big relation file (0.55 s of system time instead of
  // 1.05 s for 700 MB, measured), a hundred times fewer reads and writes.
  return spawnUntar(opts.pg, ['--zstd', '-b', '2048'], [stdin, 'ignore', 'pipe']);
}

/**
 * `tar -x <options>` of stdin into pg.dataDir, as the OS user, so every file
 * is theirs without a chown -R afterwards. The marker is never taken from the
 * archive: a backup of a promoted Lifeboat restore contains one, and it names
 * another recovery.
 */
export function spawnUntar(
  pg: ExtractOptions['pg'],
  options: string[],
  stdio: [number | 'pipe', 'ignore', 'pipe'],
): ChildProcess {
  return spawnAsOsUser(
    pg.osUser,
    'tar',
    [
      '-x',
      ...options,
      '-f',
      '-',
      '-C',
      pg.dataDir,
      '--no-same-owner',
      `--exclude=${MARKER_FILE}`,
      `--exclude=${MARKER_FILE}.*.tmp`,
    ],
    baseEnv(),
    stdio,
  );
}

function exitOf(child: ChildProcess): Promise<Exit> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  return new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: 127, signal: null, stderr: stderr + e.message }));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** SIGTERM: runuser passes it on to tar (a SIGKILL would leave tar running without it); tar's zstd then sees its reader gone. */
function killOnStop(child: ChildProcess, stop: AbortSignal): () => void {
  const kill = () => child.kill('SIGTERM');
  if (stop.aborted) kill();
  else stop.addEventListener('abort', kill, { once: true });
  return () => stop.removeEventListener('abort', kill);
}

async function extractPart(opts: ExtractOptions, part: StoredPart, ctx: PartContext): Promise<void> {
  const { repo, cluster, meta } = opts;
  const key = keys.backupFile(cluster, meta.backupId, part.name);
  const missing = () =>
    new LifeboatError(
      'BACKUP_NOT_FOUND',
      `${key} is missing from ${repo.url}, though backup.json of backup ${meta.backupId} lists it`,
      {
        hints: ['was it deleted by hand? restore another backup (lifeboat backups lists them)'],
      },
    );
  ctx.stop.throwIfAborted();
  let read: { sha256: string; bytes: number };
  let exit: Exit;
  if (repo.openLocal && ctx.hasher) {
    const local = await repo.openLocal(key);
    if (!local) throw missing();
    ({ read, exit } = await fromDescriptor(opts, part, local.handle, ctx.hasher, ctx));
  } else {
    const got = await repo.getStream(key);
    if (!got) throw missing();
    ({ read, exit } = await fromStream(opts, part, got.stream, ctx));
  }
  judge(opts, part, read, exit);
  ctx.progress.finish(part.name, part.storedSize);
}

async function fromDescriptor(
  opts: ExtractOptions,
  part: StoredPart,
  handle: FileHandle,
  hasher: FileHasher,
  ctx: PartContext,
): Promise<{ read: { sha256: string; bytes: number }; exit: Exit }> {
  try {
    ctx.progress.start(part.name, handle.fd);
    const tar = spawnTar(opts, handle.fd);
    const unhook = killOnStop(tar, ctx.stop);
    // The thread reads the whole part whatever tar does: a part that makes
    // zstd give up half-way still gets its checksum, and that names the cause.
    const [hashed, exit] = await Promise.allSettled([hasher.hash(handle.fd), exitOf(tar)]).finally(unhook);
    if (hashed.status === 'rejected') {
      const err = hashed.reason as Error;
      throw new LifeboatError(
        'REPOSITORY_UNREACHABLE',
        `could not read ${part.name} of backup ${opts.meta.backupId} in ${opts.repo.url}: ${err.message}`,
        {
          hints: [
            "is the repository's file system healthy and mounted on this host?",
            'a retry moves the partial copy aside and extracts again',
          ],
          cause: err,
        },
      );
    }
    return {
      read: hashed.value,
      exit: exit.status === 'fulfilled' ? exit.value : { code: 1, signal: null, stderr: '' },
    };
  } finally {
    ctx.progress.drop(part.name);
    await handle.close();
  }
}

async function fromStream(
  opts: ExtractOptions,
  part: StoredPart,
  source: Readable,
  ctx: PartContext,
): Promise<{ read: { sha256: string; bytes: number }; exit: Exit }> {
  ctx.progress.start(part.name);
  const tar = spawnTar(opts, 'pipe');
  const unhook = killOnStop(tar, ctx.stop);
  const exited = exitOf(tar);
  const stdin = tar.stdin!;
  let tarGone = false;
  stdin.on('error', () => (tarGone = true)); // EPIPE: tar stopped reading; judged by its exit
  void exited.then(() => (tarGone = true));
  const hash = createHash('sha256');
  let bytes = 0;
  const onStop = () => source.destroy(new Error('extraction stopped'));
  ctx.stop.addEventListener('abort', onStop, { once: true });
  if (ctx.stop.aborted) onStop();
  try {
    // Read to the end even when tar gave up: the checksum of the whole part
    // tells a damaged backup from a failing tar or disk.
    for await (const chunk of source as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      ctx.progress.add(part.name, chunk.length);
      if (!tarGone && !stdin.write(chunk)) await writable(stdin, exited);
    }
    stdin.end();
  } catch (err) {
    tar.kill('SIGTERM');
    await exited;
    ctx.stop.throwIfAborted();
    if (isLifeboatError(err)) throw err;
    throw new LifeboatError(
      'REPOSITORY_UNREACHABLE',
      `the download of ${part.name} of backup ${opts.meta.backupId} broke after ${bytes} of ${part.storedSize} bytes: ${errorMessage(err)}`,
      {
        hints: [
          `is ${opts.repo.url} reachable from this host?`,
          'a retry moves the partial copy aside and downloads again',
        ],
        cause: err,
      },
    );
  } finally {
    ctx.stop.removeEventListener('abort', onStop);
    unhook();
    ctx.progress.drop(part.name);
  }
  return { read: { sha256: hash.digest('hex'), bytes }, exit: await exited };
}

/** Resolves when `stdin` can take more, or tar is gone. */
function writable(stdin: NodeJS.WritableStream, exited: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stdin.removeListener('drain', done);
      stdin.removeListener('error', done);
      resolve();
    };
    stdin.once('drain', done);
    stdin.once('error', done);
    void exited.then(done);
  });
}

export function verifyHints(dataDir: string): string[] {
  return [
    `the restored copy in ${dataDir} is kept as it is for inspection; a retry moves it aside and restores again`,
    'if it fails again, the stored backup is damaged: recover from another backup (lifeboat backups lists them)',
  ];
}

/** The part's checksum first (a damaged part also makes zstd and tar fail), then tar's exit. */
function judge(opts: ExtractOptions, part: StoredPart, read: { sha256: string; bytes: number }, exit: Exit): void {
  const { pg, meta } = opts;
  const where = `${part.name} of backup ${meta.backupId}`;
  opts.signal?.throwIfAborted();
  if (read.sha256 !== part.storedSha256 || read.bytes !== part.storedSize) {
    throw new LifeboatError(
      'BACKUP_VERIFY_FAILED',
      `${where} does not match backup.json: sha256 of the stored bytes is ${read.sha256} (${read.bytes} bytes), backup.json says ${part.storedSha256} (${part.storedSize} bytes)`,
      { hints: verifyHints(pg.dataDir) },
    );
  }
  if (exit.code === 0) return;
  const last = exit.stderr.trim().split('\n').slice(-4).join('\n  ');
  if (exit.code === 127) {
    throw new LifeboatError('TOOL_FAILED', `could not run tar on this host: ${last}`, {
      hints: ['install GNU tar and zstd on the restore host (scripts/setup.sh installs zstd)'],
    });
  }
  if (/No space left on device/i.test(exit.stderr)) {
    // restore.ts turns this into the full DISK_FULL (free bytes, kept copies, what to do).
    throw new LifeboatError('DISK_FULL', `tar ran out of space extracting ${where} into ${pg.dataDir}: ${last}`, {
      details: { path: pg.dataDir, neededBytes: meta.sizeBytes },
    });
  }
  throw new LifeboatError(
    'TOOL_FAILED',
    `tar could not extract ${where} into ${pg.dataDir} as ${pg.osUser} (${exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`}): ${last}`,
    {
      hints: [
        `is there room for ${meta.sizeBytes} bytes on the file system of ${pg.dataDir}?`,
        `can ${pg.osUser} write there?`,
        'is zstd installed on this host? (tar --zstd runs it; scripts/setup.sh installs it)',
      ],
    },
  );
}
