// Making restore.dataDir ready for a restore, without ever deleting anything:
//   - absent or empty: used as is;
//   - ours (its marker names this workflow): a retry, or a restore again
//     after a retarget to an earlier point. Its postmaster is stopped and the
//     directory moved aside, unless it holds the finished, verified extraction
//     of the same backup for the same run, which a retry returns as is;
//   - an earlier drill's (drill.dataDir, marker of a restore drill): moved
//     aside when no postmaster runs in it; refused while one does (a drill
//     still running, or one kept for inspection);
//   - anyone else's, side-by-side: refused with DATA_DIR_NOT_EMPTY;
//   - anyone else's, in-place: the directory is the primary's by design. Its
//     postmaster is stopped (fast) and the whole directory moved aside.
// Moving aside renames the directory to a sibling, `<dataDir>.lifeboat-...`;
// a mount point cannot be renamed (EBUSY), so there its contents go into a
// dated subdirectory, `<dataDir>/.lifeboat-aside-<time>/`, which every later
// step tolerates (the emptiness check here, pg_verifybackup's --ignore).
// The caller holds the directory's claim (claim.ts) before any of this runs.
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import type { RestoreInstanceKind, RestoreResult } from '../recovery/contract';
import { MARKER_FILE, describeMarker, readMarker, type RestoreMarker } from './marker';
import { chownToUser } from './os-user';
import { postmasterRunning, stopPostmaster, type PgHost } from './postmaster';
import { removeCredentialsFile } from './secret-file';

export interface PrepareInput {
  pg: PgHost;
  runbookName: string;
  mode: 'side-by-side' | 'in-place';
  workflowId: string;
  runId: string;
  backupId: string;
  /** The drill instance (restoreDrill); absent for a recovery. */
  instance?: RestoreInstanceKind;
}

/** "restore.dataDir" or "drill.dataDir": the runbook field an operator would fix. */
export function field(input: PrepareInput): string {
  return `${input.instance === 'drill' || input.instance === 'standby' ? input.instance : 'restore'}.dataDir`;
}

function whose(input: PrepareInput): string {
  return input.instance === 'drill' ? 'this drill' : input.instance === 'standby' ? 'the standby' : 'this recovery';
}

export type Prepared =
  /** The directory holds this run's verified extraction of this backup: return its result again. */
  | { kind: 'reuse'; result: RestoreResult }
  /** dataDir is an empty directory owned by the OS user, mode 0700 (but for kept `.lifeboat-aside-*` subdirectories). */
  | { kind: 'ready'; movedAside?: string; stoppedPostmaster: boolean; removedOwnPartial?: boolean };

/** Subdirectories that hold what was moved aside inside a mount point. */
export const ASIDE_PREFIX = '.lifeboat-aside-';

/**
 * Entries of a data directory that do not make it "not empty": what Lifeboat
 * moved aside inside it, and the lost+found of a file system mounted there.
 * They stay where they are; tar extracts beside them and pg_verifybackup is
 * told to ignore them.
 */
export function isKeptEntry(name: string): boolean {
  return name.startsWith(ASIDE_PREFIX) || name === 'lost+found';
}

/** The kept entries present in dataDir, for pg_verifybackup --ignore. */
export async function keptEntries(dataDir: string): Promise<string[]> {
  return (await readdir(dataDir).catch(() => [] as string[])).filter(isKeptEntry).sort();
}

/**
 * What a restore finds at dataDir, read only: the one judgement behind both
 * prepareDataDir (which then acts on it) and the preflight check of the
 * restore site (src/restore/site-check.ts, which refuses before anything is
 * fenced what prepareDataDir would refuse after).
 */
export type DataDirFinding =
  /** Absent, or empty but for kept entries. */
  | { kind: 'empty' }
  /** Its marker names this workflow: a retry, or a restore again after a retarget. */
  | { kind: 'ours'; marker: RestoreMarker }
  /** drill.dataDir holding an earlier restore drill's copy. */
  | { kind: 'earlier-drill'; marker: RestoreMarker }
  /** In-place: the primary's directory by design, moved aside whole. */
  | { kind: 'in-place' }
  /** Someone else's (or another recovery's), side by side: refused. */
  | { kind: 'foreign'; entries: string[]; marker?: RestoreMarker };

