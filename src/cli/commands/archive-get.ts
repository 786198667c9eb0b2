// `lifeboat archive-get %f %p`: PostgreSQL's restore_command (shared/DESIGN.md §6).
//
// Exit codes are how PostgreSQL decides what recovery does next:
//   0    the file is at %p, verified.
//   1    the archive does not have it: PostgreSQL takes this as the end of
//        the archive (or of the timeline) and ends recovery or promotes.
//   255  anything else. PostgreSQL treats an exit status above 125 (like a
//        shell's "command not found" or a signal) as fatal and aborts
//        recovery instead of ending it. A corrupt segment or an unreachable
//        repository must stop recovery loudly: answering 1 would make
//        PostgreSQL promote at the last good segment and silently lose
//        every transaction after it. Run in a data directory (as PostgreSQL
//        runs it), it also records why there (src/wal/get-failure.ts), so
//        replay-wal can tell a corrupt segment (WAL_CHECKSUM_MISMATCH) from
//        an unreachable repository; exit 1 records nothing.
// Nothing is written at %p unless it is complete and verified.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import * as path from 'node:path';
import { errorMessage } from '../../errors';
import { fetchWalFileWithRetry, writeFileAtomic, type Fetched } from '../../wal/get';
import { Spool } from '../../wal/spool';
import type { Repository } from '../../repository/types';
import { recordRestoreFailure } from '../../wal/get-failure';
import { isHistoryName, isSegmentName } from '../../wal/names';
import { checkWalFileName } from '../../wal/push';
import { archiveTargetId } from '../../wal/marker';

export const EXIT_FATAL = 255;
const EXIT_ABSENT = 1;

export interface ArchiveGetOptions {
  file: string;
  path: string;
  prefetch?: string;
  spoolDir?: string;
  repo?: string;
  cluster?: string;
  runbook?: string;
  runbooksDir?: string;
  encryptionKey?: string[];
  /** --fallback-repo <url> (repeated): the runbook's other repositories, asked in order when --repo cannot serve a file. */
  fallbackRepo?: string[];
  readUnencrypted?: boolean;
}

export async function run(opts: ArchiveGetOptions): Promise<number> {
  try {
    const code = await restore(opts);
    await trace(opts.file, code === 0 ? 'restored' : 'absent');
    return code;
  } catch (err) {
    await trace(opts.file, 'failed');
    // Run by PostgreSQL, the working directory is the data directory: leave
    // replay-wal the reason in a form it can read (src/wal/get-failure.ts).
    if (existsSync('PG_VERSION')) await recordRestoreFailure(process.cwd(), opts.file, err);
    process.stderr.write(
      `lifeboat archive-get: FATAL: cannot restore ${opts.file}: ${errorMessage(err)}\n` +
        'HINT: recovery is aborted on purpose rather than ended early at this file; fix the cause and start PostgreSQL again to resume\n',
    );
    return EXIT_FATAL;
  }
}

async function restore(opts: ArchiveGetOptions): Promise<number> {
  const walFile = opts.file;
  checkWalFileName(walFile);
  // %p is relative to the data directory, PostgreSQL's working directory.
  const dest = path.resolve(opts.path);
  const prefetch = nonNegativeInt(opts.prefetch ?? '8', '--prefetch');
  const spoolDir = path.resolve(opts.spoolDir ?? defaultSpoolDir(dest));
  const spool = new Spool(spoolDir, archiveTargetId(opts));
  const segment = isSegmentName(walFile);

  // A spool hit needs neither the repository nor the runbook. The follower
  // spools history files too (src/wal/spool-history.ts); bin/lifeboat
  // serves them, and answers the first missing one, before Node is started.
  if ((segment || isHistoryName(walFile)) && (await spool.take(walFile, dest))) {
    if (segment) await startPrefetch(opts, spool, walFile, prefetch);
    return 0;
  }
  const { resolveRepoTarget } = await import('../context');
  const { repo, cluster } = await resolveRepoTarget(opts, 'restore');
  try {
    const got = opts.fallbackRepo?.length
      ? await fromRepositories(opts, repo, cluster, walFile)
      : await fetchWalFileWithRetry(repo, cluster, walFile);
    if (!got) {
      process.stderr.write(`lifeboat archive-get: ${walFile} is not in the archive ${repo.url} (cluster ${cluster})\n`);
      return EXIT_ABSENT;
    }
    await writeFileAtomic(dest, got.content);
  } finally {
    (repo as { destroy?: () => void }).destroy?.();
  }
  if (segment) await startPrefetch(opts, spool, walFile, prefetch);
  return 0;
}

