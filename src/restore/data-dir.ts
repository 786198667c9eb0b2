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
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rename } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import type { RestoreInstanceKind, RestoreResult } from '../recovery/contract';
import { describeMarker, readMarker, type RestoreMarker } from './marker';
import { chownToUser } from './os-user';
import { postmasterRunning, stopPostmaster, type PgHost } from './postmaster';

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
function field(input: PrepareInput): string {
  return `${input.instance === 'drill' ? 'drill' : 'restore'}.dataDir`;
}

function whose(input: PrepareInput): string {
  return input.instance === 'drill' ? 'this drill' : 'this recovery';
}

export type Prepared =
  /** The directory holds this run's verified extraction of this backup: return its result again. */
  | { kind: 'reuse'; result: RestoreResult }
  /** dataDir is an empty directory owned by the OS user, mode 0700. */
  | { kind: 'ready'; movedAside?: string; stoppedPostmaster: boolean };

export async function prepareDataDir(input: PrepareInput): Promise<Prepared> {
  const { dataDir } = input.pg;
  const entries = await readdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new LifeboatError('DATA_DIR_NOT_EMPTY', `cannot read ${field(input)} ${dataDir}: ${err.message}`, {
      hints: ['check that the path is a directory the worker can read'],
      cause: err,
    });
  });
  if (entries !== undefined && entries.length > 0) {
    const marker = await readMarker(dataDir);
    if (marker && marker.workflowId === input.workflowId) return prepareOurs(input, marker);
    if (input.instance === 'drill' && marker?.instance === 'drill') return prepareEarlierDrill(input, marker);
    if (input.mode === 'side-by-side') throw await notEmpty(input, entries, marker);
    // in-place: the primary's directory (or an earlier recovery's, which became the primary).
    const stopped = await stopPostmaster(input.pg, 'in-place restore: the old primary must be down before its directory is moved aside');
    const movedAside = await moveAside(dataDir, 'lifeboat-moved');
    await makeEmptyDir(input.pg);
    return { kind: 'ready', movedAside, stoppedPostmaster: stopped };
  }
  await makeEmptyDir(input.pg);
  return { kind: 'ready', stoppedPostmaster: false };
}

async function prepareOurs(input: PrepareInput, marker: RestoreMarker): Promise<Prepared> {
  const { dataDir } = input.pg;
  if (marker.state === 'promoted') {
    // Once promoted the copy may already take traffic as the new primary.
    throw new LifeboatError('DATA_DIR_NOT_EMPTY', `${field(input)} ${dataDir} holds ${input.instance === 'drill' ? "this drill's" : "this recovery's"} copy, promoted at ${marker.promotedAt ?? marker.at}; it is not restored over`, {
      hints: ['a promoted copy may be serving as the primary: Lifeboat neither stops nor moves it', 'if it truly must be replaced, stop it and move it away by hand, then retry the step'],
      details: { dataDir },
    });
  }
  const running = await postmasterRunning(input.pg);
  if (
    !running &&
    marker.state === 'extracted' &&
    marker.runId === input.runId &&
    marker.backupId === input.backupId &&
    marker.result
  ) {
    return { kind: 'reuse', result: marker.result };
  }
  // An interrupted extraction, or a restored copy that has replayed (or
  // failed to): it cannot be trusted as a fresh start, but it is evidence.
  const stopped = running ? await stopPostmaster(input.pg, 'restoring again: this recovery\'s earlier copy must be down before it is moved aside') : false;
  const ownAside = await moveAside(dataDir, 'lifeboat');
  await makeEmptyDir(input.pg);
  // An in-place retry keeps reporting where the primary's directory went.
  return { kind: 'ready', movedAside: marker.movedAside ?? ownAside, stoppedPostmaster: stopped };
}

/**
 * drill.dataDir holds what an earlier restore drill left (a crashed worker,
 * a teardown that failed): provably ours, so it is moved aside, never
 * deleted. A postmaster still running there is a drill in progress or one
 * kept for inspection (keep: true): not ours to stop.
 */
async function prepareEarlierDrill(input: PrepareInput, marker: RestoreMarker): Promise<Prepared> {
  const { dataDir, pgBin, osUser } = input.pg;
  if (await postmasterRunning(input.pg)) {
    throw new LifeboatError(
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
  const movedAside = await moveAside(dataDir, 'lifeboat-drill');
  await makeEmptyDir(input.pg);
  return { kind: 'ready', movedAside, stoppedPostmaster: false };
}

/** "20261121T190102Z": when a directory was moved aside, in its new name. */
export function compactTimestamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Renames dir to `<dir>.<label>-<timestamp>` (with -2, -3... when taken); returns the new path. */
export async function moveAside(dir: string, label: string): Promise<string> {
  const base = `${dir}.${label}-${compactTimestamp()}`;
  let target = base;
  for (let i = 2; existsSync(target); i++) target = `${base}-${i}`;
  try {
    await rename(dir, target);
  } catch (err) {
    throw new LifeboatError('DATA_DIR_NOT_EMPTY', `could not move ${dir} aside to ${target}: ${(err as Error).message}`, {
      hints: ['nothing was deleted; move the directory away by hand and retry the step'],
      cause: err,
    });
  }
  return target;
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

async function notEmpty(input: PrepareInput, entries: string[], marker: RestoreMarker | undefined): Promise<LifeboatError> {
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
        ...(running ? [`stop that server first (as ${osUser}): ${input.pg.pgBin}/pg_ctl stop -D ${dataDir} -m fast`] : []),
        `if it is no longer needed, move it away (as root or ${osUser}): mv ${dataDir} ${dataDir}.old-$(date -u +%Y%m%dT%H%M%SZ), then retry the step`,
        `or set ${field(input)} in runbook ${input.runbookName} to an absent or empty directory`,
      ],
      details: { dataDir, entries: entries.length },
    },
  );
}
