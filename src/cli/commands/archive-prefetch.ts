// `lifeboat archive-prefetch <first> --count n --spool-dir d`: internal. Started
// detached by archive-get, or by replay-wal before the postmaster
// (--follow --starting, src/restore/prefetch.ts), as the OS user that owns
// the spool, to download the next segments of the timeline into the spool
// while PostgreSQL replays. Nobody reads its output; a
// failure here only means archive-get downloads those segments itself.
import * as path from 'node:path';
import { checkWalFileName } from '../../wal/push';
import { archiveTargetId } from '../../wal/marker';
import { existsSync } from 'node:fs';
import { Spool, type WalReader } from '../../wal/spool';
import { nextSegmentName, parseSegmentName } from '../../wal/names';
import { resolveRepoTarget, intOption } from '../context';
import { EXIT } from '../run';

export interface ArchivePrefetchOptions {
  file: string;
  spoolDir: string;
  count?: string;
  repo?: string;
  cluster?: string;
  runbook?: string;
  runbooksDir?: string;
  /** bin/lifeboat's spool hit: `file` was just served; fetch what follows it, if the spool runs low. */
  after?: boolean;
  /** Stay and keep the spool filled while replay takes from it (Spool.follow); implies --after. */
  follow?: boolean;
  /**
   * With --follow: `file` itself is the first to fetch. replay-wal starts the
   * follower so, from the backup's start segment, before the postmaster asks.
   */
  starting?: boolean;
  /** restore_command's --fallback-repo (repeated): a file the first repository lacks or holds damaged is fetched from these, in order. */
  fallbackRepo?: string[];
  encryptionKey?: string[];
  readUnencrypted?: boolean;
}

export async function run(opts: ArchivePrefetchOptions): Promise<number> {
  checkWalFileName(opts.file);
  const count = intOption(opts.count ?? '8', '--count');
  const fallback = opts.fallbackRepo?.length ? await fallbackReaderFor(opts) : undefined;
  try {
    return await prefetch(opts, count, new Spool(path.resolve(opts.spoolDir), archiveTargetId(opts), fallback?.read));
  } finally {
    fallback?.close();
  }
}

/** With --fallback-repo: each repository opened with its own settings (multi.ts openFallbackRepository), as archive-get does. */
async function fallbackReaderFor(opts: ArchivePrefetchOptions): Promise<{ read: WalReader; close: () => void }> {
  const { fallbackReader } = await import('../../wal/get-fallback');
  const { openFallbackRepository, parseFallbackRepo } = await import('../../repository/multi');
  const { encryptionFromArgs } = await import('../../repository/keys');
  const encryption = encryptionFromArgs(opts.encryptionKey, opts.readUnencrypted);
  const specs = new Map((opts.fallbackRepo ?? []).map((spec) => [parseFallbackRepo(spec).url, spec]));
  // Started by replay-wal or archive-get, the working directory is the data directory: the record goes there.
  const dataDir = existsSync('PG_VERSION') ? process.cwd() : undefined;
  return fallbackReader([...specs.keys()], (url) => openFallbackRepository(specs.get(url) ?? url, encryption), dataDir);
}

async function prefetch(opts: ArchivePrefetchOptions, count: number, spool: Spool): Promise<number> {
  if (opts.follow) {
    if (await spool.followerAlive()) return EXIT.ok;
    const { repo, cluster } = await resolveRepoTarget(opts, 'restore');
    try {
      await spool.follow(repo, cluster, opts.file, count, { starting: opts.starting === true });
      return EXIT.ok;
    } finally {
      (repo as { destroy?: () => void }).destroy?.();
    }
  }
  if (opts.after && (await spool.readyAhead(opts.file, count)) >= Math.ceil(count / 2)) return EXIT.ok;
  const first = opts.after ? nextSegmentName(opts.file) : opts.file;
  const { repo, cluster } = await resolveRepoTarget(opts, 'restore');
  try {
    await spool.prefetch(repo, cluster, first, count);
    await spool.histories(repo, cluster, parseSegmentName(first).timeline);
    return EXIT.ok;
  } finally {
    (repo as { destroy?: () => void }).destroy?.();
  }
}
