// What `lifeboat archive-get` leaves behind when it aborts recovery, so that
// replay-wal can say why PostgreSQL stopped.
//
// PostgreSQL reads every failing restore_command the same way unless it exits
// above 125: "not in the archive", the end of recovery. archive-get exits 255
// for anything but a clean "absent" (src/cli/commands/archive-get.ts), which
// makes the startup process die with FATAL, and the postmaster with it. Its
// log then says only "could not restore file ... command failed with exit
// code 255", and archive-get's own stderr lands wherever the server's stderr
// goes (not in the -l log file once logging_collector is on in the
// postgresql.conf the backup brought along). So archive-get also writes this
// file in the data directory (PostgreSQL runs restore_command there): the
// code from the catalogue, the WAL file, and the operator's text.
// replay-wal removes it before every start of the postmaster, so one found
// after a stop belongs to that start.
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { isErrorCode, isLifeboatError, errorMessage, type ErrorCode } from '../errors';
import { writeFileAtomic } from './get';

export const RESTORE_FAILURE_FILE = 'lifeboat-archive-get.failed.json';

export interface RestoreFailure {
  /** From the catalogue; TOOL_FAILED for anything that was not a LifeboatError. */
  code: ErrorCode;
  /** The WAL file PostgreSQL asked for (%f). */
  walFile: string;
  /** What failed, without hints (one line or several). */
  what: string;
  hints: string[];
  /** The repository object, when archive-get got as far as reading one. */
  object?: string;
  at: string;
  pid: number;
}

/** Records why archive-get could not restore `walFile`; never throws (it must not hide the exit code). */
export async function recordRestoreFailure(dataDir: string, walFile: string, err: unknown): Promise<void> {
  const failure: RestoreFailure = {
    code: isLifeboatError(err) ? err.code : 'TOOL_FAILED',
    walFile,
    what: isLifeboatError(err) ? err.what : errorMessage(err),
    hints: isLifeboatError(err) ? [...err.hints] : [],
    ...(isLifeboatError(err) && typeof err.details.object === 'string' ? { object: err.details.object } : {}),
    at: new Date().toISOString(),
    pid: process.pid,
  };
  await writeFileAtomic(
    path.join(dataDir, RESTORE_FAILURE_FILE),
    Buffer.from(`${JSON.stringify(failure, null, 2)}\n`),
  ).catch(() => undefined);
}

/** The failure archive-get recorded in this data directory, if any (and readable). */
export async function readRestoreFailure(dataDir: string): Promise<RestoreFailure | undefined> {
  try {
    const raw = JSON.parse(await readFile(path.join(dataDir, RESTORE_FAILURE_FILE), 'utf8')) as Partial<RestoreFailure>;
    if (!isErrorCode(raw.code) || typeof raw.walFile !== 'string' || typeof raw.what !== 'string') return undefined;
    return {
      code: raw.code,
      walFile: raw.walFile,
      what: raw.what,
      hints: Array.isArray(raw.hints) ? raw.hints.filter((h): h is string => typeof h === 'string') : [],
      ...(typeof raw.object === 'string' ? { object: raw.object } : {}),
      at: String(raw.at ?? ''),
      pid: Number(raw.pid ?? 0),
    };
  } catch {
    return undefined;
  }
}

export async function clearRestoreFailure(dataDir: string): Promise<void> {
  await rm(path.join(dataDir, RESTORE_FAILURE_FILE), { force: true });
}