/** The file from --repo, else from the first --fallback-repo that has it intact; which one served is recorded (get-fallback.ts). */
async function fromRepositories(
  opts: ArchiveGetOptions,
  first: Repository,
  cluster: string,
  walFile: string,
): Promise<Fetched | undefined> {
  const { fetchFromRepositories, recordWalSource } = await import('../../wal/get-fallback');
  const { openFallbackRepository, parseFallbackRepo } = await import('../../repository/multi');
  const { encryptionFromArgs } = await import('../../repository/keys');
  const encryption = encryptionFromArgs(opts.encryptionKey, opts.readUnencrypted);
  // Each opened with its own settings from the copy's credentials file (multi.ts).
  const specs = new Map((opts.fallbackRepo ?? []).map((spec) => [parseFallbackRepo(spec).url, spec]));
  const open = (url: string) => openFallbackRepository(specs.get(url) ?? url, encryption);
  const got = await fetchFromRepositories(first, [...specs.keys()], open, cluster, walFile);
  if (got && got.source.servedBy !== first.url) {
    process.stderr.write(
      `lifeboat archive-get: ${walFile} served by ${got.source.servedBy}: ${got.source.skipped.map((s) => `${s.url}: ${s.reason}`).join('; ')}\n`,
    );
    if (existsSync('PG_VERSION')) await recordWalSource(process.cwd(), got.source);
  }
  return got?.fetched;
}

/** bin/lifeboat's LIFEBOAT_ARCHIVE_GET_LOG: one line per call saying who answered it, here Node. */
async function trace(walFile: string, outcome: string): Promise<void> {
  const file = process.env.LIFEBOAT_ARCHIVE_GET_LOG;
  if (file) await appendFile(file, `${walFile} node ${outcome}\n`).catch(() => undefined);
}

/** pg_wal/.lifeboat-prefetch in the data directory; beside %p when run elsewhere. */
function defaultSpoolDir(dest: string): string {
  if (existsSync('PG_VERSION')) return path.resolve('pg_wal', '.lifeboat-prefetch');
  return path.join(path.dirname(dest), '.lifeboat-prefetch');
}

/**
 * Starts a detached follower that keeps the segments after `walFile`
 * spooled, unless one is alive: each start costs a Node process (and for
 * s3:// the AWS SDK) on a machine busy replaying.
 */
async function startPrefetch(opts: ArchiveGetOptions, spool: Spool, walFile: string, count: number): Promise<void> {
  if (count === 0) return;
  try {
    // One follower per spool keeps it filled for the whole replay (Spool.follow).
    if (await spool.followerAlive()) return;
    const script = process.argv[1];
    if (!script) return;
    const args = [script, 'archive-prefetch', walFile, '--follow', '--count', String(count), '--spool-dir', spool.dir];
    for (const [flag, value] of [
      ['--repo', opts.repo],
      ['--cluster', opts.cluster],
      ['--runbook', opts.runbook],
      ['--runbooks-dir', opts.runbooksDir],
    ] as const) {
      if (value) args.push(flag, value);
    }
    // Key names only: the follower inherits this process's environment.
    for (const spec of opts.encryptionKey ?? []) args.push('--encryption-key', spec);
    if (opts.readUnencrypted) args.push('--read-unencrypted');
    // The follower falls back to the same repositories (src/wal/get-fallback.ts).
    for (const spec of opts.fallbackRepo ?? []) args.push('--fallback-repo', spec);
    spawn(process.execPath, args, { detached: true, stdio: 'ignore' }).unref();
  } catch {
    // Prefetching only saves time; the file PostgreSQL asked for is in place.
  }
}

function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${flag}: expected an integer of at least 0, got ${JSON.stringify(value)}`);
  return n;
}
