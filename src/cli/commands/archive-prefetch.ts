// `lifeboat archive-prefetch <first> --count n --spool-dir d`: internal. Started
// detached by archive-get, or by replay-wal before the postmaster
// (--follow --starting, src/restore/prefetch.ts), as the OS user that owns
// the spool, to download the next segments of the timeline into the spool
// while PostgreSQL replays. Nobody reads its output; a
// failure here only means archive-get downloads those segments itself.
import * as path from 'node:path';
import { checkWalFileName } from '../../wal/push';
import { archiveTargetId } from '../../wal/marker';
import { Spool } from '../../wal/get';
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
}

export async function run(opts: ArchivePrefetchOptions): Promise<number> {
  checkWalFileName(opts.file);
  const count = intOption(opts.count ?? '8', '--count');
  const spool = new Spool(path.resolve(opts.spoolDir), archiveTargetId(opts));
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