export async function judgeDataDir(input: PrepareInput): Promise<DataDirFinding> {
  const { dataDir } = input.pg;
  const entries = await readdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new LifeboatError('DATA_DIR_NOT_EMPTY', `cannot read ${field(input)} ${dataDir}: ${err.message}`, {
      hints: ['check that the path is a directory the worker can read'],
      cause: err,
    });
  });
  const present = entries?.filter((e) => !isKeptEntry(e));
  if (present === undefined || present.length === 0) return { kind: 'empty' };
  const marker = await readMarker(dataDir);
  if (marker && marker.workflowId === input.workflowId) return { kind: 'ours', marker };
  if (input.instance === 'drill' && marker?.instance === 'drill') return { kind: 'earlier-drill', marker };
  if (input.mode === 'side-by-side') return { kind: 'foreign', entries: present, ...(marker ? { marker } : {}) };
  return { kind: 'in-place' };
}

export async function prepareDataDir(input: PrepareInput): Promise<Prepared> {
  const { dataDir } = input.pg;
  const found = await judgeDataDir(input);
  switch (found.kind) {
    case 'ours':
      return prepareOurs(input, found.marker);
    case 'earlier-drill':
      return prepareEarlierDrill(input, found.marker);
    case 'foreign':
      throw await notEmpty(input, found.entries, found.marker);
    case 'in-place': {
      // The primary's directory (or an earlier recovery's, which became the primary).
      const stopped = await stopPostmaster(
        input.pg,
        'in-place restore: the old primary must be down before its directory is moved aside',
      );
      const movedAside = await moveAside(dataDir, 'lifeboat-moved', input.pg.osUser);
      await makeEmptyDir(input.pg);
      return { kind: 'ready', movedAside, stoppedPostmaster: stopped };
    }
    case 'empty':
      await makeEmptyDir(input.pg);
      return { kind: 'ready', stoppedPostmaster: false };
  }
}

async function prepareOurs(input: PrepareInput, marker: RestoreMarker): Promise<Prepared> {
  const { dataDir } = input.pg;
  // Once promoted the copy may already take traffic as the new primary.
  if (marker.state === 'promoted') throw promotedOurs(input, marker, 'retry the step');
  const running = await postmasterRunning(input.pg);
  if (!running && marker.state === 'extracting' && marker.runId === input.runId && !marker.keep) {
    // Provably ours and nothing but the repository's bytes: this run wrote the
    // marker before its first byte, 'extracting' means no verification passed
    // and no postmaster ever started on it (replay-wal refuses an extracting
    // copy, and a started one is 'replaying'), and no failed check asked to
    // keep it. The repository reproduces it byte for byte, so removing it
    // loses nothing, and keeping it would fill the volume with one partial
    // copy per attempt: after a full disk, the retry would find no room.
    await removeOwnExtraction(dataDir);
    await makeEmptyDir(input.pg);
    return {
      kind: 'ready',
      ...(marker.movedAside ? { movedAside: marker.movedAside } : {}),
      stoppedPostmaster: false,
      removedOwnPartial: true,
    };
  }
  const earlier = await reuseOrStop(
    input,
    marker,
    running,
    "restoring again: this recovery's earlier copy must be down before it is moved aside",
  );
  if (earlier.kind === 'reuse') return earlier;
  // An interrupted extraction, or a restored copy that has replayed (or
  // failed to): it cannot be trusted as a fresh start, but it is evidence.
  const ownAside = await moveAside(dataDir, 'lifeboat', input.pg.osUser);
  await makeEmptyDir(input.pg);
  // An in-place retry keeps reporting where the primary's directory went.
  return { kind: 'ready', movedAside: marker.movedAside ?? ownAside, stoppedPostmaster: earlier.stoppedPostmaster };
}

/**
 * This run's own earlier copy (its marker, `running` whether a postmaster
 * runs in it): the verified extraction of this very backup, never started,
 * is returned as it is (a retry after the configuration check failed);
 * anything else is restored over, its postmaster stopped first (`why` in the
 * server log).
 */
export async function reuseOrStop(
  input: PrepareInput,
  marker: RestoreMarker,
  running: boolean,
  why: string,
): Promise<{ kind: 'reuse'; result: RestoreResult } | { kind: 'stopped'; stoppedPostmaster: boolean }> {
  if (
    !running &&
    marker.state === 'extracted' &&
    marker.runId === input.runId &&
    marker.backupId === input.backupId &&
    marker.result
  ) {
    return { kind: 'reuse', result: marker.result };
  }
  return { kind: 'stopped', stoppedPostmaster: running ? await stopPostmaster(input.pg, why) : false };
}

/**
 * drill.dataDir holds what an earlier restore drill left (a crashed worker,
 * a teardown that failed): provably ours, so it is moved aside, never
 * deleted. A postmaster still running there is a drill in progress or one
 * kept for inspection (keep: true): not ours to stop.
 */
