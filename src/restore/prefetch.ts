// The WAL prefetcher of a restored copy, started by replay-wal before the
// postmaster: `lifeboat archive-prefetch <first> --follow --starting`
// (src/wal/spool.ts Spool.follow) as the OS user, so that the first segments
// PostgreSQL asks for, and its history probes, are already in the spool and
// bin/lifeboat serves them without Node (issue 13: the first 3 to 4 went
// through Node at 100 to 300 ms each when the first archive-get call started
// the prefetcher).
//
// As the OS user because bin/lifeboat trusts only a spool owned by the user
// it runs as (restore_command runs as cluster.osUser), mode 0700. It leaves
// by itself: when replay has taken nothing for 30 s (paused at the target, or
// over), when promotion removes the spool, or when another follower holds
// the spool. It keeps at most --count segments ahead, so the disk holds at
// most that many more (16 MiB each) than replay would anyway.
import { spawn } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as path from 'node:path';
import { encryptionArgs, restoreEncryption } from '../repository/keys';
import { fallbackRepoArgs } from '../repository/multi';
import type { Runbook } from '../runbook/schema';
import { clusterName } from '../runbook/schema';
import { cliMain } from '../tools';
import { FOLLOWER_PID } from '../wal/spool';
import { segmentName, segnoOfLsn } from '../wal/names';
import { isAlive } from '../wal/pid';
import type { RestoreMarker } from './marker';
import { asUserArgv } from './os-user';
import { postmasterEnvWithCredentials } from './secret-file';
import type { PgHost } from './postmaster';

/** archive-get's prefetch spool (src/wal/spool.ts): ours, and useless once recovery is over. */
export const PREFETCH_SPOOL = path.join('pg_wal', '.lifeboat-prefetch');
/** Segments kept ahead of replay: archive-get's own --prefetch default. */
const PREFETCH_COUNT = 8;

/**
 * The segment replay will ask for first: the backup_label's start segment
 * while the label is there (a copy that never ran), else none is known
 * without reading the control file, and archive-get's first call starts the
 * follower as before.
 */
export async function firstSegment(dataDir: string, backup: RestoreMarker['backup']): Promise<string | undefined> {
  const label = await readFile(path.join(dataDir, 'backup_label'), 'utf8').catch(() => undefined);
  if (label === undefined) return undefined;
  const named = /^START WAL LOCATION: [0-9A-F]+\/[0-9A-F]+ \(file ([0-9A-F]{24})\)/m.exec(label)?.[1];
  return (
    named ?? segmentName(backup.timeline, segnoOfLsn(backup.startLsn, backup.walSegmentSize), backup.walSegmentSize)
  );
}

/**
 * Starts the follower detached, as the OS user, with the postmaster's
 * environment (the repository's credentials and endpoint, nothing else).
 * Never fails the replay: prefetching only saves time.
 */
export async function startPrefetcher(
  runbook: Runbook,
  pg: PgHost,
  backup: RestoreMarker['backup'],
): Promise<string | undefined> {
  try {
    const first = await firstSegment(pg.dataDir, backup);
    if (!first) return undefined;
    // The same target restore_command names (replay.ts): --repo and --cluster.
    const args = [
      cliMain(),
      'archive-prefetch',
      first,
      '--follow',
      '--starting',
      '--count',
      String(PREFETCH_COUNT),
      '--spool-dir',
      path.join(pg.dataDir, PREFETCH_SPOOL),
      '--repo',
      runbook.repository.url,
      '--cluster',
      clusterName(runbook),
      // Key names only: their values come with the postmaster's environment (or credentials file).
      ...encryptionArgs(restoreEncryption(runbook.repositories)),
      // The runbook's other repositories, as restore_command names them: a
      // segment the first lacks or holds damaged comes from the next (each
      // opened with its own settings from the credentials file).
      ...fallbackRepoArgs(runbook),
    ];
    const [cmd, argv] = asUserArgv(pg.osUser, process.execPath, args);
    // The restore identity's credentials file, written here too (replay-wal
    // writes the same before starting the postmaster): the follower exits at
    // once when the file it is pointed at is missing.
    const env = await postmasterEnvWithCredentials(runbook, pg, 'restore');
    const child = spawn(cmd, argv, { env, cwd: pg.dataDir, detached: true, stdio: 'ignore' });
    let exited = false;
    child.on('error', () => (exited = true));
    child.on('exit', () => (exited = true));
    child.unref();
    await firstSpooled(path.join(pg.dataDir, PREFETCH_SPOOL, first), () => exited);
    return first;
  } catch {
    return undefined;
  }
}

/** How long the postmaster's start waits for the prefetcher's first segment at most. */
const READY_WAIT_MS = 5000;

/**
 * Waits until the first segment is in the spool (its checksum file, written
 * last, is there): the follower walks the history files first, so
 * PostgreSQL's first requests, the history probe and that segment, are then
 * answered by sh. Stops early when the follower exits (another one holds the
 * spool, or it failed), when the spool cannot be looked into (a worker that is
 * not the OS user nor root), and after READY_WAIT_MS: the segment would
 * otherwise go through Node, which takes as long, so the wait costs nothing.
 */
async function firstSpooled(segment: string, exited: () => boolean): Promise<void> {
  const until = Date.now() + READY_WAIT_MS;
  while (Date.now() < until && !exited()) {
    try {
      await access(`${segment}.sha256`);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return;
    }
    await sleep(20);
  }
}

/**
 * Ends the copy's follower (by the pid in its spool) before the spool is
 * removed: one that is writing a segment at that moment would make the
 * removal fail (ENOTEMPTY). Waits at most a second for it to go.
 */
export async function stopPrefetcher(dataDir: string): Promise<void> {
  const pid = Number((await readFile(path.join(dataDir, PREFETCH_SPOOL, FOLLOWER_PID), 'utf8').catch(() => '')).trim());
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(20);
}
