// The read-ahead pusher: one detached process per pg_wal that archives the
// files PostgreSQL has marked ready before PostgreSQL asks for them, a few
// at a time, and leaves a marker for each (src/wal/marker.ts).
//
// PostgreSQL calls archive_command for one file at a time and waits for each.
// With the pusher running beside it, those calls find their file already
// archived and cost a marker check; compression and uploads overlap instead
// of queueing behind one another. The pusher exits after a few idle seconds,
// and a later archive-push starts a new one when files pile up again.
//
// Claims (<name>.claim, holding the pusher's pid) say "being pushed now": a
// call for a claimed file waits for its marker instead of pushing it twice.
// Two pushes of one file would still be safe (archive-push is idempotent);
// claims only save the work.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../errors';
import { cliMain } from '../tools';
import type { Repository } from '../repository/types';
import { fileIdentity, markerDir, markerText, writeMarker } from './marker';
import { walFileKind } from './names';
import { pushWalFile } from './push';
import { TimelineWatch } from './superseded';
import { isAlive } from './pid';

const IDLE_EXIT_MS = 3000;
const POLL_MS = 50;

/**
 * One pusher per pg_wal and archive target: after archive_command changes,
 * a pusher still finishing for the old target must not stand in for the new.
 */
export function pusherPidFile(pgWalDir: string, target: string): string {
  return path.join(
    markerDir(pgWalDir),
    `.pusher-${createHash('sha256').update(target).digest('hex').slice(0, 12)}.pid`,
  );
}

function readPid(file: string): number | undefined {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Files PostgreSQL has marked ready, history files first, then oldest first (its own order). */
export function readyFiles(pgWalDir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(pgWalDir, 'archive_status'));
  } catch {
    return [];
  }
  const rank = (n: string) => (walFileKind(n) === 'history' ? 0 : 1);
  return names
    .filter((n) => n.endsWith('.ready'))
    .map((n) => n.slice(0, -'.ready'.length))
    .filter((n) => walFileKind(n) !== 'other')
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
}

/** Starts the pusher for this pg_wal unless one is running. `argv` names the archive target as archive_command does. */
export function ensurePusher(pgWalDir: string, target: string, argv: string[]): void {
  const pid = readPid(pusherPidFile(pgWalDir, target));
  if (pid !== undefined && isAlive(pid)) return;
  // Only worth a process when something besides the file being pushed now is waiting.
  if (readyFiles(pgWalDir).length < 2) return;
  const child = spawn(process.execPath, [cliMain(), 'archive-push-ahead', '--pg-wal', pgWalDir, ...argv], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}

/** Claims a file for this process; false when someone else holds a live claim. */
export function claim(pgWalDir: string, walFile: string): boolean {
  const file = path.join(markerDir(pgWalDir), `${walFile}.claim`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      const holder = readPid(file);
      if (holder !== undefined && isAlive(holder)) return false;
      fs.rmSync(file, { force: true }); // a claim left by a process that died
    }
  }
  return false;
}

export function release(pgWalDir: string, walFile: string): void {
  fs.rmSync(path.join(markerDir(pgWalDir), `${walFile}.claim`), { force: true });
}

/**
 * Waits while another live process holds the claim on this file. Returns
 * when the claim is gone (its marker, if any, is then in place).
 */