async function prepareEarlierDrill(input: PrepareInput, marker: RestoreMarker): Promise<Prepared> {
  const { dataDir } = input.pg;
  if (await postmasterRunning(input.pg)) throw earlierDrillRunning(input, marker);
  const movedAside = await moveAside(dataDir, 'lifeboat-drill', input.pg.osUser);
  await makeEmptyDir(input.pg);
  return { kind: 'ready', movedAside, stoppedPostmaster: false };
}

/** This run's own copy, promoted: never restored over. `then`: what to do after ("retry the step"). */
export function promotedOurs(input: PrepareInput, marker: RestoreMarker, then: string): LifeboatError {
  return new LifeboatError(
    'DATA_DIR_NOT_EMPTY',
    `${field(input)} ${input.pg.dataDir} holds ${input.instance === 'drill' ? "this drill's" : "this recovery's"} copy, promoted at ${marker.promotedAt ?? marker.at}; it is not restored over`,
    {
      hints: [
        'a promoted copy may be serving as the primary: Lifeboat neither stops nor moves it',
        `if it truly must be replaced, stop it and move it away by hand, then ${then}`,
      ],
      details: { dataDir: input.pg.dataDir },
    },
  );
}

/** drill.dataDir holds another drill's copy with a postmaster running: a drill in progress, or one kept. */
export function earlierDrillRunning(input: PrepareInput, marker: RestoreMarker): LifeboatError {
  const { dataDir, pgBin, osUser } = input.pg;
  return new LifeboatError(
    'DATA_DIR_NOT_EMPTY',
    `drill.dataDir ${dataDir} holds the copy of another restore drill (${describeMarker(marker)}) with PostgreSQL still running in it`,
    {
      hints: [
        'a drill is still running, or one was kept for inspection (keep: true); nothing was changed',
        `when it is no longer needed, stop it (as ${osUser}): ${pgBin}/pg_ctl stop -D ${dataDir} -m fast; the next drill moves its directory aside`,
      ],
      details: { dataDir },
    },
  );
}

/** "20261121T190102Z": when a directory was moved aside, in its new name. */
export function compactTimestamp(d = new Date()): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/**
 * Renames dir to `<dir>.<label>-<timestamp>` (with -2, -3... when taken);
 * returns the new path. When dir cannot be renamed (a mount point: EBUSY; a
 * parent the worker may not write: EACCES), its contents go into
 * `<dir>/.lifeboat-aside-<timestamp>/` instead: the same file system, so each
 * move is a rename and nothing is copied or deleted.
 */
