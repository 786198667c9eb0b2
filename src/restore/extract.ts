// Fetching a base backup out of the repository into a data directory.
// Nothing is staged on disk: a restore host needs room for the data
// directory, not for a second copy of it.
//   version 2 (parts): extract-parts.ts, in parallel, each part's stored
//     bytes checked against backup.json as they are read; then
//     pg_verifybackup -s -n (which files, which sizes) against the manifest.
//   version 1 (one base.tar.zst, backups taken before parts), here:
//     repository stream -> zstd -d -> sha256 -> tar -x (as the OS user),
//     the sha256 of the tar against backup.json, then pg_verifybackup with
//     checksums against the manifest.
// The manifest itself is checked against backup.json's manifestSha256.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BASE_ARCHIVE, MANIFEST } from '../backup/base-backup';
import { baseLayout, type BackupMeta } from '../catalog/backup-meta';
import { readCatalog } from '../catalog/catalog';
import { LifeboatError, errorMessage, isLifeboatError } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { keptEntries } from './data-dir';
import { extractParts, spawnUntar, verifyHints } from './extract-parts';
import { MARKER_FILE } from './marker';
import { processAlive } from './process-alive';
import { baseEnv, chownToUser, runAsOsUser } from './os-user';
import type { PgHost } from './postmaster';

/** The complete backup `backupId` of the cluster, or BACKUP_NOT_FOUND saying which ones there are. */
export async function findBackup(
  repo: Repository,
  cluster: string,
  backupId: string,
  runbookName: string,
): Promise<BackupMeta> {
  const entries = await readCatalog(repo, cluster);
  const entry = entries.find((e) => e.backupId === backupId);
  if (entry?.status === 'complete') return entry.meta;
  const complete = entries.filter((e) => e.status === 'complete').map((e) => e.backupId);
  const available =
    complete.length > 0
      ? `complete backups there: ${complete.slice(-5).join(', ')}`
      : 'the repository holds no complete backup of this cluster';
  throw new LifeboatError(
    'BACKUP_NOT_FOUND',
    entry
      ? `backup ${backupId} of cluster ${cluster} in ${repo.url} is incomplete: ${entry.problem}`
      : `backup ${backupId} of cluster ${cluster} is not in ${repo.url}`,
    {
      hints: [
        available,
        `list them with: lifeboat backups --runbook ${runbookName}`,
        'start the recovery again with one of them (or without backupId, so preflight chooses)',
      ],
      details: { backupId, cluster },
    },
  );
}

export interface ExtractResult {
  /** Bytes of the tar, i.e. of the data directory as restored. */
  bytes: number;
  /** Bytes read from the repository. */
  storedBytes: number;
  /** Files listed in the backup's manifest. */
  files: number;
}

export interface ExtractOptions {
  repo: Repository;
  cluster: string;
  meta: BackupMeta;
  pg: PgHost;
  /** Bytes read from the repository so far, and how many there are. */
  onDownload: (bytes: number, total: number) => void;
  onVerify: () => void;
  signal?: AbortSignal;
  /** Parts extracted at once (version 2 backups); default one per core, at least 2 (parts.ts defaultParallel). */
  parallel?: number;
}

export async function extractBaseBackup(opts: ExtractOptions): Promise<ExtractResult> {
  const { repo, cluster, meta, pg } = opts;
  const layout = baseLayout(meta);
  if ('problem' in layout) {
    throw new LifeboatError(
      'BACKUP_VERIFY_FAILED',
      `backup.json of backup ${meta.backupId} does not say where its data directory is: ${layout.problem}`,
      {
        hints: ["this backup was not written by Lifeboat's baseBackup; restore another one"],
      },
    );
  }
  if (layout.kind === 'parts') {
    // The manifest first: a backup whose manifest is gone or altered is refused before any byte lands.
    const manifest = await readManifest(opts);
    const parts = await extractParts(opts, layout);
    opts.onVerify();
    await verifyAgainstManifest(opts, manifest.body, { checksums: false });
    return { bytes: parts.bytes, storedBytes: parts.storedBytes, files: manifest.files };
  }
  const entry = layout.archive;
  const key = keys.backupFile(cluster, meta.backupId, BASE_ARCHIVE);
  const got = await repo.getStream(key);
  if (!got)
    throw listedButMissing(opts, key, 'was it deleted by hand? restore another backup (lifeboat backups lists them)');
  const tar = await untar(got.stream, entry.storedSize, opts);
  if (tar.sha256 !== entry.sha256) {
    throw new LifeboatError(
      'BACKUP_VERIFY_FAILED',
      `${BASE_ARCHIVE} of backup ${meta.backupId} does not match backup.json: sha256 of the content is ${tar.sha256} (${tar.bytes} bytes), backup.json says ${entry.sha256} (${entry.size} bytes)`,
      { hints: verifyHints(pg.dataDir) },
    );
  }
  opts.onVerify();
  const manifest = await readManifest(opts);
  await verifyAgainstManifest(opts, manifest.body, { checksums: true });
  return { bytes: tar.bytes, storedBytes: tar.storedBytes, files: manifest.files };
}