export async function waitForClaim(pgWalDir: string, walFile: string, timeoutMs = 300_000): Promise<void> {
  const file = path.join(markerDir(pgWalDir), `${walFile}.claim`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const holder = readPid(file);
    if (holder === undefined || !isAlive(holder) || holder === process.pid) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pusher's loop; returns when nothing was left to push for a few seconds. */
export async function runPusher(opts: {
  repo: Repository;
  cluster: string;
  pgWalDir: string;
  target: string;
  parallel: number;
  log: (line: string) => void;
  /** Archives one file (every repository of a runbook's list); default: pushWalFile into `repo`. */
  push?: (file: string, watch: TimelineWatch) => Promise<{ sha256: string }>;
}): Promise<{ pushed: number; failed: number }> {
  const { pgWalDir } = opts;
  const dir = markerDir(pgWalDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pidFile = pusherPidFile(pgWalDir, opts.target);
  try {
    fs.writeFileSync(pidFile, String(process.pid), { flag: 'wx', mode: 0o600 });
  } catch {
    const holder = readPid(pidFile);
    if (holder !== undefined && isAlive(holder)) return { pushed: 0, failed: 0 };
    fs.writeFileSync(pidFile, String(process.pid), { mode: 0o600 });
  }
  let pushed = 0;
  let failed = 0;
  opts.log(`started: read-ahead for ${opts.target}, ${opts.parallel} at a time`);
  // A file that failed here is left to PostgreSQL's own call, which reports why.
  const gaveUp = new Set<string>();
  const inFlight = new Map<string, Promise<void>>();
  // History files found stay known for every push; a missing newer timeline
  // is asked again for each file, so one that appears stops the very next push.
  const watch = new TimelineWatch(opts.repo, opts.cluster);
  let idleSince = Date.now();
  try {
    for (;;) {
      const done = new Set(fs.readdirSync(dir));
      const ready = readyFiles(pgWalDir);
      removeStaleMarkers(dir, done, new Set(ready));
      const todo = ready.filter((n) => !done.has(n) && !done.has(`${n}.claim`) && !gaveUp.has(n) && !inFlight.has(n));
      // Stay at most a window ahead of PostgreSQL: markers it has not asked
      // for yet count against it. When it stops asking (archiving paused, or
      // archive_command changed) the window stays full and the pusher exits.
      const waiting = ready.filter((n) => done.has(n)).length;
      let room = opts.parallel * 2 - waiting - inFlight.size;
      for (const walFile of todo) {
        if (inFlight.size >= opts.parallel || room <= 0) break;
        if (!claim(pgWalDir, walFile)) continue;
        const file = path.join(pgWalDir, walFile);
        const task = (async () => {
          try {
            const before = fileIdentity(file);
            const outcome = await (opts.push
              ? opts.push(file, watch)
              : pushWalFile(opts.repo, opts.cluster, file, watch));
            if (before !== undefined && fileIdentity(file) === before) {
              await writeMarker(pgWalDir, walFile, markerText(before, outcome.sha256, opts.target));
            }
            pushed++;
          } catch (err) {
            failed++;
            gaveUp.add(walFile);
            opts.log(`read-ahead of ${walFile} failed: ${errorMessage(err).split('\n', 1)[0]}`);
          } finally {
            release(pgWalDir, walFile);
            inFlight.delete(walFile);
          }
        })();
        inFlight.set(walFile, task);
        room--;
      }
      if (inFlight.size > 0) {
        idleSince = Date.now();
        await Promise.race(inFlight.values());
      } else if (Date.now() - idleSince > IDLE_EXIT_MS) {
        removeStaleMarkers(dir, new Set(fs.readdirSync(dir)), new Set(readyFiles(pgWalDir)));
        opts.log(`idle, exiting: ${pushed} pushed, ${failed} failed`);
        return { pushed, failed };
      } else {
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
  } finally {
    await Promise.allSettled(inFlight.values());
    if (readPid(pidFile) === process.pid) fs.rmSync(pidFile, { force: true });
  }
}

/** Markers (and dead claims) of files that are no longer ready will never be asked for. */
function removeStaleMarkers(dir: string, entries: Set<string>, ready: Set<string>): void {
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    const walFile = name.endsWith('.claim') ? name.slice(0, -'.claim'.length) : name;
    if (ready.has(walFile)) continue;
    if (name.endsWith('.claim')) {
      const holder = readPid(path.join(dir, name));
      if (holder !== undefined && isAlive(holder)) continue;
    }
    fs.rmSync(path.join(dir, name), { force: true });
  }
}