export async function moveAside(dir: string, label: string, osUser?: string): Promise<string> {
  const base = `${dir}.${label}-${compactTimestamp()}`;
  let target = base;
  for (let i = 2; existsSync(target); i++) target = `${base}-${i}`;
  // A copy's credentials file (secret-file.ts) is never kept with what is moved
  // aside: its postmaster is down by now, and nobody will need its keys again.
  await removeCredentialsFile(dir);
  try {
    await rename(dir, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EBUSY' || code === 'EXDEV' || code === 'EACCES' || code === 'EPERM')
      return moveContentsAside(dir, osUser);
    throw new LifeboatError(
      'DATA_DIR_NOT_EMPTY',
      `could not move ${dir} aside to ${target}: ${(err as Error).message}`,
      {
        hints: ['nothing was deleted; move the directory away by hand and retry the step'],
        cause: err,
      },
    );
  }
  return target;
}

/** Moves every entry of dir but the kept ones into a new `.lifeboat-aside-<timestamp>` subdirectory; returns its path. */
export async function moveContentsAside(dir: string, osUser?: string): Promise<string> {
  const base = path.join(dir, `${ASIDE_PREFIX}${compactTimestamp()}`);
  let aside = base;
  for (let i = 2; existsSync(aside); i++) aside = `${base}-${i}`;
  // The marker last: until everything is moved, dir is still provably ours,
  // so a retry after a crash here moves the rest.
  const entries = (await readdir(dir))
    .filter((e) => !isKeptEntry(e))
    .sort((a, b) => Number(a === MARKER_FILE) - Number(b === MARKER_FILE));
  let moved = 0;
  try {
    await mkdir(aside, { mode: 0o700 });
    // The OS user's, like the copy it holds: a postmaster started on dataDir
    // walks the whole directory (fsync at crash recovery) and must not trip on it.
    if (osUser) await chownToUser(aside, osUser);
    for (const e of entries) {
      await rename(path.join(dir, e), path.join(aside, e));
      moved++;
    }
  } catch (err) {
    throw new LifeboatError(
      (err as NodeJS.ErrnoException).code === 'ENOSPC' ? 'DISK_FULL' : 'DATA_DIR_NOT_EMPTY',
      `could not move the contents of ${dir} aside into ${aside} (${moved} of ${entries.length} entries moved): ${(err as Error).message}`,
      {
        hints: [
          `nothing was deleted; what was moved is in ${aside}, the rest still in ${dir}`,
          'move the rest by hand (or everything out of the directory) and retry the step',
        ],
        cause: err,
        details: { dataDir: dir, aside },
      },
    );
  }
  return aside;
}

/** Removes everything in dataDir but the kept entries (removeOwnExtraction's one caller has proven it ours). */
async function removeOwnExtraction(dataDir: string): Promise<void> {
  for (const e of await readdir(dataDir)) {
    if (!isKeptEntry(e)) await rm(path.join(dataDir, e), { recursive: true, force: true });
  }
}

/** Whether dir is the root of a mounted file system (its device differs from its parent's). */
async function isMountPoint(dir: string): Promise<boolean> {
  const [a, b] = await Promise.all([stat(dir).catch(() => undefined), stat(path.dirname(dir)).catch(() => undefined)]);
  return a !== undefined && b !== undefined && a.dev !== b.dev;
}

async function makeEmptyDir(pg: PgHost): Promise<void> {
  // Parents are created as the worker's user with the default mode: only the
  // data directory itself must belong to the OS user with mode 0700.
  await mkdir(path.dirname(pg.dataDir), { recursive: true });
  await mkdir(pg.dataDir, { recursive: true, mode: 0o700 });
  await chownToUser(pg.dataDir, pg.osUser);
  // PostgreSQL refuses to start on a data directory others can read.
  await chmod(pg.dataDir, 0o700);
}

/**
 * DATA_DIR_NOT_EMPTY for a directory that is not provably ours, saying what
 * it holds and exactly what an operator can do. `then`: what follows the
 * operator's fix ("retry the step" during restore, "start the recovery
 * again" in preflight).
 */
export async function notEmpty(
  input: PrepareInput,
  entries: string[],
  marker: RestoreMarker | undefined,
  then = 'retry the step',
): Promise<LifeboatError> {
  const { dataDir, osUser } = input.pg;
  const running = await postmasterRunning(input.pg).catch(() => false);
  const version = await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8').then(
    (t) => t.trim(),
    () => undefined,
  );
  const shown = [...entries].sort().slice(0, 8).join(', ');
  const more = entries.length > 8 ? ` and ${entries.length - 8} more` : '';
  const what = [
    version ? `a PostgreSQL ${version} data directory` : `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`,
    `(${shown}${more})`,
    ...(marker ? [`restored by Lifeboat for another recovery: ${describeMarker(marker)}`] : []),
    ...(running ? ['with a PostgreSQL server running in it'] : []),
  ].join(' ');
  return new LifeboatError(
    'DATA_DIR_NOT_EMPTY',
    `${field(input)} ${dataDir} is not empty and was not restored by ${whose(input)} (workflow ${input.workflowId}): it holds ${what}`,
    {
      hints: [
        'Lifeboat never deletes a data directory it cannot prove is its own; nothing in it was changed',
        ...(running && marker?.state === 'promoted'
          ? [
              `that server is the copy workflow ${marker.workflowId} promoted at ${marker.promotedAt ?? marker.at}: it may be serving as the primary now, so stop it (as ${osUser}: ${input.pg.pgBin}/pg_ctl stop -D ${dataDir} -m fast) only once clients no longer use it`,
            ]
          : running
            ? [`stop that server first (as ${osUser}): ${input.pg.pgBin}/pg_ctl stop -D ${dataDir} -m fast`]
            : []),
        (await isMountPoint(dataDir))
          ? `if it is no longer needed: it is a mount point, which cannot be renamed, so move its contents (all but lost+found) off the volume or into a subdirectory named .lifeboat-aside-<time>, which Lifeboat leaves alone and restores beside (as root or ${osUser}); then ${then}`
          : `if it is no longer needed, move it away (as root or ${osUser}): mv ${dataDir} ${dataDir}.old-$(date -u +%Y%m%dT%H%M%SZ), then ${then}`,
        `or set ${field(input)} in runbook ${input.runbookName} to an absent or empty directory`,
      ],
      details: { dataDir, entries: entries.length },
    },
  );
}