function exitOf(
  child: ChildProcess,
  stderr: { text: string },
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  child.stderr?.on('data', (d: Buffer) => (stderr.text = (stderr.text + d.toString()).slice(-4096)));
  return new Promise((resolve) => {
    child.on('error', (e) => {
      stderr.text += e.message;
      resolve({ code: 127, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
}

async function untar(
  source: Readable,
  total: number,
  opts: ExtractOptions,
): Promise<{ sha256: string; bytes: number; storedBytes: number }> {
  const { pg, meta } = opts;
  const zstd = spawn('zstd', ['-d', '-q', '-c'], { env: baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const tar = spawnUntar(pg, [], ['pipe', 'ignore', 'pipe']);
  let storedBytes = 0;
  let bytes = 0;
  const hash = createHash('sha256');
  // Which stream failed first tells a broken download (retryable) from a
  // decompressor or tar that stopped reading: pipeline() then destroys the
  // source with that error too.
  let first = undefined as { where: 'source' | 'other'; err: Error } | undefined;
  source.on('error', (err) => (first ??= { where: 'source', err }));
  for (const s of [zstd.stdin, zstd.stdout, tar.stdin]) s?.on('error', (err) => (first ??= { where: 'other', err }));
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      storedBytes += chunk.length;
      opts.onDownload(storedBytes, total);
      cb(null, chunk);
    },
  });
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const zstdErr = { text: '' };
  const tarErr = { text: '' };
  const signal = opts.signal;
  const onAbort = () => {
    zstd.kill('SIGKILL');
    tar.kill('SIGKILL');
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const [, , zx, tx] = await Promise.allSettled([
    pipeline(source, counter, zstd.stdin),
    pipeline(zstd.stdout, hasher, tar.stdin!),
    exitOf(zstd, zstdErr),
    exitOf(tar, tarErr),
  ]);
  signal?.removeEventListener('abort', onAbort);
  signal?.throwIfAborted();
  const where = `${BASE_ARCHIVE} of backup ${meta.backupId}`;
  if (first?.where === 'source') {
    const e = first.err;
    if (isLifeboatError(e)) throw e;
    throw new LifeboatError(
      'REPOSITORY_UNREACHABLE',
      `the download of ${where} broke after ${storedBytes} of ${total} bytes: ${errorMessage(e)}`,
      {
        hints: [
          `is ${opts.repo.url} reachable from this host?`,
          'a retry moves the partial copy aside and downloads again',
        ],
        cause: e,
      },
    );
  }
  const z = zx.status === 'fulfilled' ? zx.value : { code: 1, signal: null };
  const t = tx.status === 'fulfilled' ? tx.value : { code: 1, signal: null };
  if (z.code === 127 || t.code === 127) {
    const tool = z.code === 127 ? 'zstd' : 'tar';
    throw new LifeboatError(
      'TOOL_FAILED',
      `could not run ${tool} on this host: ${(z.code === 127 ? zstdErr : tarErr).text.trim()}`,
      {
        hints: [`install ${tool} on the restore host (scripts/setup.sh installs zstd); GNU tar is needed`],
      },
    );
  }
  // zstd killed by SIGPIPE, or reporting a write error, means tar stopped reading first.
  const zstdBroken = z.code !== 0 && z.signal === null && !/write error|broken pipe/i.test(zstdErr.text);
  if (zstdBroken) {
    throw new LifeboatError(
      'BACKUP_VERIFY_FAILED',
      `${where} cannot be decompressed (zstd exit ${z.code}): ${zstdErr.text.trim() || 'no message'}`,
      {
        hints: [
          ...verifyHints(pg.dataDir),
          'is the zstd package installed on this host? (scripts/setup.sh installs it)',
        ],
      },
    );
  }
  if (t.code !== 0 && /No space left on device/i.test(tarErr.text)) {
    // restore.ts turns this into the full DISK_FULL (free bytes, kept copies, what to do).
    throw new LifeboatError(
      'DISK_FULL',
      `tar ran out of space extracting ${where} into ${pg.dataDir} after ${bytes} of ${meta.sizeBytes} bytes: ${tarErr.text.trim().split('\n').slice(-2).join('\n  ')}`,
      {
        details: { path: pg.dataDir, neededBytes: meta.sizeBytes },
      },
    );
  }
  if (t.code !== 0) {
    throw new LifeboatError(
      'TOOL_FAILED',
      `tar could not extract ${where} into ${pg.dataDir} as ${pg.osUser} (${t.signal ? `signal ${t.signal}` : `exit ${t.code}`}): ${tarErr.text.trim().split('\n').slice(-4).join('\n  ')}`,
      {
        hints: [
          `is there room for ${meta.sizeBytes} bytes on the file system of ${pg.dataDir}?`,
          `can ${pg.osUser} write there?`,
        ],
      },
    );
  }
  return { sha256: hash.digest('hex'), bytes, storedBytes };
}

/** A file backup.json lists that the repository does not have. */
function listedButMissing(opts: ExtractOptions, key: string, hint: string): LifeboatError {
  return new LifeboatError(
    'BACKUP_NOT_FOUND',
    `${key} is missing from ${opts.repo.url}, though backup.json of backup ${opts.meta.backupId} lists it`,
    { hints: [hint] },
  );
}

/** The stored manifest, checked against backup.json, and how many files it lists. */
async function readManifest(opts: ExtractOptions): Promise<{ body: Buffer; files: number }> {
  const { repo, cluster, meta, pg } = opts;
  const key = keys.backupFile(cluster, meta.backupId, MANIFEST);
  const got = await repo.get(key);
  if (!got)
    throw listedButMissing(
      opts,
      key,
      'without its manifest the restored copy cannot be checked; restore another backup',
    );
  const sha = createHash('sha256').update(got.body).digest('hex');
  if (sha !== meta.manifestSha256) {
    throw new LifeboatError(
      'BACKUP_VERIFY_FAILED',
      `${MANIFEST} of backup ${meta.backupId} has sha256 ${sha}, backup.json says ${meta.manifestSha256}`,
      {
        hints: verifyHints(pg.dataDir),
      },
    );
  }
  let files = 0;
  try {
    files = ((JSON.parse(got.body.toString('utf8')) as { Files?: unknown[] }).Files ?? []).length;
  } catch {
    // pg_verifybackup says what is wrong with it.
  }
  return { body: got.body, files };
}

/**
 * pg_verifybackup -n against the stored manifest: with `checksums`, every
 * file re-read and its checksum recomputed; without (-s), the files present
 * with their sizes and nothing else (extract-parts.ts says why that is enough).
 */
async function verifyAgainstManifest(opts: ExtractOptions, body: Buffer, how: { checksums: boolean }): Promise<void> {
  const { meta, pg } = opts;
  // A directory of our own beside nothing else, for the OS user to read. Its
  // name carries our pid: one left by a killed worker is provably nobody's
  // and the next restore removes it (sweepDeadManifestDirs).
  const tmp = await mkdtemp(path.join(os.tmpdir(), `${MANIFEST_DIR_PREFIX}${process.pid}-`));
  try {
    const manifest = path.join(tmp, MANIFEST);
    await writeFile(manifest, body, { mode: 0o600 });
    await chownToUser(manifest, pg.osUser);
    await chownToUser(tmp, pg.osUser);
    // -n: the WAL is checked by replay itself; -i: the marker is ours, not the
    // backup's, and so is what was moved aside inside a mount point (and its lost+found).
    const ignore = [MARKER_FILE, ...(await keptEntries(pg.dataDir))].flatMap((e) => ['-i', e]);
    const r = await runAsOsUser(pg.osUser, `${pg.pgBin}/pg_verifybackup`, [
      '-n',
      ...(how.checksums ? [] : ['-s']),
      '-q',
      '-m',
      manifest,
      ...ignore,
      pg.dataDir,
    ]);
    if (r.code !== 0) {
      const lines = (r.stderr || r.stdout)
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .slice(-8);
      throw new LifeboatError(
        'BACKUP_VERIFY_FAILED',
        `pg_verifybackup found that ${pg.dataDir} does not match the manifest of backup ${meta.backupId} (exit ${r.code}):\n  ${lines.join('\n  ')}`,
        { hints: verifyHints(pg.dataDir) },
      );
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

const MANIFEST_DIR_PREFIX = 'lifeboat-manifest-';

/**
 * Removes `lifeboat-manifest-<pid>-*` directories in the temporary directory
 * whose process is gone (a worker killed during pg_verifybackup). Each holds
 * only a copy of a manifest from the repository. Names without a pid (made
 * before pids were in them) prove no owner and are left alone.
 */
export async function sweepDeadManifestDirs(dir = os.tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await readdir(dir).catch(() => [] as string[])) {
    const m = new RegExp(`^${MANIFEST_DIR_PREFIX}(\\d+)-[A-Za-z0-9]{6}$`).exec(e);
    if (!m || (await processAlive(Number(m[1])))) continue;
    await rm(path.join(dir, e), { recursive: true, force: true }).then(
      () => removed.push(path.join(dir, e)),
      () => undefined,
    );
  }
  return removed;
}
