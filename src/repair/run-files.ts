// Where one repair run keeps its files on the drill host: snapshots of the
// copy (before-<i>.jsonl, after-<i>.jsonl), plans (plan-<i>.jsonl) and the
// run's manifest (diff.json). One directory per workflow, beside
// drill.dataDir (the same volume, sized for a copy of the database), named
// after the workflow id so it is provably this run's and nothing else is
// ever removed with it. Every file is written under a temporary name and
// renamed into place: a file under its final name is whole, and an activity
// run twice finds it and returns what it recorded.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { LifeboatError, errorMessage } from '../errors';
import type { Runbook } from '../runbook/schema';
import { restoreSite } from '../restore/site';

export const WORK_DIR_PREFIX = '.lifeboat-repair-';

export function workDirOf(runbook: Runbook, workflowId: string): string {
  const site = restoreSite(runbook, 'drill');
  return path.join(path.dirname(site.dataDir), `${WORK_DIR_PREFIX}${workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}`);
}

export async function ensureWorkDir(runbook: Runbook, workflowId: string): Promise<string> {
  const dir = workDirOf(runbook, workflowId);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new LifeboatError('INPUT_INVALID', `cannot create the repair's work directory ${dir}: ${errorMessage(err)}`, {
      cause: err,
      hints: [
        `the worker's user must be able to create directories beside drill.dataDir (${restoreSite(runbook, 'drill').dataDir})`,
      ],
    });
  }
  return dir;
}

/** A temporary name beside `file`, unique to this attempt. */
export function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = tempName(file);
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { flag: 'wx' });
  await rename(tmp, file);
}

export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Runs `write(tmp)` then renames tmp to `file`; the temporary file is removed when writing fails. */
export async function writeByRename<T>(file: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = tempName(file);
  try {
    const r = await write(tmp);
    await rename(tmp, file);
    return r;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Removes the run's work directory (its name proves it is this run's). */
export async function removeWorkDir(runbook: Runbook, workflowId: string): Promise<string | undefined> {
  const dir = workDirOf(runbook, workflowId);
  try {
    await rm(dir, { recursive: true });
    return dir;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
