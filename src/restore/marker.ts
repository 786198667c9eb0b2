// The marker a restore leaves in its data directory, `.lifeboat-restore.json`:
// it is how a directory is provably ours. Lifeboat moves aside, stops or
// replays only a directory whose marker names the same workflow; anything
// else is someone's data and is never touched (side-by-side) or only moved
// aside whole (in-place, where the directory is the primary's by design).
//
// The marker also carries what later steps need after a worker crash: the
// backup's start LSN for the replay result, the target the postmaster was
// started with, where its log and socket are, and when it was promoted.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError } from '../errors';
import type { RestoreResult, Target } from '../recovery/contract';
import { chownToUser } from './os-user';

export const MARKER_FILE = '.lifeboat-restore.json';

export type MarkerState = 'extracting' | 'extracted' | 'replaying' | 'promoted';

export interface RestoreMarker {
  workflowId: string;
  runId: string;
  backupId: string;
  /**
   * extracting: the base backup is being written (an interrupted one is
   * moved aside, never reused); extracted: verified, no postmaster ever ran
   * on it; replaying: a postmaster was started on it; promoted.
   */
  state: MarkerState;
  /** When the state last changed. */
  at: string;
  mode: 'side-by-side' | 'in-place';
  /**
   * 'drill': restored by restoreDrill into the runbook's drill.dataDir. An
   * earlier drill's copy is ours to move aside; a recovery's never is.
   * Absent in markers of recoveries (and of markers written before drills).
   */
  instance?: 'drill' | 'standby';
  /** What the backup needs to measure replay against. */
  backup: { startLsn: string; timeline: number; walSegmentSize: number };
  /** Where a directory found at dataDir was moved (reported again by a retry). */
  movedAside?: string;
  /**
   * Why this copy is evidence to keep (a failed verification): a retry then
   * moves it aside even while it is still 'extracting', instead of removing it.
   */
  keep?: string;
  /** The result of the completed extraction, returned as is by a retry. */
  result?: RestoreResult;
  /** The target the postmaster was last started with. */
  target?: Target;
  /** The postmaster's log file and socket directory, fixed at the first start. */
  logFile?: string;
  socketDir?: string;
  promotedAt?: string;
}

export function markerPath(dataDir: string): string {
  return path.join(dataDir, MARKER_FILE);
}

/** The marker of a data directory; undefined when there is none or it is not ours to read. */
export async function readMarker(dataDir: string): Promise<RestoreMarker | undefined> {
  let text: string;
  try {
    text = await readFile(markerPath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as Partial<RestoreMarker>;
    // A marker that does not even name its workflow proves nothing.
    if (
      typeof m.workflowId !== 'string' ||
      typeof m.runId !== 'string' ||
      typeof m.backupId !== 'string' ||
      typeof m.state !== 'string'
    ) {
      return undefined;
    }
    return m as RestoreMarker;
  } catch {
    return undefined;
  }
}

/** `.lifeboat-restore.json.<pid>.<random>.tmp`: unique per writer, in the same directory so rename(2) is atomic. */
export function markerTempPath(dataDir: string): string {
  return `${markerPath(dataDir)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Writes the marker atomically (a torn marker would disown the directory), owned by the OS user. */
export async function writeMarker(dataDir: string, marker: RestoreMarker, osUser: string): Promise<void> {
  const file = markerPath(dataDir);
  // A name of this writer's own: with one fixed name, two writers truncated,
  // chowned and renamed each other's file (issue 10: a raw ENOENT on chown).
  const tmp = markerTempPath(dataDir);
  try {
    await writeFile(tmp, `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await chownToUser(tmp, osUser);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}

export async function updateMarker(
  dataDir: string,
  marker: RestoreMarker,
  change: Partial<RestoreMarker>,
  osUser: string,
): Promise<RestoreMarker> {
  const next = { ...marker, ...change, at: new Date().toISOString() };
  await writeMarker(dataDir, next, osUser);
  return next;
}

/** "workflow W (run R), backup B, state S since T": how a marker is shown to an operator. */
export function describeMarker(m: RestoreMarker): string {
  return `${m.instance === 'drill' ? 'restore drill, ' : m.instance === 'standby' ? 'warm standby, ' : ''}workflow ${m.workflowId} (run ${m.runId}), backup ${m.backupId}, state ${m.state} since ${m.at}`;
}

/**
 * The marker of dataDir when it names this workflow. Steps after the restore
 * act only on their own copy: anything else there is someone's data.
 */
export async function requireOurMarker(dataDir: string, workflowId: string, step: string): Promise<RestoreMarker> {
  const m = await readMarker(dataDir);
  if (!m) {
    throw new LifeboatError(
      'BACKUP_NOT_FOUND',
      `${step}: ${dataDir} holds no base backup restored by workflow ${workflowId} (no ${MARKER_FILE})`,
      {
        hints: ['restore-base-backup must run first; was the directory moved or replaced by hand?'],
        details: { dataDir },
      },
    );
  }
  if (m.workflowId !== workflowId) {
    throw new LifeboatError(
      'DATA_DIR_NOT_EMPTY',
      `${step}: ${dataDir} holds the restore of another recovery (${describeMarker(m)}), not of workflow ${workflowId}`,
      {
        hints: [
          'nothing was changed; a step only acts on the copy its own workflow restored',
          'restore again with this workflow (retarget or retry restore-base-backup)',
        ],
        details: { dataDir },
      },
    );
  }
  return m;
}
